#!/usr/bin/env bash
# This SDK against the official TypeScript SDK (@tinybirdco/sdk) and jose, on one tinybird-local server, in one run.
#
#   benchmarks/vs-typescript/run.sh            release builds, full sizes (what BENCHMARKS.md reports)
#   benchmarks/vs-typescript/run.sh --quick    debug builds, small sizes: checks that the script works, not a figure
#
# Builds the tinybird-local binary and the Rust harness (benchmarks/vs-typescript/rust, its own workspace) once, starts the server on
# loopback with the harness's project (an `events` datasource, `events_ingest`, a 100,000-row endpoint and a small
# one), loads the data, installs the Node side with `npm ci` at the pinned versions (benchmarks/vs-typescript/ts), then runs each figure
# for Rust and for TypeScript back to back and prints medians, spreads and ratios. The server is killed on exit.
#
# Environment: CARGO_TARGET_DIR (default target-bench for release, target-local for --quick), NICE (default 19,
# the niceness of the builds), and the sizes below.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD

MODE=release
case "${1:-}" in
  "") ;;
  --quick) MODE=debug ;;
  -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
  *) echo "unknown argument '$1' (use --quick or nothing)" >&2; exit 2 ;;
esac

if [ "$MODE" = release ]; then
  : "${CARGO_TARGET_DIR:=$ROOT/target-bench}"
  : "${LOAD_ROWS:=200000}" "${QUERY_RUNS:=9}" "${INGEST_ROWS:=1000000}" "${INGEST_BATCH:=10000}" "${INGEST_RUNS:=3}"
  : "${JWT_TOKENS:=20000}" "${JWT_RUNS:=7}" "${TOKEN_API_CALLS:=500}"
  : "${LATENCY_CALLS:=2000}" "${LATENCY_WARMUP:=200}"
  CARGO_PROFILE=(--release)
else
  : "${CARGO_TARGET_DIR:=$ROOT/target-local}"
  : "${LOAD_ROWS:=110000}" "${QUERY_RUNS:=3}" "${INGEST_ROWS:=100000}" "${INGEST_BATCH:=10000}" "${INGEST_RUNS:=2}"
  : "${JWT_TOKENS:=2000}" "${JWT_RUNS:=3}" "${TOKEN_API_CALLS:=50}"
  : "${LATENCY_CALLS:=100}" "${LATENCY_WARMUP:=10}"
  CARGO_PROFILE=()
fi
export CARGO_TARGET_DIR
NICE=${NICE:-19}

for tool in cargo node npm curl; do
  command -v "$tool" >/dev/null 2>&1 || { echo "error: '$tool' is needed and not on PATH" >&2; exit 1; }
done

OUT_DIR=$CARGO_TARGET_DIR/bench-vs-typescript
mkdir -p "$OUT_DIR"
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS=$OUT_DIR/results-$MODE-$STAMP.jsonl
LOG=$OUT_DIR/run-$MODE-$STAMP.log
WORK=$(mktemp -d)
SERVER_PID=""

cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { echo "== $*" | tee -a "$LOG" >&2; }

say "machine: $(nproc) cores; $(free -h | awk '/^Mem:/ {print $2 " RAM, " $7 " available"}'); load $(cut -d' ' -f1-3 /proc/loadavg)"
say "$(rustc --version); node $(node --version); npm $(npm --version); mode $MODE; target dir $CARGO_TARGET_DIR"

# One build of each: the server binary (root workspace) and the harness (its own workspace).
say "building tinybird-local ($MODE)"
nice -n "$NICE" cargo build "${CARGO_PROFILE[@]}" -p tinybird-local --bin tinybird-local
say "building the Rust harness ($MODE)"
nice -n "$NICE" cargo build "${CARGO_PROFILE[@]}" --manifest-path benchmarks/vs-typescript/rust/Cargo.toml
SERVER_BIN=$CARGO_TARGET_DIR/$MODE/tinybird-local
HARNESS=$CARGO_TARGET_DIR/$MODE/tinybird-bench-vs-typescript

say "installing the Node side (npm ci, pinned by bench/ts/package-lock.json)"
(cd benchmarks/vs-typescript/ts && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
say "@tinybirdco/sdk $(node -p 'require("./bench/ts/node_modules/@tinybirdco/sdk/package.json").version'), jose $(node -p 'require("./bench/ts/node_modules/jose/package.json").version')"

"$HARNESS" project "$WORK/project"
# Port 0: the server picks a free loopback port and prints its URL.
"$SERVER_BIN" --host 127.0.0.1 --port 0 --project "$WORK/project" 2>"$WORK/server.log" &
SERVER_PID=$!
TB_URL=""
for _ in $(seq 1 300); do
  TB_URL=$(sed -n 's/^tinybird-local listening on \(http:[^ ]*\).*/\1/p' "$WORK/server.log" | head -n1)
  [ -n "$TB_URL" ] && curl -fsS "$TB_URL/v0/health" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; echo "error: the server exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$TB_URL" ] || { cat "$WORK/server.log" >&2; echo "error: the server did not start within 30 s" >&2; exit 1; }
export TB_URL
say "server $TB_URL (pid $SERVER_PID)"

say "loading $LOAD_ROWS rows into events"
"$HARNESS" load "$LOAD_ROWS"

# Each figure: Rust, then TypeScript, against the same server and data. Samples go to $RESULTS.
run() {
  local what=$1; shift
  say "$what: rust"
  "$HARNESS" "$@" >>"$RESULTS"
  say "$what: typescript"
  node benchmarks/vs-typescript/ts/bench.mjs "$@" >>"$RESULTS"
}
run "query, 100,000 rows, $QUERY_RUNS runs" query "$QUERY_RUNS"
run "ingest, $INGEST_ROWS rows in batches of $INGEST_BATCH, $INGEST_RUNS runs" ingest "$INGEST_ROWS" "$INGEST_BATCH" "$INGEST_RUNS"
run "JWT minting, $JWT_RUNS runs of $JWT_TOKENS tokens" jwt-local "$JWT_TOKENS" "$JWT_RUNS"
run "Token API, $TOKEN_API_CALLS round trips" jwt-api "$TOKEN_API_CALLS"
run "small query latency, $LATENCY_CALLS calls after $LATENCY_WARMUP warm-up" latency "$LATENCY_CALLS" "$LATENCY_WARMUP"

say "results: $RESULTS"
"$HARNESS" report "$RESULTS" | tee -a "$LOG"
say "load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
