//! Time arguments and printed times, without a date library: RFC 3339
//! (`2026-11-26T12:00:00Z`, `2026-11-26T12:00:00.5+01:00`), Unix seconds (`1795694400`,
//! `1795694400.25`), relative to now (`-10m`, `-2h`, `-30s`, `-1d`) or `now`. All UTC.
//! And the collector's clock, [`now_ns`].

const NS: i64 = 1_000_000_000;

/// The local time zone's offset from UTC at `ts_ns` (ns since the epoch), in ns: what to add
/// to a UTC time to read it as local (daylight saving time included, as the tz database says).
pub fn local_offset_ns(ts_ns: u64) -> i64 {
    use chrono::{Local, Offset, TimeZone};
    let secs = i64::try_from(ts_ns / 1_000_000_000).unwrap_or(i64::MAX);
    match Local.timestamp_opt(secs, 0) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
            i64::from(t.offset().fix().local_minus_utc()) * NS
        }
        chrono::LocalResult::None => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// A decimal fraction (the digits after '.') in nanoseconds.
fn fraction_ns(digits: &str) -> Option<i64> {
    if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: i64 = digits.parse().ok()?;
    Some(v * 10i64.pow(9 - digits.len() as u32))
}

fn num(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_rfc3339(s: &str) -> Option<i64> {
    if s.len() == 10 {
        // A date alone (2026-12-01): its midnight, UTC.
        return parse_rfc3339(&format!("{s}T00:00:00Z"));
    }
    let (date, rest) = s.split_at_checked(10)?;
    let sep = rest.chars().next()?;
    if !matches!(sep, 'T' | 't' | ' ') {
        return None;
    }
    let rest = &rest[1..];
    let mut parts = date.split('-');
    let (y, m, d) = (
        num(parts.next()?)?,
        num(parts.next()?)?,
        num(parts.next()?)?,
    );
    let (clock, zone_ns) = if let Some(c) = rest.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else {
        let at = rest.rfind(['+', '-'])?;
        let (c, z) = rest.split_at(at);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let (zh, zm) = z[1..].split_once(':')?;
        (c, sign * (num(zh)? * 3600 + num(zm)? * 60) * NS)
    };
    let (hms, frac) = match clock.split_once('.') {
        Some((hms, f)) => (hms, fraction_ns(f)?),
        None => (clock, 0),
    };
    let mut t = hms.split(':');
    let (hh, mm, ss) = (num(t.next()?)?, num(t.next()?)?, num(t.next()?)?);
    if t.next().is_some()
        || !(1..=12).contains(&m)
        || !(1..=31).contains(&d)
        || hh > 23
        || mm > 59
        || ss > 60
    {
        return None;
    }
    let secs = days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss;
    Some(secs * NS + frac - zone_ns)
}

/// Nanoseconds since the Unix epoch on the collector's clock (0 before 1970).
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// A time argument in none of the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadTime(pub String);

impl std::fmt::Display for BadTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "bad time {:?}: use RFC 3339 (2026-11-26T12:00:00Z), Unix seconds (1795694400) \
             or relative (-10m, -2h, -30s, -1d, now)",
            self.0
        )
    }
}

impl std::error::Error for BadTime {}

/// Parses a time argument into ns since the Unix epoch.
pub fn parse_time(s: &str, now_ns: i64) -> Result<i64, BadTime> {
    let s = s.trim();
    let bad = || BadTime(s.to_string());
    if s == "now" {
        return Ok(now_ns);
    }
    if let Some(rel) = s.strip_prefix('-') {
        let unit = rel.chars().last().ok_or_else(bad)?;
        let n = num(&rel[..rel.len() - unit.len_utf8()]).ok_or_else(bad)?;
        let per = match unit {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        return Ok(now_ns - n * per * NS);
    }
    if let Some((int, frac)) = s.split_once('.') {
        if let (Some(i), Some(f)) = (num(int), fraction_ns(frac)) {
            return Ok(i * NS + f);
        }
    } else if let Some(i) = num(s) {
        return i.checked_mul(NS).ok_or_else(bad);
    }
    parse_rfc3339(s).ok_or_else(bad)
}

/// `2026-11-26T12:00:00.123456789Z`
pub fn format_rfc3339(ns: i64) -> String {
    let (secs, frac) = (ns.div_euclid(NS), ns.rem_euclid(NS));
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:09}Z",
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_forms() {
        // 2026-11-26T12:00:00Z = 20783 days * 86400 + 43200 s.
        let base = (20783 * 86_400 + 43_200) * NS;
        assert_eq!(parse_time("2026-11-26T12:00:00Z", 0), Ok(base));
        assert_eq!(parse_time("2026-11-26 12:00:00.5Z", 0), Ok(base + NS / 2));
        assert_eq!(parse_time("2026-11-26T13:00:00+01:00", 0), Ok(base));
        assert_eq!(parse_time("2026-11-26T11:30:00-00:30", 0), Ok(base));
        // A date alone is its midnight, UTC.
        assert_eq!(parse_time("2026-11-26", 0), Ok(base - 12 * 3600 * NS));
        assert!(parse_time("2026-13-26", 0).is_err());
        assert_eq!(format_rfc3339(base + 7), "2026-11-26T12:00:00.000000007Z");
        assert_eq!(
            parse_time(&format_rfc3339(base + 123_456_789), 0),
            Ok(base + 123_456_789)
        );
    }

    #[test]
    fn civil_round_trip_across_leap_years() {
        for days in [-1, 0, 59, 60, 365, 11_016, 20_783, 47_541] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn unix_and_relative() {
        let now = 1_000_000 * NS;
        assert_eq!(parse_time("1795694400", now), Ok(1_795_694_400 * NS));
        assert_eq!(parse_time("12.25", now), Ok(12 * NS + NS / 4));
        assert_eq!(parse_time("-10m", now), Ok(now - 600 * NS));
        assert_eq!(parse_time("-2h", now), Ok(now - 7200 * NS));
        assert_eq!(parse_time("-1d", now), Ok(now - 86_400 * NS));
        assert_eq!(parse_time("now", now), Ok(now));
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "-",
            "-10x",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-11-26T12:00:00",
            "1.",
            "1.1234567890",
        ] {
            assert!(parse_time(s, 0).is_err(), "{s:?}");
        }
    }
}
