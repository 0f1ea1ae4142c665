//! `ecs.fargate_old_platform` [ECS.10] — a Fargate service pinned to an old platform version.
//!
//! **What it catches.** `CreateService`/`UpdateService` for Fargate (launch type or capacity
//! provider) with an explicit `platformVersion` below the latest (Linux 1.4.0). Old platform
//! versions miss security patches and features.
//!
//! **False positives.** Windows Fargate's only version is 1.0.0, which also reads as "below
//! 1.4.0" because the request does not say the OS family; allowlist Windows service deployers or
//! disable the rule if you run Windows on Fargate.
//!
//! **References.** Security Hub ECS.10; ECS docs "Fargate platform versions".

use super::ecs_service_public_ip::service_name;
use crate::detect::{who, Detector, Hit};
use crate::event::shape::{elements, get_any, text, text_at};
use crate::event::Event;
use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};
use crate::settings::Settings;

static INFO: RuleInfo = RuleInfo {
    id: "ecs.fargate_old_platform",
    family: Family::Exposure,
    severity: Severity::Low,
    title: "Fargate service pinned below the latest platform version",
    description: "CreateService/UpdateService on Fargate with platformVersion below 1.4.0 (Linux) [ECS.10]",
    remediation: "Use platformVersion LATEST (or 1.4.0 on Linux) so that tasks get current security patches.",
    mitre: &[],
    controls: &["ECS.10"],
    on_failure: OnFailure::Lower,
    merge_window_minutes: None,
};

const LATEST_LINUX: (u32, u32, u32) = (1, 4, 0);

/// See the module documentation.
pub struct EcsFargateOldPlatform;

impl Detector for EcsFargateOldPlatform {
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
        let fargate_launch = text_at(request, &["launchType"]).is_some_and(|l| l.eq_ignore_ascii_case("FARGATE"));
        let fargate_provider = elements(get_any(request, &["capacityProviderStrategy"]))
            .iter()
            .any(|p| text(get_any(*p, &["capacityProvider"])).is_some_and(|c| c.starts_with("FARGATE")));
        if !fargate_launch && !fargate_provider {
            return None;
        }
        let version = text_at(request, &["platformVersion"])?;
        if parse_version(version)? >= LATEST_LINUX {
            return None;
        }
        let service = service_name(request);
        Some(
            Hit::new(format!("{} pinned Fargate service {service} to platform version {version}", who(event)))
                .resource("AWS::ECS::Service", service)
                .detail_text("service", service)
                .detail_text("platform_version", version),
        )
    }
}

/// `1.3.0` → `(1, 3, 0)`; `LATEST` and anything else → `None`.
fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let mut parts = text.trim().split('.').map(|p| p.parse::<u32>().ok());
    let major = parts.next()??;
    let minor = parts.next().flatten().unwrap_or(0);
    let patch = parts.next().flatten().unwrap_or(0);
    Some((major, minor, patch))
}
