//! `ecs.execute_command` — an interactive shell opened in an ECS container.
//!
//! **What it catches.** `ecs:ExecuteCommand` with `interactive: true`: a person is typing into a
//! running production container (ECS Exec), the container equivalent of SSH.
//!
//! **False positives.** Debugging by the owning team; allowlist their principals.
//!
//! **References.** ECS docs "Monitor Amazon ECS containers with ECS Exec"; Well-Architected
//! SEC06-BP03; MITRE ATT&CK T1609 (Container Administration Command).

use crate::detect::{who, Detector, Hit};
use crate::event::shape::{boolean, get_any, text_at};
use crate::event::Event;
use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};
use crate::settings::Settings;

static INFO: RuleInfo = RuleInfo {
    id: "ecs.execute_command",
    family: Family::InteractiveAccess,
    severity: Severity::Medium,
    title: "Interactive ECS Exec session",
    description: "ExecuteCommand with interactive true",
    remediation: "Confirm the session was expected. Limit ecs:ExecuteCommand to break-glass roles, \
        enable ECS Exec logging to CloudWatch Logs or S3, and disable enableExecuteCommand on \
        services that do not need it.",
    mitre: &["T1609"],
    controls: &[],
    on_failure: OnFailure::Lower,
    merge_window_minutes: None,
};

/// See the module documentation.
pub struct EcsExecuteCommand;

impl Detector for EcsExecuteCommand {
    fn info(&self) -> &'static RuleInfo {
        &INFO
    }

    fn event_names(&self) -> &'static [&'static str] {
        &["ExecuteCommand"]
    }

    fn inspect(&self, event: &Event<'_>, _: &Settings) -> Option<Hit> {
        if event.service() != "ecs" {
            return None;
        }
        let request = event.request?;
        if boolean(get_any(request, &["interactive"])) != Some(true) {
            return None;
        }
        let cluster = text_at(request, &["cluster"]).unwrap_or("?");
        let task = text_at(request, &["task"]).unwrap_or("?");
        let container = text_at(request, &["container"]).unwrap_or("?");
        Some(
            Hit::new(format!("{} opened an interactive shell in container {container} of task {task}", who(event)))
                .resource("AWS::ECS::Task", task)
                .detail_text("cluster", cluster)
                .detail_text("task", task)
                .detail_text("container", container),
        )
    }
}
