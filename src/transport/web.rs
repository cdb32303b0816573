//! Web services of a `web` or `universal` transport: static files, redirects, JSON documents and
//! the node info page, mounted on a Crossbar-style path map.
//!
//! # Routing (as Crossbar)
//! The first component of the request path (percent-decoded) is matched exactly against the
//! keys of the path map. When no key matches, the `"/"` service (if any) gets the request with
//! the full path; otherwise the answer is 404. A static directory serves the path that remains
//! after the matched component (the full path for the root service).
//!
//! # Static files
//! The remaining path is split on `/` and each segment percent-decoded. A segment that decodes
//! to `.`/`..`, or contains `/`, `\` or NUL, makes the request 404 (malformed escapes are 400).
//! The resulting path is canonicalized and must stay under the canonicalized directory, so
//! symlinks pointing out of it are 404 too. A directory serves its `default_file`
//! (`index.html`), else a listing when enabled, else 404; without a trailing slash it is
//! redirected (301) to the slash form. A path that does not exist serves `fallback_file`
//! (Crossbar's `options.default_file`, for single-page apps) with 200 when configured.
//! Files carry `ETag` (size + mtime), `Last-Modified` (both honoured for 304s) and, with a
//! `cache_timeout`, `Cache-Control: max-age=N, public` and `Expires`. Bodies are streamed.
//!
//! Only `GET` and `HEAD` are served; `HEAD` answers the same headers (with `Content-Length`) and
//! no body. Request bodies are ignored.

use std::fmt::Write as _;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::Frame;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Method, Request, Response, StatusCode};
use tokio::io::AsyncReadExt;
use tracing::debug;

use crate::config::{StaticService, WebPaths, WebService, WebSocketSettings};

/// Body of every response produced here.
pub type WebBody = BoxBody<Bytes, io::Error>;

/// Read size of streamed file bodies.
const FILE_CHUNK: usize = 64 * 1024;

/// Value of the `Server` header.
const SERVER: &str = "junction";

/// Facts shown by `nodeinfo`.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// `controller.options.title`.
    pub title: Option<String>,
    /// junction's version.
    pub version: &'static str,
    /// Realm names.
    pub realms: Vec<String>,
    /// When the node started (for the uptime).
    pub started: SystemTime,
    /// Listening transports, e.g. `"universal on 0.0.0.0:8080"`.
    pub transports: Vec<String>,
}

/// A web path map ready to serve.
#[derive(Debug, Clone)]
pub struct WebSite {
    paths: WebPaths,
    info: Arc<NodeInfo>,
}

/// Which kind of handler a request path belongs to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Route<'a> {
    /// A `websocket` service: the HTTP dispatcher upgrades the connection.
    WebSocket(&'a WebSocketSettings),
    /// Any other service: answer with [`WebSite::serve`].
    Service,
    /// No service: 404.
    NotFound,
}

/// A resolved request path.
struct Mount<'s, 'p> {
    /// The raw (still percent-encoded) first component, `None` for the root service.
    prefix: Option<&'p str>,
    /// The service.
    service: &'s WebService,
    /// What remains after the prefix (the full path for the root service).
    rest: &'p str,
}

impl WebSite {
    /// A site serving `paths`; `info` feeds `nodeinfo` services.
    pub fn new(paths: &WebPaths, info: Arc<NodeInfo>) -> Self {
        Self {
            paths: paths.clone(),
            info,
        }
    }

    /// Which service a request path (without query) belongs to; see the module docs.
    pub fn route<'a>(&'a self, path: &str) -> Route<'a> {
        match self.resolve(path) {
            None => Route::NotFound,
            Some(Mount {
                service: WebService::WebSocket(s),
                ..
            }) => Route::WebSocket(s),
            Some(_) => Route::Service,
        }
    }

    fn resolve<'s, 'p>(&'s self, path: &'p str) -> Option<Mount<'s, 'p>> {
        let p = path.strip_prefix('/').unwrap_or(path);
        let (first, rest) = match p.find('/') {
            Some(i) => (&p[..i], &p[i..]),
            None => (p, ""),
        };
        let key = percent_decode(first).and_then(|b| String::from_utf8(b).ok());
        if let Some(key) = key.filter(|k| !k.is_empty() && k != "/") {
            if let Some(service) = self.paths.get(&key) {
                return Some(Mount {
                    prefix: Some(first),
                    service,
                    rest,
                });
            }
        }
        self.paths.get("/").map(|service| Mount {
            prefix: None,
            service,
            rest: path,
        })
    }

    /// Serves a request for a non-WebSocket route (the request body is ignored).
    pub async fn serve<B>(&self, req: Request<B>) -> Response<WebBody> {
        let (parts, _body) = req.into_parts();
        self.serve_parts(&parts).await
    }

    /// [`serve`](Self::serve) on the request head alone.
    pub async fn serve_parts(&self, req: &Parts) -> Response<WebBody> {
        let Some(mount) = self.resolve(req.uri.path()) else {
            return text_response(StatusCode::NOT_FOUND, "not found");
        };
        if let WebService::WebSocket(_) = mount.service {
            let mut r = text_response(
                StatusCode::UPGRADE_REQUIRED,
                "this path serves WAMP over WebSocket",
            );
            r.headers_mut()
                .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            return r;
        }
        if req.method != Method::GET && req.method != Method::HEAD {
            let mut r = text_response(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            return r;
        }
        let head = req.method == Method::HEAD;
        let at_top = mount.rest.is_empty() || mount.rest == "/";
        match mount.service {
            WebService::Static(svc) => serve_static(svc, &mount, req, head).await,
            WebService::Redirect { url } => match HeaderValue::from_str(url) {
                Ok(location) => {
                    let mut r = bytes_response(
                        StatusCode::FOUND,
                        "text/plain; charset=utf-8",
                        Bytes::from(format!("redirecting to {url}\n")),
                        head,
                    );
                    r.headers_mut().insert(header::LOCATION, location);
                    r
                }
                Err(_) => text_response(StatusCode::INTERNAL_SERVER_ERROR, "bad redirect URL"),
            },
            WebService::Json { value } if at_top => {
                let body = serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec());
                bytes_response(StatusCode::OK, "application/json", body.into(), head)
            }
            WebService::NodeInfo if at_top => {
                let mut r = if wants_json(req) {
                    let body = serde_json::to_vec(&self.info_json()).unwrap_or_default();
                    bytes_response(StatusCode::OK, "application/json", body.into(), head)
                } else {
                    bytes_response(
                        StatusCode::OK,
                        "text/html; charset=utf-8",
                        self.info_html().into(),
                        head,
                    )
                };
                r.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                r.headers_mut()
                    .insert(header::VARY, HeaderValue::from_static("Accept"));
                r
            }
            _ => text_response(StatusCode::NOT_FOUND, "not found"),
        }
    }

    fn uptime(&self) -> Duration {
        SystemTime::now()
            .duration_since(self.info.started)
            .unwrap_or_default()
    }

    fn info_json(&self) -> serde_json::Value {
        let i = &self.info;
        serde_json::json!({
            "title": i.title,
            "version": i.version,
            "realms": i.realms,
            "uptime_seconds": self.uptime().as_secs(),
            "transports": i.transports,
        })
    }

    fn info_html(&self) -> String {
        let i = &self.info;
        let title = i.title.as_deref().unwrap_or("junction node");
        let mut s = String::new();
        let _ = write!(
            s,
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title></head>\n\
             <body>\n<h1>{t}</h1>\n<table>\n\
             <tr><th>Version</th><td>junction {v}</td></tr>\n\
             <tr><th>Uptime</th><td>{u}</td></tr>\n</table>\n",
            t = html_escape(title),
            v = html_escape(i.version),
            u = format_uptime(self.uptime()),
        );
        for (heading, items) in [("Realms", &i.realms), ("Transports", &i.transports)] {
            let _ = writeln!(s, "<h2>{heading}</h2>\n<ul>");
            for item in items {
                let _ = writeln!(s, "<li>{}</li>", html_escape(item));
            }
            s.push_str("</ul>\n");
        }
        s.push_str("</body></html>\n");
        s
    }
}

/// A `text/plain; charset=utf-8` response with `text` (plus a newline) as body.
pub fn text_response(status: StatusCode, text: &str) -> Response<WebBody> {
    let mut body = String::with_capacity(text.len() + 1);
    body.push_str(text);
    body.push('\n');
    bytes_response(status, "text/plain; charset=utf-8", body.into(), false)
}

/// A response with the common headers and `body` (dropped, but counted, when `head`).
fn bytes_response(
    status: StatusCode,
    content_type: &'static str,
    body: Bytes,
    head: bool,
) -> Response<WebBody> {
    let len = body.len() as u64;
    let mut r = if head {
        empty(status)
    } else {
        let mut r = Response::new(Full::new(body).map_err(|n| match n {}).boxed());
        *r.status_mut() = status;
        common_headers(r.headers_mut());
        r
    };
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    r
}

/// A response without body (the caller sets `Content-Length` when it means something).
fn empty(status: StatusCode) -> Response<WebBody> {
    let mut r = Response::new(Empty::new().map_err(|n| match n {}).boxed());
    *r.status_mut() = status;
    common_headers(r.headers_mut());
    r
}

fn common_headers(h: &mut HeaderMap) {
    h.insert(header::SERVER, HeaderValue::from_static(SERVER));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
}

/// `format=json` in the query, or `application/json` in `Accept`.
fn wants_json(req: &Parts) -> bool {
    let in_query = req.uri.query().is_some_and(|q| {
        q.split('&')
            .any(|pair| pair.eq_ignore_ascii_case("format=json"))
    });
    in_query
        || req.headers.get_all(header::ACCEPT).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.to_ascii_lowercase().contains("application/json"))
        })
}

fn format_uptime(d: Duration) -> String {
    let s = d.as_secs();
    let (days, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if days > 0 {
        format!("{days}d {h}h {m}m {s}s")
    } else if h > 0 {
        format!("{h}h {m}m {s}s")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

/// Escapes text for HTML element content and quoted attribute values.
fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Decodes `%XX` escapes; `None` for a malformed escape.
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hi = (*b.get(i + 1)? as char).to_digit(16)?;
            let lo = (*b.get(i + 2)? as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Percent-encodes everything but RFC 3986 unreserved characters (safe as a relative href).
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A decoded path segment that names an entry of its directory (and nothing else).
fn safe_segment(seg: &str) -> bool {
    if seg.is_empty() || seg.contains(['/', '\\', '\0']) {
        return false;
    }
    let mut comps = Path::new(seg).components();
    matches!(
        (comps.next(), comps.next()),
        (Some(Component::Normal(_)), None)
    )
}

fn io_status(e: &io::Error) -> StatusCode {
    match e.kind() {
        io::ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        _ => StatusCode::NOT_FOUND,
    }
}

fn status_text(status: StatusCode) -> Response<WebBody> {
    text_response(status, status.canonical_reason().unwrap_or("error"))
}

async fn serve_static(
    svc: &StaticService,
    mount: &Mount<'_, '_>,
    req: &Parts,
    head: bool,
) -> Response<WebBody> {
    let mut rel = PathBuf::new();
    let mut raw_segments = Vec::new();
    for seg in mount.rest.split('/').filter(|s| !s.is_empty()) {
        let Some(decoded) = percent_decode(seg) else {
            return status_text(StatusCode::BAD_REQUEST);
        };
        let Ok(decoded) = String::from_utf8(decoded) else {
            return status_text(StatusCode::NOT_FOUND);
        };
        if !safe_segment(&decoded) {
            return status_text(StatusCode::NOT_FOUND);
        }
        rel.push(decoded);
        raw_segments.push(seg);
    }
    let slash = mount.rest.ends_with('/');

    let root = match tokio::fs::canonicalize(&svc.directory).await {
        Ok(r) => r,
        Err(e) => {
            debug!(directory = %svc.directory.display(), error = %e, "static directory unavailable");
            return status_text(StatusCode::NOT_FOUND);
        }
    };
    let target = match tokio::fs::canonicalize(root.join(&rel)).await {
        Ok(t) if t.starts_with(&root) => t,
        Ok(_) => return status_text(StatusCode::NOT_FOUND),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return fallback(svc, &root, req, head).await;
        }
        Err(e) => return status_text(io_status(&e)),
    };
    let meta = match tokio::fs::metadata(&target).await {
        Ok(m) => m,
        Err(e) => return status_text(io_status(&e)),
    };
    if meta.is_file() {
        if slash {
            return status_text(StatusCode::NOT_FOUND);
        }
        return serve_file(svc, &target, req, head).await;
    }
    if !meta.is_dir() {
        return status_text(StatusCode::NOT_FOUND);
    }
    if !slash {
        // Redirect so relative links resolve inside the directory. Built from the segments,
        // never from the raw path, so `//host` cannot turn into an off-site redirect.
        let mut location = String::from("/");
        if let Some(p) = mount.prefix {
            location.push_str(p);
            location.push('/');
        }
        for seg in &raw_segments {
            location.push_str(seg);
            location.push('/');
        }
        if let Some(q) = req.uri.query() {
            location.push('?');
            location.push_str(q);
        }
        return match HeaderValue::from_str(&location) {
            Ok(v) => {
                let mut r = bytes_response(
                    StatusCode::MOVED_PERMANENTLY,
                    "text/plain; charset=utf-8",
                    Bytes::from(format!("moved to {location}\n")),
                    head,
                );
                r.headers_mut().insert(header::LOCATION, v);
                r
            }
            Err(_) => status_text(StatusCode::NOT_FOUND),
        };
    }
    if !svc.default_file.is_empty() {
        if let Some(index) = contained(&root, &target.join(&svc.default_file)).await {
            if tokio::fs::metadata(&index).await.is_ok_and(|m| m.is_file()) {
                return serve_file(svc, &index, req, head).await;
            }
        }
    }
    if svc.enable_directory_listing {
        return listing(&target, &rel, head).await;
    }
    status_text(StatusCode::NOT_FOUND)
}

/// The `fallback_file` (Crossbar's `default_file`) for a path that does not exist, else 404.
async fn fallback(svc: &StaticService, root: &Path, req: &Parts, head: bool) -> Response<WebBody> {
    if let Some(file) = &svc.fallback_file {
        if let Some(path) = contained(root, &root.join(file)).await {
            if tokio::fs::metadata(&path).await.is_ok_and(|m| m.is_file()) {
                return serve_file(svc, &path, req, head).await;
            }
        }
    }
    status_text(StatusCode::NOT_FOUND)
}

/// `path` canonicalized, if it exists and lies under `root` (already canonical).
async fn contained(root: &Path, path: &Path) -> Option<PathBuf> {
    let canon = tokio::fs::canonicalize(path).await.ok()?;
    canon.starts_with(root).then_some(canon)
}

async fn listing(dir: &Path, rel: &Path, head: bool) -> Response<WebBody> {
    let mut rd = match tokio::fs::read_dir(dir).await {
        Ok(rd) => rd,
        Err(e) => return status_text(io_status(&e)),
    };
    let mut entries = Vec::new();
    loop {
        match rd.next_entry().await {
            Ok(Some(e)) => {
                // Names that are not UTF-8 cannot be requested (segments must decode to UTF-8).
                let Ok(name) = e.file_name().into_string() else {
                    continue;
                };
                let is_dir = tokio::fs::metadata(e.path())
                    .await
                    .is_ok_and(|m| m.is_dir());
                entries.push((name, is_dir));
            }
            Ok(None) => break,
            Err(e) => return status_text(io_status(&e)),
        }
    }
    entries.sort();
    let mut shown = String::from("/");
    for c in rel.components() {
        shown.push_str(&c.as_os_str().to_string_lossy());
        shown.push('/');
    }
    let shown = html_escape(&shown);
    let mut s = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of {shown}</title>\
         </head>\n<body>\n<h1>Index of {shown}</h1>\n<ul>\n"
    );
    if rel.components().next().is_some() {
        s.push_str("<li><a href=\"../\">../</a></li>\n");
    }
    for (name, is_dir) in &entries {
        let slash = if *is_dir { "/" } else { "" };
        let _ = writeln!(
            s,
            "<li><a href=\"{}{slash}\">{}{slash}</a></li>",
            percent_encode(name),
            html_escape(name),
        );
    }
    s.push_str("</ul>\n</body></html>\n");
    bytes_response(StatusCode::OK, "text/html; charset=utf-8", s.into(), head)
}

async fn serve_file(
    svc: &StaticService,
    path: &Path,
    req: &Parts,
    head: bool,
) -> Response<WebBody> {
    let file = match tokio::fs::File::open(path).await {
        Ok(f) => f,
        Err(e) => return status_text(io_status(&e)),
    };
    let meta = match file.metadata().await {
        Ok(m) if m.is_file() => m,
        Ok(_) => return status_text(StatusCode::NOT_FOUND),
        Err(e) => return status_text(io_status(&e)),
    };
    let len = meta.len();
    let mtime = meta.modified().ok();
    let since_epoch = mtime.and_then(|t| t.duration_since(UNIX_EPOCH).ok());
    let etag = format!("\"{len:x}-{:x}\"", since_epoch.map_or(0, |d| d.as_nanos()));
    let last_modified = mtime.and_then(http_date);

    let mut validators = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        validators.insert(header::ETAG, v);
    }
    if let Some(lm) = last_modified.and_then(|s| HeaderValue::from_str(&s).ok()) {
        validators.insert(header::LAST_MODIFIED, lm);
    }
    if let Some(secs) = svc.cache_timeout {
        // As Crossbar (Twisted): `max-age=N, public` plus `Expires`.
        if let Ok(v) = HeaderValue::from_str(&format!("max-age={secs}, public")) {
            validators.insert(header::CACHE_CONTROL, v);
        }
        let expires = SystemTime::now().checked_add(Duration::from_secs(secs));
        if let Some(v) = expires
            .and_then(http_date)
            .and_then(|s| HeaderValue::from_str(&s).ok())
        {
            validators.insert(header::EXPIRES, v);
        }
    }

    if not_modified(&req.headers, &etag, since_epoch) {
        let mut r = empty(StatusCode::NOT_MODIFIED);
        r.headers_mut().extend(validators);
        return r;
    }

    let mut r = if head {
        empty(StatusCode::OK)
    } else {
        let stream = tokio_util::io::ReaderStream::with_capacity(file.take(len), FILE_CHUNK);
        let body = StreamBody::new(stream.map_ok(Frame::data));
        let mut r = Response::new(BodyExt::boxed(body));
        common_headers(r.headers_mut());
        r
    };
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, content_type(path, svc));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.extend(validators);
    r
}

/// Whether a conditional GET/HEAD can be answered 304 (RFC 9110 §13.2.2: `If-None-Match`
/// takes precedence over `If-Modified-Since`).
fn not_modified(h: &HeaderMap, etag: &str, mtime: Option<Duration>) -> bool {
    if h.contains_key(header::IF_NONE_MATCH) {
        return h.get_all(header::IF_NONE_MATCH).iter().any(|v| {
            v.to_str().is_ok_and(|s| {
                s.split(',')
                    .map(str::trim)
                    .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
            })
        });
    }
    let Some(mtime) = mtime else { return false };
    let Some(since) = h
        .get(header::IF_MODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| httpdate::parse_http_date(s).ok())
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
    else {
        return false;
    };
    mtime.as_secs() <= since.as_secs()
}

/// An IMF-fixdate, for times httpdate can represent (1970 to 9999).
fn http_date(t: SystemTime) -> Option<String> {
    let secs = t.duration_since(UNIX_EPOCH).ok()?.as_secs();
    (secs <= 253_402_300_799).then(|| httpdate::fmt_http_date(t))
}

/// `Content-Type` of a static file: `mime_types` override, then by extension.
fn content_type(path: &Path, svc: &StaticService) -> HeaderValue {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    if let Some(ext) = &ext {
        let configured = svc
            .mime_types
            .iter()
            .find(|(k, _)| k.strip_prefix('.').unwrap_or(k).eq_ignore_ascii_case(ext));
        if let Some(v) = configured.and_then(|(_, v)| HeaderValue::from_str(v).ok()) {
            return v;
        }
    }
    let guessed = match ext.as_deref() {
        // Where mime_guess disagrees with current practice.
        Some("js" | "mjs") => "text/javascript".to_owned(),
        Some("map") => "application/json".to_owned(),
        Some(e) => mime_guess::from_ext(e)
            .first_raw()
            .unwrap_or("application/octet-stream")
            .to_owned(),
        None => "application/octet-stream".to_owned(),
    };
    let textual = guessed.starts_with("text/")
        || matches!(
            guessed.as_str(),
            "application/javascript" | "application/json" | "application/xml"
        );
    let value = if textual && !guessed.contains(';') {
        format!("{guessed}; charset=utf-8")
    } else {
        guessed
    };
    HeaderValue::from_str(&value)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn info() -> Arc<NodeInfo> {
        Arc::new(NodeInfo {
            title: Some("Test <node>".into()),
            version: "9.9.9",
            realms: vec!["realm1".into(), "a&b".into()],
            started: SystemTime::now() - Duration::from_secs(3725),
            transports: vec!["universal on 0.0.0.0:8080".into()],
        })
    }

    fn static_service(dir: &Path) -> StaticService {
        StaticService {
            directory: dir.to_path_buf(),
            enable_directory_listing: false,
            mime_types: BTreeMap::new(),
            cache_timeout: None,
            default_file: "index.html".into(),
            fallback_file: None,
        }
    }

    fn ws() -> WebSocketSettings {
        WebSocketSettings {
            serializers: Vec::new(),
            options: Default::default(),
            anonymous_role: "anonymous".into(),
            auth: Default::default(),
        }
    }

    fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    async fn get(
        site: &WebSite,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
        let r = site.serve_parts(&parts(method, uri, headers)).await;
        let status = r.status();
        let (p, body) = r.into_parts();
        let body = body.collect().await.unwrap().to_bytes().to_vec();
        (status, p.headers, body)
    }

    fn hdr<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
        h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }

    /// A site whose root is a static dir with a few files, plus a `sub` mount.
    fn fixture(edit: impl FnOnce(&mut StaticService)) -> (tempfile::TempDir, WebSite) {
        let tmp = tempfile::tempdir().unwrap();
        let www = tmp.path().join("www");
        std::fs::create_dir_all(www.join("dir/inner")).unwrap();
        std::fs::create_dir_all(www.join("withindex")).unwrap();
        std::fs::write(www.join("hello.txt"), "hello world").unwrap();
        std::fs::write(www.join("app.js"), "let x = 1;").unwrap();
        std::fs::write(www.join("data.bin"), [0u8, 1, 2]).unwrap();
        std::fs::write(www.join("mod.wasm"), b"\0asm").unwrap();
        std::fs::write(www.join("dir/a <b>&.txt"), "x").unwrap();
        std::fs::write(www.join("withindex/index.html"), "<p>index</p>").unwrap();
        std::fs::write(tmp.path().join("secret.txt"), "secret").unwrap();
        let mut svc = static_service(&www);
        edit(&mut svc);
        let mut paths = WebPaths::new();
        paths.insert("/".into(), WebService::Static(svc.clone()));
        paths.insert("sub".into(), WebService::Static(svc));
        paths.insert("ws".into(), WebService::WebSocket(ws()));
        paths.insert(
            "go".into(),
            WebService::Redirect {
                url: "https://example.com/x".into(),
            },
        );
        paths.insert(
            "doc".into(),
            WebService::Json {
                value: serde_json::json!({"a": [1, 2], "b": "c"}),
            },
        );
        paths.insert("info".into(), WebService::NodeInfo);
        (tmp, WebSite::new(&paths, info()))
    }

    #[test]
    fn routing_rule() {
        let mut paths = WebPaths::new();
        paths.insert("ws".into(), WebService::WebSocket(ws()));
        paths.insert("info".into(), WebService::NodeInfo);
        let site = WebSite::new(&paths, info());
        assert!(matches!(site.route("/ws"), Route::WebSocket(_)));
        assert!(matches!(site.route("/ws/more"), Route::WebSocket(_)));
        assert!(matches!(site.route("/w%73"), Route::WebSocket(_)));
        assert_eq!(site.route("/info"), Route::Service);
        assert_eq!(site.route("/info/"), Route::Service);
        assert_eq!(site.route("/"), Route::NotFound);
        assert_eq!(site.route("/wsx"), Route::NotFound);
        assert_eq!(site.route("/x/ws"), Route::NotFound);
        assert_eq!(site.route(""), Route::NotFound);
        assert_eq!(site.route("*"), Route::NotFound);

        paths.insert("/".into(), WebService::WebSocket(ws()));
        let site = WebSite::new(&paths, info());
        assert!(matches!(site.route("/"), Route::WebSocket(_)));
        assert!(matches!(site.route("/anything/else"), Route::WebSocket(_)));
        assert_eq!(site.route("/info"), Route::Service);
        // "%2F" decodes to "/", which is never a component key.
        assert!(matches!(site.route("/%2F"), Route::WebSocket(_)));
    }

    #[tokio::test]
    async fn not_found_without_root() {
        let site = WebSite::new(&WebPaths::new(), info());
        let (s, h, _) = get(&site, "GET", "/x", &[]).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        assert_eq!(hdr(&h, "server"), "junction");
        assert_eq!(hdr(&h, "x-content-type-options"), "nosniff");
    }

    #[tokio::test]
    async fn static_file_get_head_and_methods() {
        let (_t, site) = fixture(|_| {});
        let (s, h, b) = get(&site, "GET", "/hello.txt", &[]).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(b, b"hello world");
        assert_eq!(hdr(&h, "content-type"), "text/plain; charset=utf-8");
        assert_eq!(hdr(&h, "content-length"), "11");
        assert_eq!(hdr(&h, "server"), "junction");
        assert_eq!(hdr(&h, "x-content-type-options"), "nosniff");
        assert!(h.get("cache-control").is_none());

        let (s, hh, b) = get(&site, "HEAD", "/hello.txt", &[]).await;
        assert_eq!(s, StatusCode::OK);
        assert!(b.is_empty());
        for k in ["content-type", "content-length", "etag", "last-modified"] {
            assert_eq!(hdr(&h, k), hdr(&hh, k), "{k}");
        }

        for m in ["POST", "PUT", "DELETE", "OPTIONS"] {
            let (s, h, _) = get(&site, m, "/hello.txt", &[]).await;
            assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
            assert_eq!(hdr(&h, "allow"), "GET, HEAD");
        }

        let (s, _, b) = get(&site, "GET", "/sub/hello.txt?x=1", &[]).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(b, b"hello world");
        let (s, _, _) = get(&site, "GET", "/nope.txt", &[]).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _, _) = get(&site, "GET", "/hello.txt/", &[]).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _, b) = get(&site, "GET", "//hello.txt", &[]).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(b, b"hello world");
    }

    #[tokio::test]
    async fn content_types() {
        let (_t, site) = fixture(|svc| {
            svc.mime_types
                .insert(".wasm".into(), "application/x-custom".into());
        });
        let ct = |uri: &'static str| {
            let site = &site;
            async move { hdr(&get(site, "GET", uri, &[]).await.1, "content-type").to_owned() }
        };
        assert_eq!(ct("/app.js").await, "text/javascript; charset=utf-8");
        assert_eq!(ct("/data.bin").await, "application/octet-stream");
        assert_eq!(ct("/mod.wasm").await, "application/x-custom");
        assert_eq!(
            ct("/withindex/index.html").await,
            "text/html; charset=utf-8"
        );
        let (_t2, site2) = fixture(|_| {});
        let (_, h, _) = get(&site2, "GET", "/mod.wasm", &[]).await;
        assert_eq!(hdr(&h, "content-type"), "application/wasm");
    }

    #[tokio::test]
    async fn traversal_is_refused() {
        let (_t, site) = fixture(|_| {});
        for uri in [
            "/../secret.txt",
            "/%2e%2e/secret.txt",
            "/%2E%2E/secret.txt",
            "/dir/..%2f..%2fsecret.txt",
            "/dir/%2e%2e%2fsecret.txt",
            "/a/..%2f..%2fetc/passwd",
            "/dir/../hello.txt",
            "/./hello.txt",
            "/%00",
            "/hello.txt%00",
            "/%2Fetc%2Fpasswd",
            "/..%5csecret.txt",
            "/sub/../secret.txt",
            "/sub/%2e%2e/secret.txt",
        ] {
            let (s, _, b) = get(&site, "GET", uri, &[]).await;
            assert!(
                s == StatusCode::NOT_FOUND || s == StatusCode::BAD_REQUEST,
                "{uri}: {s}"
            );
            assert_ne!(b, b"secret", "{uri}");
        }
        let (s, _, _) = get(&site, "GET", "/%zz", &[]).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, _, _) = get(&site, "GET", "/%ff", &[]).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn symlinks_out_of_the_directory_are_refused() {
        let (t, site) = fixture(|_| {});
        let www = t.path().join("www");
        std::os::unix::fs::symlink(t.path().join("secret.txt"), www.join("link.txt")).unwrap();
        std::os::unix::fs::symlink(t.path(), www.join("up")).unwrap();
        std::os::unix::fs::symlink(www.join("hello.txt"), www.join("inside.txt")).unwrap();
        let (s, _, _) = get(&site, "GET", "/link.txt", &[]).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _, _) = get(&site, "GET", "/up/secret.txt", &[]).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _, b) = get(&site, "GET", "/inside.txt", &[]).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(b, b"hello world");
    }

    #[tokio::test]
    async fn directories() {
        let (_t, site) = fixture(|_| {});
        let (s, h, b) = get(&site, "GET", "/withindex/", &[]).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(b, b"<p>index</p>");
        assert_eq!(hdr(&h, "content-type"), "text/html; charset=utf-8");

        let (s, h, _) = get(&site, "GET", "/withindex?a=b", &[]).await;
        assert_eq!(s, StatusCode::MOVED_PERMANENTLY);
        assert_eq!(hdr(&h, "location"), "/withindex/?a=b");
        let (s, h, _) = get(&site, "GET", "/sub", &[]).await;
        assert_eq!(s, StatusCode::MOVED_PERMANENTLY);
        assert_eq!(hdr(&h, "location"), "/sub/");
        let (s, h, _) = get(&site, "GET", "/sub//dir/inner", &[]).await;
        assert_eq!(s, StatusCode::MOVED_PERMANENTLY);
        assert_eq!(hdr(&h, "location"), "/sub/dir/inner/");
        let (s, h, _) = get(&site, "HEAD", "//dir", &[]).await;
        assert_eq!(s, StatusCode::MOVED_PERMANENTLY);
        assert_eq!(hdr(&h, "location"), "/dir/");

        // Listing off.
        let (s, _, _) = get(&site, "GET", "/dir/", &[]).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _, _) = get(&site, "GET", "/", &[]).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn directory_listing() {
        let (_t, site) = fixture(|svc| svc.enable_directory_listing = true);
        let (s, h, b) = get(&site, "GET", "/dir/", &[]).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(hdr(&h, "content-type"), "text/html; charset=utf-8");
        let html = String::from_utf8(b).unwrap();
        assert!(html.contains("Index of /dir/"), "{html}");
        assert!(
            html.contains("<a href=\"a%20%3Cb%3E%26.txt\">a &lt;b&gt;&amp;.txt</a>"),
            "{html}"
        );
        assert!(html.contains("<a href=\"inner/\">inner/</a>"), "{html}");
        assert!(html.contains("<a href=\"../\">"), "{html}");
        assert!(!html.contains("<b>"));
        // The escaped link resolves to the file.
        let (s, _, b) = get(&site, "GET", "/dir/a%20%3Cb%3E%26.txt", &[]).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(b, b"x");
        // index.html wins over the listing.
        let (_, _, b) = get(&site, "GET", "/withindex/", &[]).await;
        assert_eq!(b, b"<p>index</p>");
        let (s, _, b) = get(&site, "GET", "/sub/", &[]).await;
        assert_eq!(s, StatusCode::OK);
        let html = String::from_utf8(b).unwrap();
        assert!(html.contains("<a href=\"hello.txt\">"), "{html}");
        assert!(!html.contains("../"), "{html}");
    }

    #[tokio::test]
    async fn etag_last_modified_and_cache_control() {
        let (_t, site) = fixture(|svc| svc.cache_timeout = Some(3600));
        let (s, h, _) = get(&site, "GET", "/hello.txt", &[]).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(hdr(&h, "cache-control"), "max-age=3600, public");
        let expires = httpdate::parse_http_date(hdr(&h, "expires")).unwrap();
        let ahead = expires.duration_since(SystemTime::now()).unwrap();
        assert!(ahead > Duration::from_secs(3500) && ahead <= Duration::from_secs(3600));
        let etag = hdr(&h, "etag").to_owned();
        let lm = hdr(&h, "last-modified").to_owned();
        assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
        assert!(httpdate::parse_http_date(&lm).is_ok(), "{lm}");

        for inm in [
            etag.clone(),
            format!("W/{etag}"),
            format!("\"x\", {etag}"),
            "*".into(),
        ] {
            let (s, h, b) = get(&site, "GET", "/hello.txt", &[("if-none-match", &inm)]).await;
            assert_eq!(s, StatusCode::NOT_MODIFIED, "{inm}");
            assert!(b.is_empty());
            assert_eq!(hdr(&h, "etag"), etag);
            assert_eq!(hdr(&h, "cache-control"), "max-age=3600, public");
        }
        let (s, _, b) = get(
            &site,
            "GET",
            "/hello.txt",
            &[("if-none-match", "\"other\"")],
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(b, b"hello world");
        // If-None-Match wins over If-Modified-Since.
        let (s, _, _) = get(
            &site,
            "GET",
            "/hello.txt",
            &[("if-none-match", "\"other\""), ("if-modified-since", &lm)],
        )
        .await;
        assert_eq!(s, StatusCode::OK);

        let (s, h, b) = get(&site, "HEAD", "/hello.txt", &[("if-modified-since", &lm)]).await;
        assert_eq!(s, StatusCode::NOT_MODIFIED);
        assert!(b.is_empty());
        assert_eq!(hdr(&h, "last-modified"), lm);
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(86400));
        let (s, _, _) = get(&site, "GET", "/hello.txt", &[("if-modified-since", &later)]).await;
        assert_eq!(s, StatusCode::NOT_MODIFIED);
        let old = "Sun, 06 Nov 1994 08:49:37 GMT";
        let (s, _, _) = get(&site, "GET", "/hello.txt", &[("if-modified-since", old)]).await;
        assert_eq!(s, StatusCode::OK);
        let (s, _, _) = get(&site, "GET", "/hello.txt", &[("if-modified-since", "junk")]).await;
        assert_eq!(s, StatusCode::OK);
    }

    #[tokio::test]
    async fn fallback_file_for_missing_paths() {
        let (_t, site) = fixture(|svc| svc.fallback_file = Some("withindex/index.html".into()));
        for uri in [
            "/app/route",
            "/missing",
            "/missing/",
            "/hello.txt/x",
            "/sub/deep/link",
        ] {
            let (s, h, b) = get(&site, "GET", uri, &[]).await;
            assert_eq!(s, StatusCode::OK, "{uri}");
            assert_eq!(b, b"<p>index</p>", "{uri}");
            assert_eq!(hdr(&h, "content-type"), "text/html; charset=utf-8");
        }
        // Existing files and directories are unaffected; refused paths stay refused.
        let (_, _, b) = get(&site, "GET", "/hello.txt", &[]).await;
        assert_eq!(b, b"hello world");
        let (s, _, _) = get(&site, "GET", "/dir/", &[]).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        for uri in ["/../secret.txt", "/%2e%2e/secret.txt", "/hello.txt/"] {
            let (s, _, b) = get(&site, "GET", uri, &[]).await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{uri}");
            assert_ne!(b, b"<p>index</p>");
        }
        // A fallback that is missing (or escapes the directory) means 404.
        for file in ["nope.html", "../secret.txt"] {
            let (_t, site) = fixture(|svc| svc.fallback_file = Some(file.into()));
            let (s, _, _) = get(&site, "GET", "/missing", &[]).await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{file}");
        }
    }

    #[tokio::test]
    async fn redirect_json_and_websocket_paths() {
        let (_t, site) = fixture(|_| {});
        for uri in ["/go", "/go/", "/go/deeper?q=1"] {
            let (s, h, _) = get(&site, "GET", uri, &[]).await;
            assert_eq!(s, StatusCode::FOUND);
            assert_eq!(hdr(&h, "location"), "https://example.com/x");
        }
        let (s, h, b) = get(&site, "GET", "/doc", &[]).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(hdr(&h, "content-type"), "application/json");
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v, serde_json::json!({"a": [1, 2], "b": "c"}));
        assert_eq!(hdr(&h, "content-length"), b.len().to_string());
        let (s, h, b) = get(&site, "HEAD", "/doc", &[]).await;
        assert_eq!(s, StatusCode::OK);
        assert!(b.is_empty());
        assert_ne!(hdr(&h, "content-length"), "0");
        let (s, _, _) = get(&site, "GET", "/doc/x", &[]).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _, _) = get(&site, "POST", "/doc", &[]).await;
        assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
        let (s, h, _) = get(&site, "GET", "/ws", &[]).await;
        assert_eq!(s, StatusCode::UPGRADE_REQUIRED);
        assert_eq!(hdr(&h, "upgrade"), "websocket");
    }

    #[tokio::test]
    async fn nodeinfo_html_and_json() {
        let (_t, site) = fixture(|_| {});
        let (s, h, b) = get(&site, "GET", "/info", &[]).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(hdr(&h, "content-type"), "text/html; charset=utf-8");
        let html = String::from_utf8(b).unwrap();
        assert!(html.contains("Test &lt;node&gt;"), "{html}");
        assert!(html.contains("9.9.9"));
        assert!(html.contains("<li>realm1</li>"));
        assert!(html.contains("<li>a&amp;b</li>"));
        assert!(html.contains("universal on 0.0.0.0:8080"));
        assert!(
            html.contains("1h 2m 5s") || html.contains("1h 2m 6s"),
            "{html}"
        );
        assert!(!html.contains("<node>"));

        for (uri, headers) in [
            ("/info?format=json", &[][..]),
            ("/info/?x=1&format=json", &[][..]),
            ("/info", &[("accept", "application/json")][..]),
        ] {
            let (s, h, b) = get(&site, "GET", uri, headers).await;
            assert_eq!(s, StatusCode::OK, "{uri}");
            assert_eq!(hdr(&h, "content-type"), "application/json");
            let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
            assert_eq!(v["title"], "Test <node>");
            assert_eq!(v["version"], "9.9.9");
            assert_eq!(v["realms"], serde_json::json!(["realm1", "a&b"]));
            assert_eq!(
                v["transports"],
                serde_json::json!(["universal on 0.0.0.0:8080"])
            );
            assert!(v["uptime_seconds"].as_u64().unwrap() >= 3725);
        }
    }

    #[test]
    fn helpers() {
        assert_eq!(percent_decode("a%2Fb%2f").unwrap(), b"a/b/");
        assert!(percent_decode("%").is_none());
        assert!(percent_decode("%4").is_none());
        assert!(percent_decode("%g0").is_none());
        assert_eq!(percent_encode("a b:c/ü"), "a%20b%3Ac%2F%C3%BC");
        assert!(safe_segment("file.txt"));
        assert!(safe_segment(".hidden"));
        for bad in ["", ".", "..", "a/b", "a\\b", "a\0", "/"] {
            assert!(!safe_segment(bad), "{bad:?}");
        }
        assert_eq!(format_uptime(Duration::from_secs(90_061)), "1d 1h 1m 1s");
        assert_eq!(format_uptime(Duration::from_secs(5)), "5s");
        assert!(http_date(UNIX_EPOCH - Duration::from_secs(1)).is_none());
        assert!(http_date(UNIX_EPOCH + Duration::from_secs(253_402_300_800)).is_none());
        let r = text_response(StatusCode::IM_A_TEAPOT, "short and stout");
        assert_eq!(r.status(), StatusCode::IM_A_TEAPOT);
        assert_eq!(hdr(r.headers(), "content-length"), "16");
    }
}
