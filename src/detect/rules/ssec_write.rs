//! `s3.ssec_write` — any other write with a customer-provided key (SSE-C).
//!
//! **What it catches.** `PutObject`, `CopyObject` to another key, `CreateMultipartUpload` and
//! `UploadPartCopy` carrying the SSE-C algorithm header (or `SSEApplied: SSE_C`). Few workloads
//! use SSE-C; an attacker staging encrypted copies, or a ransomware tool writing new objects,
//! does. In-place copies are the stronger `s3.ssec_copy_overwrite` and are not repeated here.
//!
//! **False positives.** Applications that really use SSE-C: list their principals (ARN, key id,
//! user name) or buckets in `[ssec] allowlist`. `x-amz-server-side-encryption: AES256` is SSE-S3
//! and never matches.
//!
//! **References.** S3 docs "Using server-side encryption with customer-provided keys"; AWS
//! guidance to block SSE-C where unused; MITRE ATT&CK T1486.

use super::s3_common::{
    bucket, copy_source, is_in_place, key, principal_and_bucket, raw_may_use_sse_c, uses_sse_c,
    SSE_C_MERGE_WINDOW_MINUTES,
};
use crate::detect::{is_allowlisted, who, Detector, Hit};
use crate::event::Event;
use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};
use crate::settings::Settings;

/// The `s3.ssec_write` rule.
pub static SSEC_WRITE: RuleInfo = RuleInfo {
    id: "s3.ssec_write",
    family: Family::S3Ransomware,
    severity: Severity::High,
    title: "S3 write with a customer-provided key (SSE-C)",
    description: "PutObject, CopyObject to another key, CreateMultipartUpload or UploadPartCopy with SSE-C by a principal or bucket not allowlisted",
    remediation: "Confirm the principal is a known SSE-C user. If SSE-C is not used in this account, \
        block it on the bucket (BlockedEncryptionTypes SSE-C) or deny requests carrying the \
        x-amz-server-side-encryption-customer-algorithm header with a bucket policy or SCP.",
    mitre: &["T1486"],
    controls: &[],
    on_failure: OnFailure::Lower,
    merge_window_minutes: Some(SSE_C_MERGE_WINDOW_MINUTES),
};

/// See the module documentation.
pub struct SsecWrite;

impl Detector for SsecWrite {
    fn info(&self) -> &'static RuleInfo {
        &SSEC_WRITE
    }

    fn event_names(&self) -> &'static [&'static str] {
        &["PutObject", "CopyObject", "CreateMultipartUpload", "UploadPartCopy"]
    }

    fn may_match(&self, event: &Event<'_>) -> bool {
        raw_may_use_sse_c(event)
    }

    fn inspect(&self, event: &Event<'_>, settings: &Settings) -> Option<Hit> {
        if event.service() != "s3" || !uses_sse_c(event) {
            return None;
        }
        let source = copy_source(event);
        if source.as_ref().is_some_and(|source| is_in_place(event, source)) {
            return None;
        }
        let bucket = bucket(event).unwrap_or("?");
        if is_allowlisted(event, &settings.ssec_allowlist) || settings.ssec_allowlist.iter().any(|b| b == bucket) {
            return None;
        }
        let key = key(event).unwrap_or("?");
        let hit = Hit::new(format!("{} wrote s3://{bucket}/{key} with SSE-C ({})", who(event), event.event_name))
            .resource("AWS::S3::Bucket", &format!("arn:aws:s3:::{bucket}"))
            .detail_text("bucket", bucket)
            .detail_text("key", key)
            .group(principal_and_bucket(event, bucket));
        // An encrypted copy elsewhere: deleting its source afterwards leaves only the copy.
        Some(match source {
            Some(source) => hit.detail_text("copy_source", &source.path),
            None => hit,
        })
    }
}
