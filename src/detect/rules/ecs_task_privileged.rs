//! `ecs.task_privileged` [ECS.4] — a privileged container.
//!
//! **What it catches.** A `RegisterTaskDefinition` container with `privileged: true`: root on the
//! container is root on the host.
//!
//! **False positives.** Some storage and networking agents; grant capabilities instead.
//!
//! **References.** Security Hub ECS.4; ECS docs "privileged"; MITRE ATT&CK T1611.

use super::ecs_common::{containers, report, task_definition};
use crate::detect::{Detector, Hit};
use crate::event::Event;
use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};
use crate::settings::Settings;

static INFO: RuleInfo = RuleInfo {
    id: "ecs.task_privileged",
    family: Family::Exposure,
    severity: Severity::High,
    title: "ECS container runs privileged",
    description: "RegisterTaskDefinition with a container privileged true [ECS.4]",
    remediation:
        "Remove privileged: true; grant only the Linux capabilities the container needs (linuxParameters.capabilities).",
    mitre: &["T1611"],
    controls: &["ECS.4"],
    on_failure: OnFailure::Lower,
    merge_window_minutes: None,
};

/// See the module documentation.
pub struct EcsTaskPrivileged;

impl Detector for EcsTaskPrivileged {
    fn info(&self) -> &'static RuleInfo {
        &INFO
    }

    fn event_names(&self) -> &'static [&'static str] {
        &["RegisterTaskDefinition"]
    }

    fn inspect(&self, event: &Event<'_>, _: &Settings) -> Option<Hit> {
        let request = task_definition(event)?;
        let flagged: Vec<&str> = containers(request).iter().filter(|c| c.privileged()).map(|c| c.name).collect();
        report(event, request, flagged, "runs privileged container(s)")
    }
}
