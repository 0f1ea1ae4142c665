//! The sliding window of decompressed text the envelope scanner reads from.
//!
//! An object is never held whole once inflated: the window pulls the next [`CHUNK`] of text
//! (inflated from gzip, or copied from a reader) when the scanner runs out, and drops what the
//! scanner no longer needs first. The scanner keeps at most one record (up to the record cap)
//! and the object that encloses it, so a decompression bomb or a 200 MB record costs a few
//! megabytes, not its size. A plain object already in memory is read in place, without a window.

// The one place allowed to decompress (see clippy.toml).
#![allow(clippy::disallowed_types)]

use std::io::Read;

use flate2::{Decompress, FlushDecompress, Status};

use super::gzip::{self, GzipError};
use super::ObjectError;

/// Text is added to the window this many bytes at a time. Small enough to stay in cache between
/// inflating and scanning, large enough that a record cut by the window's end is rare.
pub const CHUNK: usize = 512 * 1024;

/// A gzip object in memory whose one member inflates to at most this many bytes (its trailer
/// says how many) is inflated whole by libdeflate, about twice as fast as zlib-rs streaming
/// here; larger or damaged ones stream. CloudTrail objects are far smaller, and the bound is what
/// each decoding thread may hold.
pub const WHOLE_MEMBER_LIMIT: usize = 32 << 20;

/// Compressed (or plain) bytes are read from a reader this many at a time.
const READ_CHUNK: usize = 256 * 1024;

/// A window that grew past this (a record near the cap) is shrunk back after its object, so one
/// odd object does not keep a decoding thread's memory high.
const KEEP_CAPACITY: usize = 4 * CHUNK;

/// Where an object's bytes come from.
pub enum Source<'s> {
    /// The whole object, in memory.
    Bytes(&'s [u8]),
    /// A stream (a local file), read a chunk at a time.
    Reader(&'s mut dyn Read),
}

/// The buffers a window fills, kept by the decoder from one object to the next.
#[derive(Default)]
pub struct Buffers {
    /// The window's text.
    text: Vec<u8>,
    /// Bytes read from a reader, not yet inflated or copied.
    read: Vec<u8>,
    /// A whole inflated member (never shrunk in length, so never zeroed twice).
    whole: Vec<u8>,
    /// libdeflate's state, made once per thread.
    inflater: Option<libdeflater::Decompressor>,
}

/// What the scanner sees: the text held, where it sits in the object, and whether more can come.
#[derive(Clone, Copy)]
pub struct View<'t> {
    /// The text held.
    pub text: &'t [u8],
    /// Offset of `text[0]` in the object's decompressed text.
    pub base: usize,
    /// True when nothing follows `text`.
    pub eof: bool,
    /// The longest prefix of `text` that is valid UTF-8, checked once per window (SIMD) so
    /// that the walker's strings are slices of it rather than checked one by one.
    pub utf8: &'t str,
}

impl View<'_> {
    /// Offset just past the text held.
    pub fn end(&self) -> usize {
        self.base + self.text.len()
    }

    /// The byte at object offset `at`, if held.
    pub fn get(&self, at: usize) -> Option<u8> {
        self.text.get(at.checked_sub(self.base)?).copied()
    }
}

/// The longest prefix of `text` that is valid UTF-8 (a character cut by the window's end, or
/// invalid bytes in a record, end it; what follows is checked record by record).
pub fn utf8_prefix(text: &[u8]) -> &str {
    match simdutf8::compat::from_utf8(text) {
        Ok(valid) => valid,
        Err(error) => simdutf8::basic::from_utf8(&text[..error.valid_up_to()]).unwrap_or_default(),
    }
}

/// Raw bytes still to be read: a slice, or a reader with its read buffer.
enum Raw<'s, 'b> {
    Slice(&'s [u8]),
    /// `buf[start..end]` is read and not yet consumed; `buf` is the decoder's, zeroed once.
    Reader {
        reader: &'s mut dyn Read,
        buf: &'b mut Vec<u8>,
        start: usize,
        end: usize,
        done: bool,
    },
}

impl Raw<'_, '_> {
    /// The unread bytes held (reading more when none are), empty at the end.
    fn available(&mut self) -> std::io::Result<&[u8]> {
        match self {
            Raw::Slice(rest) => Ok(rest),
            Raw::Reader { reader, buf, start, end, done } => {
                if *start == *end && !*done {
                    if buf.is_empty() {
                        buf.resize(READ_CHUNK, 0);
                    }
                    let read = loop {
                        match reader.read(buf) {
                            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                            other => break other,
                        }
                    };
                    // Nothing is held after a failed read.
                    (*start, *end) = (0, 0);
                    *end = read?;
                    *done = *end == 0;
                }
                Ok(&buf[*start..*end])
            }
        }
    }

    fn consume(&mut self, n: usize) {
        match self {
            Raw::Slice(rest) => *rest = &rest[n..],
            Raw::Reader { start, .. } => *start += n,
        }
    }
}

/// How text is produced from the raw bytes.
enum Decompression {
    /// Plain text held in memory: the window is the slice itself.
    InPlace,
    /// A whole gzip member inflated at once: the window is `whole[start..end]`.
    Whole { start: usize, end: usize },
    /// Plain text from a reader, copied into the window.
    Copy,
    /// Gzip, one member after another.
    Gzip(Box<Decompress>),
}

/// The window over one object's decompressed text.
pub struct Window<'s, 'b> {
    buf: &'b mut Vec<u8>,
    whole: &'b mut Vec<u8>,
    inflater: &'b mut Option<libdeflater::Decompressor>,
    in_place: &'s [u8],
    base: usize,
    raw: Raw<'s, 'b>,
    decompression: Decompression,
    cap: u64,
    chunk: usize,
    raw_read: u64,
    eof: bool,
    damage: Option<ObjectError>,
}

impl<'s, 'b> Window<'s, 'b> {
    /// Opens `source`, sniffing gzip from its first bytes, and fills the first chunk. `buf` is
    /// the caller's reusable buffer; `cap` bounds the decompressed text.
    /// `chunk` is how much text is added at a time ([`CHUNK`] but in tests). `buffers` are the
    /// caller's, reused from one object to the next: the text, and the bytes read from a reader.
    pub fn open(source: Source<'s>, buffers: &'b mut Buffers, cap: u64, chunk: usize) -> Window<'s, 'b> {
        let Buffers { text: buf, read, whole, inflater } = buffers;
        buf.clear();
        let (raw, in_place) = match source {
            Source::Bytes(bytes) => (Raw::Slice(bytes), bytes),
            Source::Reader(reader) => (Raw::Reader { reader, buf: read, start: 0, end: 0, done: false }, &[][..]),
        };
        let mut window = Window {
            buf,
            whole,
            inflater,
            in_place,
            base: 0,
            raw,
            decompression: Decompression::Copy,
            cap,
            chunk: chunk.max(1),
            raw_read: 0,
            eof: false,
            damage: None,
        };
        window.sniff();
        window
    }

    /// Decides the decompression from the first bytes, then reads the first chunk.
    fn sniff(&mut self) {
        let head = match self.raw.available() {
            Ok(head) => head,
            Err(error) => return self.stop(ObjectError::Read(error)),
        };
        if head.is_empty() {
            return self.stop(ObjectError::Empty);
        }
        if gzip::is_gzip(head) {
            if let Raw::Slice(bytes) = self.raw {
                if self.inflate_whole(bytes) {
                    return self.strip_bom();
                }
            }
            self.decompression = Decompression::Gzip(Box::new(Decompress::new_gzip(15)));
        } else if let Raw::Slice(bytes) = self.raw {
            if bytes.len() as u64 > self.cap {
                return self.stop(ObjectError::TooLarge { cap: self.cap });
            }
            self.decompression = Decompression::InPlace;
            self.raw_read = bytes.len() as u64;
            self.eof = true;
        }
        self.fill();
        self.strip_bom();
    }

    /// Inflates a gzip object of one member whole, when its trailer's size is within
    /// [`WHOLE_MEMBER_LIMIT`] and the cap. False (nothing changed) when it is not such an
    /// object or anything is wrong with it: streaming then reads it and says exactly what.
    fn inflate_whole(&mut self, bytes: &[u8]) -> bool {
        let Some(trailer) = bytes.len().checked_sub(4).and_then(|at| bytes.get(at..)) else { return false };
        let size = u32::from_le_bytes(trailer.try_into().unwrap_or_default()) as usize;
        if size == 0 || size > WHOLE_MEMBER_LIMIT || size as u64 > self.cap {
            return false;
        }
        if self.whole.len() < size {
            self.whole.resize(size, 0);
        }
        let inflater = self.inflater.get_or_insert_with(libdeflater::Decompressor::new);
        // One member exactly (libdeflate refuses trailing bytes), its CRC and size checked.
        match inflater.gzip_decompress(bytes, &mut self.whole[..size]) {
            Ok(inflated) if inflated == size && memchr::memchr(0, &self.whole[..size]).is_none() => {
                self.decompression = Decompression::Whole { start: 0, end: size };
                self.raw_read = bytes.len() as u64;
                self.eof = true;
                true
            }
            _ => false,
        }
    }

    /// A UTF-8 byte-order mark is not part of the text: offsets count from after it.
    fn strip_bom(&mut self) {
        const BOM: &[u8] = b"\xEF\xBB\xBF";
        match &mut self.decompression {
            Decompression::InPlace => self.in_place = self.in_place.strip_prefix(BOM).unwrap_or(self.in_place),
            Decompression::Whole { start, end } if self.whole[*start..*end].starts_with(BOM) => *start += BOM.len(),
            _ if self.buf.starts_with(BOM) => _ = self.buf.drain(..BOM.len()),
            _ => {}
        }
    }

    /// What the scanner can read now.
    pub fn view(&self) -> View<'_> {
        let text = match self.decompression {
            Decompression::InPlace => self.in_place,
            Decompression::Whole { start, end } => &self.whole[start..end],
            _ => self.buf.as_slice(),
        };
        View { text, base: self.base, eof: self.eof, utf8: utf8_prefix(text) }
    }

    /// True when the object was gzip.
    pub fn is_gzip(&self) -> bool {
        matches!(self.decompression, Decompression::Gzip(_) | Decompression::Whole { .. })
    }

    /// Bytes of the object read so far, as stored.
    pub fn stored_bytes(&self) -> u64 {
        self.raw_read
    }

    /// Bytes of text produced so far (after a byte-order mark).
    pub fn text_bytes(&self) -> u64 {
        (self.base + self.view().text.len()) as u64
    }

    /// Why the text ended early, if it did (taken once).
    pub fn take_damage(&mut self) -> Option<ObjectError> {
        self.damage.take()
    }

    /// Drops the text before object offset `keep_from` and adds the next chunk. Returns false
    /// when nothing more can come (the end, or damage: see [`Window::take_damage`]).
    pub fn refill(&mut self, keep_from: usize) -> bool {
        if self.eof {
            return false;
        }
        let drop = keep_from.saturating_sub(self.base).min(self.buf.len());
        if drop > 0 {
            self.buf.drain(..drop);
            self.base += drop;
        }
        let before = self.buf.len();
        self.fill();
        self.buf.len() > before || !self.eof
    }

    /// Releases a window that grew large for one object.
    pub fn finish(self) {
        if self.buf.capacity() > KEEP_CAPACITY {
            self.buf.clear();
            self.buf.shrink_to(KEEP_CAPACITY);
        }
    }

    fn stop(&mut self, damage: ObjectError) {
        self.eof = true;
        self.damage.get_or_insert(damage);
    }

    /// Adds at least one chunk of text (less at the end), or as much as is held already: a
    /// record that keeps running past the window is then read again only a few times, not once
    /// per chunk.
    fn fill(&mut self) {
        let target = self.buf.len() + self.chunk.max(self.buf.len());
        while !self.eof && self.buf.len() < target {
            let fresh = self.buf.len();
            let step = match &mut self.decompression {
                Decompression::InPlace | Decompression::Whole { .. } => return,
                Decompression::Copy => self.copy_some(),
                Decompression::Gzip(member) => {
                    let room = target - self.buf.len();
                    inflate_some(member, &mut self.raw, self.buf, room, &mut self.raw_read)
                }
            };
            // JSON never holds a raw NUL byte: a gzip stream of zeros (the classic bomb) is
            // refused at its first chunk. Plain text is left to the scanner, which names the byte.
            if self.is_gzip() {
                if let Some(at) = memchr::memchr(0, &self.buf[fresh..]) {
                    self.buf.truncate(fresh + at);
                    return self.stop(GzipError::NotText { offset: self.base + fresh + at }.into());
                }
            }
            if self.text_bytes() > self.cap {
                let cap = self.cap;
                self.buf.truncate((cap - self.base as u64) as usize);
                return self.stop(if self.is_gzip() {
                    GzipError::TooLarge { cap }.into()
                } else {
                    ObjectError::TooLarge { cap }
                });
            }
            let decoded = self.base + self.buf.len();
            match step {
                Ok(true) => {}
                Ok(false) => self.eof = true,
                Err(Stop::Read(error)) => self.stop(ObjectError::Read(error)),
                Err(Stop::Damaged(source)) => self.stop(GzipError::Damaged { decoded, source }.into()),
                Err(Stop::Truncated) => self.stop(GzipError::Truncated { decoded }.into()),
            }
        }
    }

    /// Copies plain bytes from the reader; false at the end.
    fn copy_some(&mut self) -> Result<bool, Stop> {
        let bytes = self.raw.available().map_err(Stop::Read)?;
        if bytes.is_empty() {
            return Ok(false);
        }
        let n = bytes.len();
        self.buf.extend_from_slice(bytes);
        self.raw.consume(n);
        self.raw_read += n as u64;
        Ok(true)
    }
}

/// Why producing text stopped early.
enum Stop {
    /// The reader failed.
    Read(std::io::Error),
    /// The gzip stream is damaged.
    Damaged(flate2::DecompressError),
    /// The gzip stream ends inside a member.
    Truncated,
}

/// Inflates into `out`'s spare room (no zero-filling) from `raw`; false when the last member
/// ended with the input. One decompressor per member: zlib-rs checks each header, CRC and length.
fn inflate_some(
    member: &mut Decompress,
    raw: &mut Raw<'_, '_>,
    out: &mut Vec<u8>,
    room: usize,
    raw_read: &mut u64,
) -> Result<bool, Stop> {
    out.reserve(room);
    let input = raw.available().map_err(Stop::Read)?;
    let input_was_empty = input.is_empty();
    let (in_before, out_before) = (member.total_in(), out.len());
    let status = member.decompress_vec(input, out, FlushDecompress::None);
    let consumed = (member.total_in() - in_before) as usize;
    raw.consume(consumed);
    *raw_read += consumed as u64;
    match status {
        Err(source) => Err(Stop::Damaged(source)),
        Ok(Status::StreamEnd) => {
            if raw.available().map_err(Stop::Read)?.is_empty() {
                return Ok(false);
            }
            *member = Decompress::new_gzip(15);
            Ok(true)
        }
        // No input left and no output made: the stream ends inside a member.
        Ok(_) if input_was_empty && out.len() == out_before => Err(Stop::Truncated),
        Ok(_) => Ok(true),
    }
}
