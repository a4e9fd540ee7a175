//! German public holidays, computed per year so no table needs yearly upkeep.
//!
//! Simplifications:
//! - The rules in force since 2023 are applied to every year; only Women's Day carries its start
//!   year (BE since 2019, MV since 2023). One-off holidays (e.g. the nationwide Reformation Day
//!   2017) are not modelled.
//! - Holidays that apply only in some municipalities are ignored (Corpus Christi in parts of SN
//!   and TH, the Augsburg Peace Festival), except Assumption Day in BY, which is treated as
//!   statewide although it only applies in predominantly Catholic municipalities.

use chrono::{Datelike, NaiveDate, TimeDelta, Weekday};

/// The state codes accepted in `holidayState`.
pub const STATES: [&str; 16] = [
    "BW", "BY", "BE", "BB", "HB", "HH", "HE", "MV", "NI", "NW", "RP", "SL", "SN", "ST", "SH", "TH",
];

/// Case-insensitive, returning the canonical code so rules can compare against literals.
pub(crate) fn parse_state(code: &str) -> Option<&'static str> {
    STATES
        .iter()
        .copied()
        .find(|s| s.eq_ignore_ascii_case(code.trim()))
}

/// Easter Sunday by the anonymous Gregorian algorithm (Meeus/Jones/Butcher); `None` before the
/// Gregorian calendar (1583) or outside chrono's date range.
pub fn easter_sunday(year: i32) -> Option<NaiveDate> {
    if year < 1583 {
        return None;
    }
    let (a, b, c) = (year % 19, year / 100, year % 100);
    let (d, e) = (b / 4, b % 4);
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let (i, k) = (c / 4, c % 4);
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, u32::try_from(month).ok()?, u32::try_from(day).ok()?)
}

/// Buß- und Bettag: the Wednesday before 23 November.
fn repentance_day(year: i32) -> Option<NaiveDate> {
    let nov22 = NaiveDate::from_ymd_opt(year, 11, 22)?;
    let back =
        (nov22.weekday().num_days_from_monday() + 7 - Weekday::Wed.num_days_from_monday()) % 7;
    nov22.checked_sub_signed(TimeDelta::days(back.into()))
}

/// The public holidays of `year` in `state` (nationwide ones only for `None`), sorted by date.
pub(crate) fn public_holidays(year: i32, state: Option<&str>) -> Vec<(NaiveDate, &'static str)> {
    let in_state = |codes: &[&str]| state.is_some_and(|s| codes.contains(&s));
    let fixed = |month, day| NaiveDate::from_ymd_opt(year, month, day);
    let easter = easter_sunday(year);
    let after_easter = |days| easter.and_then(|e| e.checked_add_signed(TimeDelta::days(days)));
    let womens_day = (in_state(&["BE"]) && year >= 2019) || (in_state(&["MV"]) && year >= 2023);
    let candidates = [
        (true, fixed(1, 1), "Neujahr"),
        (
            in_state(&["BW", "BY", "ST"]),
            fixed(1, 6),
            "Heilige Drei Könige",
        ),
        (womens_day, fixed(3, 8), "Internationaler Frauentag"),
        (true, after_easter(-2), "Karfreitag"),
        (in_state(&["BB"]), easter, "Ostersonntag"),
        (true, after_easter(1), "Ostermontag"),
        (true, fixed(5, 1), "Tag der Arbeit"),
        (true, after_easter(39), "Christi Himmelfahrt"),
        (in_state(&["BB"]), after_easter(49), "Pfingstsonntag"),
        (true, after_easter(50), "Pfingstmontag"),
        (
            in_state(&["BW", "BY", "HE", "NW", "RP", "SL"]),
            after_easter(60),
            "Fronleichnam",
        ),
        (in_state(&["BY", "SL"]), fixed(8, 15), "Mariä Himmelfahrt"),
        (in_state(&["TH"]), fixed(9, 20), "Weltkindertag"),
        (true, fixed(10, 3), "Tag der Deutschen Einheit"),
        (
            in_state(&["BB", "HB", "HH", "MV", "NI", "SN", "ST", "SH", "TH"]),
            fixed(10, 31),
            "Reformationstag",
        ),
        (
            in_state(&["BW", "BY", "NW", "RP", "SL"]),
            fixed(11, 1),
            "Allerheiligen",
        ),
        (in_state(&["SN"]), repentance_day(year), "Buß- und Bettag"),
        (true, fixed(12, 25), "1. Weihnachtstag"),
        (true, fixed(12, 26), "2. Weihnachtstag"),
    ];
    candidates
        .into_iter()
        .filter(|(applies, _, _)| *applies)
        .filter_map(|(_, date, name)| Some((date?, name)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
    }

    fn has(year: i32, state: Option<&str>, day: NaiveDate) -> bool {
        public_holidays(year, state).iter().any(|(d, _)| *d == day)
    }

    #[test]
    fn easter_and_repentance_day() {
        assert_eq!(easter_sunday(2024), Some(date(2024, 3, 31)));
        assert_eq!(easter_sunday(2038), Some(date(2038, 4, 25)));
        assert_eq!(easter_sunday(1500), None);
        assert_eq!(repentance_day(2026), Some(date(2026, 11, 18)));
        assert_eq!(repentance_day(2027), Some(date(2027, 11, 17)));
        for state in STATES.iter().filter(|s| **s != "SN") {
            assert!(!has(2026, Some(state), date(2026, 11, 18)), "{state}");
        }
    }

    #[test]
    fn womens_day_in_mv_since_2023() {
        assert!(has(2023, Some("MV"), date(2023, 3, 8)));
        assert!(!has(2022, Some("MV"), date(2022, 3, 8)));
        assert!(has(2022, Some("BE"), date(2022, 3, 8)));
    }

    #[test]
    fn nationwide_list() {
        let names: Vec<_> = public_holidays(2026, None)
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        assert_eq!(
            names,
            [
                "Neujahr",
                "Karfreitag",
                "Ostermontag",
                "Tag der Arbeit",
                "Christi Himmelfahrt",
                "Pfingstmontag",
                "Tag der Deutschen Einheit",
                "1. Weihnachtstag",
                "2. Weihnachtstag"
            ]
        );
        assert_eq!(parse_state(" by "), Some("BY"));
        assert_eq!(parse_state("XX"), None);
    }
}
