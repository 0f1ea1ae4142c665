//! `iam.root_console_login` — someone signed in to the console as the root user.
//!
//! **What it catches.** A `ConsoleLogin` by `userIdentity.type` `Root` that succeeded
//! (`responseElements.ConsoleLogin` = `Success`): high without MFA
//! (`additionalEventData.MFAUsed` not `Yes`), medium with it. The root user bypasses every IAM
//! policy and SCP-less guardrail; AWS advises using it only for the handful of tasks that need it,
//! always with MFA. Failed root sign-ins (`ConsoleLogin` = `Failure`, often without an
//! `errorCode`) are not findings one by one: five or more within an hour are one medium finding
//! (password guessing against the root e-mail address).
//!
//! **False positives.** The rare legitimate root task (closing the account, changing the support
//! plan, restoring a locked-out administrator): expected, announced, done with MFA (medium).
//!
//! **References.** IAM docs "Root user best practices"; Security Hub IAM.6 (hardware MFA for root)
//! and IAM.9 (MFA for root); CIS AWS Foundations 1.7 and 4.3 (monitor root usage); MITRE ATT&CK
//! T1078.004, T1110.

use crate::detect::{Detector, Hit};
use crate::event::shape::{get_any, text};
use crate::event::Event;
use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};
use crate::settings::Settings;

/// Failed root sign-ins within [`FAILED_LOGIN_WINDOW_MINUTES`] that make one finding.
pub const FAILED_LOGIN_THRESHOLD: usize = 5;
/// The window for failed root sign-ins.
pub const FAILED_LOGIN_WINDOW_MINUTES: i64 = 60;

static INFO: RuleInfo = RuleInfo {
    id: "iam.root_console_login",
    family: Family::AccessKeys,
    severity: Severity::High,
    title: "Root user signed in to the console",
    description: "Successful root ConsoleLogin: high without MFA, medium with; 5+ failed root sign-ins in 1 h: medium",
    remediation: "Confirm with the account owner that the sign-in was planned. If not, reset the root \
        password, rotate its MFA device and review everything done in the session. Enable hardware \
        MFA on the root user and keep its credentials for the tasks that need them.",
    mitre: &["T1078.004", "T1110"],
    controls: &["IAM.6", "IAM.9"],
    on_failure: OnFailure::Burst { threshold: FAILED_LOGIN_THRESHOLD, window_minutes: FAILED_LOGIN_WINDOW_MINUTES },
    merge_window_minutes: None,
};

/// See the module documentation.
pub struct RootConsoleLogin;

impl Detector for RootConsoleLogin {
    fn info(&self) -> &'static RuleInfo {
        &INFO
    }

    fn event_names(&self) -> &'static [&'static str] {
        &["ConsoleLogin"]
    }

    fn inspect(&self, event: &Event<'_>, _: &Settings) -> Option<Hit> {
        if event.identity.kind != Some("Root") || event.service() != "signin" {
            return None;
        }
        let outcome = event.response.and_then(|r| text(get_any(r, &["ConsoleLogin"])));
        let account = event.account().unwrap_or("?");
        let hit = |summary: String| Hit::new(summary).resource("AWS::::Account", account);
        if event.failed() || outcome == Some("Failure") {
            let hit = hit(format!("a root console sign-in to account {account} failed")).severity(Severity::Medium);
            return Some(hit.failure());
        }
        if outcome != Some("Success") {
            return None;
        }
        let mfa = event.additional.and_then(|a| text(get_any(a, &["MFAUsed"]))) == Some("Yes");
        let summary = if mfa {
            format!("the root user signed in to the console of account {account} with MFA")
        } else {
            format!("the root user signed in to the console of account {account} without MFA")
        };
        Some(hit(summary).severity(if mfa { Severity::Medium } else { Severity::High }).detail("mfa_used", mfa))
    }
}
