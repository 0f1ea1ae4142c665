//! `s3.versioning_suspended` — bucket versioning suspended.
//!
//! **What it catches.** `PutBucketVersioning` with `VersioningConfiguration.Status: Suspended`.
//! Versioning is what lets a victim restore objects overwritten by SSE-C ransomware; suspending
//! it first is a known preparation step.
//!
//! **False positives.** Cost clean-ups of buckets that never needed versioning.
//!
//! **References.** S3 docs "Using versioning in S3 buckets"; Panther `AWS.S3.SuspendVersioning`;
//! MITRE ATT&CK T1490 (Inhibit System Recovery).

use super::s3_common::bucket;
use crate::detect::{who, Detector, Hit};
use crate::event::shape::{get_any, text};
use crate::event::Event;
use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};
use crate::settings::Settings;

/// The `s3.versioning_suspended` rule.
pub static VERSIONING_SUSPENDED: RuleInfo = RuleInfo {
    id: "s3.versioning_suspended",
    family: Family::S3Ransomware,
    severity: Severity::Medium,
    title: "Bucket versioning suspended",
    description: "PutBucketVersioning with status Suspended",
    remediation: "Re-enable versioning unless the change was planned, consider MFA delete or Object Lock \
        for critical buckets, and review other changes by the same principal.",
    mitre: &["T1490"],
    controls: &[],
    on_failure: OnFailure::Lower,
    merge_window_minutes: None,
};

/// See the module documentation.
pub struct VersioningSuspended;

impl Detector for VersioningSuspended {
    fn info(&self) -> &'static RuleInfo {
        &VERSIONING_SUSPENDED
    }

    fn event_names(&self) -> &'static [&'static str] {
        &["PutBucketVersioning"]
    }

    fn inspect(&self, event: &Event<'_>, _: &Settings) -> Option<Hit> {
        if event.service() != "s3" {
            return None;
        }
        let config = get_any(event.request?, &["VersioningConfiguration"])?;
        let status = text(get_any(config, &["Status"]))?;
        if !status.eq_ignore_ascii_case("Suspended") {
            return None;
        }
        let bucket = bucket(event).unwrap_or("?");
        Some(
            Hit::new(format!("{} suspended versioning on bucket {bucket}", who(event)))
                .resource("AWS::S3::Bucket", &format!("arn:aws:s3:::{bucket}"))
                .detail_text("bucket", bucket),
        )
    }
}
