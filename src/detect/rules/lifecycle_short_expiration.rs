//! `s3.lifecycle_short_expiration` — a lifecycle rule that expires objects within days.
//!
//! **What it catches.** `PutBucketLifecycle`/`PutBucketLifecycleConfiguration` with an enabled
//! rule whose `Expiration.Days` or `NoncurrentVersionExpiration.NoncurrentDays` is at or under
//! `lifecycle_max_days` (default 7). Codefinger set a 7-day expiration after re-encrypting with
//! SSE-C so that the victim's only copies (prior versions) disappear: the deadline of the ransom.
//!
//! **False positives.** Scratch, log-staging and CI buckets often expire objects within a week;
//! allowlist their principals for this rule or raise the threshold.
//!
//! **References.** Halcyon on Codefinger (January 2025); S3 docs "Lifecycle configuration
//! elements"; Panther `AWS.CloudTrail.ShortLifecycle`; MITRE ATT&CK T1485.

use super::s3_common::bucket;
use crate::detect::{who, Detector, Hit};
use crate::event::shape::{elements, get_any, number, text};
use crate::event::Event;
use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};
use crate::settings::Settings;

/// The `s3.lifecycle_short_expiration` rule.
pub static LIFECYCLE_SHORT_EXPIRATION: RuleInfo = RuleInfo {
    id: "s3.lifecycle_short_expiration",
    family: Family::S3Ransomware,
    severity: Severity::Medium,
    title: "Bucket lifecycle expires current or noncurrent versions within days",
    description: "PutBucketLifecycle(Configuration) with an enabled rule expiring versions in <= 7 days",
    remediation: "Check whether the bucket should delete data this quickly. If not, restore the previous \
        lifecycle configuration, and if SSE-C writes by the same principal were seen, treat it as \
        ransomware staging: disable the principal and protect prior versions (Object Lock, backups).",
    mitre: &["T1485"],
    controls: &[],
    on_failure: OnFailure::Lower,
    merge_window_minutes: None,
};

/// See the module documentation.
pub struct LifecycleShortExpiration;

impl Detector for LifecycleShortExpiration {
    fn info(&self) -> &'static RuleInfo {
        &LIFECYCLE_SHORT_EXPIRATION
    }

    fn event_names(&self) -> &'static [&'static str] {
        &["PutBucketLifecycle", "PutBucketLifecycleConfiguration"]
    }

    fn inspect(&self, event: &Event<'_>, settings: &Settings) -> Option<Hit> {
        if event.service() != "s3" {
            return None;
        }
        let config = get_any(event.request?, &["LifecycleConfiguration"])?;
        let mut shortest: Option<i64> = None;
        for rule in elements(get_any(config, &["Rule", "Rules"])) {
            let enabled = text(get_any(rule, &["Status"])).is_some_and(|s| s.eq_ignore_ascii_case("Enabled"));
            if !enabled {
                continue;
            }
            let current = get_any(rule, &["Expiration"]).and_then(|e| number(get_any(e, &["Days"])));
            let noncurrent =
                get_any(rule, &["NoncurrentVersionExpiration"]).and_then(|e| number(get_any(e, &["NoncurrentDays"])));
            for days in [current, noncurrent].into_iter().flatten() {
                if days <= settings.lifecycle_max_days {
                    shortest = Some(shortest.map_or(days, |s| s.min(days)));
                }
            }
        }
        let days = shortest?;
        let bucket = bucket(event).unwrap_or("?");
        Some(
            Hit::new(format!(
                "{} set a lifecycle rule on bucket {bucket} that expires versions after {days} days",
                who(event)
            ))
            .resource("AWS::S3::Bucket", &format!("arn:aws:s3:::{bucket}"))
            .detail_text("bucket", bucket)
            .detail("expiration_days", days),
        )
    }
}
