//! `ec2.remote_admin_port_open` — ingress opened to SSH/RDP (or another remote-admin port).
//!
//! **What it catches.** Security-group and network-ACL changes that allow a remote-admin port
//! (default 22 and 3389; configurable, e.g. 5985/5986/5900) over TCP (protocol `tcp`, `6`, or
//! `-1`/all) from a range outside `trusted_cidrs`. Severity follows the CIDR class of the widest
//! range opened: high when it is the world (any `/0`), medium for another public range, low when
//! every range is private (RFC 1918, RFC 6598, IPv6 ULA): still in the output (the trusted list
//! is empty by default) but not paged, because infrastructure code opens SSH to VPC ranges all
//! day. Every request shape is read (see [`crate::detect::ingress`]); a port range that
//! contains the port counts.
//!
//! **False positives.** Bastion hosts and VPN ranges: list them in `trusted_cidrs`. Ingress on
//! other ports (443, 80) is not this rule.
//!
//! **References.** Security Hub EC2.13/EC2.14 (no 0.0.0.0/0 or ::/0 to 22/3389), EC2.21 (network
//! ACLs); Well-Architected SEC06-BP03; Stratus Red Team
//! `aws.exfiltration.ec2-security-group-open-port-22-ingress`; MITRE ATT&CK T1021, T1562.007.

use crate::detect::ingress::{permissions, Permission, NETWORK_ACL_EVENTS, SECURITY_GROUP_EVENTS};
use crate::detect::{unique, who, Detector, Hit};
use crate::event::shape::text_at;
use crate::event::Event;
use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};
use crate::settings::Settings;

static INFO: RuleInfo = RuleInfo {
    id: "ec2.remote_admin_port_open",
    family: Family::InteractiveAccess,
    severity: Severity::High,
    title: "Remote-admin port opened to an untrusted network",
    description: "Security-group or network-ACL ingress allowing 22/3389 (configurable) over TCP from outside the trusted CIDRs; high for /0, medium public, low private",
    remediation: "Remove the rule and use Systems Manager Session Manager (or an Instance Connect \
        Endpoint) instead of exposing SSH/RDP. If a path is needed, restrict it to known ranges and \
        list them in trusted_cidrs.",
    mitre: &["T1021", "T1562.007"],
    controls: &["EC2.13", "EC2.14", "EC2.21"],
    on_failure: OnFailure::Lower,
    merge_window_minutes: None,
};

/// See the module documentation.
pub struct RemoteAdminPortOpen;

/// The events both ingress rules watch.
pub const INGRESS_EVENTS: &[&str] =
    &[SECURITY_GROUP_EVENTS[0], SECURITY_GROUP_EVENTS[1], NETWORK_ACL_EVENTS[0], NETWORK_ACL_EVENTS[1]];

impl Detector for RemoteAdminPortOpen {
    fn info(&self) -> &'static RuleInfo {
        &INFO
    }

    fn event_names(&self) -> &'static [&'static str] {
        INGRESS_EVENTS
    }

    fn inspect(&self, event: &Event<'_>, settings: &Settings) -> Option<Hit> {
        if event.service() != "ec2" {
            return None;
        }
        let exposed: Vec<(Permission, u16)> = permissions(event)
            .into_iter()
            .filter(|p| p.protocol.carries_tcp() && !settings.is_trusted(&p.source))
            .flat_map(|p| {
                settings
                    .remote_admin_ports
                    .iter()
                    .filter(move |port| p.ports.contains(**port))
                    .map(move |port| (p, *port))
            })
            .collect();
        if exposed.is_empty() {
            return None;
        }
        let world = exposed.iter().any(|(p, _)| p.source.is_world());
        let severity = if world {
            Severity::High
        } else if exposed.iter().all(|(p, _)| p.source.is_private()) {
            Severity::Low
        } else {
            Severity::Medium
        };
        let mut ports: Vec<u16> = exposed.iter().map(|(_, port)| *port).collect();
        ports.sort_unstable();
        ports.dedup();
        let sources: Vec<String> = unique(exposed.iter().map(|(p, _)| p.source.to_string()));
        let target = target_id(event);
        let port_list = ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", ");
        Some(
            Hit::new(format!("{} allowed port {port_list} from {} on {target}", who(event), sources.join(", ")))
                .severity(severity)
                .resource(resource_kind(event), target)
                .detail("ports", ports)
                .detail("sources", sources)
                .detail("world", world),
        )
    }
}

/// Security group or network ACL id from the request (either spelling).
pub fn target_id<'a>(event: &Event<'a>) -> &'a str {
    let request = event.request;
    let nested = request.and_then(|r| crate::event::shape::get_any(r, &["ModifySecurityGroupRulesRequest"]));
    request
        .and_then(|r| text_at(r, &["groupId", "GroupId", "networkAclId", "NetworkAclId", "groupName"]))
        .or_else(|| nested.and_then(|n| text_at(n, &["GroupId"])))
        .unwrap_or("?")
}

/// The resource type the event changes.
pub fn resource_kind(event: &Event<'_>) -> &'static str {
    if NETWORK_ACL_EVENTS.contains(&event.event_name) {
        "AWS::EC2::NetworkAcl"
    } else {
        "AWS::EC2::SecurityGroup"
    }
}
