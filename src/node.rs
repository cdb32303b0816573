//! The node: realms, listeners, and the shutdown sequence.
//!
//! `Node::start` spawns one task per realm, binds every transport's endpoint (TCP or Unix,
//! optionally TLS) and spawns its accept loop, all tracked. `Node::shutdown` runs the phases of
//! the house style: stop accepting, let every session say GOODBYE
//! (`wamp.close.system_shutdown`) and flush, wait with a grace period, then stop realms.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::net::{TcpSocket, UnixListener};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::config::{
    Endpoint, IpVersion, MqttSettings, NodeConfig, RawSocketSettings, TcpEndpoint, TransportConfig,
    WebPaths, WebService, WebSocketSettings,
};
use crate::mqtt::conn::MqttEndpoint;
use crate::router::RealmHandle;
use crate::transport::http::HttpEndpoint;
use crate::transport::listen::{self, Listener, Service, Socket};
use crate::transport::rawsocket::RawSocketEndpoint;
use crate::transport::web::{NodeInfo, WebSite};
use crate::transport::websocket::WsEndpoint;
use crate::wamp::session::{RealmMap, SessionConfig};

/// Capacity of each realm's command queue.
const REALM_QUEUE: usize = 4096;

/// Errors starting the node.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A listening socket could not be bound.
    #[error("cannot listen on {addr} ({transport})")]
    Bind {
        /// Address.
        addr: String,
        /// Which transport (config path).
        transport: String,
        /// Cause.
        #[source]
        source: io::Error,
    },
    /// A realm's persistent store could not be opened.
    #[error("cannot open the store of realm {realm} at {}", path.display())]
    Store {
        /// Realm.
        realm: String,
        /// File.
        path: std::path::PathBuf,
        /// Cause.
        #[source]
        source: crate::mqtt::store::StoreError,
    },
    /// TLS material could not be loaded.
    #[error("{transport}.endpoint.tls: {message}")]
    Tls {
        /// Which transport (config path).
        transport: String,
        /// What is wrong.
        message: String,
    },
}

/// Where a listener is bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BoundAddr {
    /// A TCP address.
    Tcp(SocketAddr),
    /// A Unix socket path.
    Unix(std::path::PathBuf),
}

impl std::fmt::Display for BoundAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BoundAddr::Tcp(a) => a.fmt(f),
            BoundAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// A running node.
#[derive(Debug)]
pub struct Node {
    /// Bound listener addresses with their config paths.
    pub listeners: Vec<(String, BoundAddr)>,
    accept_stop: CancellationToken,
    sessions_stop: CancellationToken,
    realms_stop: CancellationToken,
    conn_tracker: TaskTracker,
    realm_tracker: TaskTracker,
}

fn bind_tcp(ep: &TcpEndpoint) -> io::Result<(Socket, BoundAddr)> {
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
    Ok((Socket::Tcp(l), BoundAddr::Tcp(local)))
}

fn bind_unix(path: &std::path::Path) -> io::Result<(Socket, BoundAddr)> {
    use std::os::unix::fs::FileTypeExt;
    // A socket file left by a previous run is replaced (as Crossbar does); anything else is not.
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_socket() {
            std::fs::remove_file(path)?;
        }
    }
    let l = UnixListener::bind(path)?;
    Ok((
        Socket::Unix(l, path.to_owned()),
        BoundAddr::Unix(path.to_owned()),
    ))
}

fn describe(ep: &Endpoint) -> String {
    match ep {
        Endpoint::Tcp(t) => {
            let ip = t
                .interface
                .map(|i| i.to_string())
                .unwrap_or_else(|| "*".into());
            format!(
                "{}{}:{}",
                if t.tls.is_some() { "tls " } else { "" },
                ip,
                t.port
            )
        }
        Endpoint::Unix(u) => format!("unix:{}", u.path.display()),
    }
}

/// Per-worker inputs for building endpoints.
struct Ctx {
    realms: Arc<RealmMap>,
}

impl Ctx {
    fn ws(&self, s: &WebSocketSettings) -> Arc<WsEndpoint> {
        Arc::new(WsEndpoint {
            serializers: s.serializers.clone(),
            options: s.options.clone(),
            session: SessionConfig {
                realms: self.realms.clone(),
                anonymous_role: s.anonymous_role.as_str().into(),
                auth: s.auth.clone(),
                outbox_messages: s.options.outbox_messages,
                transport: "websocket",
            },
        })
    }

    fn rawsocket(&self, s: &RawSocketSettings) -> Arc<RawSocketEndpoint> {
        Arc::new(RawSocketEndpoint {
            settings: s.clone(),
            session: SessionConfig {
                realms: self.realms.clone(),
                anonymous_role: s.anonymous_role.as_str().into(),
                auth: s.auth.clone(),
                outbox_messages: s.outbox_messages,
                transport: "rawsocket",
            },
        })
    }

    fn mqtt(&self, s: &MqttSettings) -> Arc<MqttEndpoint> {
        let realm = self
            .realms
            .get(&s.realm)
            .cloned()
            .expect("config validation checks that the MQTT realm exists in the worker");
        // The config check loaded this file already; a failure now (it changed since) is logged
        // and leaves password authentication closed rather than open.
        let password_file = s.auth.password_file.as_ref().and_then(|path| {
            match crate::auth::mosquitto::PasswordFile::load(path) {
                Ok(pf) => Some(Arc::new(pf)),
                Err(e) => {
                    warn!(path = %path.display(), error = %e, "cannot load the MQTT password_file");
                    crate::auth::mosquitto::PasswordFile::parse("")
                        .ok()
                        .map(Arc::new)
                }
            }
        });
        let acl_file = s.auth.acl_file.as_ref().map(|path| {
            match crate::auth::mosquitto::AclFile::load(path) {
                Ok(acl) => Arc::new(acl),
                Err(e) => {
                    // Checked at startup; if it changed since, deny everything rather than allow.
                    warn!(path = %path.display(), error = %e, "cannot load the MQTT acl_file");
                    Arc::new(
                        crate::auth::mosquitto::AclFile::parse("").expect("an empty ACL parses"),
                    )
                }
            }
        });
        let authenticator_realms = s
            .auth
            .dynamic_realm
            .iter()
            .filter_map(|(method, name)| Some((method.clone(), self.realms.get(name)?.clone())))
            .collect();
        Arc::new(MqttEndpoint {
            settings: Arc::new(s.clone()),
            realm,
            password_file,
            acl_file,
            authenticator_realms,
        })
    }

    /// An HTTP endpoint for web paths plus a WebSocket map (universal) or nothing (web).
    fn site(
        &self,
        ws_map: &std::collections::BTreeMap<String, WebSocketSettings>,
        mqtt_ws: &std::collections::BTreeMap<String, MqttSettings>,
        paths: Option<&WebPaths>,
        info: &Arc<NodeInfo>,
    ) -> HttpEndpoint {
        let mqtt_by_component = mqtt_ws
            .iter()
            .map(|(k, s)| (k.clone(), self.mqtt(s)))
            .collect();
        let mut ws_by_component = HashMap::new();
        let mut timeout = Duration::from_secs(10);
        for (k, s) in ws_map {
            timeout = timeout.min(s.options.open_handshake_timeout);
            ws_by_component.insert(k.clone(), self.ws(s));
        }
        if let Some(paths) = paths {
            for (k, svc) in paths {
                if let WebService::WebSocket(s) = svc {
                    let key = if k == "/" { String::new() } else { k.clone() };
                    ws_by_component.insert(key, self.ws(s));
                }
            }
        }
        HttpEndpoint {
            ws_path: None,
            ws_by_component,
            mqtt_by_component,
            site: paths.map(|p| Arc::new(WebSite::new(p, info.clone()))),
            handshake_timeout: timeout,
        }
    }
}

impl Node {
    /// Spawns realms and binds every listener.
    ///
    /// # Errors
    /// `NodeError` if a listener cannot be bound or its TLS material loaded (nothing keeps
    /// running then).
    pub async fn start(cfg: &NodeConfig) -> Result<Node, NodeError> {
        let mut node = Node {
            listeners: Vec::new(),
            accept_stop: CancellationToken::new(),
            sessions_stop: CancellationToken::new(),
            realms_stop: CancellationToken::new(),
            conn_tracker: TaskTracker::new(),
            realm_tracker: TaskTracker::new(),
        };
        match node.start_inner(cfg) {
            Ok(()) => Ok(node),
            Err(e) => {
                node.accept_stop.cancel();
                node.sessions_stop.cancel();
                node.realms_stop.cancel();
                Err(e)
            }
        }
    }

    fn start_inner(&mut self, cfg: &NodeConfig) -> Result<(), NodeError> {
        let all_realms: Vec<String> = cfg
            .routers
            .iter()
            .flat_map(|w| w.realms.iter().map(|r| r.name.clone()))
            .collect();
        // Bind first (so nodeinfo can list what is bound), then build services.
        let mut bound = Vec::new();
        for (w, worker) in cfg.routers.iter().enumerate() {
            for (t, transport) in worker.transports.iter().enumerate() {
                let path = format!("workers[{w}].transports[{t}]");
                let (endpoint, kind) = match transport {
                    TransportConfig::WebSocket(x) => (&x.endpoint, "websocket"),
                    TransportConfig::RawSocket(x) => (&x.endpoint, "rawsocket"),
                    TransportConfig::Web(x) => (&x.endpoint, "web"),
                    TransportConfig::Universal(x) => (&x.endpoint, "universal"),
                    TransportConfig::Mqtt(x) => (&x.endpoint, "mqtt"),
                };
                let (socket, addr) = match endpoint {
                    Endpoint::Tcp(t) => bind_tcp(t),
                    Endpoint::Unix(u) => bind_unix(&u.path),
                }
                .map_err(|source| NodeError::Bind {
                    addr: describe(endpoint),
                    transport: path.clone(),
                    source,
                })?;
                let tls = match endpoint {
                    Endpoint::Tcp(TcpEndpoint { tls: Some(tls), .. }) => {
                        let sc = crate::tls::server_config(tls).map_err(|errs| NodeError::Tls {
                            transport: path.clone(),
                            message: errs
                                .into_iter()
                                .map(|(k, m)| format!("{k}: {m}"))
                                .collect::<Vec<_>>()
                                .join("; "),
                        })?;
                        Some(TlsAcceptor::from(sc))
                    }
                    _ => None,
                };
                bound.push((w, t, path, kind, socket, addr, tls));
            }
        }
        let info = Arc::new(NodeInfo {
            title: cfg.title.clone(),
            version: env!("CARGO_PKG_VERSION"),
            realms: all_realms,
            started: SystemTime::now(),
            transports: bound
                .iter()
                .map(|b| format!("{} on {}", b.3, b.5))
                .collect(),
        });
        let mut worker_ctx = Vec::new();
        for worker in &cfg.routers {
            let mut realms: RealmMap = HashMap::new();
            for r in &worker.realms {
                let h = RealmHandle::spawn(
                    r.clone(),
                    REALM_QUEUE,
                    self.realms_stop.clone(),
                    &self.realm_tracker,
                )
                .map_err(|source| NodeError::Store {
                    realm: r.name.clone(),
                    path: r.store_path.clone().unwrap_or_default(),
                    source,
                })?;
                info!(realm = %r.name, "realm started");
                realms.insert(r.name.clone(), h);
            }
            worker_ctx.push(Ctx {
                realms: Arc::new(realms),
            });
        }
        for (w, t, path, kind, socket, addr, tls) in bound {
            let ctx = &worker_ctx[w];
            let transport = &cfg.routers[w].transports[t];
            let (service, limit) = match transport {
                TransportConfig::WebSocket(ws) => {
                    let ep = ctx.ws(&WebSocketSettings {
                        serializers: ws.serializers.clone(),
                        options: ws.options.clone(),
                        anonymous_role: ws.anonymous_role.clone(),
                        auth: ws.auth.clone(),
                    });
                    let http = HttpEndpoint {
                        ws_path: Some((ws.path.clone(), ep)),
                        ws_by_component: HashMap::new(),
                        mqtt_by_component: HashMap::new(),
                        site: None,
                        handshake_timeout: ws.options.open_handshake_timeout,
                    };
                    (Service::Http(Arc::new(http)), ws.max_connections)
                }
                TransportConfig::RawSocket(rs) => (
                    Service::RawSocket(ctx.rawsocket(&rs.settings)),
                    rs.max_connections,
                ),
                TransportConfig::Web(web) => {
                    let http = ctx.site(
                        &Default::default(),
                        &Default::default(),
                        Some(&web.paths),
                        &info,
                    );
                    (Service::Http(Arc::new(http)), web.max_connections)
                }
                TransportConfig::Mqtt(m) => {
                    (Service::Mqtt(ctx.mqtt(&m.settings)), m.max_connections)
                }
                TransportConfig::Universal(u) => {
                    let http = ctx.site(&u.websocket, &u.mqtt_websocket, u.web.as_ref(), &info);
                    let rawsocket = u.rawsocket.as_ref().map(|s| ctx.rawsocket(s));
                    let mqtt = u.mqtt.as_ref().map(|s| ctx.mqtt(s));
                    (
                        Service::Universal {
                            http: Arc::new(http),
                            rawsocket,
                            mqtt,
                        },
                        u.max_connections,
                    )
                }
            };
            info!(transport = %path, kind, %addr, tls = tls.is_some(), "listening");
            self.listeners.push((path, addr));
            let listener = Listener {
                socket,
                tls,
                service,
                limit: limit.map(|n| Arc::new(Semaphore::new(n))),
            };
            self.conn_tracker.spawn(listen::accept_loop(
                listener,
                self.accept_stop.clone(),
                self.sessions_stop.clone(),
                self.conn_tracker.clone(),
            ));
        }
        Ok(())
    }

    /// The TCP address of the listener at `index` (tests).
    pub fn tcp_addr(&self, index: usize) -> Option<SocketAddr> {
        match self.listeners.get(index)?.1 {
            BoundAddr::Tcp(a) => Some(a),
            BoundAddr::Unix(_) => None,
        }
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
