#!/usr/bin/env bash
# Runs the Python SDK's tests: the shared vectors (sdk/vectors.json) and the tests against a
# real 4-validator network of the `stele` binary ($STELE_BIN, else $CARGO_TARGET_DIR/debug/stele,
# else target/debug/stele; build it first with `cargo build --workspace --locked --bins`).
#
# Everything goes into a virtual environment (${STELE_VENV:-$HOME/.cache/stele-venv/sdk}),
# created if missing; nothing is installed system-wide. Extra arguments go to pytest.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
venv="${STELE_VENV:-$HOME/.cache/stele-venv/sdk}"

if [ ! -x "$venv/bin/python" ]; then
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements-test.txt" -c "$here/constraints.txt"
# Reinstalled every run (not editable), so the tests exercise the package as users install it.
(cd "$repo" && "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --force-reinstall --no-deps ./sdk/python -c "$here/constraints.txt" \
    && "$venv/bin/python" -m pip install --quiet --disable-pip-version-check ./sdk/python -c "$here/constraints.txt")
# setuptools builds in the source folder; leave it as it was.
rm -rf "$here/build" "$here"/src/*.egg-info

if [ -z "${STELE_BIN:-}" ]; then
    if [ -n "${CARGO_TARGET_DIR:-}" ]; then
        export STELE_BIN="$CARGO_TARGET_DIR/debug/stele"
    else
        export STELE_BIN="$repo/target/debug/stele"
    fi
fi

cd "$here"
exec "$venv/bin/python" -m pytest -q --timeout=300 -p no:cacheprovider "$@"
