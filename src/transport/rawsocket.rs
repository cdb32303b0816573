//! WAMP over RawSocket (SPEC `advanced/transport_rawsocket.md`; reference/wamp-crossbar.md §4.2).
//!
//! A connection opens with a 4-octet handshake in each direction (`7F LS 00 00`: magic, the
//! sender's receive limit `2^(9+LLLL)` and the serializer `SSSS`), then carries frames with a
//! 4-octet header `RRRR XTTT` + 24-bit big-endian length. `TTT` is 0 for a WAMP message, 1 for
//! PING and 2 for PONG; `X` is a 25th length bit, set only for a length of exactly 2^24.
//!
//! - `RawSocketCodec` is the sans-IO framer (`tokio_util::codec::{Decoder, Encoder}`). It checks
//!   the header (reserved bits, reserved types, length against the negotiated receive limit)
//!   before buffering anything, and refuses to encode a frame over the peer's receive limit.
//! - `serve` runs the server handshake under `open_handshake_timeout` and then the shared WAMP
//!   connection loop (`wamp_conn::run`) through `RsFrames`, our `WampFrames` implementation.
//!   Called by the universal sniffer (after `0x7F`, with the sniffed bytes replayed) or by a
//!   standalone RawSocket listener.
//! - `refuse_max_connections` answers error 4 for listeners over their connection limit.
//!
//! Limits follow Crossbar: we announce `LLLL = ceil(log2(max_message_size)) - 9` (clamped to
//! 0..=15) and accept frames up to the announced `2^(9+LLLL)` octets. A message for the client
//! larger than its announced limit cannot be delivered; the connection is closed.
//!
//! Autobahn (and so Crossbar) reads the frame header as a plain uint32 length and knows no
//! PING: with `auto_ping_interval` set, Autobahn clients drop the connection at the first PING.

use std::future::poll_fn;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_util::{Sink, SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::{timeout, timeout_at, Instant};
use tokio_util::codec::{Decoder, Encoder, Framed};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::wamp_conn::{self, ConnTiming, EndReason, Inbound, WampFrames};
use crate::config::RawSocketSettings;
use crate::wamp::session::{SessionConfig, WampSession};
use crate::wire::Serializer;

/// First octet of every RawSocket handshake (and what the universal sniffer routes on).
pub const MAGIC: u8 = 0x7F;
/// Largest frame payload RawSocket can describe: 2^24 octets (`LLLL = 15`, or the X bit).
pub const MAX_FRAME_LEN: usize = 1 << 24;
/// Smallest receive limit a handshake can announce: 2^9 octets (`LLLL = 0`).
pub const MIN_FRAME_LEN: usize = 1 << 9;
/// Length of the frame header and of the handshake.
pub const HEADER_LEN: usize = 4;

/// Handshake error 1: serializer unsupported.
pub const ERR_SERIALIZER_UNSUPPORTED: u8 = 1;
/// Handshake error 2: maximum message length unacceptable.
pub const ERR_MAX_LEN_UNACCEPTABLE: u8 = 2;
/// Handshake error 3: use of reserved bits (unsupported feature).
pub const ERR_RESERVED_BITS: u8 = 3;
/// Handshake error 4: maximum connection count reached.
pub const ERR_MAX_CONNECTIONS: u8 = 4;

/// Initial read buffer per connection (grows on demand up to one frame).
const READ_BUFFER: usize = 4 * 1024;
/// The read buffer a connection starts with: an idle session should not hold `READ_BUFFER`.
const IDLE_READ_BUFFER: usize = 512;
/// Outgoing bytes buffered before `feed` writes to the socket (write coalescing).
const WRITE_BUFFER: usize = 64 * 1024;
/// How long the connection loop waits for the peer's EOF after we shut down our side.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// How long `refuse_max_connections` waits for the client's handshake.
const REFUSE_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// After an error reply: how long we read (and discard) until the peer's EOF, so that closing
/// with unread input does not reset the connection before the reply arrives.
const LINGER_TIME: Duration = Duration::from_secs(1);
/// After an error reply: most octets read (and discarded) while lingering.
const LINGER_BYTES: usize = 64 * 1024;

// ------------------------------------------------------------------------------------------
// Handshake
// ------------------------------------------------------------------------------------------

/// The RawSocket serializer id (`SSSS`) of a serializer.
pub fn serializer_id(ser: Serializer) -> u8 {
    match ser {
        Serializer::Json => 1,
        Serializer::MsgPack => 2,
        Serializer::Cbor => 3,
        Serializer::UbJson => 4,
    }
}

/// The serializer with RawSocket id `id` (1..=4), if we implement it.
pub fn serializer_from_id(id: u8) -> Option<Serializer> {
    Serializer::ALL
        .into_iter()
        .find(|s| serializer_id(*s) == id)
}

/// The `LLLL` we announce for a receive limit: `ceil(log2(max)) - 9`, clamped to 0..=15
/// (Crossbar's rule). The announced limit `2^(9+LLLL)` is at least `max` up to 2^24.
pub fn length_exponent(max_message_size: usize) -> u8 {
    let bits = max_message_size
        .max(1)
        .checked_next_power_of_two()
        .map_or(usize::BITS, usize::trailing_zeros);
    // `bits` is at most 64, so the cast cannot truncate.
    bits.saturating_sub(9).min(15) as u8
}

/// The receive limit a `LLLL` announces: `2^(9+LLLL)` octets.
pub fn limit_of_exponent(exp: u8) -> usize {
    MIN_FRAME_LEN << exp.min(15)
}

/// Our successful handshake reply: magic, our `LLLL` and the chosen serializer, two zero octets.
pub fn handshake_reply(ser: Serializer, max_message_size: usize) -> [u8; 4] {
    [
        MAGIC,
        (length_exponent(max_message_size) << 4) | serializer_id(ser),
        0,
        0,
    ]
}

/// An error handshake reply (`EEEE` = `code`, one of the `ERR_*` constants).
pub fn error_reply(code: u8) -> [u8; 4] {
    [MAGIC, (code & 0x0F) << 4, 0, 0]
}

/// A client handshake we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientHandshake {
    /// The requested serializer.
    pub serializer: Serializer,
    /// The client's receive limit: we never send a frame larger than this.
    pub max_len: usize,
}

/// Why a client handshake is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The first octet is not `0x7F` (not RawSocket at all): close without a reply.
    #[error("bad magic octet 0x{0:02x}")]
    BadMagic(u8),
    /// Octets 3 and 4 are not zero: error 3.
    #[error("reserved handshake octets are not zero")]
    ReservedBits,
    /// Serializer id 0 is illegal: close without a reply.
    #[error("serializer id 0 is illegal")]
    ZeroSerializer,
    /// A serializer we do not speak or that this transport does not allow: error 1.
    #[error("serializer id {0} is not supported")]
    UnsupportedSerializer(u8),
}

impl HandshakeError {
    /// The error reply to send before closing, if any.
    pub fn reply(self) -> Option<[u8; 4]> {
        match self {
            Self::BadMagic(_) | Self::ZeroSerializer => None,
            Self::ReservedBits => Some(error_reply(ERR_RESERVED_BITS)),
            Self::UnsupportedSerializer(_) => Some(error_reply(ERR_SERIALIZER_UNSUPPORTED)),
        }
    }
}

/// Checks a client handshake against the serializers this transport allows.
///
/// # Errors
///
/// `HandshakeError` naming the first problem, in this order: magic, reserved octets,
/// serializer.
pub fn parse_client_handshake(
    h: [u8; 4],
    allowed: &[Serializer],
) -> Result<ClientHandshake, HandshakeError> {
    if h[0] != MAGIC {
        return Err(HandshakeError::BadMagic(h[0]));
    }
    if h[2] != 0 || h[3] != 0 {
        return Err(HandshakeError::ReservedBits);
    }
    let id = h[1] & 0x0F;
    if id == 0 {
        return Err(HandshakeError::ZeroSerializer);
    }
    let serializer = serializer_from_id(id)
        .filter(|s| allowed.contains(s))
        .ok_or(HandshakeError::UnsupportedSerializer(id))?;
    Ok(ClientHandshake {
        serializer,
        max_len: limit_of_exponent(h[1] >> 4),
    })
}

// ------------------------------------------------------------------------------------------
// Framing
// ------------------------------------------------------------------------------------------

/// The type (`TTT`) of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameKind {
    /// 0: a WAMP message.
    Message,
    /// 1: PING; answered with a PONG echoing the payload.
    Ping,
    /// 2: PONG.
    Pong,
}

impl FrameKind {
    /// The `TTT` bits.
    pub fn bits(self) -> u8 {
        match self {
            Self::Message => 0,
            Self::Ping => 1,
            Self::Pong => 2,
        }
    }

    /// Parses the `TTT` bits; 3..=7 are reserved.
    pub fn from_bits(bits: u8) -> Option<Self> {
        match bits {
            0 => Some(Self::Message),
            1 => Some(Self::Ping),
            2 => Some(Self::Pong),
            _ => None,
        }
    }
}

/// One RawSocket frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Frame type.
    pub kind: FrameKind,
    /// Payload (a serialized WAMP message, or ping data).
    pub payload: Bytes,
}

impl Frame {
    /// A WAMP message frame.
    pub fn message(payload: Bytes) -> Self {
        Self {
            kind: FrameKind::Message,
            payload,
        }
    }

    /// A PING frame.
    pub fn ping(payload: Bytes) -> Self {
        Self {
            kind: FrameKind::Ping,
            payload,
        }
    }

    /// A PONG frame.
    pub fn pong(payload: Bytes) -> Self {
        Self {
            kind: FrameKind::Pong,
            payload,
        }
    }
}

/// Why a frame could not be decoded or encoded.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// One of the `RRRR` bits is set.
    #[error("reserved bits set in frame header octet 0x{0:02x}")]
    ReservedBits(u8),
    /// `TTT` is 3..=7.
    #[error("reserved frame type {0}")]
    ReservedType(u8),
    /// An incoming frame over our receive limit (the connection must fail).
    #[error("frame of {len} octets exceeds the receive limit of {max}")]
    TooLong {
        /// Length from the header.
        len: usize,
        /// Our receive limit.
        max: usize,
    },
    /// An outgoing frame over the peer's receive limit (it cannot be delivered).
    #[error("outgoing frame of {len} octets exceeds the peer's limit of {max}")]
    OutgoingTooLong {
        /// Payload length.
        len: usize,
        /// The peer's receive limit.
        max: usize,
    },
    /// Socket error (or EOF inside a frame).
    #[error("i/o error")]
    Io(#[from] io::Error),
}

/// The RawSocket framer: a 4-octet header `RRRR XTTT` + 24-bit big-endian length, then the
/// payload.
///
/// Decoding checks the whole header before buffering the payload: reserved bits, reserved
/// types and a length over `recv_max` are errors as soon as the 4 header octets are present,
/// and nothing is reserved for them. It never panics on any input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawSocketCodec {
    recv_max: usize,
    send_max: usize,
}

impl RawSocketCodec {
    /// A codec accepting frames of up to `recv_max` octets and sending frames of up to
    /// `send_max` octets (both capped at 2^24).
    pub fn new(recv_max: usize, send_max: usize) -> Self {
        Self {
            recv_max: recv_max.min(MAX_FRAME_LEN),
            send_max: send_max.min(MAX_FRAME_LEN),
        }
    }

    /// Largest frame payload accepted.
    pub fn recv_max(&self) -> usize {
        self.recv_max
    }

    /// Largest frame payload sent.
    pub fn send_max(&self) -> usize {
        self.send_max
    }
}

impl Default for RawSocketCodec {
    /// Both limits at 2^24.
    fn default() -> Self {
        Self::new(MAX_FRAME_LEN, MAX_FRAME_LEN)
    }
}

/// Builds a frame header for a payload of `len` ≤ 2^24 octets.
fn header(kind: FrameKind, len: usize) -> [u8; 4] {
    debug_assert!(len <= MAX_FRAME_LEN);
    // Bit 24 of the length becomes the X bit (only set for exactly 2^24).
    let x = if len == MAX_FRAME_LEN { 0x08 } else { 0 };
    let l = (len as u32).to_be_bytes();
    [x | kind.bits(), l[1], l[2], l[3]]
}

impl Decoder for RawSocketCodec {
    type Item = Frame;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
        let Some(h) = src.get(..HEADER_LEN) else {
            return Ok(None);
        };
        if h[0] & 0xF0 != 0 {
            return Err(FrameError::ReservedBits(h[0]));
        }
        let kind =
            FrameKind::from_bits(h[0] & 0x07).ok_or(FrameError::ReservedType(h[0] & 0x07))?;
        // X is a 25th length bit: (h0 & 0x08) << 21 == 2^24.
        let len = (usize::from(h[0] & 0x08) << 21)
            | (usize::from(h[1]) << 16)
            | (usize::from(h[2]) << 8)
            | usize::from(h[3]);
        if len > self.recv_max {
            return Err(FrameError::TooLong {
                len,
                max: self.recv_max,
            });
        }
        if src.len() < HEADER_LEN + len {
            // The length is within our limit: make room for the rest of this frame only.
            src.reserve(HEADER_LEN + len - src.len());
            return Ok(None);
        }
        src.advance(HEADER_LEN);
        Ok(Some(Frame {
            kind,
            payload: src.split_to(len).freeze(),
        }))
    }
}

impl Encoder<Frame> for RawSocketCodec {
    type Error = FrameError;

    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), FrameError> {
        let len = frame.payload.len();
        if len > self.send_max {
            return Err(FrameError::OutgoingTooLong {
                len,
                max: self.send_max,
            });
        }
        dst.reserve(HEADER_LEN + len);
        dst.put_slice(&header(frame.kind, len));
        dst.put_slice(&frame.payload);
        Ok(())
    }
}

// ------------------------------------------------------------------------------------------
// Connection
// ------------------------------------------------------------------------------------------

/// Everything a RawSocket listener needs per connection.
#[derive(Debug)]
pub struct RawSocketEndpoint {
    /// Transport settings (serializers, limits, timeouts).
    pub settings: RawSocketSettings,
    /// Session settings.
    pub session: SessionConfig,
}

/// Why the server handshake failed (logged once by `serve`).
#[derive(Debug, thiserror::Error)]
enum ServeError {
    #[error("handshake refused")]
    Refused(#[source] HandshakeError),
    #[error("handshake i/o failed")]
    Io(#[source] io::Error),
}

/// Reads and checks the client handshake; writes our reply if it is acceptable.
///
/// # Cancel safety
///
/// Not cancel-safe (partial reads are lost); `serve` only drops it together with the
/// connection.
async fn accept_handshake<IO>(
    io: &mut IO,
    settings: &RawSocketSettings,
) -> Result<ClientHandshake, ServeError>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    let mut h = [0u8; HEADER_LEN];
    io.read_exact(&mut h).await.map_err(ServeError::Io)?;
    let client = parse_client_handshake(h, &settings.serializers).map_err(ServeError::Refused)?;
    let reply = handshake_reply(client.serializer, settings.max_message_size);
    io.write_all(&reply).await.map_err(ServeError::Io)?;
    Ok(client)
}

/// Sends an error reply, shuts down our side and discards input until the peer's EOF (bounded
/// by `LINGER_TIME` and `LINGER_BYTES`), so the reply is not lost to a reset.
async fn reject<IO>(mut io: IO, reply: [u8; 4])
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    if io.write_all(&reply).await.is_err() || io.shutdown().await.is_err() {
        return;
    }
    let _ = timeout(LINGER_TIME, async {
        let mut buf = [0u8; 512];
        let mut total = 0;
        while total < LINGER_BYTES {
            match io.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    })
    .await;
}

/// Serves one connection from its first octet (`0x7F`): the RawSocket handshake, then WAMP.
///
/// The caller (the universal sniffer or a standalone listener) passes the stream with nothing
/// consumed; sniffed octets are replayed by the caller. The handshake and the HELLO share one
/// deadline, `open_handshake_timeout`. Errors are logged here, at `debug`.
pub async fn serve<IO>(mut io: IO, ep: Arc<RawSocketEndpoint>, cancel: CancellationToken)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let deadline = Instant::now() + ep.settings.open_handshake_timeout;
    let handshake = tokio::select! {
        () = cancel.cancelled() => return,
        r = timeout_at(deadline, accept_handshake(&mut io, &ep.settings)) => r,
    };
    let client = match handshake {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            debug!(error = %e, cause = ?std::error::Error::source(&e), "rawsocket handshake failed");
            if let ServeError::Refused(refused) = e {
                if let Some(reply) = refused.reply() {
                    reject(io, reply).await;
                }
            }
            return;
        }
        Err(_) => {
            debug!("rawsocket handshake timed out");
            return;
        }
    };
    let recv_max = limit_of_exponent(length_exponent(ep.settings.max_message_size));
    debug!(
        serializer = client.serializer.name(),
        recv_max,
        send_max = client.max_len,
        "rawsocket handshake done"
    );
    let mut framed = Framed::with_capacity(
        io,
        RawSocketCodec::new(recv_max, client.max_len),
        IDLE_READ_BUFFER,
    );
    framed.set_backpressure_boundary(WRITE_BUFFER);
    // tokio-util starts the write buffer at 8 KiB; an idle connection needs none (it grows on
    // the first write).
    *framed.write_buffer_mut() = BytesMut::new();
    let frames = RsFrames { framed, pong: None };
    let timing = ConnTiming {
        hello_deadline: deadline,
        ping_every: ep.settings.auto_ping_interval,
        ping_timeout: ep.settings.auto_ping_timeout,
        close_wait: CLOSE_WAIT,
    };
    let session = WampSession::new(ep.session.clone());
    wamp_conn::run(frames, client.serializer, session, timing, cancel).await;
}

/// Answers a client handshake with error 4 ("maximum connection count reached") and closes.
///
/// Used by listeners over their connection limit. Reads the 4-octet handshake under a short
/// deadline first; a stream that is not RawSocket (wrong magic) or too slow is just closed.
pub async fn refuse_max_connections<IO>(mut io: IO)
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut h = [0u8; HEADER_LEN];
    match timeout(REFUSE_HANDSHAKE_TIMEOUT, io.read_exact(&mut h)).await {
        Ok(Ok(_)) if h[0] == MAGIC => {
            debug!("rawsocket connection refused: maximum connection count reached");
            reject(io, error_reply(ERR_MAX_CONNECTIONS)).await;
        }
        _ => debug!("rawsocket connection refused without a handshake"),
    }
}

/// WAMP framing over a RawSocket stream.
struct RsFrames<IO> {
    framed: Framed<IO, RawSocketCodec>,
    /// A PONG not yet in the write buffer (kept here so a cancelled `recv` does not lose it).
    pong: Option<Bytes>,
}

impl<IO> RsFrames<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// Queues the pending PONG, if any, and flushes.
    ///
    /// # Cancel safety
    ///
    /// The PONG stays in `self.pong` until it is in the write buffer, and the write buffer
    /// survives cancellation (the next flush writes it).
    async fn send_pong(&mut self) -> Result<(), FrameError> {
        if self.pong.is_none() {
            return Ok(());
        }
        poll_fn(|cx| Sink::<Frame>::poll_ready(std::pin::Pin::new(&mut self.framed), cx)).await?;
        if let Some(p) = self.pong.take() {
            self.framed.start_send_unpin(Frame::pong(p))?;
        }
        SinkExt::<Frame>::flush(&mut self.framed).await
    }
}

impl<IO> WampFrames for RsFrames<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send,
{
    async fn recv(&mut self) -> Inbound {
        if let Err(e) = self.send_pong().await {
            return Inbound::Failed(e.to_string());
        }
        // `Framed` reserves one spare byte before a read: keep room for a real read on a busy
        // connection (as the MQTT loop does), while an idle one stays at `IDLE_READ_BUFFER`.
        let rb = self.framed.read_buffer_mut();
        if rb.capacity() - rb.len() < 256 {
            rb.reserve(READ_BUFFER);
        }
        match self.framed.next().await {
            None => Inbound::Closed,
            Some(Ok(Frame {
                kind: FrameKind::Message,
                payload,
            })) => Inbound::Data(payload),
            Some(Ok(Frame {
                kind: FrameKind::Pong,
                ..
            })) => Inbound::Pong,
            Some(Ok(Frame {
                kind: FrameKind::Ping,
                payload,
            })) => {
                self.pong = Some(payload);
                match self.send_pong().await {
                    Ok(()) => Inbound::Nothing,
                    Err(e) => Inbound::Failed(e.to_string()),
                }
            }
            Some(Err(FrameError::TooLong { len, max })) => Inbound::TooBig { size: len, max },
            Some(Err(FrameError::Io(e))) => Inbound::Failed(format!("i/o error: {e}")),
            Some(Err(e)) => Inbound::Failed(e.to_string()),
        }
    }

    async fn feed(&mut self, msg: Bytes) -> Result<(), String> {
        self.framed
            .feed(Frame::message(msg))
            .await
            .map_err(|e| e.to_string())
    }

    async fn flush(&mut self) -> Result<(), String> {
        if self.pong.is_some() {
            return self.send_pong().await.map_err(|e| e.to_string());
        }
        SinkExt::<Frame>::flush(&mut self.framed)
            .await
            .map_err(|e| e.to_string())
    }

    async fn ping(&mut self) -> Result<(), String> {
        let payload = Bytes::copy_from_slice(&rand::random::<[u8; 4]>());
        self.framed
            .send(Frame::ping(payload))
            .await
            .map_err(|e| e.to_string())
    }

    async fn close(&mut self, reason: &EndReason, wait: Duration) {
        // RawSocket has no close frame. After a GOODBYE or ABORT the peer closes first (as
        // the client does in a WebSocket close handshake; Autobahn clients close the
        // transport themselves after GOODBYE): flush and wait for its EOF, then shut down.
        // Otherwise shut down our side at once and, when the peer is still there, wait for
        // its EOF so our last messages are not lost to a reset. After `wait`, `run` drops
        // (closes) the stream.
        let peer_first = matches!(reason, EndReason::SessionClosed);
        let drain = !matches!(
            reason,
            EndReason::PeerClosed | EndReason::Failed(_) | EndReason::TooBig
        );
        let _ = timeout(wait, async {
            if SinkExt::<Frame>::flush(&mut self.framed).await.is_err() {
                return;
            }
            if peer_first {
                while let Some(Ok(_)) = self.framed.next().await {}
            }
            if SinkExt::<Frame>::close(&mut self.framed).await.is_err() || !drain || peer_first {
                return;
            }
            while let Some(Ok(_)) = self.framed.next().await {}
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(codec: &mut RawSocketCodec, buf: &mut BytesMut) -> Vec<Frame> {
        let mut out = Vec::new();
        while let Some(f) = codec.decode(buf).expect("valid frames") {
            out.push(f);
        }
        out
    }

    fn encode(kind: FrameKind, payload: &[u8]) -> BytesMut {
        let mut buf = BytesMut::new();
        RawSocketCodec::default()
            .encode(
                Frame {
                    kind,
                    payload: Bytes::copy_from_slice(payload),
                },
                &mut buf,
            )
            .unwrap();
        buf
    }

    #[test]
    fn golden_headers() {
        // reference/wamp-crossbar.md §4.2: 300-octet message, 4-octet PING.
        assert_eq!(
            &encode(FrameKind::Message, &[0; 300])[..4],
            [0, 0, 0x01, 0x2C]
        );
        assert_eq!(
            &encode(FrameKind::Ping, b"abcd")[..],
            [0x01, 0, 0, 4, b'a', b'b', b'c', b'd']
        );
        assert_eq!(&encode(FrameKind::Pong, b"")[..], [0x02, 0, 0, 0]);
        assert_eq!(header(FrameKind::Message, MAX_FRAME_LEN), [0x08, 0, 0, 0]);
        assert_eq!(header(FrameKind::Ping, MAX_FRAME_LEN), [0x09, 0, 0, 0]);
        assert_eq!(
            header(FrameKind::Message, MAX_FRAME_LEN - 1),
            [0, 0xFF, 0xFF, 0xFF]
        );
    }

    #[test]
    fn round_trip() {
        let mut codec = RawSocketCodec::default();
        let mut buf = BytesMut::new();
        let frames = vec![
            Frame::message(Bytes::from_static(b"[1,\"realm1\",{}]")),
            Frame::ping(Bytes::from_static(b"xy")),
            Frame::pong(Bytes::new()),
            Frame::message(Bytes::from(vec![7u8; 70_000])),
        ];
        for f in &frames {
            codec.encode(f.clone(), &mut buf).unwrap();
        }
        assert_eq!(decode_all(&mut codec, &mut buf), frames);
        assert!(buf.is_empty());
    }

    #[test]
    fn byte_at_a_time() {
        let mut codec = RawSocketCodec::default();
        let mut wire = encode(FrameKind::Message, b"[2,1,{}]");
        wire.extend_from_slice(&encode(FrameKind::Ping, b"p"));
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in wire.iter() {
            buf.put_u8(*b);
            got.extend(decode_all(&mut codec, &mut buf));
        }
        assert_eq!(
            got,
            vec![
                Frame::message(Bytes::from_static(b"[2,1,{}]")),
                Frame::ping(Bytes::from_static(b"p")),
            ]
        );
    }

    #[test]
    fn x_bit_means_exactly_two_to_the_24() {
        let mut codec = RawSocketCodec::default();
        let mut buf = BytesMut::from(&[0x08u8, 0, 0, 0][..]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        buf.resize(HEADER_LEN + MAX_FRAME_LEN, 0xAB);
        let f = codec.decode(&mut buf).unwrap().unwrap();
        assert_eq!(f.kind, FrameKind::Message);
        assert_eq!(f.payload.len(), MAX_FRAME_LEN);
        // X with a non-zero 24-bit length describes more than 2^24: always too long.
        let mut buf = BytesMut::from(&[0x08u8, 0, 0, 1][..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(FrameError::TooLong { len, .. }) if len == MAX_FRAME_LEN + 1
        ));
    }

    #[test]
    fn encode_exactly_two_to_the_24() {
        let mut buf = BytesMut::new();
        RawSocketCodec::default()
            .encode(
                Frame::message(Bytes::from(vec![1u8; MAX_FRAME_LEN])),
                &mut buf,
            )
            .unwrap();
        assert_eq!(&buf[..4], [0x08, 0, 0, 0]);
        let f = RawSocketCodec::default().decode(&mut buf).unwrap().unwrap();
        assert_eq!(f.payload.len(), MAX_FRAME_LEN);
    }

    #[test]
    fn reserved_bits_and_types() {
        for h0 in [0x10u8, 0x20, 0x40, 0x80, 0xF0] {
            let mut buf = BytesMut::from(&[h0, 0, 0, 1, 0][..]);
            assert!(matches!(
                RawSocketCodec::default().decode(&mut buf),
                Err(FrameError::ReservedBits(b)) if b == h0
            ));
        }
        for t in 3u8..=7 {
            let mut buf = BytesMut::from(&[t, 0, 0, 0][..]);
            assert!(matches!(
                RawSocketCodec::default().decode(&mut buf),
                Err(FrameError::ReservedType(x)) if x == t
            ));
        }
    }

    #[test]
    fn too_long_is_refused_before_buffering() {
        let mut codec = RawSocketCodec::new(1024, 1024);
        let mut buf = BytesMut::with_capacity(8);
        buf.extend_from_slice(&[0, 0, 0x04, 0x01]);
        let cap = buf.capacity();
        assert!(matches!(
            codec.decode(&mut buf),
            Err(FrameError::TooLong {
                len: 1025,
                max: 1024
            })
        ));
        assert_eq!(buf.capacity(), cap, "nothing reserved for a refused frame");
        // Exactly the limit is fine, and room is made for it.
        let mut buf = BytesMut::from(&[0u8, 0, 0x04, 0x00][..]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert!(buf.capacity() >= HEADER_LEN + 1024);
    }

    #[test]
    fn outgoing_over_peer_limit() {
        let mut codec = RawSocketCodec::new(MAX_FRAME_LEN, 512);
        let mut buf = BytesMut::new();
        codec
            .encode(Frame::message(Bytes::from(vec![0u8; 512])), &mut buf)
            .unwrap();
        assert!(matches!(
            codec.encode(Frame::message(Bytes::from(vec![0u8; 513])), &mut buf),
            Err(FrameError::OutgoingTooLong { len: 513, max: 512 })
        ));
        assert_eq!(buf.len(), HEADER_LEN + 512);
    }

    #[test]
    fn handshake_parsing() {
        let all = Serializer::ALL;
        assert_eq!(
            parse_client_handshake([0x7F, 0xF1, 0, 0], &all),
            Ok(ClientHandshake {
                serializer: Serializer::Json,
                max_len: 1 << 24
            })
        );
        assert_eq!(
            parse_client_handshake([0x7F, 0x02, 0, 0], &all),
            Ok(ClientHandshake {
                serializer: Serializer::MsgPack,
                max_len: 512
            })
        );
        assert_eq!(
            parse_client_handshake([0x7F, 0xB3, 0, 0], &all).map(|c| c.max_len),
            Ok(1 << 20)
        );
        assert_eq!(
            parse_client_handshake([0x7F, 0x44, 0, 0], &all).map(|c| c.serializer),
            Ok(Serializer::UbJson)
        );
        assert_eq!(
            parse_client_handshake([0x16, 0xF1, 0, 0], &all),
            Err(HandshakeError::BadMagic(0x16))
        );
        assert_eq!(
            parse_client_handshake([0x7F, 0xF1, 0, 1], &all),
            Err(HandshakeError::ReservedBits)
        );
        assert_eq!(
            parse_client_handshake([0x7F, 0xF0, 0, 0], &all),
            Err(HandshakeError::ZeroSerializer)
        );
        for id in 5..=15 {
            assert_eq!(
                parse_client_handshake([0x7F, 0xF0 | id, 0, 0], &all),
                Err(HandshakeError::UnsupportedSerializer(id))
            );
        }
        assert_eq!(
            parse_client_handshake([0x7F, 0xF3, 0, 0], &[Serializer::Json]),
            Err(HandshakeError::UnsupportedSerializer(3))
        );
        assert_eq!(HandshakeError::BadMagic(0).reply(), None);
        assert_eq!(HandshakeError::ZeroSerializer.reply(), None);
        assert_eq!(
            HandshakeError::ReservedBits.reply(),
            Some([0x7F, 0x30, 0, 0])
        );
        assert_eq!(
            HandshakeError::UnsupportedSerializer(9).reply(),
            Some([0x7F, 0x10, 0, 0])
        );
        assert_eq!(error_reply(ERR_MAX_CONNECTIONS), [0x7F, 0x40, 0, 0]);
        assert_eq!(error_reply(ERR_MAX_LEN_UNACCEPTABLE), [0x7F, 0x20, 0, 0]);
    }

    #[test]
    fn length_exponents() {
        assert_eq!(length_exponent(0), 0);
        assert_eq!(length_exponent(1), 0);
        assert_eq!(length_exponent(512), 0);
        assert_eq!(length_exponent(513), 1);
        assert_eq!(length_exponent(1000), 1);
        assert_eq!(length_exponent(1024), 1);
        assert_eq!(length_exponent(1 << 20), 11);
        assert_eq!(length_exponent((1 << 20) + 1), 12);
        assert_eq!(length_exponent(1 << 24), 15);
        assert_eq!(length_exponent(usize::MAX), 15);
        assert_eq!(limit_of_exponent(0), 512);
        assert_eq!(limit_of_exponent(15), 1 << 24);
        assert_eq!(
            handshake_reply(Serializer::Json, 1 << 24),
            [0x7F, 0xF1, 0, 0]
        );
        assert_eq!(
            handshake_reply(Serializer::Cbor, 1 << 20),
            [0x7F, 0xB3, 0, 0]
        );
    }
}
