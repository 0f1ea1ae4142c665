//! `ecs.cluster_no_container_insights` [ECS.12] — an ECS cluster without Container Insights.
//!
//! **What it catches.** `CreateCluster` whose `settings` do not turn `containerInsights` on
//! (`enabled` or `enhanced`), and `UpdateClusterSettings`/`UpdateCluster` setting it to
//! `disabled`. Without it, responders lack the task-level metrics that show a miner or a
//! breakout.
//!
//! **False positives.** Cost-sensitive test clusters (the account default may also enable it,
//! which CloudTrail does not show); low severity.
//!
//! **References.** Security Hub ECS.12; ECS docs "Container Insights".

use crate::detect::{who, Detector, Hit};
use crate::event::shape::{elements, get_any, text, text_at};
use crate::event::Event;
use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};
use crate::settings::Settings;

static INFO: RuleInfo = RuleInfo {
    id: "ecs.cluster_no_container_insights",
    family: Family::Exposure,
    severity: Severity::Low,
    title: "ECS cluster without Container Insights",
    description: "CreateCluster/UpdateClusterSettings leaving containerInsights off [ECS.12]",
    remediation: "Turn on Container Insights for the cluster (settings containerInsights=enabled or \
        enhanced), or as the account default with PutAccountSettingDefault.",
    mitre: &[],
    controls: &["ECS.12"],
    on_failure: OnFailure::Lower,
    merge_window_minutes: None,
};

/// See the module documentation.
pub struct EcsClusterNoContainerInsights;

impl Detector for EcsClusterNoContainerInsights {
    fn info(&self) -> &'static RuleInfo {
        &INFO
    }

    fn event_names(&self) -> &'static [&'static str] {
        &["CreateCluster", "UpdateClusterSettings", "UpdateCluster"]
    }

    fn inspect(&self, event: &Event<'_>, _: &Settings) -> Option<Hit> {
        if event.service() != "ecs" {
            return None;
        }
        let request = event.request;
        let insights = request.and_then(|r| {
            elements(get_any(r, &["settings"]))
                .into_iter()
                .find(|s| text(get_any(*s, &["name"])) == Some("containerInsights"))
                .and_then(|s| text(get_any(s, &["value"])))
        });
        let off = match (event.event_name, insights) {
            ("CreateCluster", None) => true,
            (_, Some(value)) => value.eq_ignore_ascii_case("disabled"),
            _ => false,
        };
        if !off {
            return None;
        }
        let cluster = request.and_then(|r| text_at(r, &["clusterName", "cluster"])).unwrap_or("default");
        Some(
            Hit::new(format!("{} left Container Insights off on cluster {cluster}", who(event)))
                .resource("AWS::ECS::Cluster", cluster)
                .detail_text("cluster", cluster),
        )
    }
}
