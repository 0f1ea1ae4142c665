//! `ec2.instance_connect_ssh` — an SSH key pushed to an instance through EC2 Instance Connect.
//!
//! **What it catches.** `ec2-instance-connect:SendSSHPublicKey` (medium) and
//! `SendSerialConsoleSSHPublicKey` (high: serial console access bypasses the network and the
//! instance's own access controls). Either means someone is about to open an interactive SSH
//! session instead of going through Systems Manager Session Manager, whose sessions are
//! authenticated by IAM, logged and auditable.
//!
//! The public key itself is never copied into the finding.
//!
//! **False positives.** Teams that use Instance Connect on purpose; allowlist their principals.
//!
//! **References.** AWS Well-Architected SEC06-BP03 (reduce manual management and interactive
//! access); EC2 Instance Connect docs; Stratus Red Team `aws.lateral-movement.ec2-instance-connect`
//! and `ec2-serial-console-send-ssh-public-key`; MITRE ATT&CK T1021.004, T1098.004.

use crate::detect::{who, Detector, Hit};
use crate::event::shape::text_at;
use crate::event::Event;
use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};
use crate::settings::Settings;

static INFO: RuleInfo = RuleInfo {
    id: "ec2.instance_connect_ssh",
    family: Family::InteractiveAccess,
    severity: Severity::Medium,
    title: "SSH key pushed with EC2 Instance Connect",
    description: "SendSSHPublicKey (high for SendSerialConsoleSSHPublicKey)",
    remediation: "Prefer Systems Manager Session Manager for interactive access. Confirm the user meant \
        to connect, restrict ec2-instance-connect:SendSSHPublicKey and \
        SendSerialConsoleSSHPublicKey in IAM, and disable serial console access if it is not needed.",
    mitre: &["T1021.004", "T1098.004"],
    controls: &[],
    on_failure: OnFailure::Lower,
    merge_window_minutes: None,
};

/// See the module documentation.
pub struct InstanceConnectSsh;

impl Detector for InstanceConnectSsh {
    fn info(&self) -> &'static RuleInfo {
        &INFO
    }

    fn event_names(&self) -> &'static [&'static str] {
        &["SendSSHPublicKey", "SendSerialConsoleSSHPublicKey"]
    }

    fn inspect(&self, event: &Event<'_>, _: &Settings) -> Option<Hit> {
        if event.service() != "ec2-instance-connect" {
            return None;
        }
        let request = event.request;
        let instance = request.and_then(|r| text_at(r, &["instanceId"])).unwrap_or("?");
        let os_user = request.and_then(|r| text_at(r, &["instanceOSUser"]));
        let serial = event.event_name == "SendSerialConsoleSSHPublicKey";
        let target = if serial { "the serial console of instance" } else { "instance" };
        let mut hit = Hit::new(format!("{} pushed an SSH public key to {target} {instance}", who(event)))
            .resource("AWS::EC2::Instance", instance)
            .detail_text("instance_id", instance)
            .detail("serial_console", serial);
        if serial {
            hit = hit.severity(Severity::High);
        }
        if let Some(user) = os_user {
            hit = hit.detail_text("os_user", user);
        }
        Some(hit)
    }
}
