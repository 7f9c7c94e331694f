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

# Archives several groups of orders; each group moves completely or not at all (a contingency group, or a
# single order). KEYS: 1 archive data hash, 2 archive meta hash, then the order set indexes and the order hash
# indexes (ORDER_SET_INDEXES / ORDER_HASH_INDEXES order), then the live order keys of every group in turn.
# ARGV: 1 archived_ns, then per group its size and per order: client order id, sha1, info JSON.
# Returns one status per group: 'ok', or '<reason>:<client order id>' for a group left in place.
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
local SET0, HASH0 = 2, 2 + #SETS
if not (type_ok(KEYS[1], 'hash') and type_ok(KEYS[2], 'hash')) then return {'wrongtype:archive'} end
for s = 1, #SETS do if not type_ok(KEYS[SET0 + s], 'set') then return {'wrongtype:' .. SETS[s]} end end
for h = 1, #HASHES do
  if not type_ok(KEYS[HASH0 + h], 'hash') then return {'wrongtype:' .. HASHES[h]} end
end

local function check(key, cid, sha)
  if redis.call('TYPE', key).ok ~= 'list' then return 'changed' end
  if redis.call('HEXISTS', KEYS[1], cid) == 1 then return 'exists' end
  -- open, in flight or emulated per nautilus' own index: not history
  for s = 1, #SETS do
    if LIVE[SETS[s]] and redis.call('SISMEMBER', KEYS[SET0 + s], cid) == 1 then return 'open' end
  end
  local blob = framed(key)
  if redis.sha1hex(blob) ~= sha then return 'changed' end
  return nil, blob
end

local function move(key, cid, info, blob)
  local sets, hashes = {}, {}
  for s = 1, #SETS do
    if redis.call('SREM', KEYS[SET0 + s], cid) == 1 then sets[SETS[s]] = true end
  end
  for h = 1, #HASHES do
    local v = redis.call('HGET', KEYS[HASH0 + h], cid)
    if v then
      hashes[HASHES[h]] = v
      redis.call('HDEL', KEYS[HASH0 + h], cid)
    end
  end
  local meta = '{"info":' .. info .. ',"sets":' .. cjson.encode(sets) .. ',"hashes":' .. cjson.encode(hashes)
    .. ',"archived_ns":"' .. ARGV[1] .. '"}'
  redis.call('HSET', KEYS[1], cid, blob)
  redis.call('HSET', KEYS[2], cid, meta)
  redis.call('DEL', key)
end

local statuses, k, a = {}, HASH0 + #HASHES + 1, 2
while a <= #ARGV do
  local size = tonumber(ARGV[a])
  local blobs, status = {}, 'ok'
  for i = 0, size - 1 do
    local cid = ARGV[a + 1 + 3 * i]
    local reason, blob = check(KEYS[k + i], cid, ARGV[a + 2 + 3 * i])
    if reason then status = reason .. ':' .. cid break end
    blobs[i] = blob
  end
  if status == 'ok' then
    for i = 0, size - 1 do move(KEYS[k + i], ARGV[a + 1 + 3 * i], ARGV[a + 3 + 3 * i], blobs[i]) end
  end
  statuses[#statuses + 1] = status
  k, a = k + size, a + 1 + 3 * size
end
return statuses
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

# Archives several positions, each on its own. KEYS: 1 archive data hash, 2 archive meta hash, 3-5 the
# position set indexes (POSITION_SET_INDEXES order), then the live position keys.
# ARGV: 1 archived_ns, then per position: archive id, position id, sha1, info JSON.
# Returns one status per position: 'ok' or the reason it stayed.
ARCHIVE_POSITIONS = (
    "#!lua\n"
    + _COMMON
    + f"""
local SETS = {_lua_list(POSITION_SET_INDEXES)}
"""
    + r"""
if not (type_ok(KEYS[1], 'hash') and type_ok(KEYS[2], 'hash')) then return {'wrongtype:archive'} end
for s = 1, #SETS do if not type_ok(KEYS[2 + s], 'set') then return {'wrongtype:' .. SETS[s]} end end
local OPEN
for s = 1, #SETS do if SETS[s] == 'index:positions_open' then OPEN = 2 + s end end

local function archive(live, aid, pid, sha, info)
  if redis.call('TYPE', live).ok ~= 'list' then return 'changed' end
  if redis.call('HEXISTS', KEYS[1], aid) == 1 then return 'exists' end
  if redis.call('SISMEMBER', KEYS[OPEN], pid) == 1 then return 'open' end
  local blob = framed(live)
  if redis.sha1hex(blob) ~= sha then return 'changed' end
  local sets = {}
  for s = 1, #SETS do
    if redis.call('SREM', KEYS[2 + s], pid) == 1 then sets[SETS[s]] = true end
  end
  local meta = '{"info":' .. info .. ',"sets":' .. cjson.encode(sets) .. ',"archived_ns":"' .. ARGV[1] .. '"}'
  redis.call('HSET', KEYS[1], aid, blob)
  redis.call('HSET', KEYS[2], aid, meta)
  redis.call('DEL', live)
  return 'ok'
end

local statuses = {}
for i = 0, (#ARGV - 1) / 4 - 1 do
  local a = 2 + 4 * i
  statuses[i + 1] = archive(KEYS[3 + #SETS + i], ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3])
end
return statuses
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

# Reads many lists in one call. KEYS: the lists. Returns per key its elements, or 0 if it is not a list.
READ_LISTS = """#!lua flags=no-writes
local out = {}
for i, key in ipairs(KEYS) do
  if redis.call('TYPE', key).ok == 'list' then out[i] = redis.call('LRANGE', key, 0, -1) else out[i] = 0 end
end
return out
"""

# KEYS: 1 lock key. ARGV: 1 token.
RELEASE_LOCK = """#!lua
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
