//! Dates in German and English running text, resolved against the mail's own date (never "now":
//! a mail processed a day late must still mean the same day).
//!
//! Written by hand because no well-kept crate finds relative German dates inside a mail
//! (`whichtime` 0.1 reads "nächsten Donnerstag" as tomorrow and misses "3.10." and "Ende Januar").
//! Policies, documented for operators:
//! - "nächsten Donnerstag" is Thursday of next calendar week; "kommenden/am Donnerstag" and
//!   English "next/on/this Thursday" the first Thursday after the mail date.
//! - A day and month without a year is the one nearest the mail date; a month alone ("Ende
//!   Januar", "end of January") is its next occurrence, the current month included.

use std::sync::LazyLock;

use chrono::{Datelike, Duration, NaiveDate, Weekday};
use regex::Regex;

/// A date found in a text, with where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundDate {
    pub start: usize,
    pub end: usize,
    pub date: NaiveDate,
}

const MONTHS: &[(&str, u32)] = &[
    ("januar", 1),
    ("jänner", 1),
    ("january", 1),
    ("jan", 1),
    ("februar", 2),
    ("february", 2),
    ("feb", 2),
    ("märz", 3),
    ("maerz", 3),
    ("march", 3),
    ("mär", 3),
    ("mar", 3),
    ("april", 4),
    ("apr", 4),
    ("mai", 5),
    ("may", 5),
    ("juni", 6),
    ("june", 6),
    ("jun", 6),
    ("juli", 7),
    ("july", 7),
    ("jul", 7),
    ("august", 8),
    ("aug", 8),
    ("september", 9),
    ("sept", 9),
    ("sep", 9),
    ("oktober", 10),
    ("october", 10),
    ("okt", 10),
    ("oct", 10),
    ("november", 11),
    ("nov", 11),
    ("dezember", 12),
    ("december", 12),
    ("dez", 12),
    ("dec", 12),
];

const MONTH_RE: &str = "januar|jänner|january|februar|february|märz|maerz|march|april|mai|may|juni|june|juli|july|august|september|oktober|october|november|dezember|december|jan|feb|mär|mar|apr|jun|jul|aug|sept|sep|okt|oct|nov|dez|dec";

const WEEKDAYS: &[(&str, Weekday)] = &[
    ("montag", Weekday::Mon),
    ("dienstag", Weekday::Tue),
    ("mittwoch", Weekday::Wed),
    ("donnerstag", Weekday::Thu),
    ("freitag", Weekday::Fri),
    ("samstag", Weekday::Sat),
    ("sonnabend", Weekday::Sat),
    ("sonntag", Weekday::Sun),
    ("monday", Weekday::Mon),
    ("tuesday", Weekday::Tue),
    ("wednesday", Weekday::Wed),
    ("thursday", Weekday::Thu),
    ("friday", Weekday::Fri),
    ("saturday", Weekday::Sat),
    ("sunday", Weekday::Sun),
];

const WEEKDAY_RE: &str = "montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonnabend|sonntag|monday|tuesday|wednesday|thursday|friday|saturday|sunday";

const NUMBER_WORDS: &[(&str, i64)] = &[
    ("einem", 1),
    ("einer", 1),
    ("eine", 1),
    ("ein", 1),
    ("one", 1),
    ("a", 1),
    ("zwei", 2),
    ("two", 2),
    ("drei", 3),
    ("three", 3),
    ("vier", 4),
    ("four", 4),
    ("fünf", 5),
    ("five", 5),
    ("sechs", 6),
    ("six", 6),
    ("sieben", 7),
    ("seven", 7),
    ("acht", 8),
    ("eight", 8),
    ("neun", 9),
    ("nine", 9),
    ("zehn", 10),
    ("ten", 10),
];

fn re(pattern: &str) -> Regex {
    // The patterns are constants of this file, covered by the tests below.
    #[allow(clippy::expect_used)]
    Regex::new(pattern).expect("date pattern compiles")
}

static ISO: LazyLock<Regex> = LazyLock::new(|| re(r"\b(\d{4})-(\d{2})-(\d{2})\b"));
static NUMERIC: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?:^|[^\d.,])(\d{1,2})\.\s?(\d{1,2})\.(?:\s?(\d{4}|\d{2}))?(?:[^\d]|$)"));
static SLASHED: LazyLock<Regex> = LazyLock::new(|| re(r"\b(\d{1,2})/(\d{1,2})/(\d{4}|\d{2})\b"));
static DAY_MONTH: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)\b(?P<d>\d{{1,2}})(?:\.|st|nd|rd|th)?\s*(?:of\s+)?(?P<m>{MONTH_RE})\b\.?(?:,?\s*(?P<y>\d{{4}}))?"
    ))
});
static MONTH_DAY: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)\b(?P<m>{MONTH_RE})\.?\s+(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s*(?P<y>\d{{4}}))?"
    ))
});
static PART_OF_MONTH: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)\b(anfang|mitte|ende|beginning\s+of|start\s+of|middle\s+of|mid|end\s+of)[\s-]+(?:des\s+|the\s+)?(monats|month|jahres|year|{MONTH_RE})\b\.?(?:\s*(\d{{4}}))?"
    ))
});
static MONTH_END: LazyLock<Regex> = LazyLock::new(|| re(r"(?i)\b(monatsende|jahresende|ultimo)\b"));
static RELATIVE_DAY: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(vorgestern|gestern|heute|übermorgen|morgen|day\s+before\s+yesterday|yesterday|today|this\s+morning|this\s+afternoon|this\s+evening|tonight|day\s+after\s+tomorrow|tomorrow)\b",
    )
});
static WEEKDAY: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)\b(nächsten|nächste|naechsten|kommenden|kommende|diesen|diese|letzten|letzte|vergangenen|am|next|this|coming|on|last|by)\s+({WEEKDAY_RE})\b"
    ))
});
static IN_N: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:in|within)\s+(\d{1,2}|einem|einer|eine|ein|zwei|drei|vier|fünf|sechs|sieben|acht|neun|zehn|one|a|two|three|four|five|six|seven|eight|nine|ten)\s+(tagen|tage|tag|wochen|woche|monaten|monat|days|day|weeks|week|months|month)\b",
    )
});

fn month_of(word: &str) -> Option<u32> {
    let w = word.to_lowercase();
    MONTHS.iter().find(|(n, _)| *n == w).map(|(_, m)| *m)
}

fn weekday_of(word: &str) -> Option<Weekday> {
    let w = word.to_lowercase();
    WEEKDAYS.iter().find(|(n, _)| *n == w).map(|(_, d)| *d)
}

fn number_of(word: &str) -> Option<i64> {
    if let Ok(n) = word.parse() {
        return Some(n);
    }
    let w = word.to_lowercase();
    NUMBER_WORDS.iter().find(|(n, _)| *n == w).map(|(_, v)| *v)
}

fn full_year(y: &str) -> Option<i32> {
    let n: i32 = y.parse().ok()?;
    Some(if y.len() == 2 { 2000 + n } else { n })
}

fn last_day(year: i32, month: u32) -> Option<NaiveDate> {
    let (y, m) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1)?.pred_opt()
}

/// The day and month nearest the reference date.
fn nearest(reference: NaiveDate, month: u32, day: u32) -> Option<NaiveDate> {
    (reference.year() - 1..=reference.year() + 1)
        .filter_map(|y| NaiveDate::from_ymd_opt(y, month, day))
        .min_by_key(|d| (*d - reference).num_days().abs())
}

/// The next occurrence of a month (this month included).
fn next_month_year(reference: NaiveDate, month: u32) -> i32 {
    if month >= reference.month() {
        reference.year()
    } else {
        reference.year() + 1
    }
}

fn date_with_year(
    reference: NaiveDate,
    day: u32,
    month: u32,
    year: Option<i32>,
) -> Option<NaiveDate> {
    match year {
        Some(y) => NaiveDate::from_ymd_opt(y, month, day),
        None => nearest(reference, month, day),
    }
}

/// The first `weekday` strictly after `from`.
fn next_weekday(from: NaiveDate, weekday: Weekday) -> NaiveDate {
    let ahead = (7 + weekday.num_days_from_monday() as i64
        - from.weekday().num_days_from_monday() as i64)
        % 7;
    from + Duration::days(if ahead == 0 { 7 } else { ahead })
}

/// The last `weekday` strictly before `from`.
fn previous_weekday(from: NaiveDate, weekday: Weekday) -> NaiveDate {
    let back = (7 + from.weekday().num_days_from_monday() as i64
        - weekday.num_days_from_monday() as i64)
        % 7;
    from - Duration::days(if back == 0 { 7 } else { back })
}

/// `weekday` of the calendar week after the reference date's (weeks start on Monday).
fn weekday_next_week(from: NaiveDate, weekday: Weekday) -> NaiveDate {
    let monday = from - Duration::days(from.weekday().num_days_from_monday() as i64);
    monday + Duration::days(7 + weekday.num_days_from_monday() as i64)
}

fn overlaps(found: &[FoundDate], start: usize, end: usize) -> bool {
    found.iter().any(|f| start < f.end && f.start < end)
}

/// Every date in `text`, in text order, resolved against `reference` (the mail's date).
pub fn find_dates(text: &str, reference: NaiveDate) -> Vec<FoundDate> {
    let mut found: Vec<FoundDate> = Vec::new();
    let push = |found: &mut Vec<FoundDate>, start: usize, end: usize, date: Option<NaiveDate>| {
        if let Some(date) = date {
            if !overlaps(found, start, end) {
                found.push(FoundDate { start, end, date });
            }
        }
    };
    for c in ISO.captures_iter(text) {
        let (Some(m), Some(y), Some(mo), Some(d)) = (c.get(0), c.get(1), c.get(2), c.get(3)) else {
            continue;
        };
        let date = match (y.as_str().parse(), mo.as_str().parse(), d.as_str().parse()) {
            (Ok(y), Ok(mo), Ok(d)) => NaiveDate::from_ymd_opt(y, mo, d),
            _ => None,
        };
        push(&mut found, m.start(), m.end(), date);
    }
    for c in PART_OF_MONTH.captures_iter(text) {
        let (Some(m), Some(part), Some(what)) = (c.get(0), c.get(1), c.get(2)) else {
            continue;
        };
        let part = part.as_str().to_lowercase();
        let what = what.as_str().to_lowercase();
        let year = c.get(3).and_then(|y| full_year(y.as_str()));
        let (year, month) = if what == "monats" || what == "month" {
            (reference.year(), Some(reference.month()))
        } else if what == "jahres" || what == "year" {
            (year.unwrap_or(reference.year()), None)
        } else {
            let Some(month) = month_of(&what) else {
                continue;
            };
            (
                year.unwrap_or(next_month_year(reference, month)),
                Some(month),
            )
        };
        let date = match (part.as_str(), month) {
            (p, Some(month))
                if p.starts_with("anfang")
                    || p.starts_with("beginning")
                    || p.starts_with("start") =>
            {
                NaiveDate::from_ymd_opt(year, month, 1)
            }
            (p, Some(month)) if p.starts_with("mitte") || p.starts_with("mid") => {
                NaiveDate::from_ymd_opt(year, month, 15)
            }
            (_, Some(month)) => last_day(year, month),
            (p, None)
                if p.starts_with("anfang")
                    || p.starts_with("beginning")
                    || p.starts_with("start") =>
            {
                NaiveDate::from_ymd_opt(year, 1, 1)
            }
            (p, None) if p.starts_with("mitte") || p.starts_with("mid") => {
                NaiveDate::from_ymd_opt(year, 6, 30)
            }
            (_, None) => NaiveDate::from_ymd_opt(year, 12, 31),
        };
        push(&mut found, m.start(), m.end(), date);
    }
    for c in MONTH_END.captures_iter(text) {
        let Some(m) = c.get(0) else { continue };
        let date = if m.as_str().to_lowercase().starts_with("jahres") {
            NaiveDate::from_ymd_opt(reference.year(), 12, 31)
        } else {
            last_day(reference.year(), reference.month())
        };
        push(&mut found, m.start(), m.end(), date);
    }
    // "1. November", "1st of November", "November 1st, 2026": the same date in either order.
    for pattern in [&*DAY_MONTH, &*MONTH_DAY] {
        for c in pattern.captures_iter(text) {
            let (Some(m), Some(d), Some(mo)) = (c.get(0), c.name("d"), c.name("m")) else {
                continue;
            };
            let (Ok(day), Some(month)) = (d.as_str().parse(), month_of(mo.as_str())) else {
                continue;
            };
            let year = c.name("y").and_then(|y| full_year(y.as_str()));
            push(
                &mut found,
                m.start(),
                m.end(),
                date_with_year(reference, day, month, year),
            );
        }
    }
    for c in NUMERIC.captures_iter(text) {
        let (Some(d), Some(mo)) = (c.get(1), c.get(2)) else {
            continue;
        };
        let (Ok(day), Ok(month)) = (d.as_str().parse(), mo.as_str().parse()) else {
            continue;
        };
        let year = c.get(3).and_then(|y| full_year(y.as_str()));
        let end = c.get(3).map_or(mo.end() + 1, |y| y.end());
        push(
            &mut found,
            d.start(),
            end,
            date_with_year(reference, day, month, year),
        );
    }
    for c in SLASHED.captures_iter(text) {
        let (Some(m), Some(a), Some(b), Some(y)) = (c.get(0), c.get(1), c.get(2), c.get(3)) else {
            continue;
        };
        let (Ok(a), Ok(b), Some(year)) = (
            a.as_str().parse::<u32>(),
            b.as_str().parse::<u32>(),
            full_year(y.as_str()),
        ) else {
            continue;
        };
        // Day first (European) unless only month-first makes a date.
        let date = if b > 12 {
            NaiveDate::from_ymd_opt(year, a, b)
        } else {
            NaiveDate::from_ymd_opt(year, b, a)
        };
        push(&mut found, m.start(), m.end(), date);
    }
    for c in RELATIVE_DAY.captures_iter(text) {
        let Some(m) = c.get(0) else { continue };
        let word = m.as_str().to_lowercase();
        let before = text[..m.start()].to_lowercase();
        // "Guten Morgen", "heute Morgen": morning, not tomorrow.
        if word == "morgen"
            && (before.ends_with("guten ") || before.ends_with("heute ") || before.ends_with("am "))
        {
            continue;
        }
        let offset = match word
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .as_str()
        {
            "vorgestern" | "day before yesterday" => -2,
            "gestern" | "yesterday" => -1,
            "heute" | "today" | "this morning" | "this afternoon" | "this evening" | "tonight" => 0,
            "morgen" | "tomorrow" => 1,
            _ => 2,
        };
        push(
            &mut found,
            m.start(),
            m.end(),
            Some(reference + Duration::days(offset)),
        );
    }
    for c in WEEKDAY.captures_iter(text) {
        let (Some(m), Some(q), Some(w)) = (c.get(0), c.get(1), c.get(2)) else {
            continue;
        };
        let Some(weekday) = weekday_of(w.as_str()) else {
            continue;
        };
        let date = match q.as_str().to_lowercase().as_str() {
            "nächsten" | "nächste" | "naechsten" => weekday_next_week(reference, weekday),
            "letzten" | "letzte" | "vergangenen" | "last" => previous_weekday(reference, weekday),
            _ => next_weekday(reference, weekday),
        };
        push(&mut found, m.start(), m.end(), Some(date));
    }
    for c in IN_N.captures_iter(text) {
        let (Some(m), Some(n), Some(unit)) = (c.get(0), c.get(1), c.get(2)) else {
            continue;
        };
        let Some(n) = number_of(n.as_str()) else {
            continue;
        };
        let unit = unit.as_str().to_lowercase();
        let date = if unit.starts_with("tag") || unit.starts_with("day") {
            Some(reference + Duration::days(n))
        } else if unit.starts_with("woche") || unit.starts_with("week") {
            Some(reference + Duration::days(7 * n))
        } else {
            u32::try_from(n)
                .ok()
                .and_then(|n| reference.checked_add_months(chrono::Months::new(n)))
        };
        push(&mut found, m.start(), m.end(), date);
    }
    found.sort_by_key(|f| f.start);
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }

    fn dates(text: &str, reference: NaiveDate) -> Vec<NaiveDate> {
        find_dates(text, reference)
            .into_iter()
            .map(|f| f.date)
            .collect()
    }

    #[test]
    fn german_absolute_and_relative() {
        // Wednesday 2026-10-14.
        let r = d(2026, 10, 14);
        assert_eq!(dates("Kündigung zum 1. November", r), vec![d(2026, 11, 1)]);
        assert_eq!(dates("am 3.10. abgelesen", r), vec![d(2026, 10, 3)]);
        assert_eq!(dates("Auszug am 31.12.2026", r), vec![d(2026, 12, 31)]);
        assert_eq!(dates("zum 15.01.27", r), vec![d(2027, 1, 15)]);
        assert_eq!(
            dates("Ich ziehe nächsten Donnerstag ein", r),
            vec![d(2026, 10, 22)]
        );
        assert_eq!(dates("kommenden Donnerstag", r), vec![d(2026, 10, 15)]);
        assert_eq!(dates("heute abgelesen", r), vec![r]);
        assert_eq!(dates("gestern", r), vec![d(2026, 10, 13)]);
        assert_eq!(dates("Guten Morgen, anbei", r), vec![]);
        assert_eq!(dates("zum Ende Januar", r), vec![d(2027, 1, 31)]);
        assert_eq!(dates("Anfang Dezember", r), vec![d(2026, 12, 1)]);
        assert_eq!(dates("zum Monatsende", r), vec![d(2026, 10, 31)]);
        assert_eq!(dates("in zwei Wochen", r), vec![d(2026, 10, 28)]);
    }

    #[test]
    fn english_absolute_and_relative() {
        let r = d(2026, 10, 14);
        assert_eq!(
            dates("cancel by the end of January", r),
            vec![d(2027, 1, 31)]
        );
        assert_eq!(dates("moving on October 31st", r), vec![d(2026, 10, 31)]);
        assert_eq!(dates("on 1st of November 2026", r), vec![d(2026, 11, 1)]);
        assert_eq!(dates("next Monday", r), vec![d(2026, 10, 19)]);
        assert_eq!(dates("read it yesterday", r), vec![d(2026, 10, 13)]);
        assert_eq!(dates("from 2026-11-01 on", r), vec![d(2026, 11, 1)]);
        assert_eq!(dates("on 31/10/2026", r), vec![d(2026, 10, 31)]);
    }

    #[test]
    fn numbers_that_are_not_dates() {
        let r = d(2026, 10, 14);
        assert_eq!(dates("Zählerstand 12.345,6 kWh", r), vec![]);
        assert_eq!(dates("Abschlag 53.00 EUR", r), vec![]);
        assert_eq!(dates("Zähler 1ESY1160612345", r), vec![]);
    }

    #[test]
    fn year_end_and_positions() {
        let r = d(2026, 12, 20);
        let found = find_dates("Bitte zum 5. Januar kündigen.", r);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].date, d(2027, 1, 5));
        assert_eq!(
            &"Bitte zum 5. Januar kündigen."[found[0].start..found[0].end],
            "5. Januar"
        );
    }
}
