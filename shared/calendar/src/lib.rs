//! Business-hours calendars for SLA due times.
//!
//! Utility clients agree SLAs in business hours of their service desk, so a due time depends on
//! opening hours, time zone and the public holidays of a federal state. Keeping that arithmetic
//! here lets routing, escalation and reports agree on the same instants.
//!
//! Working time is defined on the local wall clock; each interval boundary is converted to UTC
//! with the calendar's time zone. A boundary inside a DST gap (e.g. 02:30 on the last Sunday of
//! March in Berlin) maps to the instant the clocks jump; an ambiguous one (the repeated hour in
//! October) maps to its first occurrence. Using one mapping for starts and ends keeps adjacent
//! intervals contiguous and never double-counts the repeated hour.

mod holidays;

pub use holidays::{easter_sunday, STATES};

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// Bounds `add_business_hours`: ten years is beyond any SLA, and a calendar whose working time
/// is swallowed by holidays must end in an error rather than a hang.
const SEARCH_DAYS: usize = 3660;
const MS_PER_HOUR: f64 = 3_600_000.0;
const MINUTES_PER_DAY: i64 = 24 * 60;

/// An opening interval `["HH:MM", "HH:MM"]`, start inclusive, end exclusive. `"24:00"` is
/// accepted as an end so a desk can be open until midnight.
pub type Interval = [String; 2];

/// Opening intervals per weekday. A day left out of the JSON is a day off (so `Default` is a
/// closed week); unknown keys are rejected because a misspelt day would otherwise silently
/// become a day off.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WeekHours {
    pub mon: Vec<Interval>,
    pub tue: Vec<Interval>,
    pub wed: Vec<Interval>,
    pub thu: Vec<Interval>,
    pub fri: Vec<Interval>,
    pub sat: Vec<Interval>,
    pub sun: Vec<Interval>,
}

impl WeekHours {
    /// Monday to Friday, 09:00–17:00: the hours of a calendar that does not specify any.
    pub fn office() -> Self {
        let day = || vec![["09:00".to_owned(), "17:00".to_owned()]];
        Self {
            mon: day(),
            tue: day(),
            wed: day(),
            thu: day(),
            fri: day(),
            ..Self::default()
        }
    }

    /// Monday first, matching `Weekday::num_days_from_monday`.
    fn days(&self) -> [(&'static str, &[Interval]); 7] {
        [
            ("mon", &self.mon),
            ("tue", &self.tue),
            ("wed", &self.wed),
            ("thu", &self.thu),
            ("fri", &self.fri),
            ("sat", &self.sat),
            ("sun", &self.sun),
        ]
    }
}

/// A client's working time. Fields missing from the JSON take the defaults: Europe/Berlin,
/// Monday–Friday 09:00–17:00, nationwide holidays only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BusinessCalendar {
    /// IANA time zone in which `hours` are meant.
    pub timezone: String,
    pub hours: WeekHours,
    /// German state code (see [`STATES`]) whose public holidays are days off; `None` means only
    /// the nationwide holidays.
    pub holiday_state: Option<String>,
    /// Further days off, e.g. 24 and 31 December when the operator closes.
    pub extra_holidays: Vec<NaiveDate>,
}

impl Default for BusinessCalendar {
    fn default() -> Self {
        Self {
            timezone: "Europe/Berlin".to_owned(),
            hours: WeekHours::office(),
            holiday_state: None,
            extra_holidays: Vec::new(),
        }
    }
}

/// Why a calendar or a request is unusable; the message names the offending field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CalendarError {
    #[error("timezone: unknown IANA time zone {0:?}")]
    UnknownTimezone(String),
    #[error("holidayState: unknown German state code {0:?}")]
    UnknownHolidayState(String),
    #[error("hours.{day}: malformed time {value:?}, expected \"HH:MM\"")]
    MalformedTime { day: &'static str, value: String },
    #[error("hours.{day}: interval {start}-{end} does not end after it starts")]
    EmptyInterval {
        day: &'static str,
        start: String,
        end: String,
    },
    #[error("hours.{day}: intervals {first} and {second} overlap")]
    OverlappingIntervals {
        day: &'static str,
        first: String,
        second: String,
    },
    #[error("hours: the week contains no working time")]
    NoWorkingTime,
    #[error("hours to add must be finite and non-negative, got {0}")]
    InvalidDuration(f64),
    #[error("the working time does not fit into ten years after {0}")]
    SearchLimitExceeded(DateTime<Utc>),
}

/// A validated calendar: parsed time zone and intervals as minutes since local midnight.
struct Schedule<'a> {
    tz: Tz,
    week: [Vec<(u32, u32)>; 7],
    state: Option<&'static str>,
    extra_holidays: &'a [NaiveDate],
}

impl BusinessCalendar {
    /// Checks every field; call it when loading configuration, because the infallible queries
    /// ([`Self::business_hours_between`], [`Self::is_working_time`]) treat an invalid calendar
    /// as having no working time.
    pub fn validate(&self) -> Result<(), CalendarError> {
        self.schedule().map(drop)
    }

    /// The instant at which `hours` of working time have elapsed after `start`, to the
    /// millisecond. Counting begins at the next working instant if `start` is outside working
    /// time, so `hours == 0` yields that instant (an "immediate" SLA on a ticket received at
    /// night is due when the desk opens). Work that ends exactly at closing time is due at
    /// closing time, not at the next opening.
    pub fn add_business_hours(
        &self,
        start: DateTime<Utc>,
        hours: f64,
    ) -> Result<DateTime<Utc>, CalendarError> {
        let schedule = self.schedule()?;
        if !hours.is_finite() || hours < 0.0 {
            return Err(CalendarError::InvalidDuration(hours));
        }
        // Saturating cast: absurd durations run into the search limit below.
        let mut remaining = (hours * MS_PER_HOUR).round() as i64;
        let spans = schedule
            .days_from(start)
            .take(SEARCH_DAYS)
            .flat_map(|day| schedule.spans_on(day));
        for (from, to) in spans.filter(|(_, to)| *to > start) {
            let from = from.max(start);
            let available = (to - from).num_milliseconds();
            if remaining <= available {
                return from
                    .checked_add_signed(TimeDelta::milliseconds(remaining))
                    .ok_or(CalendarError::SearchLimitExceeded(start));
            }
            remaining -= available;
        }
        Err(CalendarError::SearchLimitExceeded(start))
    }

    /// Working hours in `[a, b)`; 0 if `b <= a` or the calendar is invalid.
    pub fn business_hours_between(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> f64 {
        let Ok(schedule) = self.schedule() else {
            return 0.0;
        };
        if b <= a {
            return 0.0;
        }
        let last_day = b.with_timezone(&schedule.tz).date_naive();
        let ms: i64 = schedule
            .days_from(a)
            .take_while(|day| *day <= last_day)
            .flat_map(|day| schedule.spans_on(day))
            .map(|(from, to)| (to.min(b) - from.max(a)).num_milliseconds().max(0))
            .sum();
        ms as f64 / MS_PER_HOUR
    }

    /// Whether `t` lies in a working interval on a working day; false for an invalid calendar.
    pub fn is_working_time(&self, t: DateTime<Utc>) -> bool {
        let Ok(schedule) = self.schedule() else {
            return false;
        };
        schedule
            .days_from(t)
            .take(2)
            .flat_map(|day| schedule.spans_on(day))
            .any(|(from, to)| from <= t && t < to)
    }

    /// The days off in `year` with their German names, sorted: the public holidays of
    /// `holidayState` (nationwide ones if unset or unknown) plus `extraHolidays`, named
    /// "Betriebsruhe" unless they coincide with a public holiday.
    pub fn holidays(&self, year: i32) -> Vec<(NaiveDate, &'static str)> {
        let state = self
            .holiday_state
            .as_deref()
            .and_then(holidays::parse_state);
        let mut days = holidays::public_holidays(year, state);
        for extra in self.extra_holidays.iter().filter(|d| d.year() == year) {
            if !days.iter().any(|(d, _)| d == extra) {
                days.push((*extra, "Betriebsruhe"));
            }
        }
        days.sort();
        days
    }

    fn schedule(&self) -> Result<Schedule<'_>, CalendarError> {
        let tz: Tz = self
            .timezone
            .parse()
            .map_err(|_| CalendarError::UnknownTimezone(self.timezone.clone()))?;
        let state = match &self.holiday_state {
            None => None,
            Some(code) => Some(
                holidays::parse_state(code)
                    .ok_or_else(|| CalendarError::UnknownHolidayState(code.clone()))?,
            ),
        };
        let mut week: [Vec<(u32, u32)>; 7] = Default::default();
        for ((day, intervals), slot) in self.hours.days().into_iter().zip(&mut week) {
            *slot = parse_day(day, intervals)?;
        }
        // Every parsed interval is non-empty, so one non-empty day means working time exists.
        if week.iter().all(Vec::is_empty) {
            return Err(CalendarError::NoWorkingTime);
        }
        Ok(Schedule {
            tz,
            week,
            state,
            extra_holidays: &self.extra_holidays,
        })
    }
}

/// Parses and sorts one day's intervals, rejecting empty and overlapping ones (touching is fine).
fn parse_day(day: &'static str, intervals: &[Interval]) -> Result<Vec<(u32, u32)>, CalendarError> {
    let mut parsed = Vec::with_capacity(intervals.len());
    for [start, end] in intervals {
        let (from, to) = (parse_hhmm(day, start)?, parse_hhmm(day, end)?);
        if to <= from {
            return Err(CalendarError::EmptyInterval {
                day,
                start: start.clone(),
                end: end.clone(),
            });
        }
        parsed.push((from, to, format!("{start}-{end}")));
    }
    parsed.sort();
    if let Some(pair) = parsed.windows(2).find(|pair| pair[1].0 < pair[0].1) {
        return Err(CalendarError::OverlappingIntervals {
            day,
            first: pair[0].2.clone(),
            second: pair[1].2.clone(),
        });
    }
    Ok(parsed.into_iter().map(|(from, to, _)| (from, to)).collect())
}

/// Minutes since midnight of a strict "HH:MM"; "24:00" is allowed (as 1440).
fn parse_hhmm(day: &'static str, value: &str) -> Result<u32, CalendarError> {
    let malformed = || CalendarError::MalformedTime {
        day,
        value: value.to_owned(),
    };
    let (h, m) = value.split_once(':').ok_or_else(malformed)?;
    let digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || !digits(m) {
        return Err(malformed());
    }
    let (h, m): (u32, u32) = (
        h.parse().map_err(|_| malformed())?,
        m.parse().map_err(|_| malformed())?,
    );
    match (h, m) {
        (0..=23, 0..=59) | (24, 0) => Ok(h * 60 + m),
        _ => Err(malformed()),
    }
}

impl Schedule<'_> {
    /// Local dates from the day before `t`'s local date: a day early so that a span of the
    /// previous day still running at `t` (possible around midnight transitions) is not missed.
    fn days_from(&self, t: DateTime<Utc>) -> impl Iterator<Item = NaiveDate> {
        let day = t.with_timezone(&self.tz).date_naive();
        day.pred_opt().unwrap_or(day).iter_days()
    }

    /// The day's working intervals as non-empty UTC spans, in order; none on a day off.
    fn spans_on(&self, day: NaiveDate) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
        let intervals = &self.week[day.weekday().num_days_from_monday() as usize];
        if intervals.is_empty() || self.is_day_off(day) {
            return Vec::new();
        }
        let midnight = day.and_time(NaiveTime::MIN);
        intervals
            .iter()
            .filter_map(|&(from, to)| {
                Some((self.instant(midnight, from)?, self.instant(midnight, to)?))
            })
            .filter(|(from, to)| from < to)
            .collect()
    }

    fn is_day_off(&self, day: NaiveDate) -> bool {
        self.extra_holidays.contains(&day)
            || holidays::public_holidays(day.year(), self.state)
                .iter()
                .any(|(d, _)| *d == day)
    }

    /// Local `midnight + minutes` as UTC: the first occurrence if ambiguous, the end of the gap
    /// (found by stepping minutes forward) if it does not exist.
    fn instant(&self, midnight: NaiveDateTime, minutes: u32) -> Option<DateTime<Utc>> {
        let local = midnight.checked_add_signed(TimeDelta::minutes(minutes.into()))?;
        (0..=MINUTES_PER_DAY)
            .find_map(|step| {
                let probe = local.checked_add_signed(TimeDelta::minutes(step))?;
                self.tz.from_local_datetime(&probe).earliest()
            })
            .map(|t| t.with_timezone(&Utc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::Europe::Berlin;

    fn berlin(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        let local = Berlin.with_ymd_and_hms(y, mo, d, h, mi, 0);
        local.single().expect("unambiguous").with_timezone(&Utc)
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .single()
            .expect("valid")
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
    }

    fn from_json(json: &str) -> BusinessCalendar {
        serde_json::from_str(json).expect("calendar JSON")
    }

    fn due(cal: &BusinessCalendar, start: DateTime<Utc>, hours: f64) -> DateTime<Utc> {
        cal.add_business_hours(start, hours).expect("due time")
    }

    #[test]
    fn friday_afternoon_ticket_is_due_monday() {
        let start = berlin(2026, 11, 20, 16, 0);
        assert_eq!(start, utc(2026, 11, 20, 15, 0));
        let cal = BusinessCalendar::default();
        assert_eq!(due(&cal, start, 8.0), berlin(2026, 11, 23, 16, 0));
    }

    #[test]
    fn whit_monday_is_skipped_in_every_state() {
        for state in STATES.iter().map(|s| Some(s.to_string())).chain([None]) {
            let cal = BusinessCalendar {
                holiday_state: state.clone(),
                ..BusinessCalendar::default()
            };
            let start = berlin(2026, 5, 22, 16, 0);
            assert_eq!(
                due(&cal, start, 8.0),
                berlin(2026, 5, 26, 16, 0),
                "{state:?}"
            );
        }
    }

    #[test]
    fn holidays_by_state() {
        let in_state = |state: &str, day: NaiveDate| {
            let cal = BusinessCalendar {
                holiday_state: Some(state.to_owned()),
                ..BusinessCalendar::default()
            };
            cal.holidays(day.year()).iter().any(|(d, _)| *d == day)
        };
        assert_eq!(easter_sunday(2026), Some(date(2026, 4, 5)));
        assert_eq!(easter_sunday(2027), Some(date(2027, 3, 28)));
        assert!(in_state("SN", date(2026, 11, 18)));
        assert!(!in_state("BY", date(2026, 11, 18)));
        assert!(in_state("BY", date(2026, 6, 4)));
        assert!(!in_state("BE", date(2026, 6, 4)));
    }

    #[test]
    fn extra_holidays_close_the_desk() {
        let cal = BusinessCalendar {
            extra_holidays: vec![date(2026, 12, 24), date(2026, 12, 25), date(2027, 12, 31)],
            ..BusinessCalendar::default()
        };
        let december: Vec<_> = cal
            .holidays(2026)
            .into_iter()
            .filter(|(d, _)| d.month() == 12)
            .collect();
        let expected = [
            (date(2026, 12, 24), "Betriebsruhe"),
            (date(2026, 12, 25), "1. Weihnachtstag"),
            (date(2026, 12, 26), "2. Weihnachtstag"),
        ];
        assert_eq!(december, expected);
        // Closed on Thursday 24th and Friday 25th: the Wednesday ticket waits until Monday.
        let start = berlin(2026, 12, 23, 16, 0);
        assert_eq!(due(&cal, start, 2.0), berlin(2026, 12, 28, 10, 0));
    }

    #[test]
    fn sla_across_dst_changes() {
        let cal = BusinessCalendar::default();
        assert_eq!(
            due(&cal, berlin(2026, 3, 27, 16, 0), 8.0),
            utc(2026, 3, 30, 14, 0)
        );
        assert_eq!(
            due(&cal, berlin(2026, 10, 23, 16, 0), 8.0),
            utc(2026, 10, 26, 15, 0)
        );
    }

    #[test]
    fn working_through_the_dst_night() {
        let cal = from_json(r#"{"hours": {"sun": [["00:00", "24:00"]]}}"#);
        let hours_on = |m, d| {
            cal.business_hours_between(berlin(2026, m, d, 0, 0), berlin(2026, m, d + 1, 0, 0))
        };
        assert_eq!(hours_on(3, 29), 23.0);
        assert_eq!(hours_on(10, 25), 25.0);
        // 01:00 CET + 2 h: one hour until the clocks jump from 02:00 to 03:00 CEST.
        assert_eq!(
            due(&cal, berlin(2026, 3, 29, 1, 0), 2.0),
            berlin(2026, 3, 29, 4, 0)
        );
        // An interval inside the gap vanishes; inside the repeated hour it lasts twice as long.
        let night = from_json(r#"{"hours": {"sun": [["02:00", "03:00"]]}}"#);
        assert_eq!(
            night.business_hours_between(utc(2026, 3, 28, 0, 0), utc(2026, 3, 30, 0, 0)),
            0.0
        );
        assert_eq!(
            night.business_hours_between(utc(2026, 10, 24, 0, 0), utc(2026, 10, 26, 0, 0)),
            2.0
        );
    }

    #[test]
    fn counting_starts_at_the_next_working_instant() {
        let cal = BusinessCalendar::default();
        let saturday = berlin(2026, 11, 21, 10, 0);
        assert_eq!(due(&cal, saturday, 0.0), berlin(2026, 11, 23, 9, 0));
        assert_eq!(due(&cal, saturday, 1.0), berlin(2026, 11, 23, 10, 0));
        let early = berlin(2026, 11, 24, 8, 0);
        assert_eq!(due(&cal, early, 2.0), berlin(2026, 11, 24, 11, 0));
        assert_eq!(due(&cal, early, 0.25), berlin(2026, 11, 24, 9, 15));
        let inside = berlin(2026, 11, 24, 10, 30);
        assert_eq!(due(&cal, inside, 0.0), inside);
        // Exhausted exactly at closing time: due at 17:00, not at the next opening.
        assert_eq!(
            due(&cal, berlin(2026, 11, 24, 9, 0), 8.0),
            berlin(2026, 11, 24, 17, 0)
        );
        assert_eq!(
            due(&cal, berlin(2026, 11, 24, 16, 45), 0.5),
            berlin(2026, 11, 25, 9, 15)
        );
    }

    #[test]
    fn lunch_break_is_honoured() {
        let cal = from_json(r#"{"hours": {"tue": [["13:00", "17:00"], ["09:00", "12:00"]]}}"#);
        assert_eq!(
            due(&cal, berlin(2026, 11, 24, 11, 0), 2.0),
            berlin(2026, 11, 24, 14, 0)
        );
        assert!(!cal.is_working_time(berlin(2026, 11, 24, 12, 30)));
        assert!(cal.is_working_time(berlin(2026, 11, 24, 13, 0)));
        assert!(!cal.is_working_time(berlin(2026, 11, 24, 17, 0)));
        let (tue, wed) = (berlin(2026, 11, 24, 0, 0), berlin(2026, 11, 25, 0, 0));
        assert_eq!(cal.business_hours_between(tue, wed), 7.0);
        assert_eq!(cal.business_hours_between(wed, tue), 0.0);
    }

    #[test]
    fn json_shape_and_defaults() {
        let cal = from_json(
            r#"{"timezone": "Europe/Berlin", "holidayState": "BY", "extraHolidays": ["2026-12-24"],
                "hours": {"mon": [["09:00","17:00"]], "tue": [["09:00","12:00"],["13:00","17:00"]],
                          "wed": [["09:00","17:00"]], "thu": [["09:00","17:00"]],
                          "fri": [["09:00","15:00"]], "sat": [], "sun": []}}"#,
        );
        assert_eq!(cal.validate(), Ok(()));
        let json = serde_json::to_value(&cal).expect("serialize");
        assert_eq!(json["holidayState"], "BY");
        assert_eq!(json["extraHolidays"][0], "2026-12-24");
        assert_eq!(json["hours"]["tue"][1][0], "13:00");
        assert_eq!(from_json(&json.to_string()), cal);
        assert_eq!(from_json("{}"), BusinessCalendar::default());
        assert!(serde_json::from_str::<BusinessCalendar>(r#"{"hours": {"monday": []}}"#).is_err());
    }

    #[test]
    fn validate_names_the_bad_field() {
        let cases = [
            (r#"{"timezone": "Europe/Bonn"}"#, "timezone: unknown"),
            (r#"{"holidayState": "XY"}"#, "holidayState: unknown"),
            (
                r#"{"hours": {"mon": [["9:00", "17:00"]]}}"#,
                "hours.mon: malformed",
            ),
            (
                r#"{"hours": {"mon": [["09:60", "17:00"]]}}"#,
                "hours.mon: malformed",
            ),
            (
                r#"{"hours": {"wed": [["09:00", "24:30"]]}}"#,
                "hours.wed: malformed",
            ),
            (
                r#"{"hours": {"mon": [["0900", "17:00"]]}}"#,
                "hours.mon: malformed",
            ),
            (
                r#"{"hours": {"fri": [["17:00", "09:00"]]}}"#,
                "hours.fri: interval 17:00-09:00",
            ),
            (
                r#"{"hours": {"fri": [["09:00", "09:00"]]}}"#,
                "hours.fri: interval 09:00-09:00",
            ),
            (
                r#"{"hours": {"tue": [["12:00", "17:00"], ["09:00", "12:30"]]}}"#,
                "hours.tue: intervals 09:00-12:30 and 12:00-17:00 overlap",
            ),
            (
                r#"{"hours": {}}"#,
                "hours: the week contains no working time",
            ),
        ];
        for (json, expected) in cases {
            let err = from_json(json).validate().expect_err(json).to_string();
            assert!(err.starts_with(expected), "{json}: {err}");
        }
        let touching = r#"{"hours": {"mon": [["09:00", "12:00"], ["12:00", "24:00"]]}}"#;
        assert_eq!(from_json(touching).validate(), Ok(()));

        let closed = from_json(r#"{"hours": {}}"#);
        let start = utc(2026, 1, 1, 0, 0);
        assert_eq!(
            closed.add_business_hours(start, 1.0),
            Err(CalendarError::NoWorkingTime)
        );
        assert_eq!(
            closed.business_hours_between(start, utc(2027, 1, 1, 0, 0)),
            0.0
        );
        assert!(!closed.is_working_time(berlin(2026, 11, 24, 10, 0)));

        let cal = BusinessCalendar::default();
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                cal.add_business_hours(start, bad),
                Err(CalendarError::InvalidDuration(_))
            ));
        }
        assert_eq!(
            cal.add_business_hours(start, 1e9),
            Err(CalendarError::SearchLimitExceeded(start))
        );
    }

    #[test]
    fn added_hours_are_counted_back_exactly() {
        let cal = from_json(
            r#"{"holidayState": "BY", "extraHolidays": ["2026-12-24", "2026-12-31"],
                "hours": {"mon": [["08:00","12:00"],["12:30","16:30"]], "tue": [["09:00","17:00"]],
                          "wed": [["07:15","11:45"],["13:00","19:00"]], "thu": [["09:00","17:00"]],
                          "fri": [["09:00","14:00"]], "sun": [["00:00","03:30"],["22:00","24:00"]]}}"#,
        );
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            seed >> 33
        };
        for _ in 0..400 {
            // Starts anywhere in 2026–2027 (four DST changes), up to ~82 h of work.
            let start =
                utc(2026, 1, 1, 0, 0) + TimeDelta::seconds((next() % (2 * 366 * 86_400)) as i64);
            let hours = (next() % 8_000) as f64 / 97.0;
            let end = due(&cal, start, hours);
            let counted = cal.business_hours_between(start, end);
            assert!(
                end >= start && (counted - hours).abs() < 1e-6,
                "{start} + {hours} h -> {end}: {counted}"
            );
        }
    }
}
