//! Delivery bookkeeping: which (publisher, sequence) pairs a subscriber saw, duplicates,
//! corruption, and the latency histogram.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hdrhistogram::Histogram;

use crate::payload::{self, Stamp};

/// A latency histogram in nanoseconds (1 µs .. 100 s, 3 significant digits).
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1_000, 100_000_000_000, 3).expect("valid histogram bounds")
}

/// Counters one subscriber shares with the publishers for flow control: deliveries seen per
/// publisher.
#[derive(Debug)]
pub struct Progress {
    /// Distinct valid deliveries per publisher.
    pub per_publisher: Vec<AtomicU64>,
}

impl Progress {
    /// Counters for `publishers` publishers.
    pub fn new(publishers: usize) -> Arc<Self> {
        Arc::new(Self {
            per_publisher: (0..publishers).map(|_| AtomicU64::new(0)).collect(),
        })
    }

    /// Deliveries seen from publisher `p`.
    pub fn get(&self, p: usize) -> u64 {
        self.per_publisher[p].load(Ordering::Acquire)
    }
}

/// What one subscriber received.
#[derive(Debug)]
pub struct Tracker {
    size: usize,
    seen: Vec<Vec<u64>>,
    counts: Vec<u64>,
    last: Vec<Option<u64>>,
    /// Deliveries whose sequence number was already seen.
    pub duplicated: u64,
    /// Deliveries whose payload failed the check (or named an unknown publisher).
    pub corrupted: u64,
    /// Deliveries that arrived after a higher sequence number of the same publisher.
    pub reordered: u64,
    /// Unexpected or malformed protocol messages.
    pub protocol_errors: u64,
    /// Latency of each valid delivery.
    pub hist: Histogram<u64>,
    progress: Arc<Progress>,
}

impl Tracker {
    /// A tracker for `publishers` publishers and payloads of `size` bytes.
    pub fn new(publishers: usize, size: usize, progress: Arc<Progress>) -> Self {
        Self {
            size,
            seen: vec![Vec::new(); publishers],
            counts: vec![0; publishers],
            last: vec![None; publishers],
            duplicated: 0,
            corrupted: 0,
            reordered: 0,
            protocol_errors: 0,
            hist: new_histogram(),
            progress,
        }
    }

    /// Records one delivered payload received at `now_ns`; returns the stamp if valid.
    pub fn record(&mut self, payload: &[u8], now_ns: u64) -> Option<Stamp> {
        let Some(stamp) = payload::check(payload, self.size) else {
            self.corrupted += 1;
            return None;
        };
        let p = usize::from(stamp.publisher);
        if p >= self.seen.len() {
            self.corrupted += 1;
            return None;
        }
        let (word, bit) = ((stamp.seq / 64) as usize, stamp.seq % 64);
        let bits = &mut self.seen[p];
        if bits.len() <= word {
            bits.resize((word + 1).max(bits.len() * 2), 0);
        }
        if bits[word] & (1 << bit) != 0 {
            self.duplicated += 1;
            return None;
        }
        bits[word] |= 1 << bit;
        if self.last[p].is_some_and(|l| l > stamp.seq) {
            self.reordered += 1;
        }
        self.last[p] = Some(stamp.seq);
        self.counts[p] += 1;
        self.progress.per_publisher[p].store(self.counts[p], Ordering::Release);
        let _ = self
            .hist
            .record(now_ns.saturating_sub(stamp.sent_ns).max(1_000));
        Some(stamp)
    }

    /// Distinct deliveries from publisher `p`.
    pub fn count(&self, p: usize) -> u64 {
        self.counts[p]
    }

    /// Total distinct deliveries.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }
}
