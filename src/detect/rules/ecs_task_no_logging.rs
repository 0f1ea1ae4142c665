//! `ecs.task_no_logging` [ECS.9] — a container without logging.
//!
//! **What it catches.** A `RegisterTaskDefinition` container without `logConfiguration.logDriver`:
//! whatever runs there leaves no trace for responders.
//!
//! **False positives.** Sidecars whose output is worthless; low severity.
//!
//! **References.** Security Hub ECS.9; MITRE ATT&CK T1562.

use super::ecs_common::{containers, report, task_definition};
use crate::detect::{Detector, Hit};
use crate::event::Event;
use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};
use crate::settings::Settings;

static INFO: RuleInfo = RuleInfo {
    id: "ecs.task_no_logging",
    family: Family::Exposure,
    severity: Severity::Low,
    title: "ECS container without a log driver",
    description: "RegisterTaskDefinition with a container lacking logConfiguration.logDriver [ECS.9]",
    remediation: "Add a logConfiguration (awslogs or awsfirelens) so that container output is kept for investigation.",
    mitre: &["T1562"],
    controls: &["ECS.9"],
    on_failure: OnFailure::Lower,
    merge_window_minutes: None,
};

/// See the module documentation.
pub struct EcsTaskNoLogging;

impl Detector for EcsTaskNoLogging {
    fn info(&self) -> &'static RuleInfo {
        &INFO
    }

    fn event_names(&self) -> &'static [&'static str] {
        &["RegisterTaskDefinition"]
    }

    fn inspect(&self, event: &Event<'_>, _: &Settings) -> Option<Hit> {
        let request = task_definition(event)?;
        let flagged: Vec<&str> = containers(request).iter().filter(|c| !c.has_log_driver()).map(|c| c.name).collect();
        report(event, request, flagged, "has container(s) without a log driver")
    }
}
