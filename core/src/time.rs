//! Times as CodeCarbon writes them: naive local wall-clock time, no time zone. Held as
//! [`Timestamp`] (chrono's `NaiveDateTime`), written in JSON as `YYYY-MM-DDTHH:MM:SS`. Parsing and
//! formatting are done here by hand: chrono's format interpreter is slower, and larger in the
//! browser's bundle.

use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};

pub type Timestamp = NaiveDateTime;

/// `YYYY-MM-DDTHH:MM:SS[.fraction]` (or a space for the `T`), the form CodeCarbon writes.
pub fn parse_iso(v: &str) -> Option<Timestamp> {
    let b = v.as_bytes();
    if b.len() < 19 || !(b[10] == b'T' || b[10] == b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, &d| d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0')))
    };
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let nanos = match &b[19..] {
        [] => 0,
        [b'.', digits @ ..] if !digits.is_empty() && digits.len() <= 9 => {
            let n = num(20..b.len())?;
            n * 10u32.pow(9 - digits.len() as u32)
        }
        _ => return None,
    };
    if s >= 60 {
        return None;
    }
    parse_day(&v[..10])?.and_hms_nano_opt(h, mi, s, nanos)
}

/// `YYYY-MM-DD`.
pub fn parse_day(v: &str) -> Option<NaiveDate> {
    let b = v.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, &d| d.is_ascii_digit().then(|| acc * 10 + u32::from(d - b'0')))
    };
    NaiveDate::from_ymd_opt(num(0..4)? as i32, num(5..7)?, num(8..10)?)
}

/// `YYYY-MM-DD`.
pub fn day(d: NaiveDate) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
}

/// `YYYY-MM-DDTHH:MM:SS` (to the second, as CodeCarbon writes it).
pub fn iso(t: &Timestamp) -> String {
    format!("{}T{:02}:{:02}:{:02}", day(t.date()), t.hour(), t.minute(), t.second())
}

/// `YYYY-MM-DDTHH:MM:SS.ffffff` (to the microsecond).
pub fn iso_micros(t: &Timestamp) -> String {
    format!("{}.{:06}", iso(t), t.nanosecond() / 1000)
}

/// The UTC time `micros` microseconds after 1970.
pub fn from_unix_micros(micros: i64) -> Option<Timestamp> {
    chrono::DateTime::from_timestamp_micros(micros).map(|d| d.naive_utc())
}

/// `YYYY-MM-DDTHH:MM:SSZ`: Unix seconds as RFC 3339 UTC.
pub fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0).map(|d| format!("{}Z", iso(&d.naive_utc()))).unwrap_or_default()
}

/// RFC 3339 (`2026-11-30T14:00:00Z`, `…+01:00`) as Unix seconds.
pub fn parse_rfc3339(v: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(v.trim()).ok().map(|d| d.timestamp())
}

/// The UTC instant of a wall-clock time in Great Britain (GMT, or BST from 01:00 UTC on the
/// last Sunday of March to 01:00 UTC on the last Sunday of October). In the hour the clocks go
/// back, the earlier (BST) reading is taken.
pub fn gb_local_to_unix(t: &Timestamp) -> i64 {
    fn last_sunday(year: i32, month: u32) -> Option<NaiveDate> {
        let d = NaiveDate::from_ymd_opt(year, month, 31)?;
        Some(d - chrono::Duration::days(i64::from(d.weekday().num_days_from_sunday())))
    }
    let utc = t.and_utc().timestamp();
    let y = t.year();
    let (Some(a), Some(b)) = (last_sunday(y, 3), last_sunday(y, 10)) else { return utc };
    let bst_start = a.and_hms_opt(1, 0, 0).map(|x| x.and_utc().timestamp()).unwrap_or(i64::MAX);
    let bst_end = b.and_hms_opt(1, 0, 0).map(|x| x.and_utc().timestamp()).unwrap_or(i64::MIN);
    let as_bst = utc - 3600;
    if as_bst >= bst_start && as_bst < bst_end {
        as_bst
    } else {
        utc
    }
}

/// `YYYY-MM-DD HH:MM`: for a table cell.
pub fn minutes(t: &Timestamp) -> String {
    format!("{} {:02}:{:02}", day(t.date()), t.hour(), t.minute())
}

/// Serde for `Option<Timestamp>` as `YYYY-MM-DDTHH:MM:SS` or null: `#[serde(with = "crate::time::opt_iso")]`.
pub mod opt_iso {
    use super::{iso, parse_iso, Timestamp};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&iso(t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
        match Option::<std::borrow::Cow<'de, str>>::deserialize(d)? {
            None => Ok(None),
            Some(v) => parse_iso(&v)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("not a time (YYYY-MM-DDTHH:MM:SS): {v}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_read_and_written_as_codecarbon_writes_them() {
        let t = parse_iso("2024-05-18T12:04:08.250").unwrap_or_default();
        assert_eq!(iso(&t), "2024-05-18T12:04:08");
        assert_eq!(minutes(&t), "2024-05-18 12:04");
        assert_eq!(t.and_utc().timestamp_subsec_millis(), 250);
        assert_eq!(parse_iso("2024-05-18 12:04:08"), parse_iso("2024-05-18T12:04:08"));
        for bad in [
            "2024-05-18T12:04",
            "2024-13-18T12:04:08",
            "2024-05-18T12:04:60",
            "2-05-18T12:04:08x",
            "2024-05-18T12:04:08.",
            "2024-05-18T12:04:08Z",
        ] {
            assert_eq!(parse_iso(bad), None, "{bad}");
        }
        assert_eq!(parse_day("2024-02-30"), None);
        assert_eq!(parse_day("2024-02-29").map(day).as_deref(), Some("2024-02-29"));
    }

    #[test]
    fn json_keeps_the_seconds_form_and_null() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct T {
            #[serde(with = "opt_iso")]
            at: Option<Timestamp>,
        }
        let t = T { at: parse_iso("2026-10-01T10:00:05") };
        let json = serde_json::to_string(&t).unwrap_or_default();
        assert_eq!(json, r#"{"at":"2026-10-01T10:00:05"}"#);
        assert_eq!(serde_json::from_str::<T>(&json).ok(), Some(t));
        assert_eq!(serde_json::from_str::<T>(r#"{"at":null}"#).ok(), Some(T { at: None }));
        assert!(serde_json::from_str::<T>(r#"{"at":"yesterday"}"#).is_err());
    }
}
