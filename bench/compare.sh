#!/usr/bin/env bash
# Side-by-side benchmark: junction vs mosquitto (MQTT), junction alone (WAMP, MQTT<->WAMP),
# junction on 1 core vs 2 cores, optionally Crossbar (WAMP). Writes JSON lines and a report
# (markdown tables with ratios and the targets) to the output directory and prints the report.
#
#   bench/compare.sh                      # 5 s per throughput run, 10 000 idle connections
#   bench/compare.sh --duration 2 --connections 2000 --out target/bench-quick
#   bench/compare.sh --with-crossbar      # also WAMP against target/cbvenv/bin/crossbar
#   bench/compare.sh --repeat 3           # 3 interleaved rounds; the report takes each best
#
# Every round runs mosquitto, then junction (1 core), then junction (2 cores), so background
# load on the machine hits both servers alike; MQTT scenarios run at two pipelining windows
# (500 and 16 messages in flight) and the report keeps each server's best valid run.
# Each server is pinned to CPU 0 and the load generator to CPU 1 (taskset); the 2-core run
# gives junction CPUs 0 and 1 (the generator stays on CPU 1 and competes with it).
# Needs root for apt-get (mosquitto is installed when missing) and python3.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=bench/lib.sh
source bench/lib.sh

DURATION=5
CONNECTIONS=10000
OUT="$ROOT/target/bench"
WITH_CROSSBAR=0
SIZE=64
REPEAT=2
while [ $# -gt 0 ]; do
    case "$1" in
    --duration) DURATION="$2"; shift 2 ;;
    --connections) CONNECTIONS="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --size) SIZE="$2"; shift 2 ;;
    --repeat) REPEAT="$2"; shift 2 ;;
    --with-crossbar) WITH_CROSSBAR=1; shift ;;
    -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
rm -f "$OUT"/*.jsonl

# --- tools -------------------------------------------------------------------------------
MOSQUITTO="$(command -v mosquitto || true)"
[ -z "$MOSQUITTO" ] && [ -x /usr/sbin/mosquitto ] && MOSQUITTO=/usr/sbin/mosquitto
if [ -z "$MOSQUITTO" ]; then
    echo "installing mosquitto (apt-get)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mosquitto
    MOSQUITTO="$(command -v mosquitto || echo /usr/sbin/mosquitto)"
fi
command -v taskset >/dev/null || { echo "taskset (util-linux) is needed" >&2; exit 2; }

cargo build --release --bin junction
cargo build --release -p junction-bench
WORK="$(mktemp -d "${TMPDIR:-/tmp}/junction-compare.XXXXXX")"
# copies: a build started elsewhere during the run must not change what is measured
cp "$ROOT/target/release/junction" "$ROOT/target/release/junction-bench" "$WORK/"
JUNCTION="$WORK/junction"
BENCH="$WORK/junction-bench"

# 10 000 idle connections need more descriptors than the usual 1024 (servers inherit this)
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((CONNECTIONS + 1000)) ]; then
    echo "ulimit -n is $(ulimit -n): lowering --connections to $(($(ulimit -n) - 1000))" >&2
    CONNECTIONS=$(($(ulimit -n) - 1000))
fi

NCPU="$(nproc)"
if [ "$NCPU" -ge 2 ]; then
    SERVER_CPUS=0
    GEN=(taskset -c 1 "$BENCH")
else
    echo "only one CPU: no pinning" >&2
    SERVER_CPUS=0
    GEN=("$BENCH")
fi

PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do stop_pid "$p"; done
    rm -rf "$WORK"
}
trap cleanup EXIT

{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "nproc: $NCPU"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "kernel: $(uname -sr)"
    echo "memory: $(free -m | awk '/^Mem:/ {print $2 " MiB"}')"
    echo "junction: $(git -C "$ROOT" rev-parse --short HEAD)$(git -C "$ROOT" diff --quiet HEAD -- src || echo ' + uncommitted src changes')"
    echo "mosquitto: $("$MOSQUITTO" -h 2>/dev/null | head -1)"
    echo "rustc: $(rustc --version)"
    echo "duration: ${DURATION}s per throughput run, payload ${SIZE} B, idle connections: $CONNECTIONS, rounds: $REPEAT"
    echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

COMMON=(--duration "$DURATION" --size "$SIZE" --connections "$CONNECTIONS")
# Idle-connection scenarios each get a fresh server: a server that has run other scenarios
# reuses freed heap for the new connections and its RSS growth says too little.
MQTT_SCENARIOS=()
JUNCTION_SCENARIOS=()
for s in $("$BENCH" --list); do
    case "$s" in
    idle-*) ;;
    mqtt-* | latency-mqtt-* | slow-sub-mqtt | connect-mqtt)
        MQTT_SCENARIOS+=(--scenario "$s")
        JUNCTION_SCENARIOS+=(--scenario "$s")
        ;;
    *) JUNCTION_SCENARIOS+=(--scenario "$s") ;;
    esac
done
SCALE_SCENARIOS=(--scenario wamp-realms-rs-msgpack --scenario mqtt-qos0-pairs10 --scenario wamp-ws-msgpack-1to10)

# bench LABEL FILE ARGS...: run the generator, JSON lines to FILE, the rest to the terminal.
bench() {
    local label="$1" file="$2"
    shift 2
    echo "=== $label" >&2
    "${GEN[@]}" "$@" >"$file" || echo "$label: some runs were INVALID (see $file)" >&2
}

# --- the servers ---------------------------------------------------------------------------
start_mosquitto() {
    MPORT="$(free_port)"
    cat >"$WORK/mosquitto.conf" <<CONF
listener $MPORT 127.0.0.1
allow_anonymous true
persistence false
CONF
    chmod 644 "$WORK/mosquitto.conf"
    chmod 755 "$WORK"
    taskset -c "$SERVER_CPUS" "$MOSQUITTO" -c "$WORK/mosquitto.conf" >>"$OUT/mosquitto.log" 2>&1 &
    MPID=$!
    PIDS+=("$MPID")
    wait_port "$MPORT"
}

# run_junction CPUS FILE LABEL ARGS...: a fresh node pinned to CPUS, the generator on it.
run_junction() {
    local cpus="$1" file="$2" label="$3"
    shift 3
    local port
    port="$(free_port)"
    rm -rf "$WORK/node"
    junction_config "$WORK/node" "$port" 4
    start_junction "$JUNCTION" "$WORK/node" "$cpus" "$OUT/junction-$label.log"
    local pid="$JUNCTION_PID"
    PIDS+=("$pid")
    wait_port "$port"
    bench "junction $label (CPUs $cpus)" "$file" --target junction --port "$port" \
        --server-pid "$pid" "$@"
    stop_pid "$pid"
}

MQTT_W16=()
for s in "${MQTT_SCENARIOS[@]}"; do
    case "$s" in --scenario | idle-* | connect-* | slow-*) ;; *) MQTT_W16+=(--scenario "$s") ;; esac
done

for round in $(seq 1 "$REPEAT"); do
    echo "##### round $round of $REPEAT (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    start_mosquitto
    bench "mosquitto (CPU $SERVER_CPUS), window 500" "$OUT/mosquitto-w500-$round.jsonl" \
        --target mosquitto --port "$MPORT" --server-pid "$MPID" "${COMMON[@]}" "${MQTT_SCENARIOS[@]}"
    bench "mosquitto (CPU $SERVER_CPUS), window 16" "$OUT/mosquitto-w16-$round.jsonl" \
        --target mosquitto --port "$MPORT" --server-pid "$MPID" "${COMMON[@]}" --window 16 "${MQTT_W16[@]}"
    stop_pid "$MPID"
    start_mosquitto
    bench "mosquitto (CPU $SERVER_CPUS), fresh, idle" "$OUT/mosquitto-w500-idle-$round.jsonl" \
        --target mosquitto --port "$MPORT" --server-pid "$MPID" "${COMMON[@]}" --scenario idle-mqtt
    stop_pid "$MPID"
    for idle in idle-mqtt idle-wamp_ws idle-wamp_rs; do
        run_junction "$SERVER_CPUS" "$OUT/junction-w500-$idle-$round.jsonl" "1core-$idle" \
            "${COMMON[@]}" --scenario "$idle"
    done
    run_junction "$SERVER_CPUS" "$OUT/junction-w500-$round.jsonl" 1core "${COMMON[@]}" \
        "${JUNCTION_SCENARIOS[@]}"
    run_junction "$SERVER_CPUS" "$OUT/junction-w16-$round.jsonl" 1core-w16 "${COMMON[@]}" \
        --window 16 "${MQTT_W16[@]}"
    run_junction 0,1 "$OUT/junction-2core-$round.jsonl" 2core "${COMMON[@]}" "${SCALE_SCENARIOS[@]}"
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"

# --- Crossbar (optional): WAMP scenarios side by side with junction ----------------------
if [ "$WITH_CROSSBAR" = 1 ]; then
    for round in $(seq 1 "$REPEAT"); do
        ROUND="$round" bench/crossbar.sh "$OUT" "$SERVER_CPUS" "${GEN[@]}" -- "${COMMON[@]}" ||
            echo "Crossbar run failed (see $OUT/crossbar.log)" >&2
    done
fi

python3 bench/report.py "$OUT" | tee "$OUT/report.md"
