//! The MQTT store across process death, and what a durable batch costs on this machine.
//!
//! - `kill9_after_apply_loses_nothing`: a child process (this test binary, re-executed with an
//!   env var that makes the same test act as the child) opens a store, applies a batch, prints
//!   `applied` and spins; the parent SIGKILLs it as soon as it reads that line, reopens the store
//!   and finds the whole batch.
//! - `throughput_of_batches_of_100_put_queued`: prints ops/s and batches/s for batches of 100
//!   `PutQueued` (one fsync each). Measured, not asserted.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use junction::mqtt::store::{QueuedMessage, Store, StoreOp, StoredMessage, StoredSession};

/// Set (to the database path) in the child's environment.
const CHILD_ENV: &str = "JUNCTION_MQTT_STORE_CRASH_CHILD";

fn crash_batch() -> Vec<StoreOp> {
    let mut ops = vec![
        StoreOp::PutRetained(StoredMessage {
            topic: "plant/line1/state".into(),
            payload: Bytes::from_static(b"running"),
            qos: 1,
            retain: true,
        }),
        StoreOp::PutSession(StoredSession {
            client_id: "sensor-17".into(),
            subscriptions: vec![("plant/#".into(), 2), ("cmd/sensor-17".into(), 1)],
            last_seen_unix: 1_750_000_000,
            incoming_qos2: vec![3, 4],
        }),
    ];
    ops.extend((0..50u64).map(|seq| StoreOp::PutQueued {
        client_id: "sensor-17".into(),
        item: QueuedMessage {
            seq,
            msg: StoredMessage {
                topic: format!("plant/line1/m{seq}"),
                payload: Bytes::from(vec![seq as u8; 200]),
                qos: 1 + (seq % 2) as u8,
                retain: false,
            },
            pkid: (seq < 3).then_some(seq as u16 + 1),
            pubrel: seq == 1,
        },
    }));
    ops
}

fn child(path: &Path) -> ! {
    let store = Store::open(path).expect("child: open");
    store.apply(&crash_batch()).expect("child: apply");
    println!("applied");
    // Keep the store open and the process busy until the parent kills it.
    loop {
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn kill9_after_apply_loses_nothing() {
    if let Some(path) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&path));
    }

    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let path = dir.path().join("mqtt.redb");
    // A first, clean life of the store, so the crash hits a file that already has data.
    {
        let store = Store::open(&path).unwrap();
        store
            .apply(&[StoreOp::PutRetained(StoredMessage {
                topic: "before/crash".into(),
                payload: Bytes::from_static(b"old"),
                qos: 0,
                retain: true,
            })])
            .unwrap();
    }

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "kill9_after_apply_loses_nothing", "--nocapture"])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.trim() == "applied")
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while !reader.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let applied = reader.is_finished() && reader.join().unwrap();
    child.kill().expect("SIGKILL the child"); // std's kill() is SIGKILL on Unix
    let status = child.wait().unwrap();
    assert!(applied, "child never printed `applied` (exit: {status})");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "child was not killed by SIGKILL");
    }

    let store = Store::open(&path).expect("reopen after kill -9");
    let loaded = store.load().unwrap();
    let mut want_retained: Vec<StoredMessage> = Vec::new();
    for op in crash_batch() {
        if let StoreOp::PutRetained(m) = op {
            want_retained.push(m);
        }
    }
    want_retained.insert(
        0,
        StoredMessage {
            topic: "before/crash".into(),
            payload: Bytes::from_static(b"old"),
            qos: 0,
            retain: true,
        },
    );
    assert_eq!(loaded.retained, want_retained);
    let batch = crash_batch();
    let want_session = batch.iter().find_map(|op| match op {
        StoreOp::PutSession(s) => Some(s.clone()),
        _ => None,
    });
    let want_queue: Vec<QueuedMessage> = batch
        .iter()
        .filter_map(|op| match op {
            StoreOp::PutQueued { item, .. } => Some(item.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(loaded.sessions, vec![(want_session.unwrap(), want_queue)]);
}

#[test]
fn throughput_of_batches_of_100_put_queued() {
    const BATCH: usize = 100;
    const MAX_BATCHES: u64 = 1000;
    const BUDGET: Duration = Duration::from_secs(3);

    // In the target dir, on the same disk as a node dir would be (not a tmpfs).
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = Store::open(&dir.path().join("mqtt.redb")).unwrap();
    let payload = Bytes::from(vec![0x5a; 256]);
    let sessions: Vec<StoreOp> = (0..10)
        .map(|i| {
            StoreOp::PutSession(StoredSession {
                client_id: format!("client-{i}"),
                subscriptions: vec![("bench/#".into(), 1)],
                last_seen_unix: 0,
                incoming_qos2: Vec::new(),
            })
        })
        .collect();
    store.apply(&sessions).unwrap();
    let mut seq = 0u64;
    let batch = |seq: &mut u64, n: usize| -> Vec<StoreOp> {
        (0..n)
            .map(|i| {
                *seq += 1;
                StoreOp::PutQueued {
                    client_id: format!("client-{}", i % 10),
                    item: QueuedMessage {
                        seq: *seq,
                        msg: StoredMessage {
                            topic: "bench/topic".into(),
                            payload: payload.clone(),
                            qos: 1,
                            retain: false,
                        },
                        pkid: None,
                        pubrel: false,
                    },
                }
            })
            .collect()
    };

    // Single-op batches: the bare cost of one durable commit.
    let single_start = Instant::now();
    let mut singles = 0u64;
    while singles < 100 && single_start.elapsed() < Duration::from_secs(1) {
        store.apply(&batch(&mut seq, 1)).unwrap();
        singles += 1;
    }
    let single = single_start.elapsed();

    let start = Instant::now();
    let mut batches = 0u64;
    while batches < MAX_BATCHES && start.elapsed() < BUDGET {
        let ops = batch(&mut seq, BATCH);
        store.apply(&ops).unwrap();
        batches += 1;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let ops = batches * BATCH as u64;
    println!(
        "mqtt store: {batches} batches x {BATCH} PutQueued (256 B payload) in {elapsed:.3} s: \
         {:.0} ops/s, {:.1} batches/s ({:.2} ms/batch); \
         {singles} single-op batches: {:.2} ms/commit",
        ops as f64 / elapsed,
        batches as f64 / elapsed,
        elapsed * 1000.0 / batches as f64,
        single.as_secs_f64() * 1000.0 / singles as f64,
    );
    let load_start = Instant::now();
    let loaded = store.load().unwrap();
    let queued: usize = loaded.sessions.iter().map(|(_, q)| q.len()).sum();
    println!(
        "mqtt store: load of {queued} queued messages took {:.1} ms",
        load_start.elapsed().as_secs_f64() * 1000.0
    );
    assert_eq!(queued as u64, seq);
}
