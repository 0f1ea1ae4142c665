//! Helpers shared by the S3 ransomware rules: SSE-C detection and copy-source parsing.

use percent_encoding::percent_decode_str;

use crate::event::shape::{get_any, text, text_at};
use crate::event::Event;

/// SSE-C writes are aggregated per (principal, bucket) over this event-time window (SPEC §2.1):
/// the first alerts at once, the rest of the burst becomes one update.
pub const SSE_C_MERGE_WINDOW_MINUTES: i64 = 15;

/// The aggregation group of an SSE-C write: the principal's identity (a role, not its
/// session: [`crate::event::principal_identity`]) and the bucket. The known-writer record uses
/// the same pair.
pub fn principal_and_bucket(event: &Event<'_>, bucket: &str) -> String {
    format!("{}|{bucket}", event.principal_identity().as_deref().unwrap_or("?"))
}

/// The request header that carries the SSE-C algorithm.
pub const SSE_C_ALGORITHM: &str = "x-amz-server-side-encryption-customer-algorithm";

/// True when the call used a customer-provided key: the SSE-C algorithm header is in the request,
/// or `additionalEventData.SSEApplied` says `SSE_C`. (`x-amz-server-side-encryption: AES256` in
/// the response is SSE-S3, not SSE-C.)
pub fn uses_sse_c(event: &Event<'_>) -> bool {
    let header = event.request.and_then(|r| text_at(r, &[SSE_C_ALGORITHM])).is_some_and(|v| !v.trim().is_empty());
    let applied = event.additional.and_then(|a| text(get_any(a, &["SSEApplied"]))) == Some("SSE_C");
    header || applied
}

/// Whether a record not parsed yet can carry SSE-C at all: the algorithm header or `SSE_C`
/// appears in the raw text of its request or additional data (the only places [`uses_sse_c`]
/// reads), or that text has `\u` escapes (which could spell either; CloudTrail does not write
/// them there). Lets the SSE-C rules skip parsing the bulk of S3 object writes; looking at the
/// two bodies rather than the whole record is a tenth of the bytes.
pub fn raw_may_use_sse_c(event: &Event<'_>) -> bool {
    use memchr::memmem::Finder;
    // Built once: building a searcher per event cost as much as the search.
    static NEEDLES: std::sync::LazyLock<[Finder<'static>; 3]> =
        std::sync::LazyLock::new(|| [Finder::new(b"customer-algorithm"), Finder::new(b"SSE_C"), Finder::new(b"\\u")]);
    let bodies = [event.request_raw, event.additional_raw];
    bodies.into_iter().flatten().any(|raw| NEEDLES.iter().any(|needle| needle.find(raw).is_some()))
}

/// `requestParameters.bucketName`.
pub fn bucket<'a>(event: &Event<'a>) -> Option<&'a str> {
    event.request.and_then(|r| text_at(r, &["bucketName"]))
}

/// `requestParameters.key`.
pub fn key<'a>(event: &Event<'a>) -> Option<&'a str> {
    event.request.and_then(|r| text_at(r, &["key"]))
}

/// A parsed `x-amz-copy-source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySource {
    /// `bucket/key`, percent-decoded, without a leading `/`.
    pub path: String,
    /// The `versionId` query parameter, when given.
    pub version_id: Option<String>,
}

/// Parses `x-amz-copy-source`: percent-decoded, leading `/` removed, `?versionId=…` split off.
/// `None` when the header is absent or does not decode to UTF-8.
pub fn copy_source(event: &Event<'_>) -> Option<CopySource> {
    let raw = event.request.and_then(|r| text_at(r, &["x-amz-copy-source"]))?;
    let (path, query) = match raw.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (raw, None),
    };
    let path = percent_decode_str(path).decode_utf8().ok()?;
    let version_id = query.and_then(|q| {
        q.split('&')
            .find_map(|pair| pair.strip_prefix("versionId="))
            .map(|v| percent_decode_str(v).decode_utf8().map(|s| s.into_owned()).unwrap_or_else(|_| v.to_owned()))
    });
    Some(CopySource { path: path.trim_start_matches('/').to_owned(), version_id })
}

/// True when the copy writes onto its own source (`bucket/key` equal).
pub fn is_in_place(event: &Event<'_>, source: &CopySource) -> bool {
    match (bucket(event), key(event)) {
        (Some(bucket), Some(key)) => {
            source.path.len() == bucket.len() + 1 + key.len()
                && source.path.starts_with(bucket)
                && source.path.as_bytes()[bucket.len()] == b'/'
                && source.path.ends_with(key)
        }
        _ => false,
    }
}

/// The object ARN for summaries and resources.
pub fn object_arn(bucket: &str, key: &str) -> String {
    format!("arn:aws:s3:::{bucket}/{key}")
}
