//! The WAMP connection loop shared by every framed transport (WebSocket, RawSocket).
//!
//! One task per connection: it reads frames, hands decoded messages to the `WampSession`,
//! drains the outbox, and writes everything queued before a single flush (write coalescing).
//! A transport plugs in through `WampFrames`, which owns framing (text/binary, batching,
//! RawSocket headers) and its own close handshake.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::router::{OutboxRx, Outgoing, SharedEvent};
use crate::wamp::session::{Flow, WampSession};
use crate::wamp::Message;
use crate::wire::{self, Serializer};

/// Most outbox items written per flush.
const MAX_BATCH: usize = 256;

/// One inbound event from a transport.
#[derive(Debug)]
pub enum Inbound {
    /// One transport message (a WAMP message, or a batch of them).
    Data(Bytes),
    /// The answer to our ping.
    Pong,
    /// Something handled inside the transport (a ping answered, a fragment).
    Nothing,
    /// The peer closed the connection.
    Closed,
    /// The peer sent a message over the size limit.
    TooBig {
        /// Announced or seen size.
        size: usize,
        /// Limit.
        max: usize,
    },
    /// A well-framed message that breaks the WAMP transport rules (e.g. a binary frame on
    /// `wamp.2.json`): ABORT `wamp.error.protocol_violation`.
    Violation(&'static str),
    /// A transport error (I/O, framing).
    Failed(String),
}

/// Why a WAMP connection ended (logged once at the end of the task; transports map it to
/// their close signalling).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndReason {
    /// The peer closed.
    #[error("peer closed the connection")]
    PeerClosed,
    /// The session ended (GOODBYE or ABORT sent).
    #[error("session closed")]
    SessionClosed,
    /// Router shutdown.
    #[error("router shutdown")]
    Shutdown,
    /// A message over the size limit.
    #[error("message too big")]
    TooBig,
    /// No HELLO in time.
    #[error("no HELLO before the open handshake timeout")]
    HelloTimeout,
    /// No pong in time.
    #[error("no pong within the ping timeout")]
    PingTimeout,
    /// The realm dropped the session (outbox overflow).
    #[error("outbox overflow: the session was dropped by its realm")]
    Dropped,
    /// Transport failure.
    #[error("transport error: {0}")]
    Failed(String),
}

/// A framed, message-oriented transport carrying WAMP.
pub trait WampFrames {
    /// The next inbound event. Must be cancel-safe (it is raced in `select!`).
    fn recv(&mut self) -> impl Future<Output = Inbound> + Send;
    /// Queues one encoded WAMP message (no flush).
    fn feed(&mut self, msg: Bytes) -> impl Future<Output = Result<(), String>> + Send;
    /// Queues a shared event (transports may use a cached form).
    fn feed_event(
        &mut self,
        ev: &SharedEvent,
        ser: Serializer,
    ) -> impl Future<Output = Result<(), String>> + Send {
        self.feed(ev.encoded(ser).clone())
    }
    /// Writes everything queued.
    fn flush(&mut self) -> impl Future<Output = Result<(), String>> + Send;
    /// Sends a keepalive ping.
    fn ping(&mut self) -> impl Future<Output = Result<(), String>> + Send;
    /// Closes the transport for `reason`, waiting at most `wait` for the peer's side.
    fn close(&mut self, reason: &EndReason, wait: Duration) -> impl Future<Output = ()> + Send;
    /// Splits one inbound transport message into WAMP messages (batched framing).
    fn split<'a>(&self, data: &'a [u8]) -> Result<Vec<&'a [u8]>, wire::DecodeError> {
        Ok(vec![data])
    }
}

/// Timing parameters of one connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnTiming {
    /// HELLO must arrive before this.
    pub hello_deadline: Instant,
    /// Ping interval, if any.
    pub ping_every: Option<Duration>,
    /// Pong timeout, if any.
    pub ping_timeout: Option<Duration>,
    /// How long to wait for the peer's close.
    pub close_wait: Duration,
}

async fn recv_outbox(rx: &mut Option<OutboxRx>, buf: &mut Vec<Outgoing>) -> usize {
    match rx {
        Some(rx) => rx.recv_many(buf, MAX_BATCH).await,
        None => std::future::pending().await,
    }
}

async fn write_msgs<F: WampFrames>(
    io: &mut F,
    ser: Serializer,
    msgs: &mut Vec<Message>,
) -> Result<(), String> {
    for m in msgs.drain(..) {
        io.feed(m.encode(ser)).await?;
    }
    io.flush().await
}

async fn write_outbox<F: WampFrames>(
    io: &mut F,
    ser: Serializer,
    items: &mut Vec<Outgoing>,
) -> Result<(), String> {
    for item in items.drain(..) {
        match item {
            Outgoing::Msg(m) => io.feed(m.encode(ser)).await?,
            Outgoing::Event(ev) => io.feed_event(&ev, ser).await?,
            // The realm never sends MQTT packets to a WAMP session.
            Outgoing::Mqtt(_) => {}
        }
    }
    io.flush().await
}

/// Runs one WAMP session over a framed transport until it ends.
pub async fn run<F: WampFrames>(
    mut io: F,
    ser: Serializer,
    mut session: WampSession,
    timing: ConnTiming,
    cancel: CancellationToken,
) {
    let mut outbox: Option<OutboxRx> = None;
    let mut out: Vec<Message> = Vec::new();
    let mut items: Vec<Outgoing> = Vec::new();
    let mut next_ping = timing.ping_every.map(|d| Instant::now() + d);
    let mut pong_due: Option<Instant> = None;
    let far = Instant::now() + Duration::from_secs(86400 * 365);

    let end: EndReason = loop {
        let timer = [
            (!session.is_established()).then_some(timing.hello_deadline),
            next_ping,
            pong_due,
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(far);
        tokio::select! {
            biased;
            () = cancel.cancelled() => {
                // Rare paths are boxed: inline, their futures would size every idle connection.
                Box::pin(session.shutdown(&mut out)).await;
                let _ = Box::pin(write_msgs(&mut io, ser, &mut out)).await;
                break EndReason::Shutdown;
            }
            n = recv_outbox(&mut outbox, &mut items) => {
                if n == 0 {
                    break EndReason::Dropped;
                }
                if let Err(e) = write_outbox(&mut io, ser, &mut items).await {
                    break EndReason::Failed(e);
                }
            }
            () = sleep_until(timer) => {
                let now = Instant::now();
                if !session.is_established() && now >= timing.hello_deadline {
                    break EndReason::HelloTimeout;
                }
                if pong_due.is_some_and(|d| now >= d) {
                    break EndReason::PingTimeout;
                }
                if next_ping.is_some_and(|at| now >= at) {
                    next_ping = timing.ping_every.map(|d| now + d);
                    if pong_due.is_none() {
                        pong_due = timing.ping_timeout.map(|d| now + d);
                    }
                    if let Err(e) = io.ping().await {
                        break EndReason::Failed(e);
                    }
                }
            }
            inbound = io.recv() => {
                let data = match inbound {
                    Inbound::Data(d) => d,
                    Inbound::Pong => { pong_due = None; continue; }
                    Inbound::Nothing => continue,
                    Inbound::Closed => break EndReason::PeerClosed,
                    Inbound::TooBig { size, max } => {
                        debug!(size, max, "message too big");
                        break EndReason::TooBig;
                    }
                    Inbound::Failed(e) => break EndReason::Failed(e),
                    Inbound::Violation(why) => {
                        Box::pin(session.protocol_violation(why, &mut out)).await;
                        let _ = Box::pin(write_msgs(&mut io, ser, &mut out)).await;
                        break EndReason::SessionClosed;
                    }
                };
                let parts = io.split(&data);
                let flow = handle_data(parts, &mut session, ser, &mut out).await;
                if let Err(e) = write_msgs(&mut io, ser, &mut out).await {
                    break EndReason::Failed(e);
                }
                match flow {
                    Flow::Continue => {}
                    Flow::Joined(rx) => outbox = Some(rx),
                    Flow::Close => break EndReason::SessionClosed,
                }
            }
        }
    };
    Box::pin(session.leave()).await;
    Box::pin(io.close(&end, timing.close_wait)).await;
    debug!(reason = %end, "connection ended");
}

/// Decodes one transport message (one WAMP message, or a batch) and hands it to the session.
async fn handle_data(
    parts: Result<Vec<&[u8]>, wire::DecodeError>,
    session: &mut WampSession,
    ser: Serializer,
    out: &mut Vec<Message>,
) -> Flow {
    let parts = match parts {
        Ok(p) => p,
        Err(e) => {
            return Box::pin(session.protocol_violation(&format!("bad batch: {e}"), out)).await
        }
    };
    let mut flow = Flow::Continue;
    for part in parts {
        let msg = match ser
            .decode(part)
            .map_err(|e| e.to_string())
            .and_then(|v| Message::from_value(v).map_err(|e| e.to_string()))
        {
            Ok(m) => m,
            Err(e) => return Box::pin(session.protocol_violation(&e, out)).await,
        };
        tracing::trace!(?msg, "received");
        match session.handle(msg, out).await {
            Flow::Continue => {}
            Flow::Joined(rx) => flow = Flow::Joined(rx),
            Flow::Close => return Flow::Close,
        }
    }
    flow
}
