//! A read-ahead buffer that holds memory only while data is waiting.
//!
//! tungstenite keeps a read buffer of its own for the whole life of a WebSocket, allocated when
//! the connection starts, and it reads from the socket at most that much per call. A large one
//! costs every idle connection its size; a small one costs a busy connection a `read` system
//! call every few frames. Under it this adapter reads the socket in `CHUNK`-sized reads into a
//! buffer it allocates only for that read and releases as soon as the reader has taken
//! everything, so tungstenite's own buffer can be small: idle connections hold neither, busy
//! ones still read the socket in large pieces.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Bytes read from the socket at once.
const CHUNK: usize = 4 * 1024;

/// `io` with a read-ahead buffer that exists only while it holds data.
#[derive(Debug)]
pub struct ReadAhead<IO> {
    io: IO,
    buf: BytesMut,
}

impl<IO> ReadAhead<IO> {
    /// Wraps `io`.
    pub fn new(io: IO) -> Self {
        Self {
            io,
            buf: BytesMut::new(),
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for ReadAhead<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        out: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.buf.is_empty() {
            // A reader asking for a whole chunk or more gets the socket directly.
            if out.remaining() >= CHUNK {
                return Pin::new(&mut this.io).poll_read(cx, out);
            }
            // Zeroed rather than uninitialized: the crate has no `unsafe`, and 4 KiB of memset
            // per read system call is cheap next to the call.
            this.buf.resize(CHUNK, 0);
            let mut rb = ReadBuf::new(&mut this.buf[..]);
            match Pin::new(&mut this.io).poll_read(cx, &mut rb) {
                Poll::Ready(Ok(())) => {
                    let n = rb.filled().len();
                    this.buf.truncate(n);
                }
                Poll::Ready(Err(e)) => {
                    this.buf = BytesMut::new();
                    return Poll::Ready(Err(e));
                }
                Poll::Pending => {
                    // Nothing arrived: hold no memory while waiting.
                    this.buf = BytesMut::new();
                    return Poll::Pending;
                }
            }
            if this.buf.is_empty() {
                // End of stream.
                this.buf = BytesMut::new();
                return Poll::Ready(Ok(()));
            }
        }
        let n = out.remaining().min(this.buf.len());
        out.put_slice(&this.buf[..n]);
        this.buf.advance(n);
        if this.buf.is_empty() {
            this.buf = BytesMut::new();
        }
        Poll::Ready(Ok(()))
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for ReadAhead<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn small_reads_come_from_one_chunk_and_memory_goes_when_drained() {
        let (mut a, b) = tokio::io::duplex(64 * 1024);
        let mut r = ReadAhead::new(b);
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        a.write_all(&data).await.unwrap();
        drop(a);
        let mut got = Vec::new();
        let mut small = [0u8; 100];
        loop {
            let n = r.read(&mut small).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&small[..n]);
            if r.buf.is_empty() {
                assert_eq!(r.buf.capacity(), 0, "drained buffer released");
            }
        }
        assert_eq!(got, data);
        assert_eq!(r.buf.capacity(), 0);
    }

    #[tokio::test]
    async fn large_reads_bypass_the_buffer() {
        let (mut a, b) = tokio::io::duplex(64 * 1024);
        let mut r = ReadAhead::new(b);
        a.write_all(&[7u8; 9000]).await.unwrap();
        let mut big = vec![0u8; 8192];
        let n = r.read(&mut big).await.unwrap();
        assert!(n > 0 && big[..n].iter().all(|b| *b == 7));
        assert_eq!(r.buf.capacity(), 0);
    }
}
