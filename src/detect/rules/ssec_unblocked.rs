//! `s3.ssec_unblocked` — a bucket's encryption configuration stops blocking SSE-C.
//!
//! **What it catches.** `PutBucketEncryption` whose rules carry `BlockedEncryptionTypes` set to
//! `NONE` or to a list without `SSE-C`, and `DeleteBucketEncryption` (which removes any block).
//! Blocking SSE-C is AWS's recommended defence against SSE-C ransomware; re-allowing it is the
//! step an attacker needs before re-encrypting objects.
//!
//! **False positives.** A configuration that never mentions `BlockedEncryptionTypes` is not
//! reported (its effect depends on the bucket's previous state); buckets that legitimately use
//! SSE-C will report when their configuration is rewritten.
//!
//! **References.** S3 docs "Blocking or unblocking SSE-C for a general purpose bucket"; AWS
//! Security Blog on SSE-C ransomware (2025).

use super::s3_common::bucket;
use crate::detect::{who, Detector, Hit};
use crate::event::shape::{elements, get_any, strings};
use crate::event::Event;
use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};
use crate::settings::Settings;

static INFO: RuleInfo = RuleInfo {
    id: "s3.ssec_unblocked",
    family: Family::S3Ransomware,
    severity: Severity::High,
    title: "Bucket encryption no longer blocks SSE-C",
    description: "PutBucketEncryption with BlockedEncryptionTypes NONE or without SSE-C, or DeleteBucketEncryption",
    remediation: "Restore a bucket encryption configuration whose BlockedEncryptionTypes includes SSE-C \
        unless the bucket is a known SSE-C user, and review who changed it.",
    mitre: &["T1486", "T1562"],
    controls: &[],
    on_failure: OnFailure::Lower,
    merge_window_minutes: None,
};

/// See the module documentation.
pub struct SsecUnblocked;

impl Detector for SsecUnblocked {
    fn info(&self) -> &'static RuleInfo {
        &INFO
    }

    fn event_names(&self) -> &'static [&'static str] {
        &["PutBucketEncryption", "DeleteBucketEncryption"]
    }

    fn inspect(&self, event: &Event<'_>, _: &Settings) -> Option<Hit> {
        if event.service() != "s3" {
            return None;
        }
        let bucket = bucket(event).unwrap_or("?");
        let hit = |what: &str| {
            Some(
                Hit::new(format!("{} {what} on bucket {bucket}", who(event)))
                    .resource("AWS::S3::Bucket", &format!("arn:aws:s3:::{bucket}"))
                    .detail_text("bucket", bucket),
            )
        };
        if event.event_name == "DeleteBucketEncryption" {
            return hit("deleted the encryption configuration (SSE-C no longer blocked)");
        }
        let config = get_any(event.request?, &["ServerSideEncryptionConfiguration"])?;
        let mut saw_block_setting = false;
        let mut blocks_sse_c = false;
        for rule in elements(get_any(config, &["Rule", "Rules"])) {
            let Some(blocked) = get_any(rule, &["BlockedEncryptionTypes"]) else {
                continue;
            };
            saw_block_setting = true;
            let types = strings(get_any(blocked, &["EncryptionType"]));
            blocks_sse_c |= types.iter().any(|t| t.eq_ignore_ascii_case("SSE-C"));
        }
        if saw_block_setting && !blocks_sse_c {
            return hit("allowed SSE-C writes again (BlockedEncryptionTypes without SSE-C)");
        }
        None
    }
}
