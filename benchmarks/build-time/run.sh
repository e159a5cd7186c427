#!/usr/bin/env bash
# Build time of 100 endpoints + 20 datasources with the tinybird derives vs the same structs with serde derives only.
#
#   benchmarks/build-time/run.sh [RUNS]        (default 5 runs each; debug builds, dependencies prebuilt)
#
# Only the generated crate itself is timed: dependencies are built once first, then each run touches `src/lib.rs` and
# rebuilds. Prints the median of each and the ratio. Environment: OUT (work dir, default a temp dir),
# TINYBIRD_PATH (the facade to depend on, default this repository), CARGO_TARGET_DIR (shared by both crates).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="${TINYBIRD_PATH:-$(cd "$here/../.." && pwd)}"
runs="${1:-5}"
out="${OUT:-$(mktemp -d)}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$out/target}"
# A full compile of the crate each run (set CARGO_INCREMENTAL=1 to time incremental rebuilds instead).
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

# Depend on a snapshot of the repository, so edits to it during the run cannot trigger rebuilds of the path deps.
mkdir -p "$out/tinybird"
tar -C "$repo" --exclude='./target*' --exclude=./.git --exclude=./benchmarks -cf - . | tar -C "$out/tinybird" -xf -
python3 "$here/generate.py" "$out" "$out/tinybird"
for c in derived serde_only; do
  if [ -f "$repo/Cargo.lock" ]; then cp "$repo/Cargo.lock" "$out/$c/Cargo.lock"; fi
  (cd "$out/$c" && cargo build --quiet)
done

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
once() {
  touch "$out/$1/src/lib.rs"
  local start end
  start=$(date +%s.%N)
  (cd "$out/$1" && cargo build --quiet)
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}
# Interleaved, so a change in machine load hits both sides alike.
: > "$out/derived.times"
: > "$out/serde_only.times"
for _ in $(seq "$runs"); do
  once derived >> "$out/derived.times"
  once serde_only >> "$out/serde_only.times"
done
derived=$(median < "$out/derived.times")
serde_only=$(median < "$out/serde_only.times")
echo "derived (100 endpoints + 20 datasources): ${derived}s (median of $runs; runs: $(tr '\n' ' ' < "$out/derived.times"))"
echo "serde only (same structs):                ${serde_only}s (median of $runs; runs: $(tr '\n' ' ' < "$out/serde_only.times"))"
echo "ratio: $(echo "scale=2; $derived / $serde_only" | bc)"
