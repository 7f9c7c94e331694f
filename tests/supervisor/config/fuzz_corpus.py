"""A seeded corpus of mutated fleet.yaml files: what a hurried, careless or hostile edit produces.

`corpus(seed)` derives every case from a valid two-node fleet by one mutation: type swaps, deleted and renamed
keys, tabs, unicode, huge values, deep nesting, anchors and aliases, tags, binary junk, and a few structural
ones. The same seed gives the same cases (names included), so a failure names a case that can be rerun.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

BASE = """\
fleet: fuzz
redis:
  url: redis://127.0.0.1:6379/0
  timeout: 2s
mqtt:
  enabled: true
  host: 127.0.0.1
  port: 1883
  keepalive: 15s
metrics:
  enabled: false
  listen: 127.0.0.1:9464
control:
  mode: 0o600
venues:
  emu:
    base_url_http: http://127.0.0.1:8900
    base_url_ws: ws://127.0.0.1:8900
    api_key: {env: FUZZ_API_KEY}
    api_secret: {env: FUZZ_API_SECRET}
defaults:
  restart:
    backoff_initial: 500ms
    backoff_max: 30s
    reset_after: 1m
    start_limit: {burst: 5, window: 1m}
  stop: {signal: SIGTERM, grace: 10s}
  watchdog: {timeout: 10s}
  ready_timeout: 60s
nodes:
  - name: alpha
    trader_id: ALPHA-001
    venues: [emu]
    strategies:
      - path: recovery.examples.ema_cross:EmaCross
        config:
          instrument_id: BTCUSDT-PERP.BINANCE
          order_id_tag: "001"
          trade_size: "0.010"
  - name: beta
    trader_id: BETA-001
    command: [python, -c, "print(1)"]
    env: {LOG_LEVEL: info}
    restart: {backoff_max: 5s}
    stop: {grace: 3s}
"""

LINES = BASE.splitlines()
# Values to swap in: every YAML type, odd strings, the empty value.
SWAPS = [
    "[]", "{}", "[1, 2]", "{a: 1}", "null", "~", "true", "false", "0", "-1", "1.5", ".inf", ".nan",
    "'text'", '"30"', "30", "0600", "1:30", "yes", "no", "on", '""', "''", "!!str 5", "-", "? a",
    "|\n    block",
    "2024-01-01", "0x1f", "0o777", "1e3", "-.inf", "<<: *x",
]  # fmt: skip
UNICODE = [
    "\u00e9", "\u4e2d\u6587", "\U0001f680", "\u202e", "\u200b", "\ufeff", "\u2028", "\u0301", "\uff10",
    "\u0000", "\u0007", "\u001b[31m", "\ud7ff", "\U0010fffd", "\u00a0", "\u3000",
]  # fmt: skip
HUGE = [
    "9" * 5000,
    "1" * 400 + "s",
    "1e400s",
    "1e308h",
    "99999999999999999999999999h",
    "1606938044258990275541962092341162602522202993782792835301376s",
    "0." + "0" * 3000 + "1s",
    "x" * 200_000,
    "-" + "9" * 5000,
    "1e-400s",
    "9" * 30 + "ms",
    "0x" + "f" * 5000,
    "0o" + "7" * 5000,
    "1." + "5" * 5000,
]


@dataclass(frozen=True)
class Case:
    name: str
    text: str | bytes


def corpus(seed: int = 20261204, size: int = 1100) -> list[Case]:
    rng = random.Random(seed)
    cases: list[Case] = [Case("unchanged", BASE)]
    cases += list(_structural())
    kinds: list[Callable[[random.Random], Case]] = [
        _type_swap,
        _delete_line,
        _rename_key,
        _tabs,
        _unicode,
        _huge,
        _deep,
        _anchors,
        _tags,
        _junk,
        _indent,
        _duplicate,
    ]
    while len(cases) < size:
        cases.append(rng.choice(kinds)(rng))
    return cases


def _value_lines() -> list[int]:
    return [i for i, line in enumerate(LINES) if ":" in line and not line.rstrip().endswith(":")]


def _key_lines() -> list[int]:
    return [i for i, line in enumerate(LINES) if ":" in line and not line.lstrip().startswith("-  ")]


def _replace(i: int, line: str) -> str:
    lines = list(LINES)
    lines[i] = line
    return "\n".join(lines) + "\n"


def _type_swap(rng: random.Random) -> Case:
    i = rng.choice(_value_lines())
    key, _, _ = LINES[i].partition(":")
    swap = rng.choice(SWAPS)
    return Case(f"swap:{i}:{swap!r}", _replace(i, f"{key}: {swap}"))


def _delete_line(rng: random.Random) -> Case:
    i = rng.randrange(len(LINES))
    lines = [line for j, line in enumerate(LINES) if j != i]
    return Case(f"delete:{i}", "\n".join(lines) + "\n")


def _rename_key(rng: random.Random) -> Case:
    i = rng.choice(_key_lines())
    line = LINES[i]
    indent = len(line) - len(line.lstrip(" -"))
    key, sep, rest = line[indent:].partition(":")
    if not key:
        return _delete_line(rng)
    ops = [key[:-1], key + "s", key.upper(), key[1:] + key[0], key.replace("_", "-"), key + " ", ""]
    ops.append(" " + key)
    new = rng.choice(ops)
    return Case(f"rename:{i}:{new!r}", _replace(i, line[:indent] + new + sep + rest))


def _tabs(rng: random.Random) -> Case:
    i = rng.randrange(len(LINES))
    line = LINES[i]
    stripped = line.lstrip(" ")
    tabbed = "\t" * max(1, (len(line) - len(stripped)) // 2) + stripped
    return Case(f"tabs:{i}", _replace(i, tabbed))


def _unicode(rng: random.Random) -> Case:
    i = rng.randrange(len(LINES))
    line = LINES[i]
    at = rng.randrange(len(line) + 1)
    char = rng.choice(UNICODE)
    return Case(f"unicode:{i}:{at}:{char!r}", _replace(i, line[:at] + char + line[at:]))


def _huge(rng: random.Random) -> Case:
    i = rng.choice(_value_lines())
    key, _, _ = LINES[i].partition(":")
    value = rng.choice(HUGE)
    return Case(f"huge:{i}:{value[:12]!r}x{len(value)}", _replace(i, f"{key}: {value}"))


def _deep(rng: random.Random) -> Case:
    depth = rng.choice([40, 70, 200, 1000, 5000, 50_000])
    style = rng.choice(["flow-list", "flow-map", "block-map", "block-list", "mixed"])
    if style == "flow-list":
        value = "[" * depth + "]" * depth
    elif style == "flow-map":
        value = "{a: " * depth + "1" + "}" * depth
    elif style == "mixed":
        value = "[{a: " * (depth // 2) + "1" + "}]" * (depth // 2)
    else:
        lines = []
        for level in range(min(depth, 2000)):
            pad = "  " * (level + 1)
            lines.append(f"{pad}k{level}:" if style == "block-map" else f"{pad}- ")
        value = "\n" + "\n".join(lines) + " 1" if style == "block-map" else "\n" + "".join(lines) + "1"
    where = rng.choice(["extra", "nodes[0].env", "defaults", "top"])
    if where == "extra":
        text = BASE + f"extra: {value}\n"
    elif where == "top":
        text = value if not value.startswith("\n") else "k:" + value
    elif where == "defaults":
        text = BASE.replace("  ready_timeout: 60s", f"  ready_timeout: {value}")
    else:
        text = BASE.replace("    env: {LOG_LEVEL: info}", f"    env: {value}")
    return Case(f"deep:{style}:{depth}:{where}", text)


def _anchors(rng: random.Random) -> Case:
    options = {
        "laughs": "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(_laugh(i) for i in range(8)) + BASE,
        "undefined": BASE + "extra: *nothere\n",
        "recursive": BASE + "extra: &r [*r]\n",
        "merge-scalar": BASE.replace("  stop: {signal: SIGTERM, grace: 10s}", "  stop: {<<: 5}"),
        "merge-ok": BASE.replace(
            "  stop: {signal: SIGTERM, grace: 10s}", "  stop: &s {signal: SIGTERM, grace: 10s}"
        ).replace("    stop: {grace: 3s}", "    stop: {<<: *s, grace: 3s}"),
        "anchor-key": BASE.replace("fleet: fuzz", "&k fleet: fuzz\n*k : again"),
        "alias-as-key": BASE + "? *k\n: v\n",
        "merge-list-of-scalars": BASE + "extra: {<<: [1, 2]}\n",
        "self-merge": BASE + "extra: &m {<<: *m}\n",
    }
    name = rng.choice(sorted(options))
    return Case(f"anchors:{name}", options[name])


def _laugh(level: int) -> str:
    """One level of "billion laughs": a list of ten aliases of the level before."""
    name, previous = chr(98 + level), chr(97 + level)
    return f"{name}: &{name} [{', '.join(['*' + previous] * 10)}]\n"


def _tags(rng: random.Random) -> Case:
    tag = rng.choice(
        [
            "!!python/object/apply:os.system ['true']",
            "!!python/name:os.system",
            "!!int '5'",
            "!!float '1'",
            "!!binary aGVsbG8=",
            "!!timestamp 2024-01-01",
            "!custom 5",
            "!<tag:x,2000:y> 5",
            "!!set {a, b}",
            "!!omap [a: 1]",
            "!!bool yes",
            "!!null ''",
        ]
    )
    i = rng.choice(_value_lines())
    key, _, _ = LINES[i].partition(":")
    return Case(f"tag:{i}:{tag[:20]!r}", _replace(i, f"{key}: {tag}"))


def _junk(rng: random.Random) -> Case:
    size = rng.choice([1, 16, 512, 4096])
    blob = bytes(rng.randrange(256) for _ in range(size))
    at = rng.randrange(len(BASE))
    mode = rng.choice(["bytes", "prefix", "inside"])
    if mode == "bytes":
        return Case(f"junk:bytes:{size}", blob)
    if mode == "prefix":
        return Case(f"junk:prefix:{size}", blob + BASE.encode())
    return Case(f"junk:inside:{at}:{size}", BASE.encode()[:at] + blob + BASE.encode()[at:])


def _indent(rng: random.Random) -> Case:
    i = rng.randrange(1, len(LINES))
    shift = rng.choice([-4, -2, -1, 1, 2, 3, 8])
    line = LINES[i]
    new = " " * max(0, len(line) - len(line.lstrip(" ")) + shift) + line.lstrip(" ")
    return Case(f"indent:{i}:{shift}", _replace(i, new))


def _duplicate(rng: random.Random) -> Case:
    i = rng.randrange(len(LINES))
    lines = list(LINES)
    lines.insert(i, LINES[i])
    return Case(f"duplicate:{i}", "\n".join(lines) + "\n")


def _structural() -> Iterator[Case]:
    yield Case("empty", "")
    yield Case("only-comment", "# nothing\n")
    yield Case("scalar-document", "fleet\n")
    yield Case("list-document", "- fleet: x\n")
    yield Case("two-documents", BASE + "---\n" + BASE)
    yield Case("nul-bytes", b"\x00" * 64)
    yield Case("bom-then-yaml", "\ufeff" + BASE)
    yield Case("utf16", BASE.encode("utf-16"))
    yield Case("latin1", BASE.replace("fuzz", "f\u00fczz").encode("latin-1"))
    yield Case("crlf", BASE.replace("\n", "\r\n"))
    yield Case("cr-only", BASE.replace("\n", "\r"))
    yield Case("very-long-line", BASE + "extra: " + "a" * 1_000_000 + "\n")
    many = "".join(f"  - {{name: n{i}, trader_id: N{i}-1, command: [x]}}\n" for i in range(2000))
    yield Case("many-nodes", BASE + many)
    yield Case("many-keys", BASE + "extra:\n" + "".join(f"  k{i}: {i}\n" for i in range(20_000)))
    yield Case("mqtt-host-number-like", BASE.replace("  host: 127.0.0.1", "  host: " + "1" * 60 + "s"))
    yield Case("mqtt-host-spaces", BASE.replace("  host: 127.0.0.1", "  host: 'my broker'"))
    yield Case("metrics-port-huge", BASE.replace("127.0.0.1:9464", "127.0.0.1:" + "9" * 40))
    yield Case("redis-url-junk", BASE.replace("redis://127.0.0.1:6379/0", "redis://:" + "9" * 40))
    yield Case("trailing-garbage", BASE + "]]]\n")
    yield Case("unclosed-flow", BASE + "extra: [1, 2\n")
    yield Case("unclosed-quote", BASE + "extra: 'abc\n")
