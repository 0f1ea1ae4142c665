//! `ecs.task_host_pid` [ECS.3] — a task that shares the host's process namespace.
//!
//! **What it catches.** `RegisterTaskDefinition` with `pidMode: host`: the containers see every
//! process of the instance and can inspect or signal them, a container-escape building block.
//!
//! **False positives.** Monitoring agents; prefer `task` mode where possible.
//!
//! **References.** Security Hub ECS.3; ECS docs "pidMode"; MITRE ATT&CK T1611.

use super::ecs_common::{containers, report, setting, task_definition};
use crate::detect::{Detector, Hit};
use crate::event::Event;
use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};
use crate::settings::Settings;

static INFO: RuleInfo = RuleInfo {
    id: "ecs.task_host_pid",
    family: Family::Exposure,
    severity: Severity::High,
    title: "ECS task shares the host's process namespace",
    description: "RegisterTaskDefinition with pidMode host [ECS.3]",
    remediation: "Remove pidMode host (or set task). Sharing the host PID namespace lets containers see and signal every process on the instance.",
    mitre: &["T1611"],
    controls: &["ECS.3"],
    on_failure: OnFailure::Lower,
    merge_window_minutes: None,
};

/// See the module documentation.
pub struct EcsTaskHostPid;

impl Detector for EcsTaskHostPid {
    fn info(&self) -> &'static RuleInfo {
        &INFO
    }

    fn event_names(&self) -> &'static [&'static str] {
        &["RegisterTaskDefinition"]
    }

    fn inspect(&self, event: &Event<'_>, _: &Settings) -> Option<Hit> {
        let request = task_definition(event)?;
        if setting(request, "pidMode") != Some("host") {
            return None;
        }
        let all: Vec<&str> = containers(request).iter().map(|c| c.name).collect();
        report(event, request, all, "shares the host process namespace (pidMode host)")
    }
}
