//! Size-capped, multi-member gzip inflation (zlib-rs backend through `flate2`) of a whole
//! buffer: the decompressor's own speed, which the benchmarks compare decoding with. Decoding
//! itself inflates a chunk at a time through [`super::window`], with the same checks.
//!
//! CloudTrail objects may hold several gzip members; all are read. Output stops at the cap, and
//! the stream is checked as it grows: JSON never contains a raw NUL byte, so the classic
//! "gigabytes of zeros" bomb is refused after its first chunk instead of filling memory.

// The one place allowed to decompress (see clippy.toml).
#![allow(clippy::disallowed_types)]

use flate2::{Decompress, FlushDecompress, Status};

/// Inflated bytes are appended in steps of this size, each step checked.
const CHUNK: u64 = 256 * 1024;

/// Why inflation stopped early.
#[derive(Debug, thiserror::Error)]
pub enum GzipError {
    /// The stream is damaged: bad CRC, bad header, corrupt data, trailing garbage.
    #[error("gzip stream is damaged after {decoded} decompressed bytes")]
    Damaged {
        /// Bytes successfully inflated before the damage.
        decoded: usize,
        /// The decoder's complaint.
        #[source]
        source: flate2::DecompressError,
    },
    /// The stream ends before its last member does.
    #[error("gzip stream is truncated after {decoded} decompressed bytes")]
    Truncated {
        /// Bytes inflated before the end.
        decoded: usize,
    },
    /// The decompressed size passed the cap.
    #[error("decompressed size exceeds the cap of {cap} bytes")]
    TooLarge {
        /// The cap in bytes.
        cap: u64,
    },
    /// The decompressed stream contains a NUL byte, which JSON never does.
    #[error("decompressed content is not text (NUL byte at offset {offset})")]
    NotText {
        /// Offset of the first NUL byte.
        offset: usize,
    },
}

/// True when `bytes` start with the gzip magic number.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// Inflates every member of `compressed` into `out` (cleared first), at most `cap` bytes.
/// On error, `out` keeps what was inflated before the problem so complete records can still be
/// inspected. Output goes straight into `out`'s spare capacity (no zero-filling), which grows
/// geometrically but never past `cap + 1` bytes.
pub fn inflate_capped(compressed: &[u8], cap: u64, out: &mut Vec<u8>) -> Result<(), GzipError> {
    out.clear();
    let limit = usize::try_from(cap).unwrap_or(usize::MAX - 1).saturating_add(1);
    let mut input = compressed;
    // One decompressor per gzip member: zlib-rs checks each member's header, CRC and length.
    let mut member = Decompress::new_gzip(15);
    loop {
        grow_within(out, limit);
        let (in_before, out_before) = (member.total_in(), out.len());
        let status = member.decompress_vec(input, out, FlushDecompress::None);
        input = &input[(member.total_in() - in_before) as usize..];
        if let Some(offset) = memchr::memchr(0, &out[out_before..]) {
            return Err(GzipError::NotText { offset: out_before + offset });
        }
        if out.len() > cap as usize {
            out.truncate(cap as usize);
            return Err(GzipError::TooLarge { cap });
        }
        match status {
            Err(source) => return Err(GzipError::Damaged { decoded: out.len(), source }),
            Ok(Status::StreamEnd) if input.is_empty() => return Ok(()),
            Ok(Status::StreamEnd) => member = Decompress::new_gzip(15),
            Ok(_) if input.is_empty() && out.len() < out.capacity() => {
                return Err(GzipError::Truncated { decoded: out.len() });
            }
            Ok(_) => {}
        }
    }
}

/// Makes room for at least one more chunk, doubling capacity, never past `limit` bytes.
fn grow_within(out: &mut Vec<u8>, limit: usize) {
    if out.capacity() - out.len() >= CHUNK as usize / 4 || out.capacity() >= limit {
        return;
    }
    let wanted = (out.capacity() * 2).max(out.len() + CHUNK as usize).min(limit);
    out.reserve_exact(wanted - out.len());
}
