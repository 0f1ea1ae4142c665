//! `s3.ssec_copy_overwrite` — an object copied onto itself with a customer-provided key (SSE-C).
//!
//! **What it catches.** The S3 ransomware technique seen in the wild (Codefinger, January 2025;
//! Stratus Red Team `aws.impact.s3-ransomware-client-side-encryption`): `CopyObject` (or
//! `UploadPartCopy`) whose source is the destination itself, with the SSE-C headers set. The new
//! version is encrypted with a key only the attacker holds; AWS keeps only an HMAC of it, so the
//! owner cannot read the data without paying.
//!
//! **Why in place.** A copy onto the same bucket and key replaces the readable version; copies to
//! another key are reported by `s3.ssec_write`. The source is compared after percent-decoding,
//! removing a leading `/` and any `?versionId=` (which names the overwritten version, kept in the
//! evidence so it can be restored if versioning is on).
//!
//! **False positives.** A team that uses SSE-C and rotates its customer keys re-encrypts objects
//! in place the same way; disable the rule or allowlist the rotating principal for it.
//!
//! **References.** AWS Security Blog, "Preventing unintended encryption of Amazon S3 objects"
//! (2025); S3 docs "Using server-side encryption with customer-provided keys (SSE-C)"; MITRE
//! ATT&CK T1486 (Data Encrypted for Impact).

use super::s3_common::{
    bucket, copy_source, is_in_place, key, object_arn, principal_and_bucket, raw_may_use_sse_c, uses_sse_c,
    SSE_C_MERGE_WINDOW_MINUTES,
};
use crate::detect::{who, Detector, Hit};
use crate::event::shape::text_at;
use crate::event::Event;
use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};
use crate::settings::Settings;

/// The `s3.ssec_copy_overwrite` rule.
pub static SSEC_COPY_OVERWRITE: RuleInfo = RuleInfo {
    id: "s3.ssec_copy_overwrite",
    family: Family::S3Ransomware,
    severity: Severity::Critical,
    title: "S3 object overwritten in place with a customer-provided key (SSE-C)",
    description: "CopyObject/UploadPartCopy onto the same bucket and key with SSE-C headers",
    remediation: "Treat as active ransomware: disable the access key or session that made the call, \
        block SSE-C on the bucket (PutBucketEncryption with BlockedEncryptionTypes SSE-C) or deny \
        s3:PutObject with the x-amz-server-side-encryption-customer-algorithm header in a bucket or \
        SCP policy, and restore the previous object versions listed in the evidence.",
    mitre: &["T1486"],
    controls: &[],
    on_failure: OnFailure::Lower,
    merge_window_minutes: Some(SSE_C_MERGE_WINDOW_MINUTES),
};

/// See the module documentation.
pub struct SsecCopyOverwrite;

impl Detector for SsecCopyOverwrite {
    fn info(&self) -> &'static RuleInfo {
        &SSEC_COPY_OVERWRITE
    }

    fn event_names(&self) -> &'static [&'static str] {
        &["CopyObject", "UploadPartCopy"]
    }

    fn may_match(&self, event: &Event<'_>) -> bool {
        raw_may_use_sse_c(event)
    }

    fn inspect(&self, event: &Event<'_>, _: &Settings) -> Option<Hit> {
        if event.service() != "s3" || !uses_sse_c(event) {
            return None;
        }
        let source = copy_source(event)?;
        if !is_in_place(event, &source) {
            return None;
        }
        let (bucket, key) = (bucket(event)?, key(event)?);
        let mut hit = Hit::new(format!("{} re-encrypted s3://{bucket}/{key} in place with SSE-C", who(event)))
            .resource("AWS::S3::Object", &object_arn(bucket, key))
            .detail_text("bucket", bucket)
            .detail_text("key", key)
            .group(principal_and_bucket(event, bucket));
        let response_text = |name: &str| event.response.and_then(|r| text_at(r, &[name]));
        let overwritten = source.version_id.as_deref().or(response_text("x-amz-copy-source-version-id"));
        if let Some(version) = overwritten {
            hit = hit.detail_text("overwritten_version_id", version);
        }
        if let Some(version) = response_text("x-amz-version-id") {
            hit = hit.detail_text("new_version_id", version);
        }
        Some(hit)
    }
}
