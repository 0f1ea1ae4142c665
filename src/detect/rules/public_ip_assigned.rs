//! `ec2.public_ip_assigned` — instances get public IP addresses.
//!
//! **What it catches.** `RunInstances` with `associatePublicIpAddress: true` on a network
//! interface, and `ModifySubnetAttribute` turning `mapPublicIpOnLaunch` on (every later instance
//! of the subnet becomes reachable from the internet, subject to its security groups).
//!
//! **False positives.** Public subnets for load balancers and bastions; low severity for that
//! reason.
//!
//! **References.** Security Hub EC2.9 (no public IPv4 addresses) and EC2.15 (subnets should not
//! assign public IPs automatically); MITRE ATT&CK T1133.

use crate::detect::{who, Detector, Hit};
use crate::event::shape::{boolean, elements, get_any, path, text_at};
use crate::event::Event;
use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};
use crate::settings::Settings;

static INFO: RuleInfo = RuleInfo {
    id: "ec2.public_ip_assigned",
    family: Family::Exposure,
    severity: Severity::Low,
    title: "Public IP address assigned on launch",
    description:
        "RunInstances with associatePublicIpAddress true, or ModifySubnetAttribute enabling mapPublicIpOnLaunch",
    remediation: "Launch instances in private subnets and reach them through Session Manager, a load \
        balancer or an Instance Connect Endpoint; turn off auto-assign public IPv4 on subnets.",
    mitre: &["T1133"],
    controls: &["EC2.9", "EC2.15"],
    on_failure: OnFailure::Lower,
    merge_window_minutes: None,
};

/// See the module documentation.
pub struct PublicIpAssigned;

impl Detector for PublicIpAssigned {
    fn info(&self) -> &'static RuleInfo {
        &INFO
    }

    fn event_names(&self) -> &'static [&'static str] {
        &["RunInstances", "ModifySubnetAttribute"]
    }

    fn inspect(&self, event: &Event<'_>, _: &Settings) -> Option<Hit> {
        if event.service() != "ec2" {
            return None;
        }
        let request = event.request?;
        if event.event_name == "ModifySubnetAttribute" {
            let on = boolean(path(request, &[&["mapPublicIpOnLaunch", "MapPublicIpOnLaunch"], &["value", "Value"]]))
                .or_else(|| boolean(get_any(request, &["mapPublicIpOnLaunch"])));
            if on != Some(true) {
                return None;
            }
            let subnet = text_at(request, &["subnetId", "SubnetId"]).unwrap_or("?");
            return Some(
                Hit::new(format!("{} made subnet {subnet} assign public IPs on launch", who(event)))
                    .resource("AWS::EC2::Subnet", subnet),
            );
        }
        let interfaces = elements(get_any(request, &["networkInterfaceSet", "NetworkInterfaces"]));
        let public = interfaces
            .iter()
            .any(|i| boolean(get_any(*i, &["associatePublicIpAddress", "AssociatePublicIpAddress"])) == Some(true));
        if !public {
            return None;
        }
        let image = text_at(request, &["imageId"]).unwrap_or("?");
        Some(
            Hit::new(format!("{} launched instances from {image} with a public IP address", who(event)))
                .detail_text("image_id", image),
        )
    }
}
