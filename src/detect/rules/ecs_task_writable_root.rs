//! `ecs.task_writable_root` [ECS.5] — a container whose root filesystem is writable.
//!
//! **What it catches.** A `RegisterTaskDefinition` container without `readonlyRootFilesystem:
//! true`, so an intruder can modify binaries and drop tools.
//!
//! **False positives.** Most task definitions in the wild: low severity, disable the rule if it
//! is not a control you enforce.
//!
//! **References.** Security Hub ECS.5; MITRE ATT&CK T1610.

use super::ecs_common::{containers, report, task_definition};
use crate::detect::{Detector, Hit};
use crate::event::Event;
use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};
use crate::settings::Settings;

static INFO: RuleInfo = RuleInfo {
    id: "ecs.task_writable_root",
    family: Family::Exposure,
    severity: Severity::Low,
    title: "ECS container root filesystem is writable",
    description: "RegisterTaskDefinition with a container lacking readonlyRootFilesystem true [ECS.5]",
    remediation: "Set readonlyRootFilesystem: true and mount writable volumes only where the application writes.",
    mitre: &["T1610"],
    controls: &["ECS.5"],
    on_failure: OnFailure::Lower,
    merge_window_minutes: None,
};

/// See the module documentation.
pub struct EcsTaskWritableRoot;

impl Detector for EcsTaskWritableRoot {
    fn info(&self) -> &'static RuleInfo {
        &INFO
    }

    fn event_names(&self) -> &'static [&'static str] {
        &["RegisterTaskDefinition"]
    }

    fn inspect(&self, event: &Event<'_>, _: &Settings) -> Option<Hit> {
        let request = task_definition(event)?;
        let flagged: Vec<&str> = containers(request).iter().filter(|c| !c.read_only_root()).map(|c| c.name).collect();
        report(event, request, flagged, "has container(s) with a writable root filesystem")
    }
}
