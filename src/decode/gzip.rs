//! Size-capped, multi-member gzip inflation (zlib-rs backend through `flate2`).
//!
//! CloudTrail objects may hold several gzip members; all are read. Output stops at the cap, and
//! the stream is checked as it grows: JSON never contains a raw NUL byte, so the classic
//! "gigabytes of zeros" bomb is refused after its first chunk instead of filling memory.

use std::io::Read;

use flate2::read::MultiGzDecoder;

/// Inflated bytes are appended in steps of this size, each step checked.
const CHUNK: u64 = 256 * 1024;

/// Why inflation stopped early.
#[derive(Debug, thiserror::Error)]
pub enum GzipError {
    /// The stream is damaged: truncated, bad CRC, bad header, trailing garbage.
    #[error("gzip stream is damaged after {decoded} decompressed bytes")]
    Damaged {
        /// Bytes successfully inflated before the damage.
        decoded: usize,
        /// The decoder's complaint.
        #[source]
        source: std::io::Error,
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
/// inspected.
pub fn inflate_capped(compressed: &[u8], cap: u64, out: &mut Vec<u8>) -> Result<(), GzipError> {
    out.clear();
    let mut decoder = MultiGzDecoder::new(compressed);
    loop {
        let before = out.len();
        let step = CHUNK.min(cap + 1 - before as u64);
        let read = (&mut decoder).take(step).read_to_end(out);
        if let Some(offset) = memchr::memchr(0, &out[before..]) {
            return Err(GzipError::NotText { offset: before + offset });
        }
        match read {
            Ok(0) => return Ok(()),
            Ok(_) if out.len() as u64 > cap => {
                out.truncate(cap as usize);
                return Err(GzipError::TooLarge { cap });
            }
            Ok(_) => {}
            Err(source) => return Err(GzipError::Damaged { decoded: out.len(), source }),
        }
    }
}
