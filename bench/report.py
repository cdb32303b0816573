#!/usr/bin/env python3
"""Markdown report of a bench/compare.sh run: tables, ratios, and the performance targets.

    python3 bench/report.py target/bench > report.md

Reads machine.txt and the JSON lines of every round (mosquitto-w*-N.jsonl,
junction-w*-N.jsonl, junction-2core-N.jsonl, crossbar.jsonl) from the directory. For each
server and scenario the best valid run of all rounds and windows is reported (the machine may
have other load; every run, valid or not, is in the .jsonl files).
"""

import glob
import json
import os
import sys

ALL_RUNS = []

# Crossbar 26.10.1 anchors (shared/reference/perf-anchors.md, same kind of 2-core box, 64 B):
# msgs/s for 1->1 and RPC, deliveries/s for 1->10. Where the anchor gives only ws/json and
# raw/msgpack, the other serializers are compared with the better (raw/msgpack) figure.
CROSSBAR = {
    "wamp-ws-json-1to1": 8_100,
    "wamp-rs-msgpack-1to1": 14_900,
    "wamp-ws-json-1to10": 45_800,
    "wamp-rs-msgpack-1to10": 108_500,
    "wamp-rpc-ws-json": 5_900,
    "wamp-rpc-rs-msgpack": 16_000,
    "bridge-mqtt-to-wamp-1to1": 9_600,
    "bridge-mqtt-to-wamp-1to10": 49_400,
}
CROSSBAR_BEST = {"1to1": 14_900, "1to10": 108_500, "rpc": 16_000}


def score(j):
    name = j["scenario"]
    if name.startswith("latency-"):
        p99 = (j.get("latency_ms") or {}).get("p99")
        return -(p99 if p99 is not None else 1e9)
    if name.startswith("idle-"):
        kib = j.get("kib_per_connection")
        return (j.get("held") or 0) * 1e6 - (kib if kib is not None else 1e6)
    if name.startswith("connect-"):
        return j.get("connections_per_s") or 0
    return j.get("deliveries_per_s") or 0


def load(*patterns):
    """Best valid run per scenario over the files matching the patterns."""
    runs = {}
    for pattern in patterns:
        for path in sorted(glob.glob(pattern)):
            with open(path) as f:
                for line in f:
                    line = line.strip()
                    if not line.startswith("{"):
                        continue
                    j = json.loads(line)
                    j["file"] = os.path.basename(path)
                    ALL_RUNS.append(j)
                    old = runs.get(j["scenario"])
                    key = (bool(j.get("valid")), score(j))
                    if old is None or key > (bool(old.get("valid")), score(old)):
                        runs[j["scenario"]] = j
    return runs


def k(x):
    if x is None:
        return "–"
    if x >= 1e6:
        return f"{x / 1e6:.2f} M"
    if x >= 1e3:
        return f"{x / 1e3:.1f} k"
    return f"{x:.0f}"


def ms(j, q):
    lat = (j or {}).get("latency_ms") or {}
    v = lat.get(q)
    return "–" if v is None else f"{v:.3f}"


def get(j, key):
    return None if j is None else j.get(key)


def ratio(a, b):
    if not a or not b:
        return None
    return a / b


def fr(r):
    return "–" if r is None else f"{r:.2f}×"


def valid(j):
    if j is None:
        return "–"
    return "yes" if j.get("valid") else "**NO**"


def crossbar_anchor(name):
    if name in CROSSBAR:
        return CROSSBAR[name]
    if name.startswith("wamp-rpc-"):
        return CROSSBAR_BEST["rpc"]
    for fan in ("1to1", "1to10"):
        if name.startswith("wamp-") and name.endswith(fan):
            return CROSSBAR_BEST[fan]
    return None


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "target/bench"
    mos = load(os.path.join(d, "mosquitto-w*.jsonl"))
    jun = load(os.path.join(d, "junction-w*.jsonl"))
    two = load(os.path.join(d, "junction-2core-*.jsonl"))
    cb = load(os.path.join(d, "crossbar*.jsonl"))
    out = []
    p = out.append
    machine = os.path.join(d, "machine.txt")
    if os.path.exists(machine):
        p("```")
        p(open(machine).read().rstrip())
        p("```")
        p("")

    # --- MQTT vs mosquitto
    p("### MQTT: junction vs mosquitto (each on one core)")
    p("")
    p("Best valid run of each server over all rounds and both windows (w = messages in flight).")
    p("")
    p("| scenario | junction msgs/s | deliveries/s | p50 / p99 / p99.9 ms | srv CPU | w | "
      "mosquitto msgs/s | deliveries/s | p50 / p99 / p99.9 ms | srv CPU | w | ratio (deliveries) | valid j/m |")
    p("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, j in jun.items():
        if not (name.startswith("mqtt-") or name.startswith("latency-mqtt") or name == "slow-sub-mqtt"):
            continue
        m = mos.get(name)
        p(f"| {name} | {k(get(j, 'msgs_per_s'))} | {k(get(j, 'deliveries_per_s'))} | "
          f"{ms(j, 'p50')} / {ms(j, 'p99')} / {ms(j, 'p999')} | {k(get(j, 'server_cpu_pct'))} % | "
          f"{get(j, 'window') or '–'} | "
          f"{k(get(m, 'msgs_per_s'))} | {k(get(m, 'deliveries_per_s'))} | "
          f"{ms(m, 'p50')} / {ms(m, 'p99')} / {ms(m, 'p999')} | {k(get(m, 'server_cpu_pct'))} % | "
          f"{get(m, 'window') or '–'} | "
          f"{fr(ratio(get(j, 'deliveries_per_s'), get(m, 'deliveries_per_s')))} | {valid(j)} / {valid(m)} |")
    p("")

    # --- memory and connections
    p("### Idle connections and connection setup")
    p("")
    p("| scenario | junction | mosquitto |")
    p("|---|---|---|")
    for name in ("idle-mqtt", "idle-wamp_ws", "idle-wamp_rs"):
        j, m = jun.get(name), mos.get(name)
        def idle(x):
            if x is None:
                return "–"
            kib = x.get("kib_per_connection")
            kib = "–" if kib is None else f"{kib:.2f} KiB/conn"
            rss = x.get("server_rss_kib") or {}
            return (f"{kib}, held {x.get('held')}/{x.get('connections')}, RSS "
                    f"{rss.get('before')} → {rss.get('after')} KiB")
        p(f"| {name} | {idle(j)} | {idle(m)} |")
    for name in ("connect-mqtt", "connect-wamp_ws"):
        j, m = jun.get(name), mos.get(name)
        def rate(x):
            if x is None:
                return "–"
            return f"{k(x.get('connections_per_s'))}/s (srv CPU {k(x.get('server_cpu_pct'))} %)"
        p(f"| {name} (100 in flight) | {rate(j)} | {rate(m)} |")
    p("")

    # --- slow subscriber
    p("### Slow subscriber (one of two subscribers stops reading)")
    p("")
    p("| target / scenario | publish rate 1st half | 2nd half | server RSS before → max | RSS growth 2nd half | slow subscriber got | disconnected |")
    p("|---|---|---|---|---|---|---|")
    for label, runs in (("junction", jun), ("mosquitto", mos)):
        for name in ("slow-sub-mqtt", "slow-sub-wamp-ws-json"):
            x = runs.get(name)
            if not x:
                continue
            rss = x.get("server_rss_kib") or {}
            slow = x.get("slow_subscriber") or {}
            p(f"| {label} {name} | {k(x.get('publish_rate_first_half'))}/s | "
              f"{k(x.get('publish_rate_second_half'))}/s | {rss.get('before')} → {rss.get('max')} KiB | "
              f"{x.get('server_rss_growth_second_half_kib')} KiB | {slow.get('received')} | "
              f"{slow.get('disconnected_by_server')} |")
    p("")

    # --- WAMP
    p("### WAMP and MQTT↔WAMP on junction (one core), vs the Crossbar anchors")
    p("")
    p("Crossbar anchor: shared/reference/perf-anchors.md (another box; for serializers it does not")
    p("list, its best figure). Crossbar here: measured in this run (`--with-crossbar`), if it was.")
    p("")
    p("| scenario | msgs/s | deliveries/s | p50 / p99 / p99.9 ms | srv CPU | gen CPU | Crossbar anchor | × anchor | Crossbar here | × here | valid |")
    p("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, j in jun.items():
        if not (name.startswith("wamp-") or name.startswith("bridge-") or name.startswith("latency-wamp")):
            continue
        a = crossbar_anchor(name)
        measured = get(j, "deliveries_per_s") if "1to10" in name else get(j, "msgs_per_s")
        c = cb.get(name)
        here = None
        if c:
            here = get(c, "deliveries_per_s") if "1to10" in name else get(c, "msgs_per_s")
        if name.startswith("latency-") and c:
            here_s = f"p99 {ms(c, 'p99')} ms"
            here_r = "–"
        else:
            here_s = k(here) if c else "–"
            here_r = fr(ratio(measured, here))
        p(f"| {name} | {k(get(j, 'msgs_per_s'))} | {k(get(j, 'deliveries_per_s'))} | "
          f"{ms(j, 'p50')} / {ms(j, 'p99')} / {ms(j, 'p999')} | {k(get(j, 'server_cpu_pct'))} % | "
          f"{k(get(j, 'client_cpu_pct'))} % | {k(a) if a else '–'} | {fr(ratio(measured, a))} | "
          f"{here_s} | {here_r} | {valid(j)} |")
    p("")

    # --- scaling
    p("### junction on 1 core vs 2 cores")
    p("")
    p("| scenario | 1 core deliveries/s | srv CPU | 2 cores deliveries/s | srv CPU | ratio |")
    p("|---|---|---|---|---|---|")
    scale = {}
    for name, t in two.items():
        o = jun.get(name)
        r = ratio(get(t, "deliveries_per_s"), get(o, "deliveries_per_s"))
        scale[name] = r
        p(f"| {name} | {k(get(o, 'deliveries_per_s'))} | {k(get(o, 'server_cpu_pct'))} % | "
          f"{k(get(t, 'deliveries_per_s'))} | {k(get(t, 'server_cpu_pct'))} % | {fr(r)} |")
    p("")

    # --- targets
    p("### Targets")
    p("")
    p("| target | measured | met |")
    p("|---|---|---|")

    def target(desc, measured, ok):
        p(f"| {desc} | {measured} | {'yes' if ok else '**no**'} |")

    def dr(name, key="deliveries_per_s"):
        return ratio(get(jun.get(name), key), get(mos.get(name), key))

    for name, need in (("mqtt-qos0-1to1", 1.5), ("mqtt-qos0-1to10", 1.5),
                       ("mqtt-qos1-1to1", 1.3), ("mqtt-qos1-1to10", 1.3)):
        r = dr(name)
        target(f"{name} ≥ {need}× mosquitto", fr(r), r is not None and r >= need)
    jl, ml = jun.get("latency-mqtt-qos0"), mos.get("latency-mqtt-qos0")
    jp = ((jl or {}).get("latency_ms") or {}).get("p99")
    mp = ((ml or {}).get("latency_ms") or {}).get("p99")
    target("MQTT QoS 0 p99 at 1 k msg/s no worse than mosquitto",
           f"{jp} ms vs {mp} ms", jp is not None and mp is not None and jp <= mp * 1.05)
    worst = None
    for name, j in jun.items():
        a = crossbar_anchor(name)
        if not a or not name.startswith("wamp-") or name.startswith("wamp-realms"):
            continue
        measured = get(j, "deliveries_per_s") if "1to10" in name else get(j, "msgs_per_s")
        r = ratio(measured, a)
        if r is not None and (worst is None or r < worst[1]):
            worst = (name, r)
    if worst:
        target("WAMP pub/sub and RPC ≥ 20× Crossbar anchor (worst case)",
               f"{worst[0]}: {fr(worst[1])}", worst[1] >= 20)
    worst_here = None
    for name, j in jun.items():
        c = cb.get(name)
        if not c or not name.startswith("wamp-") or name.startswith("wamp-realms"):
            continue
        key = "deliveries_per_s" if "1to10" in name else "msgs_per_s"
        r = ratio(get(j, key), get(c, key))
        if r is not None and (worst_here is None or r < worst_here[1]):
            worst_here = (name, r)
    if worst_here:
        target("WAMP pub/sub and RPC ≥ 20× Crossbar measured here (worst case)",
               f"{worst_here[0]}: {fr(worst_here[1])}", worst_here[1] >= 20)
    mq0 = get(jun.get("mqtt-qos0-1to1"), "msgs_per_s")
    for name in ("wamp-ws-json-1to1", "wamp-rs-msgpack-1to1", "wamp-ws-msgpack-1to1"):
        w = get(jun.get(name), "msgs_per_s")
        r = ratio(mq0, w)
        target(f"{name} within 1.5× of MQTT QoS 0 1→1",
               f"{k(w)} vs {k(mq0)} msgs/s (MQTT/WAMP {fr(r)})", r is not None and r <= 1.5)
    for name, limit in (("idle-mqtt", 2.0), ("idle-wamp_ws", 4.0)):
        x = get(jun.get(name), "kib_per_connection")
        target(f"{name} ≤ {limit} KiB per connection", "–" if x is None else f"{x:.2f} KiB",
               x is not None and x <= limit)
    for name in ("idle-mqtt", "idle-wamp_ws"):
        x = jun.get(name) or {}
        held = x.get("held")
        target(f"10 000 concurrent connections held ({name})",
               f"{held}/{x.get('connections')}", held is not None and held >= 10_000)
    best = max((r for r in scale.values() if r), default=None)
    target("2 cores ≥ 1.6× 1 core (best multi-realm / many-connection scenario)", fr(best),
           best is not None and best >= 1.6)
    p("")
    invalid = [j for j in ALL_RUNS if not j.get("valid")]
    p(f"{len(ALL_RUNS)} runs in all, {len(invalid)} INVALID.")
    if invalid:
        p("")
        p("| INVALID run | file | lost | duplicated | reordered | corrupted | protocol errors | errors |")
        p("|---|---|---|---|---|---|---|---|")
        for j in invalid:
            errs = "; ".join(j.get("errors") or [])[:120]
            p(f"| {j['target']} {j['scenario']} | {j['file']} | {j.get('lost', '–')} | "
              f"{j.get('duplicated', '–')} | {j.get('reordered', '–')} | {j.get('corrupted', '–')} | "
              f"{j.get('protocol_errors', '–')} | {errs} |")
    print("\n".join(out))


if __name__ == "__main__":
    main()
