//! `ssm.port_forward_remote_admin` — Session Manager used as a tunnel to SSH/RDP.
//!
//! **What it catches.** `ssm:StartSession` with `documentName` `AWS-StartPortForwardingSession`
//! or `AWS-StartPortForwardingSessionToRemoteHost` whose `parameters.portNumber` (an array of
//! strings) holds a remote-admin port, or `AWS-StartSSHSession`. The session is brokered by SSM,
//! but what flows through it is an interactive SSH/RDP login whose commands SSM does not record.
//! A `StartSession` with the default shell document is audited SSM access and is not reported.
//!
//! **False positives.** Teams using SSM as their SSH/RDP transport on purpose; allowlist them.
//!
//! **References.** Session Manager docs "Port forwarding" and "Allow SSH connections"; AWS
//! Well-Architected SEC06-BP03; MITRE ATT&CK T1021, T1572.

use crate::detect::{who, Detector, Hit};
use crate::event::shape::{get_any, strings, text_at};
use crate::event::Event;
use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};
use crate::settings::Settings;

static INFO: RuleInfo = RuleInfo {
    id: "ssm.port_forward_remote_admin",
    family: Family::InteractiveAccess,
    severity: Severity::Medium,
    title: "Session Manager tunnel to a remote-admin port",
    description: "StartSession with a port-forwarding document to a remote-admin port, or AWS-StartSSHSession",
    remediation: "Prefer interactive shell sessions, whose commands Session Manager logs. Restrict \
        ssm:StartSession on the port-forwarding and SSH documents to the people who need them.",
    mitre: &["T1021", "T1572"],
    controls: &[],
    on_failure: OnFailure::Lower,
    merge_window_minutes: None,
};

const PORT_FORWARD_DOCUMENTS: &[&str] =
    &["AWS-StartPortForwardingSession", "AWS-StartPortForwardingSessionToRemoteHost"];

/// See the module documentation.
pub struct SsmPortForwardRemoteAdmin;

impl Detector for SsmPortForwardRemoteAdmin {
    fn info(&self) -> &'static RuleInfo {
        &INFO
    }

    fn event_names(&self) -> &'static [&'static str] {
        &["StartSession"]
    }

    fn inspect(&self, event: &Event<'_>, settings: &Settings) -> Option<Hit> {
        if event.service() != "ssm" {
            return None;
        }
        let request = event.request?;
        let document = text_at(request, &["documentName", "DocumentName"])?;
        let target = text_at(request, &["target", "Target"]).unwrap_or("?");
        let port = if document == "AWS-StartSSHSession" {
            22
        } else if PORT_FORWARD_DOCUMENTS.contains(&document) {
            let parameters = get_any(request, &["parameters", "Parameters"]);
            let ports = strings(parameters.and_then(|p| get_any(p, &["portNumber"])));
            ports
                .iter()
                .filter_map(|p| p.trim().parse::<u16>().ok())
                .find(|p| settings.remote_admin_ports.contains(p))?
        } else {
            return None;
        };
        Some(
            Hit::new(format!("{} started a {document} session to {target} port {port}", who(event)))
                .resource("AWS::EC2::Instance", target)
                .detail_text("document", document)
                .detail_text("target", target)
                .detail("port", port),
        )
    }
}
