#!/bin/sh
# Create or refresh .venv with the project and its test extras. Idempotent and fast when nothing changed:
# the install is redone only when pyproject.toml or the interpreter changes.
set -eu
cd "$(dirname "$0")/.."
venv=.venv
stamp="$venv/.fleet-installed"

if ! "$venv/bin/python" -c 'import sys; sys.exit(0 if (3, 12) <= sys.version_info[:2] < (3, 15) else 1)' 2>/dev/null; then
    py=${PYTHON:-$(./scripts/find-python.sh)}
    echo "creating $venv with $py" >&2
    rm -rf "$venv"
    "$py" -m venv "$venv"
fi

pip_quiet() {
    # pip's output goes to a log, shown (without a machine config's noise about absent index
    # locations) only when the install fails.
    log="$venv/.pip.log"
    if ! "$venv/bin/python" -m pip --disable-pip-version-check "$@" >"$log" 2>&1; then
        grep -v "^WARNING: Location .* is ignored" "$log" >&2
        echo "pip $* failed (full log: $log)" >&2
        exit 1
    fi
}

want=$( (cat pyproject.toml; "$venv/bin/python" -VV) | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "installing nautilus-fleet[test] into $venv" >&2
    pip_quiet install --upgrade pip
    pip_quiet install -e '.[test]'
    echo "$want" > "$stamp"
fi
