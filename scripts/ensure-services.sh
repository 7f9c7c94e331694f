#!/bin/sh
# Make sure the servers the tests and the demo talk to are reachable on loopback:
# use the ones already answering, else start local ones from the binaries on PATH, else install them
# (Debian: apt-get) and start them. Also makes sure promtool (Debian package `prometheus`) is there.
# Set FLEET_NO_INSTALL=1 to forbid package installs.
set -eu
state=${FLEET_SERVICES_DIR:-${TMPDIR:-/tmp}/nautilus-fleet-services}
mkdir -p "$state"

# A TCP connect probe (sh has no /dev/tcp).
port_open() {
    python3 - "$1" "$2" <<'PY' 2>/dev/null
import socket, sys
s = socket.socket()
s.settimeout(1)
sys.exit(0 if s.connect_ex((sys.argv[1], int(sys.argv[2]))) == 0 else 1)
PY
}
sudo_cmd() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else "$@"; fi; }
apt_install() {
    if [ "${FLEET_NO_INSTALL:-0}" = 1 ]; then echo "missing $*, and FLEET_NO_INSTALL=1" >&2; exit 1; fi
    if ! command -v apt-get >/dev/null; then echo "missing $*: install it with your package manager" >&2; exit 1; fi
    echo "installing $* with apt-get" >&2
    sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null 2>&1 || {
        sudo_cmd apt-get update -qq >/dev/null 2>&1
        sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >/dev/null
    }
}
wait_port() { # port what
    i=0
    while ! port_open 127.0.0.1 "$1"; do
        i=$((i + 1))
        if [ $i -gt 50 ]; then echo "$2 did not start listening on 127.0.0.1:$1" >&2; exit 1; fi
        sleep 0.1
    done
}

if port_open 127.0.0.1 6379; then
    echo "redis: using 127.0.0.1:6379" >&2
else
    command -v redis-server >/dev/null || apt_install redis-server
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
        --dir "$state" --logfile "$state/redis.log" --pidfile "$state/redis.pid"
    wait_port 6379 redis-server
    echo "redis: started 127.0.0.1:6379 (log $state/redis.log)" >&2
fi

if port_open 127.0.0.1 1883; then
    echo "mosquitto: using 127.0.0.1:1883" >&2
else
    command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || apt_install mosquitto mosquitto-clients
    PATH="$PATH:/usr/sbin"
    printf 'listener 1883 127.0.0.1\nallow_anonymous true\npersistence false\n' > "$state/mosquitto.conf"
    mosquitto -d -c "$state/mosquitto.conf"
    wait_port 1883 mosquitto
    echo "mosquitto: started 127.0.0.1:1883" >&2
fi

if [ "${FLEET_NEED_PROMTOOL:-1}" = 1 ] && ! command -v promtool >/dev/null; then
    apt_install prometheus
fi
# The MQTT tests need the mosquitto binary for their private brokers even when a broker already answers.
if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then apt_install mosquitto; fi
if ! command -v redis-server >/dev/null; then apt_install redis-server; fi
