"""`fleet check`'s resolved view: effective settings of every node, and never a secret."""

# ruff: noqa: E501 - the expected messages and output are kept whole, as a user reads them

from __future__ import annotations

from pathlib import Path

from supervisor.config.loader import load_fleet
from supervisor.config.render import mask_url, render_fleet
from supervisor.config.resolve import resolve_paths

from ._util import parse, yaml_text

SECRET_VALUES = ("redis-SENTINEL", "mqtt-SENTINEL", "key-SENTINEL", "secret-SENTINEL", "token-SENTINEL")

FLEET = """
    fleet: desk
    redis: {password: {env: REDIS_PW}}
    mqtt: {username: ops, password: {file: mqtt.pw}, topic_prefix: desk/one}
    venues:
      emu: {base_url_http: "http://127.0.0.1:8900", api_key: {env: EMU_KEY}, api_secret: {env: EMU_SECRET}, account: main}
    defaults:
      restart: {backoff_max: 20s}
    nodes:
      - name: alpha
        trader_id: A-001
        venues: [emu]
        strategies:
          - {path: "desk.trend:Trend", config: {instrument_id: BTCUSDT-PERP.BINANCE}}
        env: {API_TOKEN: token-SENTINEL, LOG_LEVEL: DEBUG}
        restart: {start_limit: {burst: 2}}
        watchdog: null
      - name: beta
        trader_id: B-001
        command: [python, -m, my node]
        enabled: false
    """


def test_render_shows_effective_settings_and_masks_secrets(tmp_path: Path) -> None:
    (tmp_path / "mqtt.pw").write_text("mqtt-SENTINEL")
    (tmp_path / "fleet.yaml").write_text(yaml_text(FLEET))
    environ = {
        "REDIS_PW": "redis-SENTINEL",
        "EMU_KEY": "key-SENTINEL",
        "EMU_SECRET": "secret-SENTINEL",
        "HOME": "/h",
    }
    spec = load_fleet(tmp_path / "fleet.yaml", environ)
    text = render_fleet(spec, resolve_paths(spec, environ, uid=7))
    for value in SECRET_VALUES:
        assert value not in text
    assert text == yaml_text(f"""
        fleet desk
          redis    redis://127.0.0.1:6379/0  password *** (env REDIS_PW)  timeout 2s
          mqtt     127.0.0.1:1883 (no tls)  topics desk/one/...  keepalive 15s  user ops  password *** (file {tmp_path}/mqtt.pw)
          metrics  http://127.0.0.1:9464/metrics
          audit    every 5m (jittered)
          control  /tmp/nautilus-fleet-7/control.sock (mode 0o600)
          runtime  /tmp/nautilus-fleet-7
          state    /h/.local/state/nautilus-fleet
          logs     /h/.local/state/nautilus-fleet/logs
        venues
          emu  binance_usdm  account main
            http        http://127.0.0.1:8900
            api_key     *** (env EMU_KEY)
            api_secret  *** (env EMU_SECRET)
        nodes
          alpha  trader A-001
            strategy    desk.trend:Trend
            venues      emu (account main)
            instruments BTCUSDT-PERP.BINANCE
            restart     backoff 500ms to 20s, reset after 1m, quarantine after more than 2 starts in 1m
            stop        SIGTERM, then SIGKILL after 10s
            watchdog    off  ready timeout 1m
            compaction  before each start, keep the 20 latest closed positions/orders and 192h of closed orders, up to 10s
            env         API_TOKEN=***
            env         LOG_LEVEL=DEBUG
          beta  trader B-001  (disabled)
            command     python -m 'my node'
            venues      none
            instruments none
            restart     backoff 500ms to 20s, reset after 1m, quarantine after more than 5 starts in 1m
            stop        SIGTERM, then SIGKILL after 10s
            watchdog    10s  ready timeout 1m
        """)


def test_render_without_resolved_paths() -> None:
    text = render_fleet(parse("fleet: demo\nmqtt: {enabled: false}\nmetrics: {enabled: false}\n"))
    assert "  mqtt     off\n" in text
    assert "  metrics  off\n" in text
    assert "  control  <runtime dir>/control.sock (mode 0o600)\n" in text
    assert text.endswith("venues: none\nnodes: none\n")


def test_mask_url() -> None:
    assert mask_url("redis://user:hunter2@h:6379/0") == "redis://user:***@h:6379/0"
    assert mask_url("redis://:hunter2@h") == "redis://:***@h"
    assert mask_url("redis://h:6379") == "redis://h:6379"
