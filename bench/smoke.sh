#!/usr/bin/env bash
# The benchmark in smoke mode (tests/run runs this): starts a junction node of its own on a
# free port, runs every junction-bench scenario for a fraction of a second with small counts,
# and fails only if a message was lost, duplicated, reordered or corrupted (or a run could not
# be set up). There is no throughput threshold: a slow machine never fails this.
#
#   bench/smoke.sh                 # uses target/release/junction (built if missing)
#   JUNCTION_BIN=/path/junction bench/smoke.sh
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=bench/lib.sh
source bench/lib.sh

BIN="${JUNCTION_BIN:-$ROOT/target/release/junction}"
if [ ! -x "$BIN" ]; then
    cargo build --release --bin junction
fi
cargo build --release -p junction-bench
BENCH="$ROOT/target/release/junction-bench"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/junction-bench-smoke.XXXXXX")"
JUNCTION_PID=""
cleanup() {
    if [ -n "$JUNCTION_PID" ]; then
        stop_pid "$JUNCTION_PID"
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

PORT="$(free_port)"
junction_config "$WORK/node" "$PORT" 4
"$BIN" start --cbdir "$WORK/node" --loglevel warn >"$WORK/junction.log" 2>&1 &
JUNCTION_PID=$!
if ! wait_port "$PORT" 30; then
    cat "$WORK/junction.log" >&2
    exit 1
fi

rc=0
"$BENCH" --target junction --port "$PORT" --server-pid "$JUNCTION_PID" --smoke || rc=$?
if ! kill -0 "$JUNCTION_PID" 2>/dev/null; then
    echo "bench/smoke.sh: the junction node died during the run; its log:" >&2
    cat "$WORK/junction.log" >&2
    rc=1
fi
exit "$rc"
