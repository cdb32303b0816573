//! The node: realms, listeners, and the shutdown sequence.
//!
//! `Node::start` spawns one task per realm and one accept loop per transport, all tracked.
//! `Node::shutdown` runs the phases of the house style: stop accepting, let every session say
//! GOODBYE (`wamp.close.system_shutdown`) and flush, wait with a grace period, then stop realms.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, field, info, info_span, warn, Instrument};

use crate::config::{Endpoint, IpVersion, NodeConfig, TcpEndpoint, TransportConfig};
use crate::router::RealmHandle;
use crate::transport::websocket::{self, WsEndpoint};
use crate::wamp::session::{RealmMap, SessionConfig};

/// Capacity of each realm's command queue.
const REALM_QUEUE: usize = 4096;
/// Pause after an accept error that is not about one connection (e.g. EMFILE).
const ACCEPT_PAUSE: Duration = Duration::from_millis(500);

/// Errors starting the node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A listening socket could not be bound.
    #[error("cannot listen on {addr} ({transport})")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Which transport (config path).
        transport: String,
        /// Cause.
        #[source]
        source: io::Error,
    },
}

/// A running node.
#[derive(Debug)]
pub struct Node {
    /// Bound listener addresses with their config paths.
    pub listeners: Vec<(String, SocketAddr)>,
    accept_stop: CancellationToken,
    sessions_stop: CancellationToken,
    realms_stop: CancellationToken,
    conn_tracker: TaskTracker,
    realm_tracker: TaskTracker,
}

fn bind(ep: &TcpEndpoint) -> io::Result<(TcpListener, SocketAddr)> {
    let ip = ep.interface.unwrap_or(match ep.version {
        IpVersion::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpVersion::V6 => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    });
    let addr = SocketAddr::new(ip, ep.port);
    let sock = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    sock.set_reuseaddr(true)?;
    sock.set_nodelay(true)?;
    sock.bind(addr)?;
    let l = sock.listen(ep.backlog)?;
    let local = l.local_addr()?;
    Ok((l, local))
}

fn per_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

impl Node {
    /// Spawns realms and binds every listener.
    ///
    /// # Errors
    /// `NodeError::Bind` if a listener cannot be bound (nothing keeps running then).
    pub async fn start(cfg: &NodeConfig) -> Result<Node, NodeError> {
        let accept_stop = CancellationToken::new();
        let sessions_stop = CancellationToken::new();
        let realms_stop = CancellationToken::new();
        let conn_tracker = TaskTracker::new();
        let realm_tracker = TaskTracker::new();
        let mut node = Node {
            listeners: Vec::new(),
            accept_stop,
            sessions_stop,
            realms_stop,
            conn_tracker,
            realm_tracker,
        };
        let mut accepts = Vec::new();
        for (w, worker) in cfg.routers.iter().enumerate() {
            let mut realms: RealmMap = HashMap::new();
            for r in &worker.realms {
                let h = RealmHandle::spawn(
                    r.clone(),
                    REALM_QUEUE,
                    node.realms_stop.clone(),
                    &node.realm_tracker,
                );
                info!(realm = %r.name, "realm started");
                realms.insert(r.name.clone(), h);
            }
            let realms = Arc::new(realms);
            for (t, transport) in worker.transports.iter().enumerate() {
                let path = format!("workers[{w}].transports[{t}]");
                match transport {
                    TransportConfig::WebSocket(ws) => {
                        let Endpoint::Tcp(tcp_ep) = &ws.endpoint else {
                            continue;
                        };
                        let (listener, addr) = match bind(tcp_ep) {
                            Ok(x) => x,
                            Err(source) => {
                                node.abort().await;
                                return Err(NodeError::Bind {
                                    addr: SocketAddr::new(
                                        tcp_ep
                                            .interface
                                            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                                        tcp_ep.port,
                                    ),
                                    transport: path,
                                    source,
                                });
                            }
                        };
                        let ep = Arc::new(WsEndpoint {
                            path: ws.path.clone(),
                            serializers: ws.serializers.clone(),
                            options: ws.options.clone(),
                            session: SessionConfig {
                                realms: realms.clone(),
                                anonymous_role: ws.anonymous_role.as_str().into(),
                                outbox_messages: ws.options.outbox_messages,
                            },
                        });
                        let url_path = ws.path.clone().unwrap_or_else(|| "/".into());
                        info!(transport = %path, %addr, path = %url_path, "listening (websocket)");
                        node.listeners.push((path.clone(), addr));
                        accepts.push((listener, ep));
                    }
                    _ => continue,
                }
            }
        }
        for (listener, ep) in accepts {
            let stop = node.accept_stop.clone();
            let sessions = node.sessions_stop.clone();
            let tracker = node.conn_tracker.clone();
            node.conn_tracker
                .spawn(accept_loop(listener, ep, stop, sessions, tracker));
        }
        Ok(node)
    }

    async fn abort(&self) {
        self.accept_stop.cancel();
        self.sessions_stop.cancel();
        self.realms_stop.cancel();
    }

    /// Graceful shutdown within `grace`.
    pub async fn shutdown(self, grace: Duration) {
        info!("shutting down: closing listeners and sessions");
        self.accept_stop.cancel();
        self.sessions_stop.cancel();
        self.conn_tracker.close();
        if tokio::time::timeout(grace, self.conn_tracker.wait())
            .await
            .is_err()
        {
            warn!(
                remaining = self.conn_tracker.len(),
                "shutdown grace elapsed; dropping remaining connections"
            );
        }
        self.realms_stop.cancel();
        self.realm_tracker.close();
        let _ = tokio::time::timeout(Duration::from_secs(1), self.realm_tracker.wait()).await;
        info!("shutdown complete");
    }
}

async fn accept_loop(
    listener: TcpListener,
    ep: Arc<WsEndpoint>,
    stop: CancellationToken,
    sessions: CancellationToken,
    tracker: TaskTracker,
) {
    loop {
        let (tcp, peer) = tokio::select! {
            () = stop.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) if per_connection_error(&e) => continue,
                Err(e) => {
                    warn!(error = %e, "accept failed; pausing");
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        debug!(%peer, "accepted");
        let span = info_span!("conn", %peer, realm = field::Empty, session = field::Empty);
        tracker.spawn(
            websocket::serve(tcp, ep.clone(), sessions.clone(), tracker.clone()).instrument(span),
        );
    }
}
