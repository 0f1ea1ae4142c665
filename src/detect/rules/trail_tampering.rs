//! `trail.tampering` — CloudTrail stopped, deleted, redirected, or no longer recording S3 data.
//!
//! **What it catches.** Changes that **reduce** what a trail records: `StopLogging` and
//! `DeleteTrail` (high); `UpdateTrail` turning off `isMultiRegionTrail`,
//! `includeGlobalServiceEvents` or `enableLogFileValidation`, removing the KMS key (an empty
//! `kmsKeyId`), or moving delivery to a bucket (`s3BucketName`) (medium: each narrows or
//! redirects the record rather than ending it); and `PutEventSelectors` /
//! `PutAdvancedEventSelectors` whose new selectors record no S3 object writes or drop
//! management events (high). SSE-C ransomware is only visible in S3 data events, so an attacker
//! who turns them off first blinds this tool; the change itself must alert. An `UpdateTrail`
//! that only adds (CloudWatch Logs delivery, an SNS topic, a new KMS key) is not tampering.
//! Failed attempts are one level lower, and all of one principal's failures within an hour of
//! each other are one finding (a refused change is usually retried).
//!
//! **How selectors are judged.** Basic selectors keep S3 writes when some selector has
//! `readWriteType` `All`/`WriteOnly` and a data resource of type `AWS::S3::Object` with at least
//! one value. Advanced selectors keep them when a selector matches `eventCategory = Data` and
//! `resources.type = AWS::S3::Object` without restricting to `readOnly = true`.
//!
//! Family `log-integrity` (with `trail.unreadable_log_file`): it protects every other family's
//! visibility, not only the S3 one.
//!
//! **False positives.** Planned trail changes; re-pointing a trail at a new log bucket during a
//! migration; trails that never recorded S3 data events (their selector updates report each
//! time).
//!
//! **References.** CloudTrail docs "Logging data events"; Stratus Red Team
//! `aws.defense-evasion.cloudtrail-stop`, `-delete`, `-event-selectors`; MITRE ATT&CK T1562.008.

use crate::detect::{who, Detector, Hit};
use crate::event::shape::{boolean, elements, get_any, strings, text, Json};
use crate::event::Event;
use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};
use crate::settings::Settings;

static INFO: RuleInfo = RuleInfo {
    id: "trail.tampering",
    family: Family::LogIntegrity,
    severity: Severity::High,
    title: "CloudTrail logging stopped, deleted or reduced",
    description: "StopLogging, DeleteTrail, event selectors that drop S3 data or management events (high); UpdateTrail that reduces logging or moves delivery (medium)",
    remediation: "Restart logging or restore the trail and its event selectors, restrict \
        cloudtrail:StopLogging/DeleteTrail/Update*/Put*EventSelectors with an SCP, and review \
        everything the principal did while logging was reduced.",
    mitre: &["T1562.008"],
    controls: &["CloudTrail.1"],
    on_failure: OnFailure::LowerGrouped { window_minutes: 60 },
    merge_window_minutes: None,
};

/// See the module documentation.
pub struct TrailTampering;

impl Detector for TrailTampering {
    fn info(&self) -> &'static RuleInfo {
        &INFO
    }

    fn event_names(&self) -> &'static [&'static str] {
        &["StopLogging", "DeleteTrail", "UpdateTrail", "PutEventSelectors", "PutAdvancedEventSelectors"]
    }

    fn inspect(&self, event: &Event<'_>, _: &Settings) -> Option<Hit> {
        if event.service() != "cloudtrail" {
            return None;
        }
        let request = event.request;
        let trail = request.and_then(|r| text(get_any(r, &["name", "trailName", "Name", "TrailName"]))).unwrap_or("?");
        let mut severity = None;
        let action = match event.event_name {
            "StopLogging" => "stopped logging on".to_owned(),
            "DeleteTrail" => "deleted".to_owned(),
            "UpdateTrail" => {
                severity = Some(Severity::Medium);
                let reductions = update_reductions(request?);
                if reductions.is_empty() {
                    return None;
                }
                format!("reduced logging ({}) on", reductions.join(", "))
            }
            "PutEventSelectors" => basic_selectors_problem(get_any(request?, &["eventSelectors"]))?,
            _ => advanced_selectors_problem(get_any(request?, &["advancedEventSelectors"]))?,
        };
        let hit = Hit::new(format!("{} {action} trail {trail}", who(event)))
            .resource("AWS::CloudTrail::Trail", trail)
            .detail_text("trail", trail)
            .detail("action", event.event_name);
        Some(match severity {
            Some(severity) => hit.severity(severity),
            None => hit,
        })
    }
}

/// What an `UpdateTrail` request takes away: turned-off flags, a removed KMS key, a new bucket.
/// Fields it does not name keep their values, so only what it sets is judged.
fn update_reductions(request: Json<'_>) -> Vec<String> {
    let mut reductions = Vec::new();
    for flag in ["isMultiRegionTrail", "includeGlobalServiceEvents", "enableLogFileValidation"] {
        if boolean(get_any(request, &[flag])) == Some(false) {
            reductions.push(format!("{flag} off"));
        }
    }
    if text(get_any(request, &["kmsKeyId"])) == Some("") {
        reductions.push("KMS key removed".to_owned());
    }
    if let Some(bucket) = text(get_any(request, &["s3BucketName"])).filter(|b| !b.is_empty()) {
        reductions.push(crate::finding::clean(&format!("delivery moved to bucket {bucket}")));
    }
    reductions
}

fn basic_selectors_problem(selectors: Option<Json<'_>>) -> Option<String> {
    let selectors = elements(selectors);
    let keeps_writes = |s: &Json<'_>| {
        text(get_any(*s, &["readWriteType"]))
            .is_none_or(|rw| rw.eq_ignore_ascii_case("All") || rw.eq_ignore_ascii_case("WriteOnly"))
    };
    let records_s3_writes = selectors.iter().any(|s| {
        keeps_writes(s)
            && elements(get_any(*s, &["dataResources"])).iter().any(|d| {
                text(get_any(*d, &["type"])) == Some("AWS::S3::Object") && !strings(get_any(*d, &["values"])).is_empty()
            })
    });
    let drops_management = selectors.iter().any(|s| boolean(get_any(*s, &["includeManagementEvents"])) == Some(false));
    match (records_s3_writes, drops_management) {
        (true, false) => None,
        (false, false) => Some("set event selectors that record no S3 data writes on".to_owned()),
        (_, true) => Some("set event selectors that drop management events (and S3 data writes) on".to_owned()),
    }
}

fn advanced_selectors_problem(selectors: Option<Json<'_>>) -> Option<String> {
    let records_s3_writes = elements(selectors).iter().any(|selector| {
        let fields = elements(get_any(*selector, &["fieldSelectors"]));
        let equals = |field: &str, value: &str| {
            fields.iter().any(|f| {
                text(get_any(*f, &["field"])) == Some(field)
                    && strings(get_any(*f, &["equals"])).iter().any(|v| v.eq_ignore_ascii_case(value))
            })
        };
        equals("eventCategory", "Data") && equals("resources.type", "AWS::S3::Object") && !equals("readOnly", "true")
    });
    (!records_s3_writes).then(|| "set advanced event selectors that record no S3 data writes on".to_owned())
}
