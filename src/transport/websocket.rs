//! WAMP over WebSocket, served through hyper so the same HTTP stack can later serve web paths.
//!
//! hyper parses the HTTP request; a request for the configured path with a WAMP subprotocol is
//! answered `101` and the upgraded stream becomes a tungstenite `WebSocketStream`. One task per
//! connection then reads frames and drains the outbox, writing everything queued with one
//! flush (write coalescing). Other paths get 404; an upgrade without an acceptable subprotocol
//! gets 400.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message as WsMessage, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, Instrument};

use crate::config::WebSocketOptions;
use crate::router::Outgoing;
use crate::wamp::session::{Flow, SessionConfig, WampSession};
use crate::wamp::Message;
use crate::wire::{self, Serializer};

/// Initial read buffer per connection; tungstenite grows it on demand (its default is 128 KiB,
/// far too much for idle connections).
const READ_BUFFER: usize = 4 * 1024;
/// Outgoing bytes buffered before tungstenite writes to the socket.
const WRITE_BUFFER: usize = 64 * 1024;
/// Most outbox items written per flush.
const MAX_BATCH: usize = 256;

/// A negotiated WAMP WebSocket subprotocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subprotocol {
    /// Payload serializer.
    pub serializer: Serializer,
    /// `.batched` framing.
    pub batched: bool,
}

impl Subprotocol {
    /// Parses `wamp.2.<ser>[.batched]`.
    pub fn parse(name: &str) -> Option<Self> {
        let rest = name.strip_prefix("wamp.2.")?;
        let (ser, batched) = match rest.strip_suffix(".batched") {
            Some(s) => (s, true),
            None => (rest, false),
        };
        Some(Self {
            serializer: Serializer::from_name(ser)?,
            batched,
        })
    }

    /// The subprotocol name.
    pub fn name(&self) -> String {
        format!(
            "wamp.2.{}{}",
            self.serializer.name(),
            if self.batched { ".batched" } else { "" }
        )
    }
}

/// Everything a WebSocket listener needs per connection.
#[derive(Debug)]
pub struct WsEndpoint {
    /// Path that upgrades (`None`: any path).
    pub path: Option<String>,
    /// Allowed serializers.
    pub serializers: Vec<Serializer>,
    /// Options.
    pub options: WebSocketOptions,
    /// Session settings.
    pub session: SessionConfig,
}

impl WsEndpoint {
    /// Picks the first client-offered subprotocol we support (Crossbar's rule).
    fn negotiate(&self, req: &Request<Incoming>) -> Result<Option<Subprotocol>, ()> {
        let offered: Vec<&str> = req
            .headers()
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        for name in &offered {
            if let Some(p) = Subprotocol::parse(name) {
                if self.serializers.contains(&p.serializer) {
                    return Ok(Some(p));
                }
            }
        }
        if offered.is_empty()
            && !self.options.require_websocket_subprotocol
            && self.serializers.contains(&Serializer::Json)
        {
            return Ok(None);
        }
        Err(())
    }
}

fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(format!("{text}\n"))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r.headers_mut()
        .insert(header::SERVER, HeaderValue::from_static("junction"));
    r
}

fn header_has(req: &Request<Incoming>, name: header::HeaderName, token: &str) -> bool {
    req.headers()
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Serves one TCP (or other byte stream) connection: HTTP until a WebSocket upgrade.
pub async fn serve<IO>(io: IO, ep: Arc<WsEndpoint>, cancel: CancellationToken, tracker: TaskTracker)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let deadline = Instant::now() + ep.options.open_handshake_timeout;
    let svc_ep = ep.clone();
    let svc_cancel = cancel.clone();
    let svc_tracker = tracker.clone();
    let service = hyper::service::service_fn(move |req| {
        let r = upgrade(
            req,
            svc_ep.clone(),
            svc_cancel.clone(),
            svc_tracker.clone(),
            deadline,
        );
        async move { Ok::<_, std::convert::Infallible>(r) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .max_buf_size(64 * 1024)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                debug!(error = %e, "http connection ended with an error");
            }
        }
        () = tokio::time::sleep_until(deadline) => {
            debug!("open handshake timed out");
        }
        () = cancel.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
        }
    }
}

fn upgrade(
    mut req: Request<Incoming>,
    ep: Arc<WsEndpoint>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    deadline: Instant,
) -> Response<Full<Bytes>> {
    if let Some(p) = &ep.path {
        if req.uri().path() != p {
            return plain(StatusCode::NOT_FOUND, "not found");
        }
    }
    let is_upgrade = req.method() == hyper::Method::GET
        && header_has(&req, header::CONNECTION, "upgrade")
        && header_has(&req, header::UPGRADE, "websocket");
    if !is_upgrade {
        let mut r = plain(
            StatusCode::UPGRADE_REQUIRED,
            "this path serves WAMP over WebSocket",
        );
        r.headers_mut()
            .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        return r;
    }
    if req
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
        != Some(b"13")
    {
        let mut r = plain(StatusCode::BAD_REQUEST, "unsupported WebSocket version");
        r.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return r;
    }
    let Some(key) = req
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|k| derive_accept_key(k.as_bytes()))
    else {
        return plain(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key");
    };
    let proto = match ep.negotiate(&req) {
        Ok(p) => p,
        Err(()) => {
            debug!("no acceptable WAMP subprotocol");
            return plain(
                StatusCode::BAD_REQUEST,
                "no supported WAMP subprotocol offered",
            );
        }
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let ep2 = ep.clone();
    tracker.spawn(
        async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let cfg = WebSocketConfig::default()
                        .read_buffer_size(READ_BUFFER)
                        .write_buffer_size(WRITE_BUFFER)
                        .max_write_buffer_size(WRITE_BUFFER.max(ep2.options.max_message_size) * 2)
                        .max_message_size(Some(ep2.options.max_message_size))
                        .max_frame_size(Some(ep2.options.max_frame_size));
                    let ws = WebSocketStream::from_raw_socket(
                        TokioIo::new(upgraded),
                        Role::Server,
                        Some(cfg),
                    )
                    .await;
                    let proto = proto.unwrap_or(Subprotocol {
                        serializer: Serializer::Json,
                        batched: false,
                    });
                    run_wamp(ws, proto, &ep2, cancel, deadline).await;
                }
                Err(e) => debug!(error = %e, "websocket upgrade failed"),
            }
        }
        .in_current_span(),
    );
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::SERVER, HeaderValue::from_static("junction"));
    if let Ok(v) = HeaderValue::from_str(&key) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if let Some(p) = proto {
        if let Ok(v) = HeaderValue::from_str(&p.name()) {
            h.insert(header::SEC_WEBSOCKET_PROTOCOL, v);
        }
    }
    r
}

/// Frames encoded WAMP bytes as a WebSocket message of the right kind.
fn ws_frame(ser: Serializer, bytes: Bytes) -> WsMessage {
    if ser.is_text() {
        match Utf8Bytes::try_from(bytes) {
            Ok(t) => WsMessage::Text(t),
            // The JSON encoder only writes UTF-8; never reached.
            Err(_) => WsMessage::Binary(Bytes::new()),
        }
    } else {
        WsMessage::Binary(bytes)
    }
}

async fn recv_outbox(rx: &mut Option<mpsc::Receiver<Outgoing>>, buf: &mut Vec<Outgoing>) -> usize {
    match rx {
        Some(rx) => rx.recv_many(buf, MAX_BATCH).await,
        None => std::future::pending().await,
    }
}

/// Why a WAMP WebSocket connection ended (logged once at the end of the task).
#[derive(Debug, thiserror::Error)]
enum EndReason {
    #[error("peer closed the connection")]
    PeerClosed,
    #[error("session closed")]
    SessionClosed,
    #[error("router shutdown")]
    Shutdown,
    #[error("message too big")]
    TooBig,
    #[error("no HELLO before the open handshake timeout")]
    HelloTimeout,
    #[error("no pong within auto_ping_timeout")]
    PingTimeout,
    #[error("outbox overflow: the session was dropped by its realm")]
    Dropped,
    #[error("websocket error")]
    Ws(#[source] WsError),
}

/// Writes queued WAMP messages with one flush.
struct Writer<'a, S> {
    sink: &'a mut S,
    proto: Subprotocol,
    batch_buf: Vec<Bytes>,
}

impl<S> Writer<'_, S>
where
    S: futures_util::Sink<WsMessage, Error = WsError> + Unpin,
{
    fn encode_msg(&self, m: &Message) -> Bytes {
        self.proto.serializer.encode_to_bytes(&m.to_value())
    }

    async fn push_event(&mut self, ev: &crate::router::SharedEvent) -> Result<(), WsError> {
        let ser = self.proto.serializer;
        if ser == Serializer::Json && !self.proto.batched {
            self.sink
                .feed(WsMessage::Text(ev.json_text().clone()))
                .await
        } else {
            self.push(ev.encoded(ser).clone()).await
        }
    }

    async fn push(&mut self, bytes: Bytes) -> Result<(), WsError> {
        if self.proto.batched {
            self.batch_buf.push(bytes);
            Ok(())
        } else {
            self.sink.feed(ws_frame(self.proto.serializer, bytes)).await
        }
    }

    async fn finish(&mut self) -> Result<(), WsError> {
        if !self.batch_buf.is_empty() {
            let mut out = Vec::new();
            wire::encode_batched(self.proto.serializer, &self.batch_buf, &mut out);
            self.batch_buf.clear();
            self.sink
                .feed(ws_frame(self.proto.serializer, Bytes::from(out)))
                .await?;
        }
        self.sink.flush().await
    }

    async fn write_msgs(&mut self, msgs: &mut Vec<Message>) -> Result<(), WsError> {
        for m in msgs.drain(..) {
            let b = self.encode_msg(&m);
            self.push(b).await?;
        }
        self.finish().await
    }

    async fn write_outbox(&mut self, items: &mut Vec<Outgoing>) -> Result<(), WsError> {
        for item in items.drain(..) {
            match item {
                Outgoing::Msg(m) => {
                    let b = self.encode_msg(&m);
                    self.push(b).await?;
                }
                Outgoing::Event(ev) => self.push_event(&ev).await?,
            }
        }
        self.finish().await
    }
}

/// Runs one WAMP session over an established WebSocket.
async fn run_wamp<S>(
    ws: WebSocketStream<S>,
    proto: Subprotocol,
    ep: &WsEndpoint,
    cancel: CancellationToken,
    hello_deadline: Instant,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut sink, mut stream) = ws.split();
    let mut session = WampSession::new(ep.session.clone());
    let mut outbox: Option<mpsc::Receiver<Outgoing>> = None;
    let mut out: Vec<Message> = Vec::new();
    let mut items: Vec<Outgoing> = Vec::new();
    let ser = proto.serializer;
    let ping_every = ep.options.auto_ping_interval;
    let ping_timeout = ep.options.auto_ping_timeout;
    let mut next_ping = ping_every.map(|d| Instant::now() + d);
    let mut pong_due: Option<Instant> = None;
    let far = Instant::now() + Duration::from_secs(86400 * 365);

    let end: EndReason = loop {
        let timer = [
            (!session.is_established()).then_some(hello_deadline),
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
                session.shutdown(&mut out).await;
                let mut w = Writer { sink: &mut sink, proto, batch_buf: Vec::new() };
                let _ = w.write_msgs(&mut out).await;
                break EndReason::Shutdown;
            }
            n = recv_outbox(&mut outbox, &mut items) => {
                if n == 0 {
                    break EndReason::Dropped;
                }
                let mut w = Writer { sink: &mut sink, proto, batch_buf: Vec::new() };
                if let Err(e) = w.write_outbox(&mut items).await {
                    break EndReason::Ws(e);
                }
            }
            () = sleep_until(timer) => {
                let now = Instant::now();
                if !session.is_established() && now >= hello_deadline {
                    break EndReason::HelloTimeout;
                }
                if pong_due.is_some_and(|d| now >= d) {
                    break EndReason::PingTimeout;
                }
                if let Some(at) = next_ping {
                    if now >= at {
                        next_ping = ping_every.map(|d| now + d);
                        if pong_due.is_none() {
                            pong_due = ping_timeout.map(|d| now + d);
                        }
                        let payload = Bytes::copy_from_slice(&rand::random::<[u8; 4]>());
                        if let Err(e) = sink.send(WsMessage::Ping(payload)).await {
                            break EndReason::Ws(e);
                        }
                    }
                }
            }
            frame = stream.next() => {
                let data = match frame {
                    None | Some(Ok(WsMessage::Close(_))) => break EndReason::PeerClosed,
                    Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
                        debug!(size, max_size, "message too big");
                        break EndReason::TooBig;
                    }
                    Some(Err(e)) => break EndReason::Ws(e),
                    Some(Ok(WsMessage::Text(t))) => Bytes::from(t),
                    Some(Ok(WsMessage::Binary(b))) => b,
                    Some(Ok(WsMessage::Pong(_))) => { pong_due = None; continue; }
                    Some(Ok(WsMessage::Ping(_))) => {
                        // tungstenite queued the pong; push it out now.
                        if let Err(e) = sink.flush().await { break EndReason::Ws(e); }
                        continue;
                    }
                    Some(Ok(WsMessage::Frame(_))) => continue,
                };
                let flow = handle_payload(&mut session, ser, proto.batched, &data, &mut out).await;
                let mut w = Writer { sink: &mut sink, proto, batch_buf: Vec::new() };
                if let Err(e) = w.write_msgs(&mut out).await {
                    break EndReason::Ws(e);
                }
                match flow {
                    Flow::Continue => {}
                    Flow::Joined(rx) => outbox = Some(rx),
                    Flow::Close => break EndReason::SessionClosed,
                }
            }
        }
    };
    session.leave().await;
    let close = match &end {
        EndReason::TooBig => Some((CloseCode::Size, "message too big")),
        EndReason::Shutdown => Some((CloseCode::Away, "router shutting down")),
        EndReason::HelloTimeout => Some((CloseCode::Policy, "open handshake timeout")),
        EndReason::PingTimeout => Some((CloseCode::Away, "auto ping timeout")),
        EndReason::SessionClosed => Some((CloseCode::Normal, "session closed")),
        EndReason::Dropped => Some((CloseCode::Again, "outbox overflow")),
        EndReason::PeerClosed | EndReason::Ws(_) => None,
    };
    if let Some((code, reason)) = close {
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(reason),
        };
        if sink.send(WsMessage::Close(Some(frame))).await.is_ok() {
            // Wait briefly for the peer's close frame (the close handshake).
            let _ = tokio::time::timeout(ep.options.close_handshake_timeout, async {
                while let Some(Ok(m)) = stream.next().await {
                    if matches!(m, WsMessage::Close(_)) {
                        break;
                    }
                }
            })
            .await;
        }
    } else {
        let _ = sink.close().await;
    }
    match &end {
        EndReason::Ws(e) => debug!(reason = %end, error = %e, "connection ended"),
        _ => debug!(reason = %end, "connection ended"),
    }
}

/// Decodes one WebSocket message (one WAMP message, or a batch) and hands it to the session.
async fn handle_payload(
    session: &mut WampSession,
    ser: Serializer,
    batched: bool,
    data: &[u8],
    out: &mut Vec<Message>,
) -> Flow {
    let parts: Vec<&[u8]> = if batched {
        match wire::split_batched(ser, data) {
            Ok(p) => p,
            Err(e) => {
                return session
                    .protocol_violation(&format!("bad batch: {e}"), out)
                    .await
            }
        }
    } else {
        vec![data]
    };
    let mut flow = Flow::Continue;
    for part in parts {
        let msg = match ser
            .decode(part)
            .map_err(|e| e.to_string())
            .and_then(|v| Message::from_value(v).map_err(|e| e.to_string()))
        {
            Ok(m) => m,
            Err(e) => return session.protocol_violation(&e, out).await,
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
