//! One client connection: a TCP stream, a read buffer parsed in place, and a write buffer
//! flushed with one `write_all` per batch (writes are coalesced).
//!
//! Three framings: MQTT packets, WebSocket frames (client side: our frames masked, the
//! server's not) and WAMP RawSocket frames.

use std::io;
use std::time::Duration;

use base64::Engine;
use bytes::{Buf, BufMut, BytesMut};
use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How bytes are cut into frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// MQTT control packets; the tag is the first octet.
    Mqtt,
    /// WebSocket; the tag is the opcode.
    Ws,
    /// WAMP RawSocket; the tag is the frame type (0 message, 1 ping, 2 pong).
    Raw,
}

/// WebSocket opcodes.
pub mod op {
    #![allow(missing_docs)]
    pub const TEXT: u8 = 1;
    pub const BINARY: u8 = 2;
    pub const CLOSE: u8 = 8;
    pub const PING: u8 = 9;
    pub const PONG: u8 = 10;
}

/// A benchmark error (protocol, I/O or timeout), as text.
pub type Error = String;

/// Result with a text error.
pub type Result<T> = std::result::Result<T, Error>;

/// A connected client.
#[derive(Debug)]
pub struct Conn {
    /// The socket.
    pub stream: TcpStream,
    /// Bytes read and not consumed yet.
    pub rbuf: BytesMut,
    /// What to write at the next [`Conn::flush`].
    pub w: Writer,
    /// The framing.
    pub framing: Framing,
}

/// The write side of a connection: frames are appended and written out in one go.
#[derive(Debug)]
pub struct Writer {
    /// Bytes to write at the next [`Conn::flush`].
    pub wbuf: BytesMut,
    framing: Framing,
    scratch: Vec<u8>,
    mask: [u8; 4],
}

/// Opens a TCP connection (no Nagle).
pub async fn connect_tcp(host: &str, port: u16) -> Result<TcpStream> {
    let s = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect((host, port)))
        .await
        .map_err(|_| format!("connect {host}:{port}: timed out"))?
        .map_err(|e| format!("connect {host}:{port}: {e}"))?;
    s.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(s)
}

/// One parsed frame header: tag, header length, body length.
fn parse_header(b: &[u8], framing: Framing) -> Result<Option<(u8, usize, usize)>> {
    match framing {
        Framing::Mqtt => {
            let Some(&tag) = b.first() else {
                return Ok(None);
            };
            let mut len = 0usize;
            for i in 0..4 {
                let Some(&d) = b.get(1 + i) else {
                    return Ok(None);
                };
                len |= usize::from(d & 0x7f) << (7 * i);
                if d & 0x80 == 0 {
                    return Ok(Some((tag, 2 + i, len)));
                }
            }
            Err("MQTT: malformed remaining length".into())
        }
        Framing::Ws => {
            if b.len() < 2 {
                return Ok(None);
            }
            let (b0, b1) = (b[0], b[1]);
            if b0 & 0x80 == 0 || b0 & 0x0f == 0 {
                return Err("WebSocket: fragmented message (not supported by the bench)".into());
            }
            if b1 & 0x80 != 0 {
                return Err("WebSocket: masked frame from the server".into());
            }
            let (hdr, len) = match b1 & 0x7f {
                126 if b.len() >= 4 => (4, usize::from(u16::from_be_bytes([b[2], b[3]]))),
                127 if b.len() >= 10 => {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(&b[2..10]);
                    (10, u64::from_be_bytes(a) as usize)
                }
                126 | 127 => return Ok(None),
                n => (2, usize::from(n)),
            };
            Ok(Some((b0 & 0x0f, hdr, len)))
        }
        Framing::Raw => {
            if b.len() < 4 {
                return Ok(None);
            }
            let len = usize::from(b[1]) << 16 | usize::from(b[2]) << 8 | usize::from(b[3]);
            Ok(Some((b[0] & 0x07, 4, len)))
        }
    }
}

/// Complete frames at the start of a buffer.
pub struct Frames<'a> {
    buf: &'a [u8],
    framing: Framing,
    /// Bytes of the complete frames returned so far.
    pub consumed: usize,
}

impl<'a> Frames<'a> {
    /// Frames of `buf`.
    pub fn new(buf: &'a [u8], framing: Framing) -> Self {
        Self {
            buf,
            framing,
            consumed: 0,
        }
    }

    /// The next complete frame (tag, body), `Ok(None)` when only a partial frame is left.
    pub fn next_frame(&mut self) -> Result<Option<(u8, &'a [u8])>> {
        let rest = &self.buf[self.consumed..];
        match parse_header(rest, self.framing)? {
            Some((tag, hdr, len)) if rest.len() >= hdr + len => {
                self.consumed += hdr + len;
                Ok(Some((tag, &rest[hdr..hdr + len])))
            }
            _ => Ok(None),
        }
    }
}

impl Conn {
    /// Wraps a connected stream (the handshake, if any, is done).
    pub fn new(stream: TcpStream, framing: Framing, leftover: &[u8]) -> Self {
        let mut rbuf = BytesMut::with_capacity(16 * 1024);
        rbuf.extend_from_slice(leftover);
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0x5a5a_5a5a);
        Self {
            stream,
            rbuf,
            w: Writer {
                wbuf: BytesMut::with_capacity(16 * 1024),
                framing,
                scratch: Vec::with_capacity(1024),
                mask: (seed | 0x0101_0101).to_le_bytes(),
            },
            framing,
        }
    }

    /// Reads at least one more byte (waits).
    pub async fn read_more(&mut self) -> Result<()> {
        self.rbuf.reserve(16 * 1024);
        match self.stream.read_buf(&mut self.rbuf).await {
            Ok(0) => Err("connection closed by the server".into()),
            Ok(_) => Ok(()),
            Err(e) => Err(format!("read: {e}")),
        }
    }

    /// Reads what is available without waiting; `Ok(false)` if nothing was.
    pub fn try_read_more(&mut self) -> Result<bool> {
        self.rbuf.reserve(16 * 1024);
        match self.stream.try_read_buf(&mut self.rbuf) {
            Ok(0) => Err("connection closed by the server".into()),
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(format!("read: {e}")),
        }
    }

    /// Writes the write buffer out.
    pub async fn flush(&mut self) -> Result<()> {
        if !self.w.wbuf.is_empty() {
            self.stream
                .write_all(&self.w.wbuf)
                .await
                .map_err(|e| format!("write: {e}"))?;
            self.w.wbuf.clear();
        }
        Ok(())
    }

    /// Waits for one complete frame and returns (tag, body) as an owned copy. For handshakes
    /// and setup, not for the hot path.
    pub async fn recv_frame(&mut self, timeout: Duration) -> Result<(u8, Vec<u8>)> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut frames = Frames::new(&self.rbuf, self.framing);
            if let Some((tag, body)) = frames.next_frame()? {
                let out = (tag, body.to_vec());
                let n = frames.consumed;
                self.rbuf.advance(n);
                if self.framing == Framing::Ws && tag == op::PING {
                    self.w.frame(op::PONG, &out.1);
                    self.flush().await?;
                    continue;
                }
                return Ok(out);
            }
            tokio::time::timeout_at(deadline, self.read_more())
                .await
                .map_err(|_| "timed out waiting for the server".to_string())??;
        }
    }

    /// Sets SO_LINGER 0 so that dropping the connection resets it (no TIME_WAIT).
    #[allow(deprecated)] // zero linger: close resets at once, nothing blocks
    pub fn reset_on_drop(&self) {
        let _ = self.stream.set_linger(Some(Duration::ZERO));
    }
}

impl Writer {
    /// Appends one frame with `body` (WebSocket: opcode `tag`, masked; RawSocket: type `tag`;
    /// MQTT: `body` is the whole packet).
    pub fn frame(&mut self, tag: u8, body: &[u8]) {
        match self.framing {
            Framing::Mqtt => self.wbuf.extend_from_slice(body),
            Framing::Raw => {
                let n = body.len();
                self.wbuf
                    .extend_from_slice(&[tag, (n >> 16) as u8, (n >> 8) as u8, n as u8]);
                self.wbuf.extend_from_slice(body);
            }
            Framing::Ws => {
                let n = body.len();
                self.wbuf.put_u8(0x80 | tag);
                if n < 126 {
                    self.wbuf.put_u8(0x80 | n as u8);
                } else if n <= 0xffff {
                    self.wbuf.put_u8(0x80 | 126);
                    self.wbuf.put_u16(n as u16);
                } else {
                    self.wbuf.put_u8(0x80 | 127);
                    self.wbuf.put_u64(n as u64);
                }
                self.wbuf.extend_from_slice(&self.mask);
                let start = self.wbuf.len();
                self.wbuf.extend_from_slice(body);
                for (i, b) in self.wbuf[start..].iter_mut().enumerate() {
                    *b ^= self.mask[i & 3];
                }
            }
        }
    }

    /// Appends one WAMP message frame built by `encode` (binary or text per `text`).
    pub fn message(&mut self, text: bool, encode: impl FnOnce(&mut Vec<u8>)) {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        encode(&mut scratch);
        let tag = match self.framing {
            Framing::Ws if text => op::TEXT,
            Framing::Ws => op::BINARY,
            _ => 0,
        };
        self.frame(tag, &scratch);
        self.scratch = scratch;
    }
}

/// The WebSocket opening handshake on `stream` for `path` and `protocol`; returns the bytes
/// read past the response head.
pub async fn ws_handshake(
    stream: &mut TcpStream,
    host: &str,
    port: u16,
    path: &str,
    protocol: &str,
) -> Result<Vec<u8>> {
    let nonce: [u8; 16] = std::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ 0x5c);
    let key = base64::engine::general_purpose::STANDARD.encode(nonce);
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n"
    );
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::with_capacity(1024);
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 16 * 1024 {
            return Err("WebSocket handshake: response head too long".into());
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read_buf(&mut buf))
            .await
            .map_err(|_| "WebSocket handshake: timed out".to_string())?
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("WebSocket handshake: connection closed".into());
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let first = head.lines().next().unwrap_or_default();
    if !first.starts_with("HTTP/1.1 101") {
        return Err(format!("WebSocket handshake refused: {first}"));
    }
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
    let accept = base64::engine::general_purpose::STANDARD.encode(h.finalize());
    let mut ok_accept = false;
    let mut ok_proto = false;
    for line in head.lines() {
        if let Some((k, v)) = line.split_once(':') {
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            ok_accept |= k == "sec-websocket-accept" && v == accept;
            ok_proto |= k == "sec-websocket-protocol" && v == protocol;
        }
    }
    if !ok_accept || !ok_proto {
        return Err(format!(
            "WebSocket handshake: bad accept key or subprotocol in {head:?}"
        ));
    }
    Ok(buf[head_end..].to_vec())
}

/// The RawSocket handshake for serializer id `ser` (1 json, 2 msgpack, 3 cbor, 4 ubjson).
pub async fn raw_handshake(stream: &mut TcpStream, ser: u8) -> Result<()> {
    stream
        .write_all(&[0x7f, 0xf0 | ser, 0, 0])
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut r = [0u8; 4];
    tokio::time::timeout(Duration::from_secs(10), stream.read_exact(&mut r))
        .await
        .map_err(|_| "RawSocket handshake: timed out".to_string())?
        .map_err(|e| format!("RawSocket handshake: {e}"))?;
    if r[0] != 0x7f || r[1] & 0x0f != ser {
        return Err(format!("RawSocket handshake refused: {r:02x?}"));
    }
    Ok(())
}
