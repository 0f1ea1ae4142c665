//! Helpers shared by the ECS task-definition rules (Security Hub ECS.1–ECS.9).

use crate::event::shape::{boolean, elements, get_any, text, text_at, Json};
use crate::event::Event;

/// A container definition of a `RegisterTaskDefinition` request.
#[derive(Clone, Copy)]
pub struct Container<'a> {
    /// The raw definition.
    pub json: Json<'a>,
    /// Its `name`.
    pub name: &'a str,
}

impl<'a> Container<'a> {
    /// `privileged: true`.
    pub fn privileged(&self) -> bool {
        boolean(get_any(self.json, &["privileged"])) == Some(true)
    }

    /// `user`, when set.
    pub fn user(&self) -> Option<&'a str> {
        text(get_any(self.json, &["user"]))
    }

    /// `readonlyRootFilesystem: true`.
    pub fn read_only_root(&self) -> bool {
        boolean(get_any(self.json, &["readonlyRootFilesystem"])) == Some(true)
    }

    /// `logConfiguration.logDriver` is set.
    pub fn has_log_driver(&self) -> bool {
        get_any(self.json, &["logConfiguration"]).and_then(|l| text_at(l, &["logDriver"])).is_some()
    }

    /// Names of `environment` entries (values are never read).
    pub fn environment_names(&self) -> Vec<&'a str> {
        elements(get_any(self.json, &["environment"])).iter().filter_map(|e| text(get_any(*e, &["name"]))).collect()
    }
}

/// The task definition request of an ECS `RegisterTaskDefinition` event.
pub fn task_definition<'a>(event: &Event<'a>) -> Option<Json<'a>> {
    (event.service() == "ecs" && event.event_name == "RegisterTaskDefinition").then_some(event.request?)
}

/// The task definition family (for summaries and resources).
pub fn family<'a>(request: Json<'a>) -> &'a str {
    text_at(request, &["family"]).unwrap_or("?")
}

/// Every container definition.
pub fn containers(request: Json<'_>) -> Vec<Container<'_>> {
    elements(get_any(request, &["containerDefinitions"]))
        .into_iter()
        .map(|json| Container { json, name: text(get_any(json, &["name"])).unwrap_or("?") })
        .collect()
}

/// A top-level string setting (`networkMode`, `pidMode`).
pub fn setting<'a>(request: Json<'a>, key: &str) -> Option<&'a str> {
    text(get_any(request, &[key]))
}

/// The hit for a task-definition rule: `None` when no container is flagged.
pub fn report(event: &Event<'_>, request: Json<'_>, flagged: Vec<&str>, what: &str) -> Option<crate::detect::Hit> {
    if flagged.is_empty() {
        return None;
    }
    let family = family(request);
    let mut hit = crate::detect::Hit::new(format!(
        "{} registered task definition {family} that {what}: {}",
        crate::detect::who(event),
        flagged.join(", ")
    ))
    .resource("AWS::ECS::TaskDefinition", family)
    .detail_text("task_definition", family);
    let cleaned: Vec<String> = flagged.iter().map(|c| crate::finding::clean(c)).collect();
    hit = hit.detail("containers", cleaned);
    Some(hit)
}
