"""The fleet's shared venue request budget in Redis: rate groups, the key layout, the Lua scripts, and a
reader for the supervisor. No nautilus, no ccxt: the node's limiter (`recovery/fleet_limiter.py`) and the
supervisor (the reconciliation gate) both use this module.

Binance USD-M counts REQUEST_WEIGHT per client IP address, whatever the account, and ORDERS per account.
So the fleet keeps one weight budget per *rate group* (every node that reaches one venue endpoint from one
egress address) and one order budget per venue account, in fixed windows on Redis' clock (one clock for the
whole fleet; the venue's windows start on the full minute too).

Keys (`{group}` and `{account}` are the strings below, used verbatim; `{start}` is a window's start in ms):

- `fleet:ratelimit:weight:{group}:{start}` (integer, TTL two windows): weight the group spent in the window.
- `fleet:ratelimit:orders:{account}:10000:{start}` (integer, TTL 20 s): orders placed in the 10 s window.
- `fleet:ratelimit:orders:{account}:60000:{start}` (integer, TTL 120 s): orders placed in the minute.
- `fleet:ratelimit:pause:{group}` (integer, TTL the pause): epoch ms before which no node of the group may
  send, set from a 429's or 418's Retry-After (a ban outlasts windows).
- `fleet:ratelimit:limits:{group}` (hash, TTL one day): `weight`, `window_ms`, `recovery_budget`, as the last
  node saw them (the venue announces its limits in exchangeInfo).

A window's start is Redis' `TIME` in ms rounded down to the window. A weight count is what nodes were
admitted plus, whenever a venue answer says more (`X-MBX-USED-WEIGHT-1M`, which also counts traffic the fleet
did not admit: live trading, other programs behind the address), the venue's figure.
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from supervisor.config.schema import VenueSpec

KEY_PREFIX = "fleet:ratelimit"
ORDER_WINDOWS_MS = (10_000, 60_000)
LIMITS_TTL_S = 86_400

# Where nautilus sends Binance USD-M requests when the venue entry names no base_url_http.
BINANCE_USDM_LIVE_URL = "https://fapi.binance.com"
BINANCE_USDM_TESTNET_URL = "https://demo-fapi.binance.com"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def host_egress() -> str:
    """This host's egress as the rate group sees it: its host name. Every node of one host shares the host's
    address; hosts that share one public address (NAT, an egress proxy) must say so with `rate_group`."""
    return socket.gethostname()


def venue_endpoint(base_url: str) -> str:
    """`scheme://host[:port]` of a venue base URL, lower-cased, without a default port or a path."""
    parts = urlsplit(base_url.strip())
    if not parts.scheme or not parts.hostname:
        raise ValueError(f"not an absolute URL: {base_url!r}")
    scheme = parts.scheme.lower()
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    port = parts.port
    return f"{scheme}://{host}" if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{scheme}://{host}:{port}"


def default_rate_group(base_url: str, host: str) -> str:
    """The weight budget a venue endpoint reached from one host shares: `<endpoint>@<host>`."""
    return f"{venue_endpoint(base_url)}@{host}"


def venue_base_url(venue: VenueSpec) -> str:
    """The HTTP base URL a node uses for a venue entry (nautilus' default when the entry names none)."""
    if venue.base_url_http:
        return venue.base_url_http
    return BINANCE_USDM_TESTNET_URL if venue.testnet else BINANCE_USDM_LIVE_URL


def rate_group(venue: VenueSpec, host: str) -> str:
    """The venue entry's rate group: its `rate_group` when set, else `default_rate_group(base URL, host)`."""
    return venue.rate_group or default_rate_group(venue_base_url(venue), host)


def account_key(venue_name: str, venue: VenueSpec) -> str:
    """The order budget's scope: the venue account (`account`, else the entry's name) at its endpoint."""
    return f"{venue_endpoint(venue_base_url(venue))}/{venue.account or venue_name}"


def weight_key_base(group: str) -> str:
    return f"{KEY_PREFIX}:weight:{group}"


def orders_key_base(account: str) -> str:
    return f"{KEY_PREFIX}:orders:{account}"


def limits_key(group: str) -> str:
    return f"{KEY_PREFIX}:limits:{group}"


def pause_key(group: str) -> str:
    return f"{KEY_PREFIX}:pause:{group}"


# ---- Lua: every decision is one atomic script on Redis' clock ----------------------------------------------

# KEYS: none (window keys derive from TIME; standalone Redis or Sentinel, not Cluster).
# ARGV: weight base, orders base ("" for none), weight, orders, weight budget, orders-10s budget,
#       orders-1m budget, window ms, pause key.
# Returns {admitted 0/1, weight used after, ms to wait when refused, window start ms}.
ACQUIRE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[8])
local start = now - (now % window)
local wkey = ARGV[1] .. ':' .. start
local used = tonumber(redis.call('GET', wkey) or '0')
local weight = tonumber(ARGV[3])
local orders = tonumber(ARGV[4])
local wait = 0
if weight > 0 and used + weight > tonumber(ARGV[5]) then
  wait = start + window - now
end
local okeys = {}
if orders > 0 and ARGV[2] ~= '' then
  local budgets = {tonumber(ARGV[6]), tonumber(ARGV[7])}
  for i, length in ipairs({10000, 60000}) do
    local ostart = now - (now % length)
    local okey = ARGV[2] .. ':' .. length .. ':' .. ostart
    local count = tonumber(redis.call('GET', okey) or '0')
    if count + orders > budgets[i] then
      wait = math.max(wait, ostart + length - now)
    end
    okeys[i] = {okey, 2 * length}
  end
end
local paused = tonumber(redis.call('GET', ARGV[9]) or '0')
if paused > now then
  wait = math.max(wait, paused - now)
end
if wait > 0 then
  return {0, used, wait, start}
end
if weight > 0 then
  used = redis.call('INCRBY', wkey, weight)
  redis.call('PEXPIRE', wkey, 2 * window)
end
for _, entry in ipairs(okeys) do
  redis.call('INCRBY', entry[1], orders)
  redis.call('PEXPIRE', entry[1], entry[2])
end
return {1, used, 0, start}
"""

# The venue's own count raises ours (never lowers it). An observation made in a window other than the one
# the request was admitted in is dropped: it may describe the previous window.
# ARGV: weight base, orders base ("" for none), venue weight (-1: none), weight in flight besides it,
#       orders 10s (-1), orders 1m (-1), window ms, admission window start (-1: unknown), pause key,
#       pause ms (-1: none; a refusal's Retry-After holds the whole group).
# Returns the weight count after.
OBSERVE_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[7])
local start = now - (now % window)
local wkey = ARGV[1] .. ':' .. start
local used = tonumber(redis.call('GET', wkey) or '0')
local seen = tonumber(ARGV[3])
local admitted = tonumber(ARGV[8])
if seen >= 0 and (admitted < 0 or admitted == start) then
  local estimate = seen + tonumber(ARGV[4])
  if estimate > used then
    redis.call('SET', wkey, estimate, 'PX', 2 * window)
    used = estimate
  end
end
local pause = tonumber(ARGV[10])
if pause > 0 and now + pause > tonumber(redis.call('GET', ARGV[9]) or '0') then
  redis.call('SET', ARGV[9], now + pause, 'PX', pause)
end
if ARGV[2] ~= '' then
  for i, length in ipairs({10000, 60000}) do
    local count = tonumber(ARGV[4 + i])
    if count >= 0 then
      local ostart = now - (now % length)
      local okey = ARGV[2] .. ':' .. length .. ':' .. ostart
      if count > tonumber(redis.call('GET', okey) or '0') then
        redis.call('SET', okey, count, 'PX', 2 * length)
      end
    end
  end
end
return used
"""

# ARGV: weight base, window ms, pause key.
# Returns {weight used, window start ms, ms until the next window, ms the group is paused for}.
READ_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
local start = now - (now % window)
local used = tonumber(redis.call('GET', ARGV[1] .. ':' .. start) or '0')
local paused = tonumber(redis.call('GET', ARGV[3]) or '0')
return {used, start, start + window - now, math.max(0, paused - now)}
"""


@dataclass(frozen=True, kw_only=True)
class GroupUsage:
    """One rate group's weight in the current window, as the fleet knows it."""

    group: str
    used: int
    limit: int | None  # the venue's limit as the last node saw it (None: no node has published it)
    recovery_budget: int | None  # what recovering nodes together may spend of it
    window_ms: int
    window_start_ms: int
    resets_in_ms: int
    paused_ms: int  # the venue refused a request of the group: nobody sends for this long


async def read_group_usage(
    redis: Any, group: str, *, timeout_s: float, default_window_ms: int = 60_000
) -> GroupUsage:
    """The group's usage now (for the reconciliation gate and `fleet status`); raises TimeoutError or the
    client's error when Redis does not answer within `timeout_s`."""
    async with asyncio.timeout(timeout_s):
        raw = await redis.hgetall(limits_key(group))
        limits = {_text(k): int(_text(v)) for k, v in raw.items()}
        window_ms = limits.get("window_ms", default_window_ms)
        used, start, resets_in, paused = await redis.eval(
            READ_SCRIPT, 0, weight_key_base(group), window_ms, pause_key(group)
        )
    return GroupUsage(
        group=group,
        used=int(used),
        limit=limits.get("weight"),
        recovery_budget=limits.get("recovery_budget"),
        window_ms=window_ms,
        window_start_ms=int(start),
        resets_in_ms=int(resets_in),
        paused_ms=int(paused),
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
