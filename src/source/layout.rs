//! The CloudTrail key layout, for listing a trail bucket no more than a time window needs
//! (SPEC §1.1, issue 5). Pure: no I/O, no clock.
//!
//! `[prefix/]AWSLogs/[o-orgid/]<account>/CloudTrail/<region>/YYYY/MM/DD/<account>_CloudTrail_<region>_<YYYYMMDDTHHmmZ>_<random>.json.gz`
//!
//! A backfill walks this tree with delimiter listings: below `AWSLogs/` it keeps organization
//! folders (`o-…/`) and account folders (12 digits, filtered by `--account`); below an account
//! only `CloudTrail/` (digests and Insight have their own folders and are never listed); below
//! that the regions (filtered by `--region`). It never lists years and months: the day folders
//! of the window are computed ([`days`]), and objects in them are kept when the delivery
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

/// True when the delivery time in the object's name lies in `[since - slack, until + slack)`;
/// objects without one are kept (the events decide).
pub fn in_window(key: &str, since: Millis, until: Millis, slack: Millis) -> bool {
    let name = key.rsplit('/').next().unwrap_or(key);
    match name_time(name) {
        Some(time) => digits(since - slack) <= time && time < digits(until + slack),
        None => true,
    }
}

/// The delivery time in a CloudTrail object name (`…_20261101T1005Z_…`) as sortable digits.
pub fn name_time(name: &str) -> Option<u64> {
    name.split('_').find_map(|part| {
        let bytes = part.as_bytes();
        let shaped = bytes.len() == 14
            && bytes[8] == b'T'
            && bytes[13] == b'Z'
            && bytes[..8].iter().chain(&bytes[9..13]).all(u8::is_ascii_digit);
        shaped.then(|| format!("{}{}", &part[..8], &part[9..13]).parse().ok()).flatten()
    })
}

/// A time as the `YYYYMMDDHHMM` digits of CloudTrail names.
fn digits(time: Millis) -> u64 {
    let text = format_rfc3339(time);
    let kept: String = text.chars().filter(char::is_ascii_digit).take(12).collect();
    kept.parse().unwrap_or(0)
}

/// An S3 location: `s3://bucket[/prefix]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// The bucket.
    pub bucket: String,
    /// The prefix: empty, or a folder ending in `/`.
    pub prefix: String,
}

/// Why a location is not `s3://bucket[/prefix]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    /// No `s3://` scheme.
    #[error("not an s3://bucket[/prefix] URL")]
    NotS3Url,
    /// The bucket name breaks S3's naming rules.
    #[error("`{bucket}` is not an S3 bucket name (3–63 lowercase letters, digits, `-`, `.`)")]
    BadBucket {
        /// The name given.
        bucket: String,
    },
}

impl S3Location {
    /// Parses `s3://bucket[/prefix]`; a prefix is taken as a folder (a `/` is added).
    pub fn parse(text: &str) -> Result<S3Location, LocationError> {
        let rest = text.strip_prefix("s3://").ok_or(LocationError::NotS3Url)?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.');
        if !bucket_ok {
            return Err(LocationError::BadBucket { bucket: bucket.to_owned() });
        }
        let prefix = prefix.trim_start_matches('/');
        let prefix = match prefix {
            "" => String::new(),
            p if p.ends_with('/') => p.to_owned(),
            p => format!("{p}/"),
        };
        Ok(S3Location { bucket: bucket.to_owned(), prefix })
    }

    /// `s3://bucket/prefix`.
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.prefix)
    }
}

/// Where a prefix sits in the layout, which decides how a listing starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Above `AWSLogs/` (the bucket root or a trail's own prefix): look for `AWSLogs/` below.
    Above,
    /// At a level of the layout: walk down by folders.
    At(Level),
    /// A region folder: list its day folders.
    Region,
    /// Inside a region (a year, month or day), or off the layout: list everything below.
    Below,
}

/// Locates a prefix (empty or ending in `/`) in the layout.
pub fn locate(prefix: &str) -> Start {
    let segments: Vec<&str> = prefix.split('/').filter(|s| !s.is_empty()).collect();
    let Some(logs) = segments.iter().rposition(|s| *s == "AWSLogs") else {
        return Start::Above;
    };
    let mut rest = &segments[logs + 1..];
    if rest.first().is_some_and(|s| s.starts_with("o-")) {
        if rest.len() == 1 {
            return Start::At(Level::Organization);
        }
        rest = &rest[1..];
    }
    match rest {
        [] => Start::At(Level::Logs),
        [account] if is_account(account) => Start::At(Level::Account),
        [account, "CloudTrail"] if is_account(account) => Start::At(Level::Service),
        [account, "CloudTrail", region] if is_account(account) && is_region(region) => Start::Region,
        _ => Start::Below,
    }
}

/// The level below a folder classified as `folder`, if it is walked.
pub fn level_below(folder: Folder) -> Option<Level> {
    match folder {
        Folder::Organization => Some(Level::Organization),
        Folder::Account => Some(Level::Account),
        Folder::CloudTrail => Some(Level::Service),
        Folder::Region | Folder::Skip => None,
    }
}

/// The day (days since 1970-01-01) of a `YYYYMMDDHHMM` name time.
pub fn name_day(name_time: u64) -> Option<i64> {
    name_millis(name_time).map(|t| t.div_euclid(DAY))
}

/// A `YYYYMMDDHHMM` name time in milliseconds.
pub fn name_millis(name_time: u64) -> Option<Millis> {
    let (date, clock) = (name_time / 10_000, name_time % 10_000);
    let text = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:00Z",
        date / 10_000,
        date / 100 % 100,
        date % 100,
        clock / 100,
        clock % 100
    );
    crate::event::time::parse_rfc3339(&text)
}

/// The days (since 1970-01-01) whose folders can hold objects delivered in
/// `[since - slack, until + slack)`, with their `YYYY/MM/DD/` folder names.
pub fn days(since: Millis, until: Millis, slack: Millis) -> Vec<(i64, String)> {
    let first = (since - slack).div_euclid(DAY);
    let last = (until + slack - 1).div_euclid(DAY);
    (first..=last)
        .map(|day| {
            let date = format_rfc3339(day * DAY);
            (day, format!("{}/{}/{}/", &date[0..4], &date[5..7], &date[8..10]))
        })
        .collect()
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
        let day_prefixes = |region: &str, since, until, slack| -> Vec<String> {
            days(since, until, slack).into_iter().map(|(_, folder)| format!("{region}{folder}")).collect()
        };
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

    #[test]
    fn locations_parse_and_locate() {
        let location = S3Location::parse("s3://trail-bucket/AWSLogs").expect("parses");
        assert_eq!(location, S3Location { bucket: "trail-bucket".into(), prefix: "AWSLogs/".into() });
        assert_eq!(S3Location::parse("s3://trail-bucket").expect("root").prefix, "");
        assert!(S3Location::parse("trail-bucket/AWSLogs").is_err());
        assert!(S3Location::parse("s3://Bad_Bucket/x").is_err());
        assert!(S3Location::parse("s3:///x").is_err());
        let cases = [
            ("", Start::Above),
            ("team/trail/", Start::Above),
            ("AWSLogs/", Start::At(Level::Logs)),
            ("p/AWSLogs/o-abc123/", Start::At(Level::Organization)),
            ("AWSLogs/o-abc123/111122223333/", Start::At(Level::Account)),
            ("AWSLogs/111122223333/", Start::At(Level::Account)),
            ("AWSLogs/111122223333/CloudTrail/", Start::At(Level::Service)),
            ("AWSLogs/o-abc123/111122223333/CloudTrail/eu-west-1/", Start::Region),
            ("AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/", Start::Below),
            ("AWSLogs/111122223333/CloudTrail-Digest/", Start::Below),
        ];
        for (prefix, start) in cases {
            assert_eq!(locate(prefix), start, "{prefix}");
        }
    }

    #[test]
    fn name_times_map_to_their_day() {
        let day = name_day(202611011005).expect("day");
        assert_eq!(days(t("2026-11-01T00:00:00Z"), t("2026-11-01T01:00:00Z"), 0), [(day, "2026/11/01/".to_owned())]);
        assert_eq!(name_day(202613011005), None);
        assert_eq!(name_millis(202611011005), Some(t("2026-11-01T10:05:00Z")));
    }
}
