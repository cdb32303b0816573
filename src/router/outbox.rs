//! A connection's outbox: a bounded queue from the realm to one connection task.
//!
//! The realm only `try_send`s (a full outbox is its problem to handle, never a wait); the
//! connection drains everything queued at once (`recv_many`) to coalesce its writes. Senders are
//! cloned into subscriptions and registrations; when the last one is dropped the outbox closes,
//! and the receiver sees the end after the items already queued.
//!
//! Why not `tokio::sync::mpsc`: a tokio channel allocates a block of 32 slots when it is
//! created, plus its shared state (about 2–5 KiB per connection with our item size), even for a
//! connection that never receives anything. Here the queue holds no allocation while it is
//! empty: it is allocated on the first item of a burst and released when the receiver finds it
//! empty again, so an idle connection pays only for the small shared state (about 100 bytes).
//!
//! The lock is a `std::sync::Mutex`, held only to push, drain or register the waker; it is never
//! held across an `.await`. The waker is woken outside the lock.

use std::collections::VecDeque;
use std::fmt;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

use super::realm::Outgoing;

/// Slots reserved when an empty outbox receives its first item (saves the first few regrowths
/// of a burst; small enough that a single control reply costs little).
const FIRST_SLOTS: usize = 8;

/// Why `try_send` did not queue the item (the item is handed back).
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError<T> {
    /// The outbox holds its capacity.
    Full(T),
    /// The receiver is gone (the connection ended).
    Closed(T),
}

/// Why `try_recv` returned nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TryRecvError {
    /// Nothing queued, senders alive.
    Empty,
    /// Nothing queued and every sender is gone.
    Disconnected,
}

struct State {
    queue: VecDeque<Outgoing>,
    /// The receiver's waker while it waits for an item.
    waker: Option<Waker>,
    senders: usize,
    receiver_alive: bool,
}

struct Shared {
    state: Mutex<State>,
    capacity: usize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing panics while holding the lock; a poisoned lock still holds consistent state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The sending side (held by the realm). Cloning adds a sender; the outbox closes when the last
/// one is dropped.
pub struct Outbox {
    shared: Arc<Shared>,
}

/// The receiving side (held by the connection task). Dropping it makes `try_send` fail with
/// `Closed` and drops what was queued.
pub struct OutboxRx {
    shared: Arc<Shared>,
}

/// A bounded outbox holding at most `capacity` items (at least 1).
pub fn channel(capacity: usize) -> (Outbox, OutboxRx) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            waker: None,
            senders: 1,
            receiver_alive: true,
        }),
        capacity: capacity.max(1),
    });
    (
        Outbox {
            shared: shared.clone(),
        },
        OutboxRx { shared },
    )
}

impl Outbox {
    /// Queues `item` unless the outbox is full or closed. Never waits.
    pub fn try_send(&self, item: Outgoing) -> Result<(), TrySendError<Outgoing>> {
        self.try_send_keeping(item, 0)
    }

    /// Queues `item` only if more than `keep_free` slots stay free (`Full` otherwise), so
    /// droppable items cannot take the room kept for the others. One lock, like `try_send`.
    pub fn try_send_keeping(
        &self,
        item: Outgoing,
        keep_free: usize,
    ) -> Result<(), TrySendError<Outgoing>> {
        let waker = {
            let mut st = self.shared.lock();
            if !st.receiver_alive {
                return Err(TrySendError::Closed(item));
            }
            if st.queue.len() + keep_free >= self.shared.capacity {
                return Err(TrySendError::Full(item));
            }
            if st.queue.capacity() == 0 {
                st.queue.reserve(FIRST_SLOTS.min(self.shared.capacity));
            }
            st.queue.push_back(item);
            st.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Free slots right now.
    pub fn capacity(&self) -> usize {
        let len = self.shared.lock().queue.len();
        self.shared.capacity.saturating_sub(len)
    }

    /// Whether the receiver is gone.
    pub fn is_closed(&self) -> bool {
        !self.shared.lock().receiver_alive
    }
}

impl Clone for Outbox {
    fn clone(&self) -> Self {
        self.shared.lock().senders += 1;
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let waker = {
            let mut st = self.shared.lock();
            st.senders -= 1;
            if st.senders == 0 {
                st.waker.take()
            } else {
                None
            }
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl fmt::Debug for Outbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outbox")
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

impl OutboxRx {
    /// Waits until something is queued, then moves up to `limit` items into `buf` (appending).
    /// Returns how many were moved; 0 means the outbox is closed and empty (or `limit` is 0).
    ///
    /// When the queue is empty its allocation is released, so an idle connection holds none.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: items are only moved into `buf` when the future completes.
    pub async fn recv_many(&mut self, buf: &mut Vec<Outgoing>, limit: usize) -> usize {
        if limit == 0 {
            return 0;
        }
        poll_fn(|cx| {
            let mut st = self.shared.lock();
            if !st.queue.is_empty() {
                let n = st.queue.len().min(limit);
                buf.extend(st.queue.drain(..n));
                return Poll::Ready(n);
            }
            if st.queue.capacity() > 0 {
                // The burst is over: hold no queue memory while idle.
                st.queue = VecDeque::new();
            }
            if st.senders == 0 {
                return Poll::Ready(0);
            }
            match &mut st.waker {
                Some(w) if w.will_wake(cx.waker()) => {}
                slot => *slot = Some(cx.waker().clone()),
            }
            Poll::Pending
        })
        .await
    }

    /// Takes one item without waiting.
    pub fn try_recv(&mut self) -> Result<Outgoing, TryRecvError> {
        let mut st = self.shared.lock();
        match st.queue.pop_front() {
            Some(item) => Ok(item),
            None if st.senders == 0 => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }
}

impl Drop for OutboxRx {
    fn drop(&mut self) {
        let queued = {
            let mut st = self.shared.lock();
            st.receiver_alive = false;
            st.waker = None;
            std::mem::take(&mut st.queue)
        };
        // Dropped outside the lock (items may hold shared events).
        drop(queued);
    }
}

impl fmt::Debug for OutboxRx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboxRx")
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::MqttOut;

    fn item(n: u16) -> Outgoing {
        Outgoing::Mqtt(MqttOut::PubAck(n))
    }

    fn id(o: &Outgoing) -> u16 {
        match o {
            Outgoing::Mqtt(MqttOut::PubAck(n)) => *n,
            _ => unreachable!(),
        }
    }

    #[test]
    fn bounded_full_then_closed() {
        let (tx, rx) = channel(2);
        assert!(tx.try_send(item(1)).is_ok());
        assert!(tx.try_send(item(2)).is_ok());
        assert_eq!(tx.capacity(), 0);
        assert!(matches!(tx.try_send(item(3)), Err(TrySendError::Full(_))));
        drop(rx);
        assert!(tx.is_closed());
        assert!(matches!(tx.try_send(item(4)), Err(TrySendError::Closed(_))));
    }

    #[tokio::test]
    async fn drains_in_order_then_ends_when_senders_are_gone() {
        let (tx, mut rx) = channel(16);
        let tx2 = tx.clone();
        for n in 0..5 {
            tx.try_send(item(n)).unwrap();
        }
        tx2.try_send(item(5)).unwrap();
        let mut buf = Vec::new();
        assert_eq!(rx.recv_many(&mut buf, 4).await, 4);
        assert_eq!(rx.recv_many(&mut buf, 4).await, 2);
        assert_eq!(buf.iter().map(id).collect::<Vec<_>>(), [0, 1, 2, 3, 4, 5]);
        drop(tx);
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
        tx2.try_send(item(6)).unwrap();
        drop(tx2);
        // Queued items are still delivered after the last sender is gone.
        buf.clear();
        assert_eq!(rx.recv_many(&mut buf, 4).await, 1);
        assert_eq!(rx.recv_many(&mut buf, 4).await, 0);
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Disconnected)));
    }

    #[tokio::test]
    async fn wakes_a_waiting_receiver_and_releases_memory_when_idle() {
        let (tx, mut rx) = channel(1024);
        let task = tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut got = Vec::new();
            loop {
                let n = rx.recv_many(&mut buf, 256).await;
                if n == 0 {
                    break;
                }
                got.extend(buf.drain(..).map(|o| id(&o)));
            }
            got
        });
        for n in 0..100 {
            tx.try_send(item(n)).unwrap();
            if n % 10 == 0 {
                tokio::task::yield_now().await;
            }
        }
        tokio::task::yield_now().await;
        drop(tx);
        let got = task.await.unwrap();
        assert_eq!(got, (0..100).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn idle_outbox_holds_no_queue() {
        let (tx, mut rx) = channel(64);
        tx.try_send(item(1)).unwrap();
        let mut buf = Vec::new();
        assert_eq!(rx.recv_many(&mut buf, 8).await, 1);
        // The next wait finds the queue empty and releases it.
        let waited = tokio::time::timeout(
            std::time::Duration::from_millis(10),
            rx.recv_many(&mut buf, 8),
        )
        .await;
        assert!(waited.is_err());
        assert_eq!(tx.shared.lock().queue.capacity(), 0);
    }
}
