#!/bin/sh
# Print the path of a Python interpreter >= 3.12 and < 3.15.
# Each candidate is *run*, not just looked up: on some machines `python3.12` is a pyenv shim that exits 127.
tried=""
ok() { "$1" -c 'import sys; sys.exit(0 if (3, 12) <= sys.version_info[:2] < (3, 15) else 1)' >/dev/null 2>&1; }
for c in python3.12 python3.13 python3.14 python3; do
    tried="$tried $c"
    if ok "$c"; then command -v "$c"; exit 0; fi
done
if command -v pyenv >/dev/null 2>&1; then
    root=$(pyenv root 2>/dev/null)
    for c in "$root"/versions/3.12*/bin/python "$root"/versions/3.13*/bin/python "$root"/versions/3.14*/bin/python; do
        [ -x "$c" ] || continue
        tried="$tried $c"
        if ok "$c"; then echo "$c"; exit 0; fi
    done
else
    tried="$tried (pyenv not installed)"
fi
echo "nautilus-fleet needs Python >= 3.12 and < 3.15; none found. Tried:$tried" >&2
echo "Install one (e.g. 'pyenv install 3.12', or apt install python3.12) or set PYTHON=/path/to/python." >&2
exit 1
