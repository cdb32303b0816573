//! junction-bench: a load generator for junction (MQTT and WAMP) and mosquitto (MQTT).
//!
//! Every delivery is verified (sequence number, checksum, per-publisher order); a run that
//! loses, duplicates, reorders or corrupts a message is INVALID and makes the exit status 1.
//! One JSON line per run goes to stdout, then a table; progress goes to stderr.
//!
//! ```text
//! junction-bench --target junction --port 8080 --server-pid 1234 --scenario mqtt-qos0-1to1
//! junction-bench --list
//! ```

mod mqtt;
mod net;
mod payload;
mod procfs;
mod scen;
mod verify;
mod wamp;

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::Value as J;

use scen::{ConnKind, Ctx, Ep, PubSub};
use wamp::{Ser, Transport};

#[derive(Parser, Debug)]
#[command(
    name = "junction-bench",
    about = "Load generator for junction and mosquitto: MQTT and WAMP throughput, latency, memory; every delivery verified"
)]
struct Cli {
    /// The server under test: junction (MQTT and WAMP scenarios), mosquitto (MQTT only) or
    /// crossbar (name the scenarios; the MQTT<->WAMP ones assume junction's utf8 mapping).
    #[arg(long, default_value = "junction")]
    target: String,
    /// Server address.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Server port (junction: a universal port with MQTT, WebSocket at /ws and RawSocket).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// Scenario to run (repeatable); default: every scenario the target supports. See --list.
    #[arg(long = "scenario")]
    scenarios: Vec<String>,
    /// Publishing time of each throughput run, seconds.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Payload size in bytes (at least 39: sequence number, timestamp and checksum).
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Messages in flight per subscriber in saturation runs (pipelining window).
    #[arg(long, default_value_t = 500)]
    window: u64,
    /// Offered rate of the latency scenarios, messages per second.
    #[arg(long, default_value_t = 1000.0)]
    rate: f64,
    /// Connections of the idle scenarios.
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// Realms (realm1..realmN) of the wamp-realms scenario.
    #[arg(long, default_value_t = 4)]
    realms: usize,
    /// Server process id, for its RSS (/proc/PID/status VmRSS) and CPU use.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Short runs with small counts: checks correctness, not speed.
    #[arg(long)]
    smoke: bool,
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
}

/// A scenario by name.
#[derive(Debug, Clone)]
enum Scenario {
    PubSub(PubSub),
    Rpc(Transport, Ser),
    Idle(ConnKind),
    Connect(ConnKind),
}

fn fan(pattern: &str) -> Option<(usize, usize, bool)> {
    match pattern {
        "1to1" => Some((1, 1, false)),
        "1to10" => Some((1, 10, false)),
        "10to1" => Some((10, 1, false)),
        "pairs10" => Some((10, 10, true)),
        _ => None,
    }
}

fn ps(publisher: Ep, subscriber: Ep, (n_pub, n_sub, pairs): (usize, usize, bool)) -> PubSub {
    PubSub {
        publisher,
        n_pub,
        subscriber,
        n_sub,
        pairs,
        realms: 1,
        rate: None,
        slow: false,
    }
}

fn transport(s: &str) -> Option<Transport> {
    match s {
        "ws" => Some(Transport::Ws),
        "rs" => Some(Transport::Raw),
        _ => None,
    }
}

/// Parses a scenario name (see `all_scenarios`).
fn scenario(name: &str, cli: &Cli) -> Option<Scenario> {
    let parts: Vec<&str> = name.split('-').collect();
    let wj = Ep::Wamp(Transport::Ws, Ser::Json);
    match parts.as_slice() {
        ["mqtt", q, f] => {
            let q = q
                .strip_prefix("qos")?
                .parse::<u8>()
                .ok()
                .filter(|q| *q <= 2)?;
            Some(Scenario::PubSub(ps(Ep::Mqtt(q), Ep::Mqtt(q), fan(f)?)))
        }
        ["wamp", "rpc", t, s] => Some(Scenario::Rpc(transport(t)?, Ser::from_name(s)?)),
        ["wamp", "realms", t, s] => {
            let ep = Ep::Wamp(transport(t)?, Ser::from_name(s)?);
            let n = cli.realms.max(1);
            let mut p = ps(ep, ep, (n, n, true));
            p.realms = n;
            Some(Scenario::PubSub(p))
        }
        ["wamp", t, s, f] => {
            let ep = Ep::Wamp(transport(t)?, Ser::from_name(s)?);
            Some(Scenario::PubSub(ps(ep, ep, fan(f)?)))
        }
        ["bridge", "mqtt", "to", "wamp", f] => Some(Scenario::PubSub(ps(Ep::Mqtt(0), wj, fan(f)?))),
        ["bridge", "wamp", "to", "mqtt", f] => Some(Scenario::PubSub(ps(wj, Ep::Mqtt(0), fan(f)?))),
        ["latency", "mqtt", q] => {
            let q = q
                .strip_prefix("qos")?
                .parse::<u8>()
                .ok()
                .filter(|q| *q <= 2)?;
            let mut p = ps(Ep::Mqtt(q), Ep::Mqtt(q), (1, 1, false));
            p.rate = Some(cli.rate);
            Some(Scenario::PubSub(p))
        }
        ["latency", "wamp", t, s] => {
            let ep = Ep::Wamp(transport(t)?, Ser::from_name(s)?);
            let mut p = ps(ep, ep, (1, 1, false));
            p.rate = Some(cli.rate);
            Some(Scenario::PubSub(p))
        }
        ["slow", "sub", "mqtt"] => {
            let mut p = ps(Ep::Mqtt(0), Ep::Mqtt(0), (1, 1, false));
            p.slow = true;
            Some(Scenario::PubSub(p))
        }
        ["slow", "sub", "wamp", t, s] => {
            let ep = Ep::Wamp(transport(t)?, Ser::from_name(s)?);
            let mut p = ps(ep, ep, (1, 1, false));
            p.slow = true;
            Some(Scenario::PubSub(p))
        }
        ["idle", k] => Some(Scenario::Idle(conn_kind(k)?)),
        ["connect", k] => Some(Scenario::Connect(conn_kind(k)?)),
        _ => None,
    }
}

fn conn_kind(k: &str) -> Option<ConnKind> {
    match k {
        "mqtt" => Some(ConnKind::Mqtt),
        "wamp_ws" => Some(ConnKind::WampWs),
        "wamp_rs" => Some(ConnKind::WampRs),
        _ => None,
    }
}

/// Every scenario, in run order.
fn all_scenarios() -> Vec<String> {
    let mut v = Vec::new();
    for q in 0..=2 {
        for f in ["1to1", "1to10", "10to1"] {
            v.push(format!("mqtt-qos{q}-{f}"));
        }
    }
    v.push("mqtt-qos0-pairs10".into());
    // Transport × serializer pairs the WAMP scenarios run over.
    const WAMP: [(&str, &str); 5] = [
        ("ws", "json"),
        ("ws", "msgpack"),
        ("ws", "cbor"),
        ("rs", "json"),
        ("rs", "msgpack"),
    ];
    for (t, s) in WAMP {
        for f in ["1to1", "1to10"] {
            v.push(format!("wamp-{t}-{s}-{f}"));
        }
    }
    for (t, s) in WAMP {
        v.push(format!("wamp-rpc-{t}-{s}"));
    }
    v.push("wamp-realms-rs-msgpack".into());
    for f in ["1to1", "1to10"] {
        v.push(format!("bridge-mqtt-to-wamp-{f}"));
        v.push(format!("bridge-wamp-to-mqtt-{f}"));
    }
    v.extend(
        [
            "latency-mqtt-qos0",
            "latency-mqtt-qos1",
            "latency-wamp-ws-json",
            "latency-wamp-rs-msgpack",
            "slow-sub-mqtt",
            "slow-sub-wamp-ws-json",
            "idle-mqtt",
            "idle-wamp_ws",
            "idle-wamp_rs",
            "connect-mqtt",
            "connect-wamp_ws",
        ]
        .map(String::from),
    );
    v
}

fn uses_wamp(s: &Scenario) -> bool {
    match s {
        Scenario::PubSub(p) => {
            matches!(p.publisher, Ep::Wamp(..)) || matches!(p.subscriber, Ep::Wamp(..))
        }
        Scenario::Rpc(..) => true,
        Scenario::Idle(k) | Scenario::Connect(k) => !matches!(k, ConnKind::Mqtt),
    }
}

fn nonce() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("n{:x}", (t as u64) ^ u64::from(std::process::id()) << 32)
}

fn main() {
    let cli = Cli::parse();
    if cli.list {
        for s in all_scenarios() {
            println!("{s}");
        }
        return;
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rt = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
    .expect("tokio runtime");
    let code = rt.block_on(run(cli));
    std::process::exit(code);
}

async fn run(cli: Cli) -> i32 {
    if !["junction", "mosquitto", "crossbar"].contains(&cli.target.as_str()) {
        eprintln!("--target must be junction, mosquitto or crossbar");
        return 2;
    }
    let names = if cli.scenarios.is_empty() {
        all_scenarios()
    } else {
        cli.scenarios.clone()
    };
    let mut plan = Vec::new();
    for n in &names {
        match scenario(n, &cli) {
            Some(s) if cli.target == "mosquitto" && uses_wamp(&s) => {
                if !cli.scenarios.is_empty() {
                    eprintln!("skipping {n}: mosquitto speaks MQTT only");
                }
            }
            Some(s) => plan.push((n.clone(), s)),
            None => {
                eprintln!("unknown scenario {n:?} (see --list)");
                return 2;
            }
        }
    }
    let (duration, connections) = if cli.smoke {
        (cli.duration.min(0.15), cli.connections.min(20))
    } else {
        (cli.duration, cli.connections)
    };
    let ctx = Arc::new(Ctx {
        host: cli.host.clone(),
        port: cli.port,
        target: cli.target.clone(),
        size: cli.size.max(payload::MIN_SIZE),
        duration: Duration::from_secs_f64(duration.max(0.05)),
        window: cli.window.max(1),
        smoke: cli.smoke,
        server_pid: cli.server_pid,
        connections,
        epoch: Instant::now(),
        nonce: nonce(),
        run: Default::default(),
    });
    if cli.size < payload::MIN_SIZE {
        eprintln!(
            "--size {} is below the minimum: using {} bytes",
            cli.size,
            payload::MIN_SIZE
        );
    }
    if let Err(e) = scen::probe(&ctx).await {
        eprintln!("cannot reach the server at {}:{}: {e}", cli.host, cli.port);
        return 2;
    }
    let mut results: Vec<J> = Vec::new();
    let mut invalid = 0;
    for (name, s) in plan {
        eprintln!("[{}] {name} ...", ctx.target);
        let started = Instant::now();
        let r = match s {
            Scenario::PubSub(p) => scen::run_pubsub(ctx.clone(), &name, p).await,
            Scenario::Rpc(t, ser) => {
                let (k, w) = if ctx.smoke { (2, 4) } else { (10, 16) };
                scen::run_rpc(ctx.clone(), &name, t, ser, k, w).await
            }
            Scenario::Idle(k) => scen::run_idle(ctx.clone(), &name, k).await,
            Scenario::Connect(k) => scen::run_connect(ctx.clone(), &name, k).await,
        };
        let j = r.unwrap_or_else(|e| {
            serde_json::json!({
                "target": ctx.target, "scenario": name, "valid": false, "errors": [e],
            })
        });
        let mut j = j;
        j["loadavg_after"] = J::from(loadavg());
        if j["valid"] != J::Bool(true) {
            invalid += 1;
            eprintln!("  INVALID: {name}: {}", summary_errors(&j));
        }
        println!("{j}");
        eprintln!("  {} ({:.1} s)", row(&j), started.elapsed().as_secs_f64());
        results.push(j);
        // let the server settle between runs (closing connections, freeing outboxes)
        tokio::time::sleep(Duration::from_millis(if ctx.smoke { 20 } else { 500 })).await;
    }
    println!();
    println!("{}", header());
    for j in &results {
        println!("{}", row(j));
    }
    if invalid > 0 {
        println!("INVALID runs: {invalid} of {} (lost, duplicated, reordered or corrupted messages, or errors)", results.len());
        1
    } else {
        println!(
            "all {} runs valid: no message lost, duplicated, reordered or corrupted",
            results.len()
        );
        0
    }
}

/// The 1-minute load average (other work on the machine skews every number).
fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn summary_errors(j: &J) -> String {
    let keys = [
        "lost",
        "duplicated",
        "corrupted",
        "reordered",
        "protocol_errors",
        "unacked",
        "failures",
    ];
    let mut parts: Vec<String> = keys
        .iter()
        .filter_map(|k| {
            j.get(*k)
                .and_then(J::as_u64)
                .filter(|v| *v > 0)
                .map(|v| format!("{k}={v}"))
        })
        .collect();
    if let Some(e) = j["errors"].as_array() {
        parts.extend(
            e.iter()
                .take(3)
                .map(|e| e.as_str().unwrap_or("").to_owned()),
        );
    }
    parts.join(", ")
}

fn header() -> String {
    format!(
        "{:<10} {:<28} {:>5} {:>11} {:>12} {:>8} {:>8} {:>8} {:>6} {:>6}  {}",
        "target",
        "scenario",
        "valid",
        "msgs/s",
        "deliveries/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "srv%",
        "gen%",
        "other"
    )
}

fn num(v: &J) -> String {
    match v.as_f64() {
        Some(x) if x >= 100.0 => format!("{x:.0}"),
        Some(x) => format!("{x:.3}"),
        None => "-".into(),
    }
}

fn row(j: &J) -> String {
    let lat = &j["latency_ms"];
    let mut other = Vec::new();
    if let Some(k) = j["kib_per_connection"].as_f64() {
        other.push(format!(
            "{k:.2} KiB/conn, held {}/{}",
            j["held"], j["connections"]
        ));
    }
    if let Some(r) = j["connections_per_s"].as_f64() {
        other.push(format!("{r:.0} conn/s"));
    }
    if j.get("slow_subscriber").is_some() {
        other.push(format!(
            "pub/s 1st half {} 2nd half {}, RSS max {} KiB (+{} KiB in 2nd half), slow sub got {} disconnected={}",
            num(&j["publish_rate_first_half"]),
            num(&j["publish_rate_second_half"]),
            j["server_rss_kib"]["max"],
            j["server_rss_growth_second_half_kib"],
            j["slow_subscriber"]["received"],
            j["slow_subscriber"]["disconnected_by_server"],
        ));
    }
    if let Some(r) = j["offered_rate"].as_f64() {
        other.push(format!("offered {r:.0}/s"));
    }
    format!(
        "{:<10} {:<28} {:>5} {:>11} {:>12} {:>8} {:>8} {:>8} {:>6} {:>6}  {}",
        j["target"].as_str().unwrap_or(""),
        j["scenario"].as_str().unwrap_or(""),
        if j["valid"] == J::Bool(true) {
            "yes"
        } else {
            "NO"
        },
        num(&j["msgs_per_s"]),
        num(&j["deliveries_per_s"]),
        num(&lat["p50"]),
        num(&lat["p99"]),
        num(&lat["p999"]),
        num(&j["server_cpu_pct"]),
        num(&j["client_cpu_pct"]),
        other.join("; ")
    )
}
