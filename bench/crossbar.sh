#!/usr/bin/env bash
# Optional part of bench/compare.sh: the WAMP scenarios against Crossbar (target/cbvenv),
# pinned like the other servers. Usage: bench/crossbar.sh OUT CPUS GEN... -- BENCH-ARGS...
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=bench/lib.sh
source "$ROOT/bench/lib.sh"
OUT="$1" CPUS="$2"
shift 2
GEN=()
while [ "$1" != "--" ]; do GEN+=("$1"); shift; done
shift
CROSSBAR="${JUNCTION_CROSSBAR:-$ROOT/target/cbvenv/bin/crossbar}"
[ -x "$CROSSBAR" ] || { echo "no crossbar at $CROSSBAR (tests/run creates target/cbvenv)" >&2; exit 1; }
WORK="$(mktemp -d "${TMPDIR:-/tmp}/junction-crossbar.XXXXXX")"
PORT="$(free_port)"
mkdir -p "$WORK/.crossbar"
python3 - "$WORK/.crossbar/config.json" "$PORT" <<'PY'
import json, sys
path, port = sys.argv[1], int(sys.argv[2])
perm = [{"uri": "", "match": "prefix",
         "allow": {"call": True, "register": True, "publish": True, "subscribe": True},
         "disclose": {"caller": False, "publisher": False}, "cache": True}]
json.dump({"version": 2, "controller": {}, "workers": [{
    "type": "router",
    "realms": [{"name": "realm1", "roles": [{"name": "anonymous", "permissions": perm}]}],
    "transports": [{
        "type": "universal",
        "endpoint": {"type": "tcp", "port": port, "interface": "127.0.0.1", "backlog": 4096},
        "rawsocket": {"serializers": ["json", "msgpack", "cbor"]},
        "websocket": {"ws": {"type": "websocket", "serializers": ["json", "msgpack", "cbor"]}},
    }],
}]}, open(path, "w"), indent=2)
PY
taskset -c "$CPUS" "$CROSSBAR" start --cbdir "$WORK/.crossbar" --loglevel warn >"$OUT/crossbar.log" 2>&1 &
CPID=$!
trap 'stop_pid $CPID; rm -rf "$WORK"' EXIT
wait_port "$PORT" 90
sleep 2
# the router worker is a child of the controller: report its RSS and CPU
WORKER="$(pgrep -P "$CPID" -f 'crossbar.*worker' | head -1 || true)"
[ -n "$WORKER" ] || WORKER="$CPID"
SCEN=()
for s in $("${GEN[@]}" --list); do
    case "$s" in
    wamp-ws-* | wamp-rs-* | wamp-rpc-* | latency-wamp-ws-json | latency-wamp-rs-msgpack) SCEN+=(--scenario "$s") ;;
    esac
done
"${GEN[@]}" --target crossbar --port "$PORT" --server-pid "$WORKER" "$@" "${SCEN[@]}" \
    >"$OUT/crossbar${ROUND:+-$ROUND}.jsonl" || echo "crossbar: some runs were INVALID" >&2
