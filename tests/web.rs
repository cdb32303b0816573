//! End-to-end: `WebSite::serve` behind a real hyper HTTP/1.1 server, spoken to over a raw
//! `TcpStream` (so request targets such as `/../x` reach the server unnormalized).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use junction::config::{StaticService, WebPaths, WebService};
use junction::transport::web::{NodeInfo, Route, WebSite};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn site(dir: &Path) -> WebSite {
    let mut paths = WebPaths::new();
    paths.insert(
        "/".into(),
        WebService::Static(StaticService {
            directory: dir.to_path_buf(),
            enable_directory_listing: false,
            mime_types: BTreeMap::new(),
            cache_timeout: Some(60),
            default_file: "index.html".into(),
            fallback_file: None,
        }),
    );
    paths.insert("info".into(), WebService::NodeInfo);
    paths.insert(
        "go".into(),
        WebService::Redirect {
            url: "http://example.org/".into(),
        },
    );
    let info = NodeInfo {
        title: Some("e2e".into()),
        version: env!("CARGO_PKG_VERSION"),
        realms: vec!["realm1".into()],
        started: SystemTime::now(),
        transports: vec!["web on 127.0.0.1:0".into()],
    };
    WebSite::new(&paths, Arc::new(info))
}

/// Serves `site` on 127.0.0.1:0 until the test ends.
async fn start(site: WebSite) -> SocketAddr {
    let site = Arc::new(site);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let site = site.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| {
                    let site = site.clone();
                    async move {
                        assert!(matches!(
                            site.route(req.uri().path()),
                            Route::Service | Route::NotFound
                        ));
                        Ok::<_, Infallible>(site.serve(req).await)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    addr
}

/// Sends `raw` and reads until the server closes the connection.
async fn exchange(addr: SocketAddr, raw: &[u8]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(raw).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut out))
        .await
        .expect("server did not close the connection")
        .unwrap();
    out
}

/// Parses one response from the front of `buf`; `head` responses have no body.
fn parse(buf: &mut Vec<u8>, head: bool) -> Reply {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("incomplete response head");
    let text = String::from_utf8(buf[..end].to_vec()).unwrap();
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    let mut reply = Reply {
        status,
        headers,
        body: Vec::new(),
    };
    let len = if head || status == 304 {
        0
    } else {
        reply
            .header("content-length")
            .expect("responses here carry Content-Length")
            .parse()
            .unwrap()
    };
    let start = end + 4;
    reply.body = buf[start..start + len].to_vec();
    buf.drain(..start + len);
    reply
}

async fn request(addr: SocketAddr, method: &str, target: &str, extra: &str) -> Reply {
    let raw = format!(
        "{method} {target} HTTP/1.1\r\nHost: localhost\r\n{extra}Connection: close\r\n\r\n"
    );
    let mut buf = exchange(addr, raw.as_bytes()).await;
    let reply = parse(&mut buf, method == "HEAD");
    assert!(buf.is_empty(), "trailing bytes after the response");
    reply
}

fn fixture() -> (tempfile::TempDir, Vec<u8>) {
    let tmp = tempfile::tempdir().unwrap();
    let www = tmp.path().join("www");
    std::fs::create_dir_all(www.join("docs")).unwrap();
    std::fs::create_dir_all(www.join("a")).unwrap();
    std::fs::write(www.join("index.html"), "<h1>home</h1>").unwrap();
    std::fs::write(www.join("docs/index.html"), "<h1>docs</h1>").unwrap();
    let big: Vec<u8> = (0..(1 << 20) + 12_345)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    std::fs::write(www.join("big.bin"), &big).unwrap();
    std::fs::write(tmp.path().join("secret.txt"), "secret").unwrap();
    (tmp, big)
}

#[tokio::test]
async fn static_files_over_http() {
    let (tmp, big) = fixture();
    let addr = start(site(&tmp.path().join("www"))).await;

    let r = request(addr, "GET", "/", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"<h1>home</h1>");
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert_eq!(r.header("cache-control"), Some("max-age=60, public"));
    assert_eq!(r.header("server"), Some("junction"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));

    let r = request(addr, "GET", "/big.bin", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-length"),
        Some(big.len().to_string().as_str())
    );
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert!(r.body == big, "streamed body differs");

    let r = request(addr, "GET", "/docs", "").await;
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/docs/"));
    let r = request(addr, "GET", "/docs/", "").await;
    assert_eq!(r.body, b"<h1>docs</h1>");
}

#[tokio::test]
async fn head_then_get_on_one_connection() {
    let (tmp, big) = fixture();
    let addr = start(site(&tmp.path().join("www"))).await;
    let raw = "HEAD /big.bin HTTP/1.1\r\nHost: x\r\n\r\n\
               GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let mut buf = exchange(addr, raw.as_bytes()).await;
    let head = parse(&mut buf, true);
    assert_eq!(head.status, 200);
    assert_eq!(
        head.header("content-length"),
        Some(big.len().to_string().as_str())
    );
    let get = parse(&mut buf, false);
    assert_eq!(get.status, 200);
    assert_eq!(get.body, b"<h1>home</h1>");
    assert!(buf.is_empty());
}

#[tokio::test]
async fn traversal_over_the_wire() {
    let (tmp, _) = fixture();
    let addr = start(site(&tmp.path().join("www"))).await;
    for target in [
        "/../secret.txt",
        "/a/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/a/..%2f..%2fsecret.txt",
        "/a/..%2f..%2fetc/passwd",
        "/%00",
        "/..%5csecret.txt",
        "/%2f..%2fsecret.txt",
    ] {
        let r = request(addr, "GET", target, "").await;
        assert!(r.status == 404 || r.status == 400, "{target}: {}", r.status);
        assert_ne!(r.body, b"secret", "{target}");
    }
}

#[tokio::test]
async fn conditional_methods_and_services() {
    let (tmp, _) = fixture();
    let addr = start(site(&tmp.path().join("www"))).await;

    let r = request(addr, "GET", "/index.html", "").await;
    let etag = r.header("etag").unwrap().to_owned();
    let lm = r.header("last-modified").unwrap().to_owned();
    let r = request(
        addr,
        "GET",
        "/index.html",
        &format!("If-None-Match: {etag}\r\n"),
    )
    .await;
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    let r = request(
        addr,
        "GET",
        "/index.html",
        &format!("If-Modified-Since: {lm}\r\n"),
    )
    .await;
    assert_eq!(r.status, 304);

    let raw = "POST /index.html HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\
               Connection: close\r\n\r\nhello";
    let mut buf = exchange(addr, raw.as_bytes()).await;
    let r = parse(&mut buf, false);
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));

    let r = request(addr, "GET", "/info?format=json", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["title"], "e2e");
    assert_eq!(v["realms"], serde_json::json!(["realm1"]));
    let r = request(addr, "GET", "/info", "").await;
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(String::from_utf8(r.body).unwrap().contains("realm1"));

    let r = request(addr, "GET", "/go/anywhere", "").await;
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("http://example.org/"));
}
