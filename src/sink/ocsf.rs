//! Findings as OCSF 1.3.0 Detection Findings (class 2004), the schema of AWS Security Lake and
//! of the Security Hub that AWS ships since 2025. Pure: a finding in, a JSON object out.
//!
//! The mapping (README "Findings in OCSF"): `finding_info.uid` is the finding id, `types` and
//! `analytic.uid` the rule id, `desc` the summary; `severity_id` follows the severity; `time` is
//! the last event's time (or, for a finding without events such as an unreadable log object,
//! the detection time the caller passes); `metadata.profiles` is `["cloud", "host"]`, which
//! brings `cloud` (AWS, account, region), `actor` (the principal) and `api` (the call);
//! `evidences` has one entry per cited event (its eventID, the call, the source address);
//! MITRE ids become `finding_info.attacks`; everything else of the finding (rule family,
//! outcome, mode, origin, Security Hub controls, rule details) is under `unmapped.trailhound`.

use std::net::IpAddr;

use serde_json::{json, Map, Value};

use crate::event::time::{parse_rfc3339, Millis};
use crate::finding::{Finding, Severity};

/// The OCSF version rendered.
pub const OCSF_VERSION: &str = "1.3.0";

/// The Detection Finding for `finding`; `detected_at` (ms) is its time when it has no event time.
pub fn render(finding: &Finding, detected_at: Millis) -> Value {
    let first = finding.first_seen.as_deref().and_then(parse_rfc3339);
    let last = finding.last_seen.as_deref().and_then(parse_rfc3339).or(first);
    let (severity_id, severity) = severity(finding.severity);
    let mut event = json!({
        "activity_id": 1,
        "activity_name": "Create",
        "category_uid": 2,
        "category_name": "Findings",
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "type_uid": 200401,
        "type_name": "Detection Finding: Create",
        "severity_id": severity_id,
        "severity": severity,
        "status_id": 1,
        "status": "New",
        "time": last.unwrap_or(detected_at),
        "message": finding.summary,
        "metadata": {
            "version": OCSF_VERSION,
            "profiles": ["cloud", "host"],
            "product": {"name": "trailhound", "vendor_name": "trailhound", "version": env!("CARGO_PKG_VERSION")},
            "uid": finding.id,
            "log_name": "CloudTrail",
            "log_provider": "AWS CloudTrail",
        },
        "finding_info": finding_info(finding, first, last),
        "cloud": cloud(finding),
        "resources": resources(finding),
        "evidences": evidences(finding),
        "remediation": {"desc": finding.remediation},
        "unmapped": {"trailhound": unmapped(finding)},
    });
    let object = event.as_object_mut().expect("a JSON object literal");
    if let Some(actor) = actor(finding) {
        object.insert("actor".into(), actor);
    }
    if let Some(api) = api(finding) {
        object.insert("api".into(), api);
    }
    event
}

fn severity(severity: Severity) -> (u8, &'static str) {
    match severity {
        Severity::Info => (1, "Informational"),
        Severity::Low => (2, "Low"),
        Severity::Medium => (3, "Medium"),
        Severity::High => (4, "High"),
        Severity::Critical => (5, "Critical"),
    }
}

fn finding_info(finding: &Finding, first: Option<Millis>, last: Option<Millis>) -> Value {
    let mut info = json!({
        "uid": finding.id,
        "title": finding.title,
        "desc": finding.summary,
        "types": [finding.rule],
        "analytic": {
            "uid": finding.rule,
            "name": finding.title,
            "category": finding.family.as_str(),
            "type_id": 1,
            "type": "Rule",
        },
        "data_sources": ["AWS CloudTrail"],
    });
    let object = info.as_object_mut().expect("a JSON object literal");
    if let Some(first) = first {
        object.insert("first_seen_time".into(), json!(first));
    }
    if let Some(last) = last {
        object.insert("last_seen_time".into(), json!(last));
    }
    if !finding.mitre.is_empty() {
        object.insert("attacks".into(), Value::Array(finding.mitre.iter().map(|id| attack(id)).collect()));
    }
    info
}

/// `T1565.001` is sub-technique `T1565.001` of technique `T1565`.
fn attack(id: &str) -> Value {
    match id.split_once('.') {
        Some((technique, _)) => json!({"technique": {"uid": technique}, "sub_technique": {"uid": id}}),
        None => json!({"technique": {"uid": id}}),
    }
}

fn account(uid: &str) -> Value {
    json!({"uid": uid, "type_id": 10, "type": "AWS Account"})
}

fn cloud(finding: &Finding) -> Value {
    let mut cloud = Map::new();
    cloud.insert("provider".into(), json!("AWS"));
    if let Some(region) = &finding.region {
        cloud.insert("region".into(), json!(region));
    }
    if let Some(uid) = &finding.account {
        cloud.insert("account".into(), account(uid));
    }
    Value::Object(cloud)
}

fn actor(finding: &Finding) -> Option<Value> {
    let principal = &finding.principal;
    let mut user = Map::new();
    if let Some(arn) = &principal.arn {
        user.insert("uid".into(), json!(arn));
    }
    if let Some(name) = principal.user_name.as_ref().or(principal.arn.as_ref()) {
        user.insert("name".into(), json!(name));
    }
    if let Some(key) = &principal.access_key_id {
        user.insert("credential_uid".into(), json!(key));
    }
    if user.is_empty() {
        return None;
    }
    let (type_id, kind) = match principal.kind.as_deref() {
        Some("IAMUser") => (1, "User"),
        Some("Root") => (2, "Admin"),
        Some("AWSService") => (3, "System"),
        Some(other) => (99, other),
        None => (0, "Unknown"),
    };
    user.insert("type_id".into(), json!(type_id));
    user.insert("type".into(), json!(kind));
    if let Some(uid) = &finding.account {
        user.insert("account".into(), account(uid));
    }
    Some(json!({"user": user}))
}

fn api(finding: &Finding) -> Option<Value> {
    let api = finding.api.as_ref().filter(|api| !api.operation.is_empty())?;
    let mut value = json!({"operation": api.operation});
    if !api.service.is_empty() {
        value["service"] = json!({"name": api.service});
    }
    Some(value)
}

fn resources(finding: &Finding) -> Value {
    let resources = finding.resources.iter().map(|resource| {
        let mut value = json!({"uid": resource.id, "type": resource.kind});
        if let Some(region) = &finding.region {
            value["region"] = json!(region);
        }
        value
    });
    Value::Array(resources.collect())
}

/// One evidence per cited event: its id, the call and where it came from (an address when the
/// source is one; a service name such as `ec2.amazonaws.com` is a domain).
fn evidences(finding: &Finding) -> Value {
    let endpoint = finding.source_ip.as_deref().map(|source| match source.parse::<IpAddr>() {
        Ok(_) => json!({"ip": source}),
        Err(_) => json!({"name": source}),
    });
    let api = api(finding);
    let evidence = |event_id: &String| {
        let mut value = json!({"data": {"eventID": event_id}});
        if let Some(endpoint) = &endpoint {
            value["src_endpoint"] = endpoint.clone();
        }
        if let Some(api) = &api {
            value["api"] = api.clone();
        }
        value
    };
    match finding.evidence.event_ids.as_slice() {
        [] => Value::Array(vec![json!({"data": {"origin": finding.origin}})]),
        ids => Value::Array(ids.iter().map(evidence).collect()),
    }
}

fn unmapped(finding: &Finding) -> Value {
    let evidence = &finding.evidence;
    json!({
        "schema": finding.schema,
        "rule": finding.rule,
        "family": finding.family.as_str(),
        "outcome": finding.outcome,
        "mode": finding.mode.as_str(),
        "origin": finding.origin,
        "controls": finding.controls,
        "principal_type": finding.principal.kind,
        "key_kind": finding.principal.key_kind,
        "source_ip": finding.source_ip,
        "user_agent": finding.user_agent,
        "count": evidence.count,
        "event_ids_truncated": evidence.event_ids_truncated,
        "details": evidence.details,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detect::rules::unreadable_log_file;
    use crate::finding::Mode;

    #[test]
    fn a_finding_without_events_takes_the_detection_time_and_keeps_its_origin() {
        let finding = unreadable_log_file("s3://trail/AWSLogs/x.json.gz", "truncated gzip", 0, Mode::Live);
        let event = render(&finding, 1_764_460_800_000);
        assert_eq!(event["time"], 1_764_460_800_000_i64);
        assert_eq!(event["class_uid"], 2004);
        assert_eq!(event["finding_info"]["uid"], finding.id.as_str());
        assert_eq!(event["evidences"][0]["data"]["origin"], "s3://trail/AWSLogs/x.json.gz");
        assert!(event.get("actor").is_none() && event.get("api").is_none());
    }

    #[test]
    fn sub_techniques_name_their_technique() {
        assert_eq!(attack("T1565.001")["technique"]["uid"], "T1565");
        assert_eq!(attack("T1098")["technique"]["uid"], "T1098");
    }
}
