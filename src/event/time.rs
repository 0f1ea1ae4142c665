//! Event time: parsing CloudTrail's `eventTime` into milliseconds since the Unix epoch and
//! formatting it back as RFC 3339.
//!
//! Hand-written (days-from-civil arithmetic) because it sits on the hot path and the accepted
//! shapes are few: `2023-07-10T11:42:18Z`, with optional fractional seconds, a `+HH:MM` offset, or a
//! space instead of the `T` (Panther's `2024-06-02 19:41:40.000000000`). No wall clock here.

/// Milliseconds since 1970-01-01T00:00:00Z.
pub type Millis = i64;

/// Parses an RFC 3339-like timestamp; `None` when it is not one.
pub fn parse_rfc3339(text: &str) -> Option<Millis> {
    let b = text.trim().as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let second = digits(&b[17..19])?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &b[19..];
    let mut millis = 0;
    if let Some((b'.', frac)) = rest.split_first() {
        let len = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if len == 0 {
            return None;
        }
        let mut scale = 100;
        for &d in frac.iter().take(len.min(3)) {
            millis += i64::from(d - b'0') * scale;
            scale /= 10;
        }
        rest = &frac[len..];
    }
    let offset_minutes = match rest {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let minutes = digits(&[*h1, *h2])? * 60 + digits(&[*m1, *m2])?;
            if *sign == b'+' {
                minutes
            } else {
                -minutes
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1_000 + millis)
}

/// Formats as `YYYY-MM-DDTHH:MM:SSZ` (with `.mmm` when the milliseconds are not zero).
pub fn format_rfc3339(millis: Millis) -> String {
    let seconds = millis.div_euclid(1_000);
    let ms = millis.rem_euclid(1_000);
    let days = seconds.div_euclid(86_400);
    let secs_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let (h, m, s) = (secs_of_day / 3_600, secs_of_day / 60 % 60, secs_of_day % 60);
    if ms == 0 {
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
    } else {
        format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
    }
}

fn digits(bytes: &[u8]) -> Option<i64> {
    bytes.iter().try_fold(0i64, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0')))
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Howard Hinnant's days-from-civil.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_shapes_cloudtrail_and_datasets_use() {
        let cases = [
            ("1970-01-01T00:00:00Z", Some(0)),
            ("2023-07-10T11:42:18Z", Some(1_688_989_338_000)),
            ("2023-07-10T11:42:18.250Z", Some(1_688_989_338_250)),
            ("2024-06-02 19:41:40.000000000", Some(1_717_357_300_000)),
            ("2023-07-10T13:42:18+02:00", Some(1_688_989_338_000)),
            ("9999-12-31T23:59:59Z", Some(253_402_300_799_000)),
            ("2023-02-29T00:00:00Z", None),
            ("2023-07-10", None),
            ("1700000000", None),
            ("2023-07-10T11:42:18Q", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_rfc3339(text), want, "{text}");
        }
    }

    #[test]
    fn formatting_round_trips() {
        for text in ["1970-01-01T00:00:00Z", "2024-02-29T23:59:59.001Z", "9999-12-31T23:59:59Z"] {
            let millis = parse_rfc3339(text).expect("valid");
            assert_eq!(format_rfc3339(millis), text);
        }
    }
}
