//! `ec2.serial_console_enabled` — EC2 serial console access turned on for the account.
//!
//! **What it catches.** `EnableSerialConsoleAccess`. The serial console gives out-of-band,
//! interactive access to every instance of the account and region once a key is pushed with
//! `SendSerialConsoleSSHPublicKey`; it is off by default.
//!
//! **False positives.** Break-glass troubleshooting; disable it again afterwards.
//!
//! **References.** EC2 docs "EC2 Serial Console"; Stratus Red Team
//! `aws.lateral-movement.ec2-serial-console-send-ssh-public-key`; MITRE ATT&CK T1021.

use crate::detect::{who, Detector, Hit};
use crate::event::Event;
use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};
use crate::settings::Settings;

static INFO: RuleInfo = RuleInfo {
    id: "ec2.serial_console_enabled",
    family: Family::InteractiveAccess,
    severity: Severity::Medium,
    title: "EC2 serial console access enabled",
    description: "EnableSerialConsoleAccess",
    remediation: "Disable serial console access (DisableSerialConsoleAccess) unless it is being used for \
        break-glass troubleshooting, and restrict ec2:EnableSerialConsoleAccess with an SCP.",
    mitre: &["T1021"],
    controls: &[],
    on_failure: OnFailure::Lower,
    merge_window_minutes: None,
};

/// See the module documentation.
pub struct SerialConsoleEnabled;

impl Detector for SerialConsoleEnabled {
    fn info(&self) -> &'static RuleInfo {
        &INFO
    }

    fn event_names(&self) -> &'static [&'static str] {
        &["EnableSerialConsoleAccess"]
    }

    fn inspect(&self, event: &Event<'_>, _: &Settings) -> Option<Hit> {
        if event.service() != "ec2" {
            return None;
        }
        let region = event.region.unwrap_or("?");
        Some(
            Hit::new(format!("{} enabled EC2 serial console access in {region}", who(event)))
                .detail_text("region", region),
        )
    }
}
