//! `ecs.task_secrets_in_env` [ECS.8] — credentials in a task definition's environment.
//!
//! **What it catches.** A `RegisterTaskDefinition` container whose `environment` has an entry named
//! `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` or `ECS_ENGINE_AUTH_DATA`. Task definitions are
//! readable by anyone with `ecs:DescribeTaskDefinition`, and the values sit in CloudTrail too.
//!
//! **Secrets never leave the event**: only the variable names are read; values are never copied
//! into a finding, a log line or an alert.
//!
//! **False positives.** None expected.
//!
//! **References.** Security Hub ECS.8; ECS docs "Pass sensitive data to a container"; MITRE
//! ATT&CK T1552.001.

use super::ecs_common::{containers, report, task_definition};
use crate::detect::{Detector, Hit};
use crate::event::Event;
use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};
use crate::settings::Settings;

static INFO: RuleInfo = RuleInfo {
    id: "ecs.task_secrets_in_env",
    family: Family::Exposure,
    severity: Severity::High,
    title: "AWS credentials in ECS container environment",
    description: "RegisterTaskDefinition with environment AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or ECS_ENGINE_AUTH_DATA [ECS.8]",
    remediation: "Rotate the exposed credentials now. Give the task a task role instead of keys, and pass other secrets through the secrets parameter (Secrets Manager or Parameter Store), never environment.",
    mitre: &["T1552.001"],
    controls: &["ECS.8"],
    on_failure: OnFailure::Lower,
    merge_window_minutes: None,
};

/// Environment variable names that hold AWS credentials.
const SECRET_NAMES: &[&str] = &["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "ECS_ENGINE_AUTH_DATA"];

/// See the module documentation.
pub struct EcsTaskSecretsInEnv;

impl Detector for EcsTaskSecretsInEnv {
    fn info(&self) -> &'static RuleInfo {
        &INFO
    }

    fn event_names(&self) -> &'static [&'static str] {
        &["RegisterTaskDefinition"]
    }

    fn inspect(&self, event: &Event<'_>, _: &Settings) -> Option<Hit> {
        let request = task_definition(event)?;
        let flagged: Vec<String> = containers(request)
            .iter()
            .flat_map(|c| {
                c.environment_names()
                    .into_iter()
                    .filter(|n| SECRET_NAMES.contains(n))
                    .map(move |n| format!("{}:{n}", c.name))
            })
            .collect();
        let flagged: Vec<&str> = flagged.iter().map(String::as_str).collect();
        report(event, request, flagged, "puts AWS credentials in container environment variables")
    }
}
