//! A bounds-checked cursor over one message payload, shared by the binary decoders.
//!
//! Every read checks the remaining input first, so a decoder built on it cannot index out of
//! bounds and never allocates for a length the input cannot back (`take` fails with
//! `LengthTooLarge` before any copy).

use super::{DecodeError, MAX_DEPTH};

/// A cursor over a byte slice.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes not consumed yet.
    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next byte, without consuming it.
    pub(crate) fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    /// Consumes one byte.
    pub(crate) fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = self.peek().ok_or(DecodeError::UnexpectedEof)?;
        self.pos += 1;
        Ok(b)
    }

    /// Consumes a fixed-width field (a number); a short input is `UnexpectedEof`.
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let end = self.pos.checked_add(N).ok_or(DecodeError::UnexpectedEof)?;
        let bytes = self
            .buf
            .get(self.pos..end)
            .ok_or(DecodeError::UnexpectedEof)?;
        self.pos = end;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Consumes `len` bytes whose length was declared by the peer; a length beyond the input is
    /// `LengthTooLarge` (checked before anything is copied or allocated).
    pub(crate) fn take(&mut self, len: usize) -> Result<&'a [u8], DecodeError> {
        if len > self.remaining() {
            return Err(DecodeError::LengthTooLarge);
        }
        let out = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(out)
    }

    /// Consumes `len` declared bytes that must be UTF-8.
    pub(crate) fn take_str(&mut self, len: usize) -> Result<&'a str, DecodeError> {
        std::str::from_utf8(self.take(len)?).map_err(|_| DecodeError::InvalidUtf8)
    }

    /// Checks a declared element count: each element needs at least `min_width` bytes.
    pub(crate) fn check_count(&self, count: usize, min_width: usize) -> Result<(), DecodeError> {
        match count.checked_mul(min_width) {
            Some(need) if need <= self.remaining() => Ok(()),
            _ => Err(DecodeError::LengthTooLarge),
        }
    }

    /// Fails with `TrailingBytes` unless the whole input was consumed.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.remaining() == 0 {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes)
        }
    }
}

/// The depth of the elements of a container opened at `depth`, or `TooDeep`.
///
/// `depth` counts the containers enclosing the one being opened, so at most `MAX_DEPTH`
/// containers nest.
pub(crate) fn enter(depth: usize) -> Result<usize, DecodeError> {
    if depth >= MAX_DEPTH {
        Err(DecodeError::TooDeep)
    } else {
        Ok(depth + 1)
    }
}
