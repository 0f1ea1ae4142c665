//! `ec2.rdp_password_retrieved` — a Windows administrator password retrieved.
//!
//! **What it catches.** A successful `GetPasswordData`: the encrypted Windows Administrator
//! password of an instance was read, the first step of an RDP login outside Systems Manager.
//! Single failed attempts are not reported here; a burst of failures (≥ 10 by one principal in an
//! hour, password spraying across instances) is counted by the stateful layer.
//!
//! **False positives.** Administrators of Windows fleets who still use RDP; allowlist them.
//!
//! **References.** EC2 docs "Retrieve the Windows administrator password"; Stratus Red Team
//! `aws.credential-access.ec2-get-password-data`; MITRE ATT&CK T1552.005, T1021.001.

use crate::detect::{who, Detector, Hit};
use crate::event::shape::text_at;
use crate::event::Event;
use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};
use crate::settings::Settings;

static INFO: RuleInfo = RuleInfo {
    id: "ec2.rdp_password_retrieved",
    family: Family::InteractiveAccess,
    severity: Severity::Medium,
    title: "Windows administrator password retrieved",
    description: "GetPasswordData succeeded (a burst of >= 10 failures in 1 h is reported by the stateful layer)",
    remediation: "Use Session Manager (including its RDP integration in Fleet Manager) instead of \
        retrieving the local Administrator password, rotate that password, and restrict \
        ec2:GetPasswordData in IAM.",
    mitre: &["T1552.005", "T1021.001"],
    controls: &[],
    on_failure: OnFailure::Burst { threshold: 10, window_minutes: 60 },
    merge_window_minutes: None,
};

/// See the module documentation.
pub struct RdpPasswordRetrieved;

impl Detector for RdpPasswordRetrieved {
    fn info(&self) -> &'static RuleInfo {
        &INFO
    }

    fn event_names(&self) -> &'static [&'static str] {
        &["GetPasswordData"]
    }

    fn inspect(&self, event: &Event<'_>, _: &Settings) -> Option<Hit> {
        if event.service() != "ec2" {
            return None;
        }
        let instance = event.request.and_then(|r| text_at(r, &["instanceId"])).unwrap_or("?");
        Some(
            Hit::new(format!("{} retrieved the Windows administrator password of instance {instance}", who(event)))
                .resource("AWS::EC2::Instance", instance)
                .detail_text("instance_id", instance),
        )
    }
}
