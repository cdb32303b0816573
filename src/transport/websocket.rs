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
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::error::{CapacityError, Error as WsError};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message as WsMessage, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, Instrument};

use super::wamp_conn::{self, ConnTiming, EndReason, Inbound, WampFrames};
use crate::config::WebSocketOptions;
use crate::router::SharedEvent;
use crate::wamp::session::{SessionConfig, WampSession};
use crate::wire::{self, Serializer};

/// tungstenite's read buffer per connection, kept for the connection's life (its default is
/// 128 KiB). Small: the socket is read in 4 KiB pieces by `read_ahead::ReadAhead` underneath,
/// which holds memory only while data waits.
const READ_BUFFER: usize = 512;
/// Outgoing bytes buffered before tungstenite writes to the socket.
const WRITE_BUFFER: usize = 64 * 1024;

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
        let offered = offered_protocols(req);
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

/// A small text response.
pub fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
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

/// Checks that `req` is a WebSocket (version 13) upgrade; returns the `Sec-WebSocket-Accept`
/// value, or the HTTP error to answer (426 when it is not an upgrade at all).
#[allow(clippy::result_large_err)] // the error is the response itself, built once per request
pub fn check_upgrade(req: &Request<Incoming>, what: &str) -> Result<String, Response<Full<Bytes>>> {
    let is_upgrade = req.method() == hyper::Method::GET
        && header_has(req, header::CONNECTION, "upgrade")
        && header_has(req, header::UPGRADE, "websocket");
    if !is_upgrade {
        let mut r = plain(StatusCode::UPGRADE_REQUIRED, what);
        r.headers_mut()
            .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        return Err(r);
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
        return Err(r);
    }
    req.headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|k| derive_accept_key(k.as_bytes()))
        .ok_or_else(|| plain(StatusCode::BAD_REQUEST, "missing Sec-WebSocket-Key"))
}

/// The subprotocols a client offers, in its order.
pub fn offered_protocols(req: &Request<Incoming>) -> Vec<&str> {
    req.headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// The `101 Switching Protocols` answer.
pub fn switching(accept: &str, protocol: Option<&str>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::SERVER, HeaderValue::from_static("junction"));
    if let Ok(v) = HeaderValue::from_str(accept) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    if let Some(p) = protocol.and_then(|p| HeaderValue::from_str(p).ok()) {
        h.insert(header::SEC_WEBSOCKET_PROTOCOL, p);
    }
    r
}

/// A tungstenite config with small initial buffers and the given size limit.
pub fn ws_config(max_message_size: usize, max_frame_size: usize) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(WRITE_BUFFER.max(max_message_size) * 2)
        .max_message_size(Some(max_message_size))
        .max_frame_size(Some(max_frame_size))
}

/// Answers a WebSocket upgrade request for `ep`: 101 and a spawned WAMP connection task, or
/// the HTTP error (426 not an upgrade, 400 bad version/key/subprotocol). The HELLO deadline is
/// `hello_deadline`.
pub fn upgrade(
    mut req: Request<Incoming>,
    ep: Arc<WsEndpoint>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    deadline: Instant,
) -> Response<Full<Bytes>> {
    let key = match check_upgrade(&req, "this path serves WAMP over WebSocket") {
        Ok(k) => k,
        Err(r) => return r,
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
    // The connection task's TLS client certificate (task-local there, not in the new task).
    let peer_cert = crate::transport::listen::peer_cert_sha1();
    tracker.spawn(
        async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let cfg = ws_config(ep2.options.max_message_size, ep2.options.max_frame_size);
                    let ws = WebSocketStream::from_raw_socket(
                        super::read_ahead::ReadAhead::new(TokioIo::new(upgraded)),
                        Role::Server,
                        Some(cfg),
                    )
                    .await;
                    let proto = proto.unwrap_or(Subprotocol {
                        serializer: Serializer::Json,
                        batched: false,
                    });
                    let timing = ConnTiming {
                        hello_deadline: deadline,
                        ping_every: ep2.options.auto_ping_interval,
                        ping_timeout: ep2.options.auto_ping_timeout,
                        close_wait: ep2.options.close_handshake_timeout,
                    };
                    let session = WampSession::with_peer_cert(ep2.session.clone(), peer_cert);
                    let frames = WsFrames {
                        ws,
                        proto,
                        batch: Vec::new(),
                    };
                    wamp_conn::run(frames, proto.serializer, session, timing, cancel).await;
                }
                Err(e) => debug!(error = %e, "websocket upgrade failed"),
            }
        }
        .in_current_span(),
    );
    switching(&key, proto.map(|p| p.name()).as_deref())
}

/// WAMP framing over a tungstenite WebSocket.
struct WsFrames<S> {
    ws: WebSocketStream<S>,
    proto: Subprotocol,
    batch: Vec<Bytes>,
}

impl<S> WsFrames<S> {
    fn frame(&self, bytes: Bytes) -> WsMessage {
        if self.proto.serializer.is_text() {
            match Utf8Bytes::try_from(bytes) {
                Ok(t) => WsMessage::Text(t),
                // The JSON encoder only writes UTF-8; never reached.
                Err(_) => WsMessage::Binary(Bytes::new()),
            }
        } else {
            WsMessage::Binary(bytes)
        }
    }
}

impl<S> WampFrames for WsFrames<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    async fn recv(&mut self) -> Inbound {
        match self.ws.next().await {
            None | Some(Ok(WsMessage::Close(_))) => Inbound::Closed,
            Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
                Inbound::TooBig {
                    size,
                    max: max_size,
                }
            }
            Some(Err(e)) => Inbound::Failed(e.to_string()),
            Some(Ok(WsMessage::Text(t))) if self.proto.serializer.is_text() => {
                Inbound::Data(Bytes::from(t))
            }
            Some(Ok(WsMessage::Binary(b))) if !self.proto.serializer.is_text() => Inbound::Data(b),
            Some(Ok(WsMessage::Text(_))) => {
                Inbound::Violation("text frame on a binary WAMP subprotocol")
            }
            Some(Ok(WsMessage::Binary(_))) => {
                Inbound::Violation("binary frame on a text WAMP subprotocol")
            }
            Some(Ok(WsMessage::Pong(_))) => Inbound::Pong,
            Some(Ok(WsMessage::Ping(_))) => {
                // tungstenite queued the pong; push it out now.
                match self.ws.flush().await {
                    Ok(()) => Inbound::Nothing,
                    Err(e) => Inbound::Failed(e.to_string()),
                }
            }
            Some(Ok(WsMessage::Frame(_))) => Inbound::Nothing,
        }
    }

    async fn feed(&mut self, msg: Bytes) -> Result<(), String> {
        if self.proto.batched {
            self.batch.push(msg);
            return Ok(());
        }
        let frame = self.frame(msg);
        self.ws.feed(frame).await.map_err(|e| e.to_string())
    }

    async fn feed_event(&mut self, ev: &SharedEvent, ser: Serializer) -> Result<(), String> {
        if ser == Serializer::Json && !self.proto.batched {
            self.ws
                .feed(WsMessage::Text(ev.json_text().clone()))
                .await
                .map_err(|e| e.to_string())
        } else {
            self.feed(ev.encoded(ser).clone()).await
        }
    }

    async fn flush(&mut self) -> Result<(), String> {
        if !self.batch.is_empty() {
            let mut out = Vec::new();
            wire::encode_batched(self.proto.serializer, &self.batch, &mut out);
            self.batch.clear();
            let frame = self.frame(Bytes::from(out));
            self.ws.feed(frame).await.map_err(|e| e.to_string())?;
        }
        self.ws.flush().await.map_err(|e| e.to_string())
    }

    async fn ping(&mut self) -> Result<(), String> {
        let payload = Bytes::copy_from_slice(&rand::random::<[u8; 4]>());
        self.ws
            .send(WsMessage::Ping(payload))
            .await
            .map_err(|e| e.to_string())
    }

    async fn close(&mut self, reason: &EndReason, wait: Duration) {
        let close = match reason {
            EndReason::TooBig => Some((CloseCode::Size, "message too big")),
            EndReason::Shutdown => Some((CloseCode::Away, "router shutting down")),
            EndReason::HelloTimeout => Some((CloseCode::Policy, "open handshake timeout")),
            EndReason::PingTimeout => Some((CloseCode::Away, "auto ping timeout")),
            EndReason::SessionClosed => Some((CloseCode::Normal, "session closed")),
            EndReason::Dropped => Some((CloseCode::Again, "outbox overflow")),
            EndReason::PeerClosed | EndReason::Failed(_) => None,
        };
        let Some((code, text)) = close else {
            let _ = self.ws.close(None).await;
            return;
        };
        let frame = CloseFrame {
            code,
            reason: Utf8Bytes::from_static(text),
        };
        if self.ws.send(WsMessage::Close(Some(frame))).await.is_ok() {
            // Wait briefly for the peer's close frame (the close handshake).
            let _ = tokio::time::timeout(wait, async {
                while let Some(Ok(m)) = self.ws.next().await {
                    if matches!(m, WsMessage::Close(_)) {
                        break;
                    }
                }
            })
            .await;
        }
    }

    fn split<'a>(&self, data: &'a [u8]) -> Result<Vec<&'a [u8]>, wire::DecodeError> {
        if self.proto.batched {
            wire::split_batched(self.proto.serializer, data)
        } else {
            Ok(vec![data])
        }
    }
}
