//! The scenarios: pub/sub (MQTT, WAMP, crossing), RPC, idle connections, connection setup,
//! slow subscriber. Each returns one JSON object describing the run.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Buf;
use serde_json::{json, Value as J};
use tokio::sync::{watch, Notify};
use tokio::time::sleep_until;

use crate::mqtt::{self, ty};
use crate::net::{op, Conn, Frames, Framing, Result};
use crate::payload::{self, Stamp};
use crate::procfs::{self, CpuMeter};
use crate::verify::{new_histogram, Progress, Tracker};
use crate::wamp::{self, code, It, Ser, Transport, Wamp};

/// Options shared by every run.
#[derive(Debug)]
pub struct Ctx {
    /// Server host.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// `junction` or `mosquitto`.
    pub target: String,
    /// Payload bytes.
    pub size: usize,
    /// Publishing time of a throughput run.
    pub duration: Duration,
    /// Messages in flight per subscriber (publisher → subscriber) in saturation runs.
    pub window: u64,
    /// Short runs, small counts.
    pub smoke: bool,
    /// Server process for RSS and CPU.
    pub server_pid: Option<u32>,
    /// Connections of the idle scenarios.
    pub connections: usize,
    /// Time origin of payload timestamps.
    pub epoch: Instant,
    /// Distinguishes topics and client ids of this process from others.
    pub nonce: String,
    /// Run counter (topics differ per run).
    pub run: AtomicU64,
}

impl Ctx {
    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn drain_timeout(&self) -> Duration {
        if self.smoke {
            Duration::from_secs(3)
        } else {
            Duration::from_secs(5)
        }
    }

    fn rss(&self) -> Option<u64> {
        self.server_pid.and_then(procfs::rss_kib)
    }
}

/// One end of a pub/sub pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ep {
    /// MQTT at this QoS.
    Mqtt(u8),
    /// WAMP over this transport and serializer.
    Wamp(Transport, Ser),
}

impl Ep {
    fn is_wamp(self) -> bool {
        matches!(self, Ep::Wamp(..))
    }
}

/// A pub/sub run.
#[derive(Debug, Clone)]
pub struct PubSub {
    /// Publisher kind.
    pub publisher: Ep,
    /// Publishers.
    pub n_pub: usize,
    /// Subscriber kind.
    pub subscriber: Ep,
    /// Subscribers (each gets every message of its topic).
    pub n_sub: usize,
    /// Publisher i → subscriber i on topic i (else: everyone on one topic).
    pub pairs: bool,
    /// WAMP pairs spread over this many realms.
    pub realms: usize,
    /// Total offered rate (fixed-rate run) instead of saturation.
    pub rate: Option<f64>,
    /// One more subscriber that stops reading after 100 messages.
    pub slow: bool,
}

enum Client {
    Mqtt(Conn),
    Wamp(Wamp),
}

struct Flow {
    notify: Notify,
    /// Progress of each subscriber (per publisher).
    subs: Vec<Arc<Progress>>,
    /// For each publisher: the subscribers whose progress gates it.
    gates: Vec<Vec<usize>>,
    /// Published so far, per publisher.
    sent: Vec<AtomicU64>,
}

impl Flow {
    /// Messages of publisher `p` not yet seen by its slowest (gating) subscriber.
    fn in_flight(&self, p: usize, seq: u64) -> u64 {
        let min = self.gates[p]
            .iter()
            .map(|&s| self.subs[s].get(p))
            .min()
            .unwrap_or(seq);
        seq.saturating_sub(min)
    }
}

#[derive(Debug, Default)]
struct PubOut {
    sent: u64,
    unacked: u64,
    protocol_errors: u64,
    error: Option<String>,
}

struct SubOut {
    tracker: Tracker,
    error: Option<String>,
    disconnected: bool,
}

fn topics(ctx: &Ctx, run: u64, i: usize) -> (String, String) {
    (
        format!("bench/{}/r{run}/t{i}", ctx.nonce),
        format!("bench.{}.r{run}.t{i}", ctx.nonce),
    )
}

async fn open(ctx: &Ctx, ep: Ep, id: &str, realm: &str) -> Result<Client> {
    match ep {
        Ep::Mqtt(_) => Ok(Client::Mqtt(mqtt::connect(&ctx.host, ctx.port, id).await?)),
        Ep::Wamp(tr, ser) => Ok(Client::Wamp(
            Wamp::connect(&ctx.host, ctx.port, tr, ser, realm).await?,
        )),
    }
}

fn realm_name(spec: &PubSub, i: usize) -> String {
    format!("realm{}", i % spec.realms.max(1) + 1)
}

/// Runs a pub/sub scenario.
pub async fn run_pubsub(ctx: Arc<Ctx>, name: &str, spec: PubSub) -> Result<J> {
    let run = ctx.run.fetch_add(1, Ordering::Relaxed);
    let n_topics = if spec.pairs { spec.n_pub } else { 1 };
    let topic_of = |i: usize| if spec.pairs { i } else { 0 };
    let total_subs = spec.n_sub + usize::from(spec.slow);

    // subscribers first
    let mut subs = Vec::new();
    let mut progress = Vec::new();
    for s in 0..total_subs {
        let ti = topic_of(s.min(n_topics - 1));
        let (mt, wt) = topics(&ctx, run, ti);
        let id = format!("jb-{}-r{run}-s{s}", ctx.nonce);
        let mut c = open(&ctx, spec.subscriber, &id, &realm_name(&spec, ti)).await?;
        let sub_id = match (&mut c, spec.subscriber) {
            (Client::Mqtt(conn), Ep::Mqtt(q)) => {
                mqtt::subscribe(conn, &mt, q).await?;
                0
            }
            (Client::Wamp(w), _) => w.subscribe(&wt, "exact").await?,
            _ => unreachable!(),
        };
        let expected_topic = if spec.subscriber.is_wamp() { wt } else { mt };
        let p = Progress::new(spec.n_pub);
        progress.push(p.clone());
        subs.push((c, sub_id, expected_topic, p));
    }
    let mut gates = vec![Vec::new(); spec.n_pub];
    for (p, g) in gates.iter_mut().enumerate() {
        for s in 0..spec.n_sub {
            if !spec.pairs || s == p {
                g.push(s);
            }
        }
    }
    let flow = Arc::new(Flow {
        notify: Notify::new(),
        subs: progress,
        gates,
        sent: (0..spec.n_pub).map(|_| AtomicU64::new(0)).collect(),
    });

    // publishers
    let mut pubs = Vec::new();
    for p in 0..spec.n_pub {
        let id = format!("jb-{}-r{run}-p{p}", ctx.nonce);
        let ti = topic_of(p);
        pubs.push((
            open(&ctx, spec.publisher, &id, &realm_name(&spec, ti)).await?,
            ti,
        ));
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    let mut sub_tasks = Vec::new();
    for (s, (c, sub_id, topic, p)) in subs.into_iter().enumerate() {
        let slow = spec.slow && s == spec.n_sub;
        let tracker = Tracker::new(spec.n_pub, ctx.size, p);
        sub_tasks.push(tokio::spawn(subscriber(
            ctx.clone(),
            c,
            sub_id,
            topic,
            tracker,
            slow,
            stop_rx.clone(),
            flow.clone(),
        )));
    }

    let rss_before = ctx.rss();
    let meter = CpuMeter::start(ctx.server_pid);
    let t0 = Instant::now();
    let deadline = t0 + ctx.duration;
    let mut pub_tasks = Vec::new();
    for (p, (c, ti)) in pubs.into_iter().enumerate() {
        let (mt, wt) = topics(&ctx, run, ti);
        let topic = if spec.publisher.is_wamp() { wt } else { mt };
        let rate = spec.rate.map(|r| r / spec.n_pub as f64);
        pub_tasks.push(tokio::spawn(publisher(
            ctx.clone(),
            c,
            p,
            topic,
            flow.clone(),
            t0,
            deadline,
            rate,
            // each subscriber's window is shared by the publishers that feed it
            if spec.pairs {
                ctx.window
            } else {
                (ctx.window / spec.n_pub as u64).max(1)
            },
            match spec.publisher {
                Ep::Mqtt(q) => q,
                Ep::Wamp(..) => 0,
            },
        )));
    }

    // sample RSS and the publishing rate while publishing
    let mut rss_max = rss_before.unwrap_or(0);
    let mut samples = Vec::new();
    let tick = Duration::from_millis(if ctx.smoke { 50 } else { 250 });
    while Instant::now() < deadline {
        tokio::time::sleep(tick.min(deadline.saturating_duration_since(Instant::now()))).await;
        let sent: u64 = flow.sent.iter().map(|a| a.load(Ordering::Relaxed)).sum();
        let rss = ctx.rss();
        rss_max = rss_max.max(rss.unwrap_or(0));
        samples.push((t0.elapsed().as_secs_f64(), sent, rss));
    }
    let mut outs = Vec::new();
    for t in pub_tasks {
        outs.push(t.await.map_err(|e| e.to_string())?);
    }
    let publish_time = t0.elapsed();

    // drain: every gating subscriber has every message, or no progress for a while
    let drain = ctx.drain_timeout();
    let mut last_change = Instant::now();
    let mut last_total = u64::MAX;
    let mut t_end = Instant::now();
    loop {
        let mut total = 0;
        let mut done = true;
        for (p, out) in outs.iter().enumerate() {
            for &s in &flow.gates[p] {
                let got = flow.subs[s].get(p);
                total += got;
                done &= got >= out.sent;
            }
        }
        if total != last_total {
            last_total = total;
            last_change = Instant::now();
            t_end = last_change;
        }
        if done || last_change.elapsed() > drain {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = t_end.duration_since(t0).max(publish_time).as_secs_f64();
    let (server_cpu, client_cpu) = meter.stop();
    let rss_after = ctx.rss();
    let _ = stop_tx.send(true);
    let mut sub_outs = Vec::new();
    for t in sub_tasks {
        sub_outs.push(t.await.map_err(|e| e.to_string())?);
    }

    // tally
    let sent: u64 = outs.iter().map(|o| o.sent).sum();
    let mut expected = 0u64;
    let mut delivered = 0u64;
    let (mut dup, mut corrupt, mut reordered, mut perr) = (0u64, 0u64, 0u64, 0u64);
    let mut hist = new_histogram();
    let mut errors: Vec<String> = Vec::new();
    for o in &outs {
        perr += o.protocol_errors;
        if let Some(e) = &o.error {
            errors.push(format!("publisher: {e}"));
        }
    }
    let unacked: u64 = outs.iter().map(|o| o.unacked).sum();
    let mut slow_info = J::Null;
    for (s, so) in sub_outs.iter().enumerate() {
        let t = &so.tracker;
        if spec.slow && s == spec.n_sub {
            slow_info = json!({
                "received": t.total(),
                "disconnected_by_server": so.disconnected,
                "corrupted": t.corrupted, "duplicated": t.duplicated,
            });
            corrupt += t.corrupted;
            dup += t.duplicated;
            continue;
        }
        for (p, o) in outs.iter().enumerate() {
            if flow.gates[p].contains(&s) {
                expected += o.sent;
                delivered += t.count(p);
            }
        }
        dup += t.duplicated;
        corrupt += t.corrupted;
        reordered += t.reordered;
        perr += t.protocol_errors;
        let _ = hist.add(&t.hist);
        if let Some(e) = &so.error {
            errors.push(format!("subscriber {s}: {e}"));
        }
    }
    let lost = expected.saturating_sub(delivered);
    let valid = sent > 0
        && lost == 0
        && dup == 0
        && corrupt == 0
        && reordered == 0
        && perr == 0
        && unacked == 0
        && errors.is_empty();
    let mut j = json!({
        "target": ctx.target, "scenario": name, "valid": valid,
        "size": ctx.size, "publishers": spec.n_pub, "subscribers": spec.n_sub,
        "duration_s": round3(elapsed),
        "sent": sent, "expected_deliveries": expected, "delivered": delivered,
        "lost": lost, "duplicated": dup, "corrupted": corrupt, "reordered": reordered,
        "protocol_errors": perr, "unacked": unacked,
        "msgs_per_s": round1(sent as f64 / elapsed),
        "deliveries_per_s": round1(delivered as f64 / elapsed),
        "latency_ms": latency(&hist),
        "server_cpu_pct": server_cpu.map(round1), "client_cpu_pct": client_cpu.map(round1),
        "server_rss_kib": {"before": rss_before, "after": rss_after, "max": ctx.server_pid.map(|_| rss_max)},
        "errors": errors,
    });
    if let Some(r) = spec.rate {
        j["offered_rate"] = json!(r);
    } else {
        j["window"] = json!(ctx.window);
    }
    if spec.slow {
        // publishing rate in the first and second half, RSS growth in the second half
        let half = ctx.duration.as_secs_f64() / 2.0;
        let mid = samples.iter().rev().find(|s| s.0 <= half).copied();
        let last = samples.last().copied();
        if let (Some(m), Some(l)) = (mid, last) {
            j["publish_rate_first_half"] = json!(round1(m.1 as f64 / m.0.max(1e-9)));
            j["publish_rate_second_half"] =
                json!(round1((l.1 - m.1) as f64 / (l.0 - m.0).max(1e-9)));
            if let (Some(a), Some(b)) = (m.2, l.2) {
                j["server_rss_growth_second_half_kib"] = json!(b as i64 - a as i64);
            }
        }
        j["slow_subscriber"] = slow_info;
    }
    Ok(j)
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn latency(h: &hdrhistogram::Histogram<u64>) -> J {
    if h.is_empty() {
        return J::Null;
    }
    let ms = |v: u64| round3(v as f64 / 1e6);
    json!({
        "p50": ms(h.value_at_quantile(0.5)),
        "p99": ms(h.value_at_quantile(0.99)),
        "p999": ms(h.value_at_quantile(0.999)),
        "max": ms(h.max()),
    })
}

#[allow(clippy::too_many_arguments)]
async fn publisher(
    ctx: Arc<Ctx>,
    client: Client,
    p: usize,
    topic: String,
    flow: Arc<Flow>,
    t0: Instant,
    deadline: Instant,
    rate: Option<f64>,
    window: u64,
    qos: u8,
) -> PubOut {
    let (mut conn, ser) = match client {
        Client::Mqtt(c) => (c, None),
        Client::Wamp(w) => (w.conn, Some(w.ser)),
    };
    let timing = Timing {
        t0,
        deadline,
        rate,
        window,
    };
    match publish_loop(&ctx, &mut conn, ser, qos, p, &topic, &flow, timing).await {
        Ok(o) => o,
        Err((o, e)) => PubOut {
            error: Some(e),
            ..o
        },
    }
}

#[derive(Debug, Clone, Copy)]
struct Timing {
    t0: Instant,
    deadline: Instant,
    rate: Option<f64>,
    window: u64,
}

#[allow(clippy::too_many_arguments)]
async fn publish_loop(
    ctx: &Ctx,
    conn: &mut Conn,
    ser: Option<Ser>,
    qos: u8,
    p: usize,
    topic: &str,
    flow: &Flow,
    timing: Timing,
) -> std::result::Result<PubOut, (PubOut, String)> {
    let Timing {
        t0,
        deadline,
        rate,
        window,
    } = timing;
    let mut o = PubOut::default();
    // MQTT QoS 1/2 state per packet id: 0 free, 1 awaiting PUBACK/PUBREC, 2 awaiting PUBCOMP
    let mut state = vec![0u8; 65536];
    let mut next_id: u16 = 1;
    let mut seq: u64 = 0;
    let mut req: u64 = 1;
    let mut pbuf = Vec::with_capacity(ctx.size);
    let batch = 64u64;
    let mut first_err: Option<String> = None;
    macro_rules! fail {
        ($e:expr) => {{
            o.sent = seq;
            return Err((o, $e));
        }};
    }
    loop {
        // acknowledgements and anything else the server sent
        loop {
            match conn.try_read_more() {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => fail!(e),
            }
        }
        if let Err(e) = process_pub_input(conn, ser, &mut state, &mut o, &mut first_err) {
            fail!(e);
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let notified = flow.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let in_flight = flow.in_flight(p, seq).max(o.unacked);
        let mut budget = window.saturating_sub(in_flight).min(batch);
        let mut next_due = None;
        if let Some(r) = rate {
            let due = ((now - t0).as_secs_f64() * r) as u64 + 1;
            budget = budget.min(due.saturating_sub(seq));
            next_due = Some(t0 + Duration::from_secs_f64((seq + 1) as f64 / r));
        }
        if qos > 0 {
            budget = budget.min(65_000u64.saturating_sub(o.unacked));
        }
        if budget == 0 {
            if let Err(e) = conn.flush().await {
                fail!(e);
            }
            let wake = next_due
                .unwrap_or(now + Duration::from_millis(20))
                .min(deadline)
                .min(now + Duration::from_millis(20));
            tokio::select! {
                r = conn.stream.readable() => if let Err(e) = r { fail!(e.to_string()) },
                _ = &mut notified => {}
                _ = sleep_until(wake.into()) => {}
            }
            continue;
        }
        let ts = ctx.now_ns();
        for _ in 0..budget {
            pbuf.clear();
            payload::write(
                &mut pbuf,
                ctx.size,
                Stamp {
                    publisher: p as u8,
                    seq,
                    sent_ns: ts,
                },
            );
            match ser {
                None => {
                    let mut id = 0;
                    if qos > 0 {
                        while state[usize::from(next_id)] != 0 {
                            next_id = next_id.checked_add(1).unwrap_or(1);
                        }
                        id = next_id;
                        state[usize::from(id)] = 1;
                        next_id = next_id.checked_add(1).unwrap_or(1);
                        o.unacked += 1;
                    }
                    mqtt::publish(&mut conn.w, topic, qos, id, &pbuf);
                }
                Some(s) => {
                    wamp::send_items(
                        &mut conn.w,
                        s,
                        &[
                            It::U(code::PUBLISH),
                            It::U(req),
                            It::Map0,
                            It::S(topic.as_bytes()),
                            It::List1(&pbuf),
                        ],
                    );
                    req += 1;
                }
            }
            seq += 1;
        }
        flow.sent[p].store(seq, Ordering::Release);
        if let Err(e) = conn.flush().await {
            fail!(e);
        }
    }
    o.sent = seq;
    flow.sent[p].store(seq, Ordering::Release);
    // wait for the outstanding acknowledgements
    let until = Instant::now() + ctx.drain_timeout();
    while o.unacked > 0 && Instant::now() < until {
        if let Err(e) = conn.flush().await {
            fail!(e);
        }
        match tokio::time::timeout_at(until.into(), conn.read_more()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => fail!(e),
            Err(_) => break,
        }
        if let Err(e) = process_pub_input(conn, ser, &mut state, &mut o, &mut first_err) {
            fail!(e);
        }
    }
    let _ = conn.flush().await;
    if let Some(e) = first_err {
        eprintln!("  publisher {p}: {e}");
    }
    Ok(o)
}

fn process_pub_input(
    conn: &mut Conn,
    ser: Option<Ser>,
    state: &mut [u8],
    o: &mut PubOut,
    first_err: &mut Option<String>,
) -> Result<()> {
    let mut frames = Frames::new(&conn.rbuf, conn.framing);
    while let Some((tag, body)) = frames.next_frame()? {
        let mut bad = |what: String| {
            o.protocol_errors += 1;
            if first_err.is_none() {
                *first_err = Some(what);
            }
        };
        match ser {
            None => {
                let id = mqtt::ack_id(body).map(usize::from);
                match (tag >> 4, id) {
                    (ty::PUBACK, Some(i)) if state[i] == 1 => {
                        state[i] = 0;
                        o.unacked -= 1;
                    }
                    (ty::PUBREC, Some(i)) if state[i] == 1 => {
                        state[i] = 2;
                        mqtt::ack(&mut conn.w, ty::PUBREL, i as u16);
                    }
                    (ty::PUBCOMP, Some(i)) if state[i] == 2 => {
                        state[i] = 0;
                        o.unacked -= 1;
                    }
                    (ty::PINGRESP, _) => {}
                    (t, id) => bad(format!("unexpected MQTT packet type {t} id {id:?}")),
                }
            }
            Some(s) => {
                if conn.framing == Framing::Ws && tag == op::PING {
                    conn.w.frame(op::PONG, body);
                    continue;
                }
                wamp::check_tag(conn.framing, tag)?;
                bad(format!(
                    "unexpected WAMP message {}",
                    wamp::describe(s, body)
                ));
            }
        }
    }
    let n = frames.consumed;
    conn.rbuf.advance(n);
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn subscriber(
    ctx: Arc<Ctx>,
    client: Client,
    sub_id: u64,
    topic: String,
    mut tracker: Tracker,
    slow: bool,
    mut stop: watch::Receiver<bool>,
    flow: Arc<Flow>,
) -> SubOut {
    let (mut conn, ser) = match client {
        Client::Mqtt(c) => (c, None),
        Client::Wamp(w) => (w.conn, Some(w.ser)),
    };
    let mut rel_pending = vec![false; 65536];
    let mut error = None;
    let mut stalled = false;
    let mut first_err: Option<String> = None;
    loop {
        if stalled {
            let _ = stop.changed().await;
            break;
        }
        tokio::select! {
            biased;
            _ = stop.changed() => break,
            r = conn.read_more() => if let Err(e) = r { error = Some(e); break; },
        }
        let now = ctx.now_ns();
        let mut frames = Frames::new(&conn.rbuf, conn.framing);
        loop {
            let (tag, body) = match frames.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    error = Some(e);
                    break;
                }
            };
            match ser {
                None => match tag >> 4 {
                    ty::PUBLISH => {
                        let Some((q, id, t, pl)) = mqtt::parse_publish(tag, body) else {
                            tracker.protocol_errors += 1;
                            continue;
                        };
                        if t != topic.as_bytes() {
                            tracker.corrupted += 1;
                        } else if q == 2 && rel_pending[usize::from(id)] {
                            // a resent QoS 2 PUBLISH before PUBREL: not a new delivery
                        } else {
                            tracker.record(pl, now);
                        }
                        match q {
                            1 => mqtt::ack(&mut conn.w, ty::PUBACK, id),
                            2 => {
                                rel_pending[usize::from(id)] = true;
                                mqtt::ack(&mut conn.w, ty::PUBREC, id);
                            }
                            _ => {}
                        }
                    }
                    ty::PUBREL => match mqtt::ack_id(body) {
                        Some(id) => {
                            rel_pending[usize::from(id)] = false;
                            mqtt::ack(&mut conn.w, ty::PUBCOMP, id);
                        }
                        None => tracker.protocol_errors += 1,
                    },
                    ty::PINGRESP => {}
                    t => {
                        tracker.protocol_errors += 1;
                        first_err.get_or_insert_with(|| format!("unexpected MQTT packet {t}"));
                    }
                },
                Some(s) => {
                    if conn.framing == Framing::Ws && tag == op::PING {
                        conn.w.frame(op::PONG, body);
                        continue;
                    }
                    if let Err(e) = wamp::check_tag(conn.framing, tag) {
                        error = Some(e);
                        break;
                    }
                    match wamp::parse(s, body, code::EVENT, 2) {
                        Some(([sid, _], pl)) if sid == sub_id => {
                            tracker.record(&pl, now);
                        }
                        Some(_) => tracker.corrupted += 1,
                        None => {
                            tracker.protocol_errors += 1;
                            first_err.get_or_insert_with(|| {
                                format!("unexpected WAMP message {}", wamp::describe(s, body))
                            });
                        }
                    }
                }
            }
        }
        let n = frames.consumed;
        conn.rbuf.advance(n);
        if error.is_some() {
            break;
        }
        if let Err(e) = conn.flush().await {
            error = Some(e);
            break;
        }
        flow.notify.notify_waiters();
        if slow && tracker.total() >= 100 {
            stalled = true;
        }
    }
    if let Some(e) = first_err {
        eprintln!("  subscriber: {e}");
    }
    // a stalled subscriber: did the server close it? (drain what is buffered)
    let mut disconnected = false;
    if slow {
        let until = Instant::now() + Duration::from_millis(if ctx.smoke { 300 } else { 2000 });
        loop {
            conn.rbuf.clear();
            match tokio::time::timeout_at(until.into(), conn.read_more()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    disconnected = true;
                    break;
                }
                Err(_) => break,
            }
        }
    }
    SubOut {
        tracker,
        error,
        disconnected,
    }
}

/// An RPC run: `callers` callers with `inflight` calls each in flight, one callee echoing.
pub async fn run_rpc(
    ctx: Arc<Ctx>,
    name: &str,
    tr: Transport,
    ser: Ser,
    callers: usize,
    inflight: u64,
) -> Result<J> {
    let run = ctx.run.fetch_add(1, Ordering::Relaxed);
    let procedure = format!("bench.{}.r{run}.echo", ctx.nonce);
    let mut callee = Wamp::connect(&ctx.host, ctx.port, tr, ser, "realm1").await?;
    let reg = callee.register(&procedure).await?;
    let mut cs = Vec::new();
    for _ in 0..callers {
        cs.push(Wamp::connect(&ctx.host, ctx.port, tr, ser, "realm1").await?);
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let callee_task = tokio::spawn(callee_loop(callee.conn, ser, reg, stop_rx));
    let rss_before = ctx.rss();
    let meter = CpuMeter::start(ctx.server_pid);
    let t0 = Instant::now();
    let deadline = t0 + ctx.duration;
    let mut tasks = Vec::new();
    for (k, c) in cs.into_iter().enumerate() {
        tasks.push(tokio::spawn(caller_loop(
            ctx.clone(),
            c.conn,
            ser,
            k,
            callers,
            procedure.clone(),
            deadline,
            inflight,
        )));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.map_err(|e| e.to_string())?);
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let (server_cpu, client_cpu) = meter.stop();
    let rss_after = ctx.rss();
    let _ = stop_tx.send(true);
    let (callee_errors, callee_err) = callee_task.await.map_err(|e| e.to_string())?;
    let mut hist = new_histogram();
    let (mut sent, mut ok, mut dup, mut corrupt, mut perr) = (0, 0, 0, 0, callee_errors);
    let mut errors = Vec::new();
    if let Some(e) = callee_err {
        errors.push(format!("callee: {e}"));
    }
    for (k, (s, t, e)) in results.iter().enumerate() {
        sent += s;
        ok += t.count(k);
        dup += t.duplicated;
        corrupt += t.corrupted;
        perr += t.protocol_errors;
        let _ = hist.add(&t.hist);
        if let Some(e) = e {
            errors.push(format!("caller {k}: {e}"));
        }
    }
    let lost = sent - ok;
    let valid = sent > 0 && lost == 0 && dup == 0 && corrupt == 0 && perr == 0 && errors.is_empty();
    Ok(json!({
        "target": ctx.target, "scenario": name, "valid": valid, "size": ctx.size,
        "callers": callers, "in_flight_per_caller": inflight,
        "duration_s": round3(elapsed), "sent": sent, "delivered": ok, "lost": lost,
        "duplicated": dup, "corrupted": corrupt, "protocol_errors": perr,
        "msgs_per_s": round1(ok as f64 / elapsed), "deliveries_per_s": round1(ok as f64 / elapsed),
        "latency_ms": latency(&hist),
        "server_cpu_pct": server_cpu.map(round1), "client_cpu_pct": client_cpu.map(round1),
        "server_rss_kib": {"before": rss_before, "after": rss_after},
        "errors": errors,
    }))
}

async fn callee_loop(
    mut conn: Conn,
    ser: Ser,
    reg: u64,
    mut stop: watch::Receiver<bool>,
) -> (u64, Option<String>) {
    let mut errors = 0;
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => return (errors, None),
            r = conn.read_more() => if let Err(e) = r { return (errors, Some(e)); },
        }
        let mut frames = Frames::new(&conn.rbuf, conn.framing);
        loop {
            let (tag, body) = match frames.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => return (errors, Some(e)),
            };
            if conn.framing == Framing::Ws && tag == op::PING {
                conn.w.frame(op::PONG, body);
                continue;
            }
            if let Err(e) = wamp::check_tag(conn.framing, tag) {
                return (errors, Some(e));
            }
            match wamp::parse(ser, body, code::INVOCATION, 2) {
                Some(([req, r], pl)) if r == reg => wamp::send_items(
                    &mut conn.w,
                    ser,
                    &[It::U(code::YIELD), It::U(req), It::Map0, It::List1(&pl)],
                ),
                _ => {
                    errors += 1;
                    eprintln!("  callee: unexpected {}", wamp::describe(ser, body));
                }
            }
        }
        let n = frames.consumed;
        conn.rbuf.advance(n);
        if let Err(e) = conn.flush().await {
            return (errors, Some(e));
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn caller_loop(
    ctx: Arc<Ctx>,
    mut conn: Conn,
    ser: Ser,
    k: usize,
    callers: usize,
    procedure: String,
    deadline: Instant,
    inflight: u64,
) -> (u64, Tracker, Option<String>) {
    let mut t = Tracker::new(callers, ctx.size, Progress::new(callers));
    let mut seq = 0u64;
    let mut pbuf = Vec::new();
    let end = deadline + ctx.drain_timeout();
    loop {
        let now = Instant::now();
        let outstanding = seq - t.count(k);
        if (now >= deadline && outstanding == 0) || now >= end {
            break;
        }
        if now < deadline && outstanding < inflight {
            let ts = ctx.now_ns();
            for _ in outstanding..inflight {
                pbuf.clear();
                payload::write(
                    &mut pbuf,
                    ctx.size,
                    Stamp {
                        publisher: k as u8,
                        seq,
                        sent_ns: ts,
                    },
                );
                wamp::send_items(
                    &mut conn.w,
                    ser,
                    &[
                        It::U(code::CALL),
                        It::U(seq + 1),
                        It::Map0,
                        It::S(procedure.as_bytes()),
                        It::List1(&pbuf),
                    ],
                );
                seq += 1;
            }
            if let Err(e) = conn.flush().await {
                return (seq, t, Some(e));
            }
        }
        match tokio::time::timeout(Duration::from_millis(50), conn.read_more()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return (seq, t, Some(e)),
            Err(_) => continue,
        }
        let now_ns = ctx.now_ns();
        let mut frames = Frames::new(&conn.rbuf, conn.framing);
        loop {
            let (tag, body) = match frames.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => return (seq, t, Some(e)),
            };
            if conn.framing == Framing::Ws && tag == op::PING {
                conn.w.frame(op::PONG, body);
                continue;
            }
            if let Err(e) = wamp::check_tag(conn.framing, tag) {
                return (seq, t, Some(e));
            }
            match wamp::parse(ser, body, code::RESULT, 1) {
                Some(([req, _], pl)) => match payload::check(&pl, ctx.size) {
                    Some(st) if usize::from(st.publisher) == k && st.seq + 1 == req => {
                        t.record(&pl, now_ns);
                    }
                    _ => t.corrupted += 1,
                },
                None => {
                    t.protocol_errors += 1;
                    eprintln!("  caller {k}: unexpected {}", wamp::describe(ser, body));
                }
            }
        }
        let n = frames.consumed;
        conn.rbuf.advance(n);
    }
    (seq, t, None)
}

/// What an idle or connect scenario opens.
#[derive(Debug, Clone, Copy)]
pub enum ConnKind {
    /// MQTT CONNECT/CONNACK.
    Mqtt,
    /// WAMP session over WebSocket (json).
    WampWs,
    /// WAMP session over RawSocket (msgpack).
    WampRs,
}

async fn open_kind(ctx: &Ctx, kind: ConnKind, id: &str) -> Result<Conn> {
    match kind {
        ConnKind::Mqtt => mqtt::connect(&ctx.host, ctx.port, id).await,
        ConnKind::WampWs => {
            Ok(
                Wamp::connect(&ctx.host, ctx.port, Transport::Ws, Ser::Json, "realm1")
                    .await?
                    .conn,
            )
        }
        ConnKind::WampRs => {
            Ok(
                Wamp::connect(&ctx.host, ctx.port, Transport::Raw, Ser::MsgPack, "realm1")
                    .await?
                    .conn,
            )
        }
    }
}

/// Opens `ctx.connections` idle connections and reports the server's RSS per connection.
pub async fn run_idle(ctx: Arc<Ctx>, name: &str, kind: ConnKind) -> Result<J> {
    let run = ctx.run.fetch_add(1, Ordering::Relaxed);
    if run > 0 && !ctx.smoke {
        eprintln!(
            "  note: other scenarios ran before on this server: it reuses their freed heap, so \
             KiB per connection is a lower bound (run idle scenarios alone on a fresh server)"
        );
    }
    let n = ctx.connections;
    let settle = Duration::from_millis(if ctx.smoke { 100 } else { 1500 });
    tokio::time::sleep(settle).await;
    let rss0 = ctx.rss();
    let t0 = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(100));
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let ctx = ctx.clone();
        let sem = sem.clone();
        set.spawn(async move {
            let _permit = sem.acquire_owned().await;
            let id = format!("jbi-{}-r{run}-{i}", ctx.nonce);
            open_kind(&ctx, kind, &id).await
        });
    }
    let mut conns = Vec::with_capacity(n);
    let mut failures = 0;
    let mut first_error = None;
    while let Some(r) = set.join_next().await {
        match r.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok(c) => conns.push(c),
            Err(e) => {
                failures += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    let open_time = t0.elapsed().as_secs_f64();
    tokio::time::sleep(settle).await;
    let rss1 = ctx.rss();
    // still held after a while?
    tokio::time::sleep(settle).await;
    let mut alive = 0;
    for c in &mut conns {
        let mut b = [0u8; 64];
        match c.stream.try_read(&mut b) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => alive += 1,
            Ok(n) if n > 0 => alive += 1,
            _ => {}
        }
    }
    for c in &conns {
        c.reset_on_drop();
    }
    drop(conns);
    let per = match (rss0, rss1) {
        (Some(a), Some(b)) if n > 0 => Some(round3((b as f64 - a as f64) / n as f64)),
        _ => None,
    };
    let valid = failures == 0 && alive == n;
    Ok(json!({
        "target": ctx.target, "scenario": name, "valid": valid, "connections": n,
        "opened": n - failures, "held": alive, "failures": failures,
        "open_time_s": round3(open_time),
        "server_rss_kib": {"before": rss0, "after": rss1},
        "kib_per_connection": per,
        "fresh_server": run == 0,
        "errors": first_error.into_iter().collect::<Vec<_>>(),
    }))
}

/// Opens and closes connections (100 handshakes in flight) for the run's duration.
pub async fn run_connect(ctx: Arc<Ctx>, name: &str, kind: ConnKind) -> Result<J> {
    let run = ctx.run.fetch_add(1, Ordering::Relaxed);
    let workers = if ctx.smoke { 10 } else { 100 };
    let meter = CpuMeter::start(ctx.server_pid);
    let t0 = Instant::now();
    let deadline = t0 + ctx.duration;
    let mut set = tokio::task::JoinSet::new();
    for w in 0..workers {
        let ctx = ctx.clone();
        set.spawn(async move {
            let (mut ok, mut failed, mut first) = (0u64, 0u64, None);
            let mut i = 0;
            while Instant::now() < deadline {
                i += 1;
                let id = format!("jbc-{}-r{run}-{w}-{i}", ctx.nonce);
                match open_kind(&ctx, kind, &id).await {
                    Ok(mut c) => {
                        match kind {
                            ConnKind::Mqtt => mqtt::disconnect(&mut c.w),
                            _ => c.w.frame(
                                if matches!(kind, ConnKind::WampWs) {
                                    op::CLOSE
                                } else {
                                    0
                                },
                                if matches!(kind, ConnKind::WampWs) {
                                    &[3, 0xe8]
                                } else {
                                    &[]
                                },
                            ),
                        }
                        let _ = c.flush().await;
                        ok += 1;
                    }
                    Err(e) => {
                        failed += 1;
                        first.get_or_insert(e);
                    }
                }
            }
            (ok, failed, first)
        });
    }
    let (mut ok, mut failed, mut errors) = (0, 0, Vec::new());
    while let Some(r) = set.join_next().await {
        let (o, f, e) = r.map_err(|e| e.to_string())?;
        ok += o;
        failed += f;
        if let Some(e) = e {
            if errors.len() < 3 {
                errors.push(e);
            }
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let (server_cpu, client_cpu) = meter.stop();
    Ok(json!({
        "target": ctx.target, "scenario": name, "valid": ok > 0 && failed == 0,
        "in_flight": workers, "duration_s": round3(elapsed), "connections": ok, "failures": failed,
        "connections_per_s": round1(ok as f64 / elapsed),
        "server_cpu_pct": server_cpu.map(round1), "client_cpu_pct": client_cpu.map(round1),
        "errors": errors,
    }))
}

/// Checks that the server answers at all (used before the runs).
pub async fn probe(ctx: &Ctx) -> Result<()> {
    if ctx.target == "crossbar" {
        Wamp::connect(&ctx.host, ctx.port, Transport::Ws, Ser::Json, "realm1").await?;
        return Ok(());
    }
    let id = format!("jbp-{}", ctx.nonce);
    let mut c = mqtt::connect(&ctx.host, ctx.port, &id).await?;
    mqtt::disconnect(&mut c.w);
    c.flush().await?;
    Ok(())
}
