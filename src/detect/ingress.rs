//! Ingress permissions out of every request shape that opens a network path.
//!
//! Shapes handled (each has a fixture under `testdata/events/ec2.remote_admin_port_open/`):
//! - `AuthorizeSecurityGroupIngress`, nested: `ipPermissions.items[]` with
//!   `ipRanges.items[].cidrIp` and `ipv6Ranges.items[].cidrIpv6`;
//! - the legacy flat form: `cidrIp`, `fromPort`, `toPort`, `ipProtocol` at the top level (what
//!   Stratus Red Team sends);
//! - `responseElements.securityGroupRuleSet.items[]` (`isEgress`, `cidrIpv4`, `cidrIpv6`);
//! - `ModifySecurityGroupRules` (`ModifySecurityGroupRulesRequest.SecurityGroupRule[]`, PascalCase);
//! - `CreateNetworkAclEntry`/`ReplaceNetworkAclEntry` with `ruleAction: allow`, `egress: false`.
//!
//! Protocols: tcp is `tcp`/`6`; `-1`/`all` means every protocol and port. Missing or negative
//! ports mean all ports.

use crate::event::shape::{boolean, elements, get_any, number, text, text_at, Json};
use crate::event::Event;

use super::unique;
use crate::net::{Cidr, PortRange};

/// Security-group ingress events.
pub const SECURITY_GROUP_EVENTS: &[&str] = &["AuthorizeSecurityGroupIngress", "ModifySecurityGroupRules"];
/// Network-ACL entry events.
pub const NETWORK_ACL_EVENTS: &[&str] = &["CreateNetworkAclEntry", "ReplaceNetworkAclEntry"];

/// The protocol of a permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// Every protocol (`-1`).
    All,
    /// Anything else (ICMP, numbered protocols).
    Other,
}

impl Protocol {
    fn parse(text: &str) -> Protocol {
        match text.trim().to_ascii_lowercase().as_str() {
            "tcp" | "6" => Protocol::Tcp,
            "udp" | "17" => Protocol::Udp,
            "-1" | "all" => Protocol::All,
            _ => Protocol::Other,
        }
    }

    /// Carries TCP traffic.
    pub fn carries_tcp(self) -> bool {
        matches!(self, Protocol::Tcp | Protocol::All)
    }

    /// The name used in findings.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::All => "all",
            Protocol::Other => "other",
        }
    }
}

/// One allowed ingress path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Permission {
    /// Protocol.
    pub protocol: Protocol,
    /// Ports (all ports when the protocol is `All`).
    pub ports: PortRange,
    /// Source network.
    pub source: Cidr,
}

/// Every ingress permission the event grants, de-duplicated.
pub fn permissions(event: &Event<'_>) -> Vec<Permission> {
    let mut out = Vec::new();
    match event.event_name {
        "AuthorizeSecurityGroupIngress" => {
            if let Some(request) = event.request {
                authorize_request(request, &mut out);
            }
            if let Some(response) = event.response {
                rule_set_response(response, &mut out);
            }
        }
        "ModifySecurityGroupRules" => {
            if let Some(request) = event.request {
                modify_rules_request(request, &mut out);
            }
        }
        "CreateNetworkAclEntry" | "ReplaceNetworkAclEntry" => {
            if let Some(request) = event.request {
                network_acl_entry(request, &mut out);
            }
        }
        _ => {}
    }
    unique(out)
}

fn push(out: &mut Vec<Permission>, protocol: Option<&str>, from: Option<i64>, to: Option<i64>, cidr: Option<&str>) {
    let Some(source) = cidr.and_then(Cidr::parse) else {
        return;
    };
    let protocol = Protocol::parse(protocol.unwrap_or("-1"));
    let ports = if protocol == Protocol::All { PortRange::ALL } else { PortRange::from_bounds(from, to) };
    out.push(Permission { protocol, ports, source });
}

fn authorize_request(request: Json<'_>, out: &mut Vec<Permission>) {
    // Legacy flat form.
    if let Some(cidr) = text_at(request, &["cidrIp", "CidrIp"]) {
        let protocol = text_at(request, &["ipProtocol", "IpProtocol"]);
        let from = number(get_any(request, &["fromPort", "FromPort"]));
        let to = number(get_any(request, &["toPort", "ToPort"]));
        push(out, protocol, from, to, Some(cidr));
    }
    // Nested form.
    for permission in elements(get_any(request, &["ipPermissions", "IpPermissions"])) {
        let protocol = text(get_any(permission, &["ipProtocol", "IpProtocol"]));
        let from = number(get_any(permission, &["fromPort", "FromPort"]));
        let to = number(get_any(permission, &["toPort", "ToPort"]));
        for range in elements(get_any(permission, &["ipRanges", "IpRanges"])) {
            push(out, protocol, from, to, text(get_any(range, &["cidrIp", "CidrIp"])));
        }
        for range in elements(get_any(permission, &["ipv6Ranges", "Ipv6Ranges"])) {
            push(out, protocol, from, to, text(get_any(range, &["cidrIpv6", "CidrIpv6"])));
        }
    }
}

fn rule_set_response(response: Json<'_>, out: &mut Vec<Permission>) {
    for rule in elements(get_any(response, &["securityGroupRuleSet"])) {
        if boolean(get_any(rule, &["isEgress"])) == Some(true) {
            continue;
        }
        let protocol = text(get_any(rule, &["ipProtocol"]));
        let from = number(get_any(rule, &["fromPort"]));
        let to = number(get_any(rule, &["toPort"]));
        for key in ["cidrIpv4", "cidrIpv6"] {
            push(out, protocol, from, to, text(get_any(rule, &[key])));
        }
    }
}

fn modify_rules_request(request: Json<'_>, out: &mut Vec<Permission>) {
    let wrapper = get_any(request, &["ModifySecurityGroupRulesRequest"]).unwrap_or(request);
    for entry in elements(get_any(wrapper, &["SecurityGroupRule", "SecurityGroupRules"])) {
        // Each entry is `{SecurityGroupRuleId, SecurityGroupRule: {IpProtocol, FromPort, …}}`.
        let rule = get_any(entry, &["SecurityGroupRule"]).unwrap_or(entry);
        let protocol = text(get_any(rule, &["IpProtocol", "ipProtocol"]));
        let from = number(get_any(rule, &["FromPort", "fromPort"]));
        let to = number(get_any(rule, &["ToPort", "toPort"]));
        for key in ["CidrIpv4", "CidrIpv6", "cidrIpv4", "cidrIpv6"] {
            push(out, protocol, from, to, text(get_any(rule, &[key])));
        }
    }
}

fn network_acl_entry(request: Json<'_>, out: &mut Vec<Permission>) {
    let allow = text_at(request, &["ruleAction", "RuleAction"]).is_some_and(|a| a.eq_ignore_ascii_case("allow"));
    let egress = boolean(get_any(request, &["egress", "Egress"])).unwrap_or(false);
    if !allow || egress {
        return;
    }
    let protocol = text_at(request, &["protocol", "Protocol"]);
    let range = get_any(request, &["portRange", "PortRange"]);
    let from = range.and_then(|r| number(get_any(r, &["from", "From"])));
    let to = range.and_then(|r| number(get_any(r, &["to", "To"])));
    for key in ["cidrBlock", "ipv6CidrBlock", "CidrBlock", "Ipv6CidrBlock"] {
        push(out, protocol, from, to, text(get_any(request, &[key])));
    }
}
