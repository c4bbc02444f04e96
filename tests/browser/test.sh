#!/usr/bin/env bash
# The explorer's real-browser test: headless Chromium (Debian's chromium and chromium-driver)
# driven by selenium against a real 4-validator testnet started from $STELE_BIN.
#
#   tests/browser/test.sh [pytest arguments]
#
# Creates a venv at ${STELE_VENV:-$HOME/.cache/stele-venv/browser} if missing and installs the
# pinned requirements into it (nothing system-wide). Without chromium or chromedriver on the PATH
# the test is skipped with a message; `apt-get install -y chromium chromium-driver` installs them.
# STELE_BIN is the stele binary (default $CARGO_TARGET_DIR/debug/stele, else target/debug/stele);
# STELE_SCREENSHOTS the folder for the screenshots (default: a fresh temporary folder).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${STELE_VENV:-$HOME/.cache/stele-venv/browser}"
python="${PYTHON:-python3}"

if [ ! -x "$venv/bin/python" ]; then
    echo "creating the browser-test venv in $venv"
    "$python" -m venv "$venv"
fi
# Reinstall only when the pins changed: a stamp holds the requirements the venv was made from.
stamp="$venv/.stele-requirements"
if ! cmp -s "$here/requirements.txt" "$stamp"; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
    cp "$here/requirements.txt" "$stamp"
fi

cd "$here"
# No __pycache__ or .pytest_cache left in the source tree.
export PYTHONDONTWRITEBYTECODE=1
exec "$venv/bin/python" -m pytest -q -p no:cacheprovider "$@"
