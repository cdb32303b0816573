//! The verified payload every benchmark message carries.
//!
//! Layout (ASCII, so it is the same string in JSON, msgpack and CBOR, and valid UTF-8 for the
//! MQTT ↔ WAMP `utf8` mapping):
//!
//! ```text
//! offset 0      'J'
//!        1..3   publisher id, 2 hex digits
//!        3..15  sequence number, 12 hex digits
//!        15..31 send time, ns since the benchmark's epoch, 16 hex digits
//!        31..39 FNV-1a 32 checksum of every other byte, 8 hex digits
//!        39..   padding 'a'..'z' derived from the sequence number
//! ```
//!
//! A delivery whose length, marker, hex fields or checksum is wrong is *corrupted*.

/// Smallest payload size.
pub const MIN_SIZE: usize = 39;

const CRC_AT: usize = 31;
const CRC_END: usize = 39;

/// A decoded, checked payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// Publisher index.
    pub publisher: u8,
    /// Sequence number (0-based, per publisher).
    pub seq: u64,
    /// Send time in ns since the benchmark epoch.
    pub sent_ns: u64,
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn put_hex(out: &mut [u8], mut v: u64) {
    for b in out.iter_mut().rev() {
        *b = HEX[(v & 0xf) as usize];
        v >>= 4;
    }
}

fn get_hex(s: &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for &b in s {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        v = v << 4 | u64::from(d);
    }
    Some(v)
}

fn fnv(parts: [&[u8]; 2]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for part in parts {
        for &b in part {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    h
}

/// Appends a payload of `size` bytes (at least [`MIN_SIZE`]) to `out`.
pub fn write(out: &mut Vec<u8>, size: usize, stamp: Stamp) {
    let size = size.max(MIN_SIZE);
    let start = out.len();
    out.resize(start + size, 0);
    let p = &mut out[start..];
    p[0] = b'J';
    put_hex(&mut p[1..3], u64::from(stamp.publisher));
    put_hex(&mut p[3..15], stamp.seq & 0xffff_ffff_ffff);
    put_hex(&mut p[15..31], stamp.sent_ns);
    for (i, b) in p[CRC_END..].iter_mut().enumerate() {
        *b = b'a' + ((stamp.seq as usize + i) % 26) as u8;
    }
    let crc = fnv([&p[..CRC_AT], &p[CRC_END..]]);
    put_hex(&mut p[CRC_AT..CRC_END], u64::from(crc));
}

/// Checks a received payload of expected `size`; `None` means corrupted.
pub fn check(p: &[u8], size: usize) -> Option<Stamp> {
    if p.len() != size.max(MIN_SIZE) || p[0] != b'J' {
        return None;
    }
    let crc = get_hex(&p[CRC_AT..CRC_END])?;
    if u64::from(fnv([&p[..CRC_AT], &p[CRC_END..]])) != crc {
        return None;
    }
    let seq = get_hex(&p[3..15])?;
    for (i, &b) in p[CRC_END..].iter().enumerate() {
        if b != b'a' + ((seq as usize + i) % 26) as u8 {
            return None;
        }
    }
    Some(Stamp {
        publisher: get_hex(&p[1..3])? as u8,
        seq,
        sent_ns: get_hex(&p[15..31])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_corruption() {
        for size in [MIN_SIZE, 64, 1000] {
            let mut v = Vec::new();
            let s = Stamp {
                publisher: 7,
                seq: 123_456,
                sent_ns: 987_654_321,
            };
            write(&mut v, size, s);
            assert_eq!(v.len(), size);
            assert_eq!(check(&v, size), Some(s));
            for i in 0..v.len() {
                let mut w = v.clone();
                w[i] ^= 0x01;
                assert_eq!(check(&w, size), None, "flip at {i}");
            }
            assert_eq!(check(&v[..size - 1], size), None);
        }
    }
}
