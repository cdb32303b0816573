# Helpers shared by bench/compare.sh and bench/smoke.sh (sourced, not run).

# free_port: an unused TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port PORT [SECONDS]: wait until something listens on 127.0.0.1:PORT.
wait_port() {
    local port="$1" limit="${2:-20}" i
    for ((i = 0; i < limit * 10; i++)); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "nothing listens on port $port after ${limit}s" >&2
    return 1
}

# junction_config DIR PORT [REALMS]: a node directory for the benchmark: one universal port
# (RawSocket, WebSocket at /ws, MQTT), realms realm1..realmN with anonymous access, MQTT
# persistence and $SYS off, MQTT <-> WAMP payload mapping utf8 (the bench payload is ASCII).
junction_config() {
    local dir="$1" port="$2" realms="${3:-4}"
    mkdir -p "$dir"
    python3 - "$dir/config.json" "$port" "$realms" <<'PY'
import json, sys
path, port, realms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
perm = [{"uri": "", "match": "prefix",
         "allow": {"call": True, "register": True, "publish": True, "subscribe": True}}]
config = {
    "version": 2,
    "workers": [{
        "type": "router",
        "realms": [{
            "name": f"realm{i}",
            "options": {"mqtt": {"persistence": False, "sys_interval": 0}},
            "roles": [{"name": "anonymous", "permissions": perm}],
        } for i in range(1, realms + 1)],
        "transports": [{
            "type": "universal",
            "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": port, "backlog": 4096},
            "rawsocket": {"serializers": ["json", "msgpack", "cbor", "ubjson"]},
            "websocket": {"ws": {"type": "websocket",
                                 "serializers": ["json", "msgpack", "cbor", "ubjson"]}},
            "mqtt": {"options": {"realm": "realm1",
                                 "payload_mapping": {"": {"type": "utf8"}}}},
        }],
    }],
}
with open(path, "w") as f:
    json.dump(config, f, indent=2)
PY
}

# start_junction BIN DIR CPUS LOG: start a node pinned to CPUS; sets JUNCTION_PID.
start_junction() {
    local bin="$1" dir="$2" cpus="$3" log="$4"
    taskset -c "$cpus" "$bin" start --cbdir "$dir" --loglevel warn >"$log" 2>&1 &
    JUNCTION_PID=$!
}

# stop_pid PID: SIGTERM, wait up to 10 s, then SIGKILL.
stop_pid() {
    local pid="$1" i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
