#!/usr/bin/env bash
# Runs the whole test suite. Installs what the tests need (Chromium and its driver for the browser test,
# PyJWT for JWT interop) when it is missing and this user may install it.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
if [ ${#need_apt[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${need_apt[*]}" >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
if ! python3 -c 'import jwt' >/dev/null 2>&1; then
  python3 -m pip install -q 'PyJWT==2.10.1' >/dev/null 2>&1 || echo "warning: could not install PyJWT" >&2
fi

# --all-features: the `cli` feature's tests too. --all-targets: benches run once each, as tests.
cargo test --workspace --all-features --all-targets
cargo test --workspace --all-features --doc
