//! The HTTP side of a listener: WebSocket upgrades on their paths, web services elsewhere.
//!
//! Routing follows Crossbar: a standalone WebSocket transport upgrades on the path of its `url`
//! (or any path without one); universal and web transports route on the **first path
//! component**: a key of the WebSocket map upgrades, anything else goes to the web paths, and
//! without web paths the answer is 404.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, Instrument};

use crate::mqtt::conn::MqttEndpoint;

use super::listen::BoxIo;
use super::web::{text_response, WebBody, WebSite};
use super::websocket::{self, WsEndpoint};

/// Largest request head hyper buffers.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Where HTTP requests of one listener go.
#[derive(Debug, Default)]
pub struct HttpEndpoint {
    /// Standalone WebSocket transport: upgrade on this exact path (`Some("")` never matches).
    pub ws_path: Option<(Option<String>, Arc<WsEndpoint>)>,
    /// Universal/web transports: first path component → WebSocket endpoint.
    pub ws_by_component: HashMap<String, Arc<WsEndpoint>>,
    /// First path component → MQTT over WebSocket (subprotocols `mqtt`, `mqttv3.1`).
    pub mqtt_by_component: HashMap<String, Arc<MqttEndpoint>>,
    /// Web paths, if any.
    pub site: Option<Arc<WebSite>>,
    /// Deadline for a complete request head (and, without web paths, for the whole connection
    /// up to the upgrade).
    pub handshake_timeout: Duration,
}

impl HttpEndpoint {
    fn websocket_for(&self, path: &str) -> Option<&Arc<WsEndpoint>> {
        if let Some((want, ep)) = &self.ws_path {
            return match want {
                None => Some(ep),
                Some(p) if p == path => Some(ep),
                Some(_) => None,
            };
        }
        let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
        self.ws_by_component.get(first)
    }
}

async fn dispatch(
    req: Request<Incoming>,
    ep: Arc<HttpEndpoint>,
    cancel: CancellationToken,
    tracker: TaskTracker,
) -> Response<WebBody> {
    let first = req
        .uri()
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("");
    if let Some(mqtt) = ep.mqtt_by_component.get(first) {
        return mqtt_upgrade(req, mqtt.clone(), cancel, tracker)
            .map(|b| b.map_err(|never| match never {}).boxed());
    }
    if let Some(ws) = ep.websocket_for(req.uri().path()) {
        let deadline = Instant::now() + ws.options.open_handshake_timeout;
        return websocket::upgrade(req, ws.clone(), cancel, tracker, deadline)
            .map(|b| b.map_err(|never| match never {}).boxed());
    }
    match &ep.site {
        Some(site) => site.serve(req).await,
        None => text_response(StatusCode::NOT_FOUND, "not found"),
    }
}

/// Upgrades to MQTT over WebSocket (binary messages carry the MQTT byte stream).
fn mqtt_upgrade(
    mut req: Request<Incoming>,
    ep: Arc<MqttEndpoint>,
    cancel: CancellationToken,
    tracker: TaskTracker,
) -> Response<http_body_util::Full<bytes::Bytes>> {
    let key = match websocket::check_upgrade(&req, "this path serves MQTT over WebSocket") {
        Ok(k) => k,
        Err(r) => return r,
    };
    let Some(proto) = websocket::offered_protocols(&req)
        .into_iter()
        .find(|p| p.eq_ignore_ascii_case("mqtt") || p.eq_ignore_ascii_case("mqttv3.1"))
        .map(str::to_owned)
    else {
        return websocket::plain(
            StatusCode::BAD_REQUEST,
            "subprotocol mqtt (or mqttv3.1) required",
        );
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let max = ep.settings.max_packet_size.saturating_add(8);
    // The upgraded connection runs in a task of its own: it takes the certificate along.
    let peer_cert = crate::transport::listen::peer_cert_sha1();
    tracker.spawn(
        async move {
            match on_upgrade.await {
                Ok(upgraded) => {
                    let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
                        super::read_ahead::ReadAhead::new(TokioIo::new(upgraded)),
                        tokio_tungstenite::tungstenite::protocol::Role::Server,
                        Some(websocket::ws_config(max, max)),
                    )
                    .await;
                    tracing::Span::current().record("proto", "mqtt-ws");
                    let stream = crate::mqtt::conn::WsByteStream::new(ws);
                    let serve = crate::mqtt::conn::serve(stream, ep, cancel);
                    crate::transport::listen::with_peer_cert(peer_cert, serve).await;
                }
                Err(e) => debug!(error = %e, "websocket upgrade failed"),
            }
        }
        .in_current_span(),
    );
    websocket::switching(&key, Some(&proto))
}

/// Serves HTTP on one connection until it closes (or upgrades).
pub async fn serve(
    io: BoxIo,
    ep: Arc<HttpEndpoint>,
    cancel: CancellationToken,
    tracker: TaskTracker,
) {
    let deadline = Instant::now() + ep.handshake_timeout;
    let svc_ep = ep.clone();
    let svc_cancel = cancel.clone();
    let svc_tracker = tracker.clone();
    let service = hyper::service::service_fn(move |req| {
        let fut = dispatch(req, svc_ep.clone(), svc_cancel.clone(), svc_tracker.clone());
        async move { Ok::<_, Infallible>(fut.await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(ep.handshake_timeout)
        .max_buf_size(MAX_HEAD_BYTES)
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    // Without web paths the only purpose of the connection is an upgrade: bound it as a whole.
    let pure_ws = ep.site.is_none();
    let far = Instant::now() + Duration::from_secs(86400 * 365);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                debug!(error = %e, "http connection ended with an error");
            }
        }
        () = tokio::time::sleep_until(if pure_ws { deadline } else { far }) => {
            debug!("open handshake timed out");
        }
        () = cancel.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(1), conn).await;
        }
    }
}
