//! `ecs.service_public_ip` [ECS.2] — an ECS service that gives its tasks public IP addresses.
//!
//! **What it catches.** `CreateService`/`UpdateService` with
//! `networkConfiguration.awsvpcConfiguration.assignPublicIp: ENABLED`: every task is reachable
//! from the internet, subject only to its security groups.
//!
//! **False positives.** Tasks in public subnets that need outbound internet without a NAT
//! gateway; use a NAT gateway or VPC endpoints instead.
//!
//! **References.** Security Hub ECS.2; MITRE ATT&CK T1133.

use crate::detect::{who, Detector, Hit};
use crate::event::shape::{path, text, text_at};
use crate::event::Event;
use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};
use crate::settings::Settings;

static INFO: RuleInfo = RuleInfo {
    id: "ecs.service_public_ip",
    family: Family::Exposure,
    severity: Severity::Medium,
    title: "ECS service assigns public IP addresses",
    description: "CreateService/UpdateService with awsvpcConfiguration.assignPublicIp ENABLED [ECS.2]",
    remediation: "Set assignPublicIp to DISABLED and run tasks in private subnets behind a load \
        balancer; use a NAT gateway or VPC endpoints for outbound access.",
    mitre: &["T1133"],
    controls: &["ECS.2"],
    on_failure: OnFailure::Lower,
    merge_window_minutes: None,
};

/// See the module documentation.
pub struct EcsServicePublicIp;

impl Detector for EcsServicePublicIp {
    fn info(&self) -> &'static RuleInfo {
        &INFO
    }

    fn event_names(&self) -> &'static [&'static str] {
        &["CreateService", "UpdateService"]
    }

    fn inspect(&self, event: &Event<'_>, _: &Settings) -> Option<Hit> {
        if event.service() != "ecs" {
            return None;
        }
        let request = event.request?;
        let assign = text(path(request, &[&["networkConfiguration"], &["awsvpcConfiguration"], &["assignPublicIp"]]))?;
        if !assign.eq_ignore_ascii_case("ENABLED") {
            return None;
        }
        let service = service_name(request);
        Some(
            Hit::new(format!("{} set service {service} to assign public IPs to its tasks", who(event)))
                .resource("AWS::ECS::Service", service)
                .detail_text("service", service),
        )
    }
}

/// The service name of a `CreateService`/`UpdateService` request.
pub fn service_name<'a>(request: crate::event::Json<'a>) -> &'a str {
    text_at(request, &["serviceName", "service"]).unwrap_or("?")
}
