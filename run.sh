#!/usr/bin/env bash
# The two commands of README, on a fresh Debian machine: each installs what the build needs
# (RocksDB's bindgen needs libclang and clang's C headers; its C++ needs g++ and make), then runs
# cargo. Both use cargo's dev profile (dependencies optimised, our crates with debug assertions
# and overflow checks), so the testnet's build is the tests' build: RocksDB compiles once.
#
#   ./run.sh testnet up [ARGS...]   build, then `stele testnet up ARGS...`
#   ./run.sh test [ARGS...]         `cargo test --workspace --locked ARGS...`; without ARGS also
#                                   the Python suites (SDK, explorer in a browser), each in a
#                                   virtual environment it creates under ~/.cache/stele-venv
#   ./run.sh setup                  only install the missing packages
#   ./run.sh stele ARGS...          build, then `stele ARGS...`
set -euo pipefail
cd "$(dirname "$0")"

packages=(libclang1-14 libclang-common-14-dev g++ make)

setup() {
  local missing=() package
  if ! command -v dpkg-query >/dev/null; then
    return 0 # not Debian: the packages' equivalents must be installed by hand (README)
  fi
  local wanted=("${packages[@]}")
  # The Python suites make virtual environments: Debian's python3 needs python3-venv for that.
  if command -v python3 >/dev/null && ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
    wanted+=(python3-venv)
  fi
  for package in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  if ((${#missing[@]} == 0)); then
    return 0
  fi
  echo "installing the packages RocksDB's build needs: ${missing[*]}" >&2
  local sudo=()
  if [[ $(id -u) -ne 0 ]]; then
    if ! command -v sudo >/dev/null; then
      echo "error: run as root or install sudo, or install them yourself: apt-get install ${missing[*]}" >&2
      exit 1
    fi
    sudo=(sudo)
  fi
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

stele() {
  # --workspace: the same feature set as the tests' build, so neither invalidates the other.
  cargo build --workspace --locked --bins
  local target_dir="${CARGO_TARGET_DIR:-target}"
  exec "$target_dir/debug/stele" "$@"
}

command="${1:-}"
shift || true
case "$command" in
  setup) setup ;;
  test)
    setup
    cargo test --workspace --locked "$@"
    if (($# == 0)); then
      # They run the `stele` binary the cargo tests just built.
      sdk/python/test.sh
      tests/browser/test.sh # skipped, saying so, where Chromium and its driver are missing
    fi
    ;;
  testnet)
    setup
    stele testnet "$@"
    ;;
  stele)
    setup
    stele "$@"
    ;;
  *)
    echo "usage: ./run.sh testnet up [ARGS...] | ./run.sh test [ARGS...] | ./run.sh setup | ./run.sh stele ARGS..." >&2
    exit 2
    ;;
esac
