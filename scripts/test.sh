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

# chDB (ClickHouse as a library) for tinybird-local's ClickHouse engine, pinned, into a cache directory. The engine
# needs only its shared library and a libpython3's symbols (no Python packages, no interpreter at run time).
CHDB_VERSION=26.9.0
CHDB_DIR="${TINYBIRD_LOCAL_CACHE:-$HOME/.cache/tinybird-local}/chdb-core-$CHDB_VERSION"
if [ -z "${TINYBIRD_LOCAL_CHDB:-}" ]; then
  if [ ! -f "$CHDB_DIR/chdb/_chdb.abi3.so" ]; then
    echo "installing chdb-core==$CHDB_VERSION into $CHDB_DIR" >&2
    PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q --no-deps --target "$CHDB_DIR.partial" "chdb-core==$CHDB_VERSION" >&2
    rm -rf "$CHDB_DIR" && mv "$CHDB_DIR.partial" "$CHDB_DIR"
  fi
  export TINYBIRD_LOCAL_CHDB="$CHDB_DIR"
fi
libpython_found() {
  python3 - <<'PY' 2>/dev/null
import glob, os, sys, sysconfig
d = sysconfig.get_config_var("LIBDIR") or ""
names = [sysconfig.get_config_var("INSTSONAME"), sysconfig.get_config_var("LDLIBRARY")]
ok = any(n and ".so" in n and os.path.exists(os.path.join(d, n)) for n in names)
ok = ok or any(glob.glob(p + "/libpython3.*.so*") for p in ["/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib"])
sys.exit(0 if ok else 1)
PY
}
if [ -z "${TINYBIRD_LOCAL_LIBPYTHON:-}" ] && ! libpython_found && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing libpython3-dev (chDB needs a shared libpython's symbols)" >&2
  apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpython3-dev >/dev/null
fi
# Tinybird's own CLI (`tb`), pinned, into a virtualenv in the cache folder, for the interop test (tests/it/tb_cli.rs).
TB_VERSION=5.0.3
TB_DIR="${TINYBIRD_LOCAL_CACHE:-$HOME/.cache/tinybird-local}/tb-$TB_VERSION"
if [ -z "${TINYBIRD_TB:-}" ]; then
  # A virtualenv cannot be moved (its scripts name its path), so it is made in place and marked complete at the end.
  if [ ! -f "$TB_DIR/.complete" ]; then
    echo "installing tinybird==$TB_VERSION (the tb CLI) into $TB_DIR" >&2
    rm -rf "$TB_DIR"
    python3 -m venv "$TB_DIR" >&2
    "$TB_DIR/bin/pip" install -q "tinybird==$TB_VERSION" >&2
    touch "$TB_DIR/.complete"
  fi
  export TINYBIRD_TB="$TB_DIR/bin/tb"
fi
export TINYBIRD_LOCAL_REQUIRE_TB=1
# The official TypeScript SDK (its `tinybird` command), pinned, for the same test, when Node.js is here.
TS_SDK_VERSION=0.0.84
TS_SDK_DIR="${TINYBIRD_LOCAL_CACHE:-$HOME/.cache/tinybird-local}/ts-sdk-$TS_SDK_VERSION"
if [ -z "${TINYBIRD_TS_SDK:-}" ] && command -v npm >/dev/null 2>&1; then
  if [ ! -f "$TS_SDK_DIR/.complete" ]; then
    echo "installing @tinybirdco/sdk@$TS_SDK_VERSION into $TS_SDK_DIR" >&2
    rm -rf "$TS_SDK_DIR" && mkdir -p "$TS_SDK_DIR"
    (cd "$TS_SDK_DIR" && echo '{"name": "tinybird-local-ts-sdk", "private": true}' > package.json \
      && npm install --silent --no-audit --no-fund "@tinybirdco/sdk@$TS_SDK_VERSION" >&2)
    touch "$TS_SDK_DIR/.complete"
  fi
  export TINYBIRD_TS_SDK="$TS_SDK_DIR"
fi
if [ -n "${TINYBIRD_TS_SDK:-}" ]; then
  export TINYBIRD_LOCAL_REQUIRE_TS_SDK=1
fi
# The differential test (DataFusion against ClickHouse) must not skip here.
export TINYBIRD_LOCAL_REQUIRE_CLICKHOUSE=1

# Habits the tools enforce, before any test: formatting (rustfmt.toml), clippy and the workspace lints (Cargo.toml's
# [workspace.lints]) with every warning an error, and rustdoc without broken or private links.
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --all-features -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps --quiet
# Every crate packages for crates.io (manifest metadata, README, licenses, file list; the build itself is the tests').
cargo package --workspace --no-verify --allow-dirty --quiet

# --all-features: the `cli` feature's tests too. --all-targets: benches run once each, as tests.
cargo test --workspace --all-features --all-targets
cargo test --workspace --all-features --doc

# The server's HTTP API, security and red-team suites, the client's tests against the local server and the examples
# again, on the ClickHouse engine: one suite, both engines.
# (`--workspace`, as above, so the test binaries built above are reused rather than rebuilt with other features; each
# crate's `it` binary, filtered by module.)
TINYBIRD_LOCAL_ENGINE=clickhouse cargo test --workspace --all-features --test it -- \
  http_api:: security:: red_team:: audit_panics:: binary:: tb_cli:: client_local:: examples::
