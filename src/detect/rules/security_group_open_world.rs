//! `ec2.security_group_open_world` — a security group opened to the whole internet on a
//! non-public port.
//!
//! **What it catches.** Security-group ingress from any `/0` (IPv4 or IPv6) over TCP, UDP or all
//! protocols, on a port range that reaches beyond the remote-admin ports (their own rule) and
//! the configured public ports (default 80, 443). A database or admin UI open to the world is a
//! common Security Hub finding; here it is caught when the rule is created.
//!
//! **False positives.** Public services on other ports (SMTP, custom APIs): add the ports to
//! `public_ports`.
//!
//! **References.** Security Hub EC2.18 (unrestricted ingress only on authorised ports) and EC2.19
//! (high-risk ports); MITRE ATT&CK T1562.007.

use super::remote_admin_port_open::target_id;
use crate::detect::ingress::{permissions, Protocol, SECURITY_GROUP_EVENTS};
use crate::detect::{unique, who, Detector, Hit};
use crate::event::Event;
use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};
use crate::settings::Settings;

static INFO: RuleInfo = RuleInfo {
    id: "ec2.security_group_open_world",
    family: Family::Exposure,
    severity: Severity::Medium,
    title: "Security group open to the world on a non-public port",
    description: "Ingress from /0 on ports other than the remote-admin and public ports",
    remediation: "Restrict the rule to the sources that need it, or put the service behind a load \
        balancer or CloudFront. Only ports meant to be public (public_ports) should allow /0.",
    mitre: &["T1562.007"],
    controls: &["EC2.18", "EC2.19"],
    on_failure: OnFailure::Lower,
    merge_window_minutes: None,
};

/// See the module documentation.
pub struct SecurityGroupOpenWorld;

impl Detector for SecurityGroupOpenWorld {
    fn info(&self) -> &'static RuleInfo {
        &INFO
    }

    fn event_names(&self) -> &'static [&'static str] {
        SECURITY_GROUP_EVENTS
    }

    fn inspect(&self, event: &Event<'_>, settings: &Settings) -> Option<Hit> {
        if event.service() != "ec2" {
            return None;
        }
        let known: Vec<u16> = settings.public_ports.iter().chain(&settings.remote_admin_ports).copied().collect();
        let open: Vec<_> = permissions(event)
            .into_iter()
            .filter(|p| p.protocol != Protocol::Other && p.source.is_world() && p.ports.has_port_outside(&known))
            .collect();
        if open.is_empty() {
            return None;
        }
        let ranges = unique(open.iter().map(|p| format!("{}/{}", p.protocol.as_str(), p.ports)));
        let target = target_id(event);
        Some(
            Hit::new(format!("{} opened {} to the world on {target}", who(event), ranges.join(", ")))
                .resource("AWS::EC2::SecurityGroup", target)
                .detail("ports", ranges),
        )
    }
}
