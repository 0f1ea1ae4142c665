//! `ec2.instance_connect_tunnel` — a tunnel through an EC2 Instance Connect Endpoint to a
//! remote-administration port.
//!
//! **What it catches.** `ec2-instance-connect:OpenTunnel` whose `remotePort` is a remote-admin
//! port (default 22, 3389). The endpoint lets SSH/RDP reach private instances with no public IP,
//! outside Systems Manager's session logging.
//!
//! **False positives.** Teams that standardised on Instance Connect Endpoints; allowlist them.
//!
//! **References.** EC2 docs "Connect using EC2 Instance Connect Endpoint"; Well-Architected
//! SEC06-BP03; MITRE ATT&CK T1021.
//! (No public real-log sample exists; the fixture follows the documented request shape.)

use crate::detect::{who, Detector, Hit};
use crate::event::shape::{get_any, number, text_at};
use crate::event::Event;
use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};
use crate::settings::Settings;

static INFO: RuleInfo = RuleInfo {
    id: "ec2.instance_connect_tunnel",
    family: Family::InteractiveAccess,
    severity: Severity::Medium,
    title: "EC2 Instance Connect Endpoint tunnel to a remote-admin port",
    description: "OpenTunnel to a remote-admin port",
    remediation: "Prefer Session Manager. Restrict ec2-instance-connect:OpenTunnel (condition keys \
        ec2-instance-connect:remotePort and privateIpAddress) to the people and ports that need it.",
    mitre: &["T1021"],
    controls: &[],
    on_failure: OnFailure::Lower,
    merge_window_minutes: None,
};

/// See the module documentation.
pub struct InstanceConnectTunnel;

impl Detector for InstanceConnectTunnel {
    fn info(&self) -> &'static RuleInfo {
        &INFO
    }

    fn event_names(&self) -> &'static [&'static str] {
        &["OpenTunnel"]
    }

    fn inspect(&self, event: &Event<'_>, settings: &Settings) -> Option<Hit> {
        if event.service() != "ec2-instance-connect" {
            return None;
        }
        let request = event.request?;
        let port = number(get_any(request, &["remotePort", "RemotePort"]))?;
        let port = u16::try_from(port).ok().filter(|p| settings.remote_admin_ports.contains(p))?;
        let endpoint = text_at(request, &["instanceConnectEndpointId"]).unwrap_or("?");
        let target = text_at(request, &["privateIpAddress"]).unwrap_or("?");
        Some(
            Hit::new(format!("{} opened a tunnel through {endpoint} to {target} port {port}", who(event)))
                .resource("AWS::EC2::InstanceConnectEndpoint", endpoint)
                .detail_text("endpoint_id", endpoint)
                .detail_text("private_ip", target)
                .detail("port", port),
        )
    }
}
