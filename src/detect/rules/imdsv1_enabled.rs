//! `ec2.imdsv1_enabled` — IMDSv1 (token-optional metadata) allowed on instances.
//!
//! **What it catches.** `ModifyInstanceMetadataOptions` (request often wrapped as
//! `ModifyInstanceMetadataOptionsRequest.HttpTokens`, PascalCase; camelCase `httpTokens` also
//! read), `RunInstances` with `metadataOptions.httpTokens`, and the account-level
//! `ModifyInstanceMetadataDefaults`, when `HttpTokens` is `optional`. IMDSv1 answers plain GETs,
//! which is what SSRF attacks use to steal instance-role credentials (the Capital One breach; the
//! CloudGoat `cloud_breach_s3` scenario in the corpus).
//!
//! **False positives.** Old agents that cannot do IMDSv2; fix them rather than the control.
//!
//! **References.** Security Hub EC2.8 (instances should use IMDSv2), EC2.170; EC2 docs
//! "Configure the instance metadata options"; MITRE ATT&CK T1552.005.

use crate::detect::{who, Detector, Hit};
use crate::event::shape::{get_any, text, text_at, Json};
use crate::event::Event;
use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};
use crate::settings::Settings;

static INFO: RuleInfo = RuleInfo {
    id: "ec2.imdsv1_enabled",
    family: Family::Exposure,
    severity: Severity::Medium,
    title: "IMDSv1 enabled (HttpTokens optional)",
    description:
        "ModifyInstanceMetadataOptions, RunInstances or ModifyInstanceMetadataDefaults with HttpTokens optional",
    remediation: "Require IMDSv2 (HttpTokens required) on the instance and as the account default, and \
        enforce it with the ec2:MetadataHttpTokens condition key in an SCP.",
    mitre: &["T1552.005"],
    controls: &["EC2.8"],
    on_failure: OnFailure::Lower,
    merge_window_minutes: None,
};

const HTTP_TOKENS: &[&str] = &["HttpTokens", "httpTokens"];

/// See the module documentation.
pub struct Imdsv1Enabled;

impl Detector for Imdsv1Enabled {
    fn info(&self) -> &'static RuleInfo {
        &INFO
    }

    fn event_names(&self) -> &'static [&'static str] {
        &["ModifyInstanceMetadataOptions", "RunInstances", "ModifyInstanceMetadataDefaults"]
    }

    fn inspect(&self, event: &Event<'_>, _: &Settings) -> Option<Hit> {
        if event.service() != "ec2" {
            return None;
        }
        let request = event.request?;
        let options: Json<'_> = match event.event_name {
            "RunInstances" => get_any(request, &["metadataOptions", "MetadataOptions"])?,
            "ModifyInstanceMetadataOptions" => {
                get_any(request, &["ModifyInstanceMetadataOptionsRequest"]).unwrap_or(request)
            }
            _ => get_any(request, &["ModifyInstanceMetadataDefaultsRequest"]).unwrap_or(request),
        };
        let tokens = text(get_any(options, HTTP_TOKENS))?;
        if !tokens.eq_ignore_ascii_case("optional") {
            return None;
        }
        let target = text_at(options, &["InstanceId", "instanceId"]).unwrap_or(match event.event_name {
            "RunInstances" => "new instances",
            "ModifyInstanceMetadataDefaults" => "the account default",
            _ => "?",
        });
        Some(
            Hit::new(format!("{} set HttpTokens optional (IMDSv1) on {target}", who(event)))
                .resource("AWS::EC2::Instance", target)
                .detail_text("target", target),
        )
    }
}
