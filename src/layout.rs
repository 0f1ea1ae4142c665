//! The CloudTrail key layout, for listing a trail bucket no more than a time window needs
//! (SPEC §1.1, issue 5). Pure: no I/O, no clock.
//!
//! `[prefix/]AWSLogs/[o-orgid/]<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<random>.json.gz`
//!
//! A backfill walks this tree with delimiter listings: below `AWSLogs/` it keeps organization
//! folders (`o-…/`) and account folders (12 digits, filtered by `--account`); below an account
//! only `CloudTrail/` (digests and Insight have their own folders and are never listed); below
//! that the regions (filtered by `--region`). It never lists years and months: the day folders
//! of the window are computed ([`day_prefixes`]), and objects in them are kept when the delivery
//! time in their name falls in the window widened by a delivery slack ([`in_window`]). Events
//! are then filtered by `eventTime` exactly.

use crate::event::time::{format_rfc3339, Millis};

const DAY: Millis = 86_400_000;

/// What a folder one level down is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folder {
    /// `o-…/`: an organization trail; accounts are below.
    Organization,
    /// A 12-digit account id.
    Account,
    /// `CloudTrail/` below an account.
    CloudTrail,
    /// A region below `CloudTrail/`.
    Region,
    /// Something to leave alone (digests, Insight, other services, stray folders).
    Skip,
}

/// Where in the layout a listing is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Below `AWSLogs/`.
    Logs,
    /// Below `AWSLogs/o-…/`.
    Organization,
    /// Below `…/<account>/`.
    Account,
    /// Below `…/<account>/CloudTrail/`.
    Service,
}

/// Account and region filters (empty: all).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    /// Account ids to keep.
    pub accounts: Vec<String>,
    /// Regions to keep.
    pub regions: Vec<String>,
}

/// Classifies a child folder name (without its trailing `/`) found at `level`.
pub fn classify(level: Level, name: &str, filters: &Filters) -> Folder {
    let wanted = |list: &[String]| list.is_empty() || list.iter().any(|v| v == name);
    match level {
        Level::Logs if name.starts_with("o-") && name.len() > 2 => Folder::Organization,
        Level::Logs | Level::Organization if is_account(name) && wanted(&filters.accounts) => Folder::Account,
        Level::Account if name == "CloudTrail" => Folder::CloudTrail,
        Level::Service if is_region(name) && wanted(&filters.regions) => Folder::Region,
        _ => Folder::Skip,
    }
}

fn is_account(name: &str) -> bool {
    name.len() == 12 && name.bytes().all(|b| b.is_ascii_digit())
}

/// `us-east-1`, `eu-south-1r` (anonymized), `us-gov-west-1`: lowercase, digits and dashes.
fn is_region(name: &str) -> bool {
    !name.is_empty()
        && name.contains('-')
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The `YYYY/MM/DD/` folders below a region prefix (ending in `/`) that can hold objects
/// delivered in `[since - slack, until + slack)`.
pub fn day_prefixes(region_prefix: &str, since: Millis, until: Millis, slack: Millis) -> Vec<String> {
    let first = (since - slack).div_euclid(DAY);
    let last = (until + slack - 1).div_euclid(DAY);
    (first..=last)
        .map(|day| {
            let date = format_rfc3339(day * DAY);
            format!("{region_prefix}{}/{}/{}/", &date[0..4], &date[5..7], &date[8..10])
        })
        .collect()
}

/// True when the delivery time in the object's name lies in `[since - slack, until + slack)`;
/// objects without one are kept (the events decide).
pub fn in_window(key: &str, since: Millis, until: Millis, slack: Millis) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    match crate::scan::name_time(name) {
        Some(time) => digits(since - slack) <= time && time < digits(until + slack),
        None => true,
    }
}

/// A time as the `YYYYMMDDHHMM` digits of CloudTrail names.
fn digits(time: Millis) -> u64 {
    let text = format_rfc3339(time);
    let kept: String = text.chars().filter(char::is_ascii_digit).take(12).collect();
    kept.parse().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::time::parse_rfc3339;

    fn t(text: &str) -> Millis {
        parse_rfc3339(text).expect("time")
    }

    #[test]
    fn folders_are_classified_and_filtered() {
        let all = Filters::default();
        assert_eq!(classify(Level::Logs, "o-abc123", &all), Folder::Organization);
        assert_eq!(classify(Level::Logs, "111122223333", &all), Folder::Account);
        assert_eq!(classify(Level::Organization, "111122223333", &all), Folder::Account);
        assert_eq!(classify(Level::Account, "CloudTrail", &all), Folder::CloudTrail);
        assert_eq!(classify(Level::Account, "CloudTrail-Digest", &all), Folder::Skip);
        assert_eq!(classify(Level::Account, "CloudTrail-Insight", &all), Folder::Skip);
        assert_eq!(classify(Level::Service, "eu-south-1r", &all), Folder::Region);
        assert_eq!(classify(Level::Logs, "README", &all), Folder::Skip);
        let some = Filters { accounts: vec!["111122223333".into()], regions: vec!["us-east-1".into()] };
        assert_eq!(classify(Level::Logs, "444455556666", &some), Folder::Skip);
        assert_eq!(classify(Level::Service, "eu-west-1", &some), Folder::Skip);
        assert_eq!(classify(Level::Service, "us-east-1", &some), Folder::Region);
    }

    #[test]
    fn day_folders_cover_the_window_with_slack_and_no_more() {
        let region = "AWSLogs/111122223333/CloudTrail/us-east-1/";
        let days = day_prefixes(region, t("2026-11-01T10:00:00Z"), t("2026-11-03T00:00:00Z"), 15 * 60_000);
        assert_eq!(
            days,
            [
                "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/01/",
                "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/02/",
                "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/03/",
            ]
        );
        let month_end = day_prefixes("r/", t("2026-12-31T23:50:00Z"), t("2027-01-01T00:10:00Z"), 0);
        assert_eq!(month_end, ["r/2026/12/31/", "r/2027/01/01/"]);
    }

    #[test]
    fn objects_are_kept_by_the_delivery_time_in_their_name() {
        let key = |stamp: &str| {
            format!("AWSLogs/1/CloudTrail/us-east-1/2026/11/01/111122223333_CloudTrail_us-east-1_{stamp}_x.json.gz")
        };
        let (since, until, slack) = (t("2026-11-01T10:00:00Z"), t("2026-11-01T12:00:00Z"), 15 * 60_000);
        assert!(in_window(&key("20261101T1005Z"), since, until, slack));
        assert!(in_window(&key("20261101T0950Z"), since, until, slack), "inside the slack");
        assert!(in_window(&key("20261101T1210Z"), since, until, slack), "delivered late");
        assert!(!in_window(&key("20261101T0930Z"), since, until, slack));
        assert!(!in_window(&key("20261101T1215Z"), since, until, slack));
        assert!(in_window("AWSLogs/odd-name.json.gz", since, until, slack));
    }
}
