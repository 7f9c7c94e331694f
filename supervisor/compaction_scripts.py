"""The Lua scripts that move one item between nautilus' keys and the archive, and the archive's framing.

Each script is one atomic step: Redis runs a script to completion with nothing interleaved, and persists
and replicates its writes as one transaction (an AOF or replica never holds half of it). Every script checks
everything first and writes only when all checks pass, because a script that fails half-way keeps the writes
it made. So a compaction killed at any moment leaves each item either where nautilus expects it, with its
index entries, or in the archive with them; never half-moved.

Before moving an item the script compares its current content with what the planner decided on (a SHA-1 over
the framed events): if a node appended an event in between, the item stays.

Framing: an archived event list is the concatenation of `u32 big-endian length || event bytes` per event, so
restore gives back the exact bytes nautilus wrote.

The `#!lua` shebang makes Redis refuse a script up front when it is out of memory, instead of failing a write
half-way.
"""

from __future__ import annotations

import hashlib
import struct

from supervisor.cache_keys import ORDER_HASH_INDEXES, ORDER_SET_INDEXES, POSITION_SET_INDEXES


def frame(events: list[bytes]) -> bytes:
    return b"".join(struct.pack(">I", len(e)) + e for e in events)


def unframe(blob: bytes) -> list[bytes]:
    events: list[bytes] = []
    pos = 0
    while pos < len(blob):
        if pos + 4 > len(blob):
            raise ValueError("truncated archive record")
        (size,) = struct.unpack_from(">I", blob, pos)
        pos += 4
        if pos + size > len(blob):
            raise ValueError("truncated archive record")
        events.append(blob[pos : pos + size])
        pos += size
    return events


def digest(events: list[bytes]) -> str:
    return hashlib.sha1(frame(events), usedforsecurity=False).hexdigest()


def _lua_list(names: tuple[str, ...]) -> str:
    return "{" + ", ".join(f"'{n}'" for n in names) + "}"


_COMMON = r"""
local function framed(key)
  local items = redis.call('LRANGE', key, 0, -1)
  local parts = {}
  for i, e in ipairs(items) do parts[i] = struct.pack('>I4', #e) .. e end
  return table.concat(parts)
end

local function unframed(blob)
  local out, pos = {}, 1
  while pos <= #blob do
    local size = struct.unpack('>I4', blob, pos)
    out[#out + 1] = string.sub(blob, pos + 4, pos + 3 + size)
    pos = pos + 4 + size
  end
  return out
end

local function push_all(key, items)
  for i = 1, #items, 1000 do
    redis.call('RPUSH', key, unpack(items, i, math.min(i + 999, #items)))
  end
end

local function type_ok(key, want)
  local t = redis.call('TYPE', key).ok
  return t == want or t == 'none'
end
"""

# KEYS: 1 archive data hash, 2 archive meta hash, then the order set indexes, the order hash indexes
# (in ORDER_SET_INDEXES / ORDER_HASH_INDEXES order), then the live order keys of the group.
# ARGV: 1 archived_ns, then per order: client order id, sha1, info JSON.
ARCHIVE_ORDERS = (
    "#!lua\n"
    + _COMMON
    + f"""
local SETS = {_lua_list(ORDER_SET_INDEXES)}
local HASHES = {_lua_list(ORDER_HASH_INDEXES)}
local LIVE = {{
  ['index:orders_open'] = true, ['index:orders_emulated'] = true, ['index:orders_inflight'] = true
}}
"""
    + r"""
local first_live = 3 + #SETS + #HASHES
local n = #KEYS - first_live + 1
if not (type_ok(KEYS[1], 'hash') and type_ok(KEYS[2], 'hash')) then return {'wrongtype', ''} end
for s = 1, #SETS do if not type_ok(KEYS[2 + s], 'set') then return {'wrongtype', SETS[s]} end end
for h = 1, #HASHES do
  if not type_ok(KEYS[2 + #SETS + h], 'hash') then return {'wrongtype', HASHES[h]} end
end
local blobs = {}
for i = 0, n - 1 do
  local key, cid, sha = KEYS[first_live + i], ARGV[2 + 3 * i], ARGV[3 + 3 * i]
  if redis.call('TYPE', key).ok ~= 'list' then return {'changed', cid} end
  if redis.call('HEXISTS', KEYS[1], cid) == 1 then return {'exists', cid} end
  -- open, in flight or emulated per nautilus' own index: not history
  for s = 1, #SETS do
    if LIVE[SETS[s]] and redis.call('SISMEMBER', KEYS[2 + s], cid) == 1 then return {'open', cid} end
  end
  local blob = framed(key)
  if redis.sha1hex(blob) ~= sha then return {'changed', cid} end
  blobs[i] = blob
end
for i = 0, n - 1 do
  local key, cid, info = KEYS[first_live + i], ARGV[2 + 3 * i], ARGV[4 + 3 * i]
  local sets, hashes = {}, {}
  for s = 1, #SETS do
    if redis.call('SREM', KEYS[2 + s], cid) == 1 then sets[SETS[s]] = true end
  end
  for h = 1, #HASHES do
    local hkey = KEYS[2 + #SETS + h]
    local v = redis.call('HGET', hkey, cid)
    if v then
      hashes[HASHES[h]] = v
      redis.call('HDEL', hkey, cid)
    end
  end
  local meta = '{"info":' .. info .. ',"sets":' .. cjson.encode(sets) .. ',"hashes":' .. cjson.encode(hashes)
    .. ',"archived_ns":"' .. ARGV[1] .. '"}'
  redis.call('HSET', KEYS[1], cid, blobs[i])
  redis.call('HSET', KEYS[2], cid, meta)
  redis.call('DEL', key)
end
return {'ok', tostring(n)}
"""
)

# KEYS: as ARCHIVE_ORDERS with exactly one live order key. ARGV: 1 client order id.
RESTORE_ORDER = (
    "#!lua\n"
    + _COMMON
    + f"""
local SETS = {_lua_list(ORDER_SET_INDEXES)}
local HASHES = {_lua_list(ORDER_HASH_INDEXES)}
"""
    + r"""
local live, cid = KEYS[3 + #SETS + #HASHES], ARGV[1]
local blob = redis.call('HGET', KEYS[1], cid)
if not blob then return {'missing', cid} end
if redis.call('EXISTS', live) == 1 then return {'conflict', cid} end
local meta = cjson.decode(redis.call('HGET', KEYS[2], cid) or '{"sets":{},"hashes":{}}')
for s = 1, #SETS do if not type_ok(KEYS[2 + s], 'set') then return {'wrongtype', SETS[s]} end end
for h = 1, #HASHES do
  if not type_ok(KEYS[2 + #SETS + h], 'hash') then return {'wrongtype', HASHES[h]} end
end
push_all(live, unframed(blob))
for s = 1, #SETS do if meta.sets[SETS[s]] then redis.call('SADD', KEYS[2 + s], cid) end end
for h = 1, #HASHES do
  local v = meta.hashes[HASHES[h]]
  if v then redis.call('HSETNX', KEYS[2 + #SETS + h], cid, v) end
end
redis.call('HDEL', KEYS[1], cid)
redis.call('HDEL', KEYS[2], cid)
return {'ok', cid}
"""
)

# KEYS: 1 archive data hash, 2 archive meta hash, 3-5 the position set indexes (POSITION_SET_INDEXES order),
# 6 the live position key. ARGV: 1 archived_ns, 2 archive id, 3 position id, 4 sha1, 5 info JSON.
ARCHIVE_POSITION = (
    "#!lua\n"
    + _COMMON
    + f"""
local SETS = {_lua_list(POSITION_SET_INDEXES)}
"""
    + r"""
local live, aid, pid, sha, info = KEYS[6], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if not (type_ok(KEYS[1], 'hash') and type_ok(KEYS[2], 'hash')) then return {'wrongtype', ''} end
for s = 1, #SETS do if not type_ok(KEYS[2 + s], 'set') then return {'wrongtype', SETS[s]} end end
if redis.call('TYPE', live).ok ~= 'list' then return {'changed', pid} end
if redis.call('HEXISTS', KEYS[1], aid) == 1 then return {'exists', pid} end
if redis.call('SISMEMBER', KEYS[4], pid) == 1 then return {'open', pid} end
local blob = framed(live)
if redis.sha1hex(blob) ~= sha then return {'changed', pid} end
local sets = {}
for s = 1, #SETS do
  if redis.call('SREM', KEYS[2 + s], pid) == 1 then sets[SETS[s]] = true end
end
local meta = '{"info":' .. info .. ',"sets":' .. cjson.encode(sets) .. ',"archived_ns":"' .. ARGV[1] .. '"}'
redis.call('HSET', KEYS[1], aid, blob)
redis.call('HSET', KEYS[2], aid, meta)
redis.call('DEL', live)
return {'ok', pid}
"""
)

# KEYS: as ARCHIVE_POSITION. ARGV: 1 archive id, 2 position id.
RESTORE_POSITION = (
    "#!lua\n"
    + _COMMON
    + f"""
local SETS = {_lua_list(POSITION_SET_INDEXES)}
"""
    + r"""
local live, aid, pid = KEYS[6], ARGV[1], ARGV[2]
local blob = redis.call('HGET', KEYS[1], aid)
if not blob then return {'missing', aid} end
if redis.call('EXISTS', live) == 1 then return {'conflict', aid} end
for s = 1, #SETS do if not type_ok(KEYS[2 + s], 'set') then return {'wrongtype', SETS[s]} end end
local meta = cjson.decode(redis.call('HGET', KEYS[2], aid) or '{"sets":{}}')
push_all(live, unframed(blob))
for s = 1, #SETS do if meta.sets[SETS[s]] then redis.call('SADD', KEYS[2 + s], pid) end end
redis.call('HDEL', KEYS[1], aid)
redis.call('HDEL', KEYS[2], aid)
return {'ok', aid}
"""
)

# Moves events [1, cut) of an account's list to the end of its archive list; event 0 stays first.
# KEYS: 1 live account list, 2 archive list.
# ARGV: 1 expected length, 2 cut, 3 sha1 over the framed events [0, cut).
ARCHIVE_ACCOUNT_EVENTS = (
    "#!lua\n"
    + _COMMON
    + r"""
local live, archive, cut = KEYS[1], KEYS[2], tonumber(ARGV[2])
if redis.call('TYPE', live).ok ~= 'list' or not type_ok(archive, 'list') then return {'changed', '0'} end
if redis.call('LLEN', live) ~= tonumber(ARGV[1]) then return {'changed', '0'} end
local head = redis.call('LRANGE', live, 0, cut - 1)
local parts = {}
for i, e in ipairs(head) do parts[i] = struct.pack('>I4', #e) .. e end
if redis.sha1hex(table.concat(parts)) ~= ARGV[3] then return {'changed', '0'} end
local moved = {}
for i = 2, #head do moved[i - 1] = head[i] end
push_all(archive, moved)
redis.call('LTRIM', live, cut, -1)
redis.call('LPUSH', live, head[1])
return {'ok', tostring(#moved)}
"""
)

# Puts an account's archived events back between its first event and the rest. KEYS: as above.
RESTORE_ACCOUNT_EVENTS = (
    "#!lua\n"
    + _COMMON
    + r"""
local live, archive = KEYS[1], KEYS[2]
if redis.call('TYPE', archive).ok ~= 'list' then return {'missing', '0'} end
if redis.call('TYPE', live).ok ~= 'list' then return {'conflict', '0'} end
local events = redis.call('LRANGE', archive, 0, -1)
local first = redis.call('LPOP', live)
for i = #events, 1, -1 do redis.call('LPUSH', live, events[i]) end
redis.call('LPUSH', live, first)
redis.call('DEL', archive)
return {'ok', tostring(#events)}
"""
)

# KEYS: 1 lock key. ARGV: 1 token.
RELEASE_LOCK = """#!lua
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
