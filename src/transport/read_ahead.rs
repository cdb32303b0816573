//! A read-ahead buffer that holds memory only while data is waiting.
//!
//! tungstenite keeps a read buffer of its own for the whole life of a WebSocket, allocated when
//! the connection starts, and it reads from the socket at most that much per call. A large one
//! costs every idle connection its size; a small one costs a busy connection a `read` system
//! call every few frames. Under it this adapter reads the socket in `CHUNK`-sized reads (onto
//! the stack) and keeps on the heap only what the reader has not taken yet, released as soon as
//! it has, so tungstenite's own buffer can be small: idle connections hold neither, busy ones
//! still read the socket in large pieces.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

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
            // Read a chunk onto the stack (uninitialized: no memset, no allocation while the
            // socket has nothing); only what the reader cannot take now is kept on the heap.
            let mut chunk = [MaybeUninit::<u8>::uninit(); CHUNK];
            let mut rb = ReadBuf::uninit(&mut chunk);
            ready!(Pin::new(&mut this.io).poll_read(cx, &mut rb))?;
            let data = rb.filled();
            let n = out.remaining().min(data.len());
            out.put_slice(&data[..n]);
            if n < data.len() {
                this.buf.extend_from_slice(&data[n..]);
            }
            return Poll::Ready(Ok(()));
        }
        let n = out.remaining().min(this.buf.len());
        out.put_slice(&this.buf[..n]);
        this.buf.advance(n);
        if this.buf.is_empty() {
            // Drained: hold no memory until the next burst.
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
