//! Timestamps in the seeds' formats: tickets use `"YYYY-MM-DD HH:MM:SS"` in UTC.

use chrono::{DateTime, NaiveDateTime, Utc};

pub const TICKET_TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// Unix seconds of the years 1 to 9999: what a PostgreSQL timestamp holds and clients mean;
/// beyond it a value would fail in the database instead of in validation.
pub const STORABLE_UNIX_SECONDS: std::ops::RangeInclusive<i64> = -62_135_596_800..=253_402_300_799;

pub fn format_ticket_time(t: DateTime<Utc>) -> String {
    t.format(TICKET_TIME_FORMAT).to_string()
}

/// Accepts the seed format (UTC), RFC 3339 / ISO 8601, or unix seconds, because clients of the
/// reference product send all three.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = NaiveDateTime::parse_from_str(s, TICKET_TIME_FORMAT) {
        return Some(t.and_utc());
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S") {
        return Some(t.and_utc());
    }
    s.parse::<i64>()
        .ok()
        .and_then(|secs| DateTime::from_timestamp(secs, 0))
}

/// serde adapter for `DateTime<Utc>` in the seed format.
pub mod ticket_time {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_ticket_time(*t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let raw = String::deserialize(d)?;
        parse_time(&raw).ok_or_else(|| serde::de::Error::custom(format!("not a timestamp: {raw}")))
    }
}

/// serde adapter for `Option<DateTime<Utc>>` in the seed format.
pub mod ticket_time_opt {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&format_ticket_time(*t)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        let raw: Option<String> = Option::deserialize(d)?;
        match raw {
            None => Ok(None),
            Some(s) => parse_time(&s)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("not a timestamp: {s}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_all_accepted_formats_to_the_same_instant() {
        let a = parse_time("2022-12-13 22:18:06").expect("seed format");
        let b = parse_time("2022-12-13T23:18:06+01:00").expect("rfc3339");
        let c = parse_time("1670969886").expect("unix");
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(format_ticket_time(a), "2022-12-13 22:18:06");
        assert!(parse_time("yesterday").is_none());
    }
}
