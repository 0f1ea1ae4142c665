//! `ecs.task_host_network_root` [ECS.1] — host networking with a container running as root.
//!
//! **What it catches.** `RegisterTaskDefinition` with `networkMode: host` and a container that is
//! not privileged and whose `user` is empty, `root` or `0` (Security Hub ECS.1: secure networking
//! modes and user definitions). Such a container shares the host's network stack as root: it can
//! reach the instance metadata service and bind any port.
//!
//! **False positives.** Networking agents that need the host's stack; run them as a named user.
//!
//! **References.** Security Hub ECS.1; ECS docs "Task definition parameters: networkMode, user";
//! MITRE ATT&CK T1611.

use super::ecs_common::{containers, report, setting, task_definition};
use crate::detect::{Detector, Hit};
use crate::event::Event;
use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};
use crate::settings::Settings;

static INFO: RuleInfo = RuleInfo {
    id: "ecs.task_host_network_root",
    family: Family::Exposure,
    severity: Severity::High,
    title: "ECS task uses host networking with a root, non-privileged container",
    description: "RegisterTaskDefinition with networkMode host and a non-privileged container whose user is empty, root or 0 [ECS.1]",
    remediation: "Use awsvpc networking, or run the container as a non-root user. Host networking shares the instance's network namespace, including the instance metadata endpoint.",
    mitre: &["T1611"],
    controls: &["ECS.1"],
    on_failure: OnFailure::Lower,
    merge_window_minutes: None,
};

/// See the module documentation.
pub struct EcsTaskHostNetworkRoot;

impl Detector for EcsTaskHostNetworkRoot {
    fn info(&self) -> &'static RuleInfo {
        &INFO
    }

    fn event_names(&self) -> &'static [&'static str] {
        &["RegisterTaskDefinition"]
    }

    fn inspect(&self, event: &Event<'_>, _: &Settings) -> Option<Hit> {
        let request = task_definition(event)?;
        if setting(request, "networkMode") != Some("host") {
            return None;
        }
        let root = |user: Option<&str>| {
            user.is_none_or(|u| {
                u.is_empty() || u == "root" || u == "0" || u.starts_with("0:") || u.starts_with("root:")
            })
        };
        let flagged: Vec<&str> =
            containers(request).iter().filter(|c| !c.privileged() && root(c.user())).map(|c| c.name).collect();
        report(event, request, flagged, "uses host networking with root container(s)")
    }
}
