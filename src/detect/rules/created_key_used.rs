//! `iam.created_key_used` — a freshly minted access key put to use within a day.
//!
//! **What it catches.** A long-term key created by `CreateAccessKey` (its id is in
//! `responseElements.accessKey.accessKeyId`) that makes a call within 24 hours of event time.
//! Medium: key rotation looks like this too. **High** when the key was minted by another
//! principal than its owner (persistence: an intruder gives a backdoor user a key, then uses it),
//! or when its first use comes from a network or user-agent family that the owner's keys never
//! used (persistence with a fresh key: the owner's key was stolen, a new one is minted and used
//! from the attacker's side). What "the owner's keys used" means here: the network and, for an
//! API call, the user-agent family of the `CreateAccessKey` call itself, plus the baseline of the
//! long-term key that made the call when the owner minted it with their own key. A key minted
//! from the console by its owner is judged by network only (a browser is not a key's client).
//!
//! Computed by the pass in [`crate::analyze::created_keys`] from the mint facts and the uses of
//! long-term keys; the first use of each key is reported once.
//!
//! **False positives.** Rotation by the owner from their usual network and tools (medium);
//! provisioning pipelines that create a user's key and hand it over (high: allowlist the
//! pipeline's principal for this rule).
//!
//! **References.** Elastic "First Time Seen Access Key Created and Used" / "self-created access
//! key subsequently used" (Jul 2026); Datadog "IAM user created an access key for another user";
//! Stratus Red Team `aws.persistence.iam-create-user-login-profile`/`iam-create-admin-user`;
//! MITRE ATT&CK T1098.001.

use crate::finding::{Family, Severity};
use crate::finding::{OnFailure, RuleInfo};

/// Within this long of its creation (event time), a key's first use is reported.
pub const CREATED_KEY_WINDOW: i64 = 24 * 3_600_000;

/// The rule.
pub static CREATED_KEY_USED: RuleInfo = RuleInfo {
    id: "iam.created_key_used",
    family: Family::AccessKeys,
    severity: Severity::Medium,
    title: "Newly created access key used",
    description: "A key minted by CreateAccessKey is used within 24 h; high when minted for another user or first used from a network or client family new to the owner",
    remediation: "Confirm with the key's owner that they created and use this key. If not, deactivate \
        it and the key or session that created it, and review what both did. Prefer roles with \
        temporary credentials to long-term keys.",
    mitre: &["T1098.001"],
    controls: &[],
    on_failure: OnFailure::Lower,
    merge_window_minutes: None,
};
