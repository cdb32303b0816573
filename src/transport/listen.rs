//! Listeners: accept loops (TCP or Unix), TLS, connection limits, and the universal sniffer.
//!
//! The accept loop only accepts and spawns; TLS handshakes, sniffing and protocol handshakes
//! run in the connection task under deadlines. A universal listener reads the first byte:
//! `0x7F` is RawSocket, `0x10` is MQTT CONNECT (CONNACK 0x03 where MQTT is not configured), an
//! upper-case letter is HTTP (every method starts with one), anything else is closed at once.
//! The sniffed byte is replayed (`Rewind`), never lost.

use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, field, info_span, warn, Instrument};

use super::http::{self, HttpEndpoint};
use super::rawsocket::{self, RawSocketEndpoint};
use crate::mqtt::conn::MqttEndpoint;

/// Time for the TLS handshake and for the first byte to arrive.
pub const SNIFF_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause after an accept error that is not about one connection (e.g. EMFILE).
const ACCEPT_PAUSE: Duration = Duration::from_millis(500);
/// MQTT CONNACK with return code 3, "server unavailable" (MQTT 3.1.1 §3.2.2.3).
const CONNACK_UNAVAILABLE: [u8; 4] = [0x20, 0x02, 0x00, 0x03];

/// A byte stream a connection runs on (TCP, Unix, TLS over either, with replayed bytes).
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}
/// A boxed connection stream.
pub type BoxIo = Box<dyn Io>;

/// What a listener serves.
#[derive(Debug, Clone)]
pub enum Service {
    /// HTTP only (websocket and web transports).
    Http(Arc<HttpEndpoint>),
    /// RawSocket only.
    RawSocket(Arc<RawSocketEndpoint>),
    /// MQTT only.
    Mqtt(Arc<MqttEndpoint>),
    /// Sniffed per connection.
    Universal {
        /// HTTP requests (WebSocket and web paths).
        http: Arc<HttpEndpoint>,
        /// RawSocket, if configured.
        rawsocket: Option<Arc<RawSocketEndpoint>>,
        /// MQTT, if configured (else CONNACK 0x03).
        mqtt: Option<Arc<MqttEndpoint>>,
    },
}

/// A bound listening socket.
#[derive(Debug)]
pub enum Socket {
    /// TCP.
    Tcp(TcpListener),
    /// Unix domain, with its path (removed at shutdown).
    Unix(UnixListener, PathBuf),
}

/// One listener ready to run.
pub struct Listener {
    /// Bound socket.
    pub socket: Socket,
    /// TLS, if the endpoint has it.
    pub tls: Option<TlsAcceptor>,
    /// What it serves.
    pub service: Service,
    /// Connection limit (`max_connections`).
    pub limit: Option<Arc<Semaphore>>,
}

/// Replays bytes read while sniffing before reading the inner stream again.
struct Rewind {
    pre: Bytes,
    inner: BoxIo,
}

impl AsyncRead for Rewind {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.pre.is_empty() {
            let n = self.pre.len().min(buf.remaining());
            buf.put_slice(&self.pre[..n]);
            self.pre.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

fn per_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Runs the accept loop until `stop`; connection tasks go on `tracker` and watch `sessions`.
pub async fn accept_loop(
    l: Listener,
    stop: CancellationToken,
    sessions: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let accepted: io::Result<(BoxIo, String)> = tokio::select! {
            () = stop.cancelled() => break,
            r = async {
                match &l.socket {
                    Socket::Tcp(t) => t.accept().await.map(|(s, peer)| {
                        let _ = s.set_nodelay(true);
                        (Box::new(s) as BoxIo, peer.to_string())
                    }),
                    Socket::Unix(u, path) => u
                        .accept()
                        .await
                        .map(|(s, _)| (Box::new(s) as BoxIo, format!("unix:{}", path.display()))),
                }
            } => r,
        };
        let (io, peer) = match accepted {
            Ok(x) => x,
            Err(e) if per_connection_error(&e) => continue,
            Err(e) => {
                warn!(error = %e, "accept failed; pausing");
                tokio::time::sleep(ACCEPT_PAUSE).await;
                continue;
            }
        };
        let permit = match &l.limit {
            None => Ok(None),
            Some(sem) => sem.clone().try_acquire_owned().map(Some),
        };
        let span = info_span!("conn", %peer, proto = field::Empty, realm = field::Empty, session = field::Empty);
        let task = serve_conn(
            io,
            l.tls.clone(),
            l.service.clone(),
            permit.ok(),
            sessions.clone(),
            tracker.clone(),
        );
        tracker.spawn(task.instrument(span));
    }
    if let Socket::Unix(_, path) = &l.socket {
        let _ = std::fs::remove_file(path);
    }
}

/// One connection: TLS, sniffing, then the protocol. `permit` is `None` when the listener is
/// over its connection limit (and has one): the peer then gets its protocol's refusal.
async fn serve_conn(
    io: BoxIo,
    tls: Option<TlsAcceptor>,
    service: Service,
    permit: Option<Option<OwnedSemaphorePermit>>,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let mut cert_sha1 = None;
    let io: BoxIo = match tls {
        None => io,
        // Boxed: the TLS handshake future is large and only lives until the handshake ends.
        Some(acceptor) => {
            match Box::pin(tokio::time::timeout(SNIFF_TIMEOUT, acceptor.accept(io))).await {
                Ok(Ok(s)) => {
                    cert_sha1 = s
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(|der| fingerprint(der));
                    Box::new(s)
                }
                Ok(Err(e)) => {
                    debug!(error = %e, "tls handshake failed");
                    return;
                }
                Err(_) => {
                    debug!("tls handshake timed out");
                    return;
                }
            }
        }
    };
    PEER_CERT_SHA1
        .scope(cert_sha1, serve_plain(io, service, permit, cancel, tracker))
        .await;
}

/// `AA:BB:...` SHA-1 fingerprint of a DER certificate (Crossbar's `certificate-sha1` form).
fn fingerprint(der: &[u8]) -> String {
    use sha1::Digest;
    let digest = sha1::Sha1::digest(der);
    digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

tokio::task_local! {
    /// The SHA-1 fingerprint of the client certificate of the connection being served (TLS
    /// with `ca_certificates`), for the WAMP `tls` authentication method.
    static PEER_CERT_SHA1: Option<String>;
}

/// Runs `fut` with `cert` as the connection's client certificate fingerprint (for tasks spawned
/// off the connection task, such as an upgraded WebSocket).
pub async fn with_peer_cert<F: std::future::Future>(cert: Option<String>, fut: F) -> F::Output {
    PEER_CERT_SHA1.scope(cert, fut).await
}

/// The client certificate fingerprint of the current connection, if it presented one.
pub fn peer_cert_sha1() -> Option<String> {
    PEER_CERT_SHA1.try_with(Clone::clone).ok().flatten()
}

/// After TLS: sniffing (universal) and the protocol.
///
/// Every protocol's future is boxed: the task then holds only the one its connection runs (an
/// idle MQTT connection does not pay for the size of the HTTP or RawSocket futures), and only
/// for as long as it runs.
async fn serve_plain(
    io: BoxIo,
    service: Service,
    permit: Option<Option<OwnedSemaphorePermit>>,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let over_limit = permit.is_none();
    let _permit = permit.flatten();
    match service {
        Service::Http(ep) => {
            if over_limit {
                return Box::pin(refuse_http(io)).await;
            }
            tracing::Span::current().record("proto", "http");
            Box::pin(http::serve(io, ep, cancel, tracker)).await;
        }
        Service::RawSocket(ep) => {
            tracing::Span::current().record("proto", "rawsocket");
            if over_limit {
                return Box::pin(rawsocket::refuse_max_connections(io)).await;
            }
            Box::pin(rawsocket::serve(io, ep, cancel)).await;
        }
        Service::Mqtt(ep) => {
            tracing::Span::current().record("proto", "mqtt");
            if over_limit {
                return Box::pin(refuse_mqtt(io)).await;
            }
            Box::pin(crate::mqtt::conn::serve(io, ep, cancel)).await;
        }
        Service::Universal {
            http,
            rawsocket,
            mqtt,
        } => {
            let mut io = io;
            let mut first = [0u8; 1];
            let n = match tokio::time::timeout(SNIFF_TIMEOUT, io.read(&mut first)).await {
                Ok(Ok(n)) => n,
                Ok(Err(e)) => {
                    debug!(error = %e, "read failed while sniffing");
                    return;
                }
                Err(_) => {
                    debug!("no bytes before the sniff deadline");
                    return;
                }
            };
            if n == 0 {
                return;
            }
            let io: BoxIo = Box::new(Rewind {
                pre: Bytes::copy_from_slice(&first),
                inner: io,
            });
            match first[0] {
                0x7F => {
                    tracing::Span::current().record("proto", "rawsocket");
                    match rawsocket {
                        Some(_) if over_limit => {
                            Box::pin(rawsocket::refuse_max_connections(io)).await
                        }
                        Some(ep) => Box::pin(rawsocket::serve(io, ep, cancel)).await,
                        None => debug!("rawsocket is not configured on this transport; closing"),
                    }
                }
                0x10 => {
                    tracing::Span::current().record("proto", "mqtt");
                    match mqtt {
                        Some(ep) if !over_limit => {
                            Box::pin(crate::mqtt::conn::serve(io, ep, cancel)).await
                        }
                        _ => Box::pin(refuse_mqtt(io)).await,
                    }
                }
                b'A'..=b'Z' => {
                    tracing::Span::current().record("proto", "http");
                    if over_limit {
                        return Box::pin(refuse_http(io)).await;
                    }
                    Box::pin(http::serve(io, http, cancel, tracker)).await;
                }
                other => {
                    // Not RawSocket, not an MQTT CONNECT, and no HTTP method starts like this.
                    debug!(first_byte = other, "unrecognised protocol; closing");
                    Box::pin(drain_and_close(io)).await;
                }
            }
        }
    }
}

/// MQTT not configured here, or over the connection limit: CONNACK "server unavailable"
/// (0x03), then close.
async fn refuse_mqtt(mut io: BoxIo) {
    debug!("mqtt connection refused (not configured on this transport, or connection limit)");
    // Read (part of) the CONNECT so the peer is not reset before it reads our answer.
    let mut buf = [0u8; 512];
    let _ = tokio::time::timeout(Duration::from_millis(200), io.read(&mut buf)).await;
    let _ = io.write_all(&CONNACK_UNAVAILABLE).await;
    let _ = io.flush().await;
    let _ = io.shutdown().await;
}

/// Closes without a reset: reads what the peer already sent (briefly, bounded) so the kernel
/// does not answer unread data with RST, then shuts down.
async fn drain_and_close(mut io: BoxIo) {
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(Duration::from_millis(200), io.read(&mut buf)).await;
    let _ = io.shutdown().await;
}

/// Over the connection limit on HTTP: 503.
async fn refuse_http(mut io: BoxIo) {
    debug!("http connection refused: connection limit reached");
    let mut buf = [0u8; 1024];
    let _ = tokio::time::timeout(Duration::from_millis(500), io.read(&mut buf)).await;
    let _ = io
        .write_all(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 25\r\nConnection: close\r\nRetry-After: 1\r\n\r\nconnection limit reached\n")
        .await;
    let _ = io.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RealmConfig, UriCheck};
    use crate::router::RealmHandle;
    use crate::wamp::session::SessionConfig;

    /// The size of each connection's future is memory every idle connection holds (tokio
    /// allocates the whole future in the task). Rarely used, large branches are boxed.
    #[tokio::test]
    async fn connection_futures_stay_small() {
        let cancel = CancellationToken::new();
        let tracker = TaskTracker::new();
        let realm = RealmHandle::spawn(
            RealmConfig {
                name: "realm1".into(),
                roles: vec![],
                uri_check: UriCheck::Strict,
                mqtt: Default::default(),
                limits: Default::default(),
                store_path: None,
            },
            16,
            cancel.clone(),
            &tracker,
        )
        .expect("in-memory realm starts");
        let mqtt = Arc::new(MqttEndpoint {
            settings: Arc::new(Default::default()),
            realm: realm.clone(),
            password_file: None,
            acl_file: None,
            authenticator_realms: Default::default(),
        });
        let rs = Arc::new(RawSocketEndpoint {
            settings: Default::default(),
            session: SessionConfig {
                auth: Default::default(),
                realms: Arc::new(std::collections::HashMap::new()),
                anonymous_role: "anonymous".into(),
                outbox_messages: 64,
                transport: "rawsocket",
            },
        });
        let http = Arc::new(HttpEndpoint::default());
        let io = || -> BoxIo { Box::new(tokio::io::duplex(64).0) };
        let service = Service::Universal {
            http: http.clone(),
            rawsocket: Some(rs.clone()),
            mqtt: Some(mqtt.clone()),
        };
        let conn = serve_conn(io(), None, service, None, cancel.clone(), tracker.clone());
        let sizes = [
            ("serve_conn", std::mem::size_of_val(&conn)),
            (
                "mqtt",
                std::mem::size_of_val(&crate::mqtt::conn::serve(io(), mqtt, cancel.clone())),
            ),
            (
                "rawsocket",
                std::mem::size_of_val(&rawsocket::serve(io(), rs, cancel.clone())),
            ),
            (
                "http",
                std::mem::size_of_val(&http::serve(io(), http, cancel.clone(), tracker.clone())),
            ),
        ];
        eprintln!("future sizes: {sizes:?}");
        // Measured 552, 1992, 2608 and 928 bytes; a little room, then look at what grew.
        let limits = [640, 2048, 2688, 1024];
        for ((name, size), limit) in sizes.into_iter().zip(limits) {
            assert!(
                size <= limit,
                "{name} future is {size} bytes (limit {limit})"
            );
        }
        cancel.cancel();
    }
}
