//! Identifiers a customer writes to say who they are: customer and contract numbers (labelled,
//! so an amount or a meter reading is never taken for one), meter numbers and e-mail addresses.
//! The ai worker looks them up in the ERP mirror and scores the legitimation.

use std::sync::LazyLock;

use regex::Regex;

use crate::params::{candidates, Context, Kind};

#[allow(clippy::expect_used)]
fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("identifier pattern compiles")
}

static CUSTOMER_NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:kundennummer|kunden-nr\.?|kundennr\.?|kd\.?-?nr\.?|kunden\s+nr\.?|customer\s+(?:number|no\.?|id)|account\s+(?:number|no\.?))\s*[:#]?\s*(?:ist|is|lautet)?\s*[:#]?\s*(\d{3,12})\b",
    )
});
static CONTRACT_NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:vertragsnummer|vertrags-nr\.?|vertragsnr\.?|vertrag\s+nr\.?|vertragskonto(?:nummer)?|contract\s+(?:number|no\.?|id)|contract)\s*[:#]?\s*(?:ist|is|lautet)?\s*[:#]?\s*(\d{3,12})\b",
    )
});

/// What a mail says about who wrote it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identifiers {
    pub customer_numbers: Vec<i64>,
    pub contract_numbers: Vec<i64>,
    pub meter_numbers: Vec<String>,
    pub emails: Vec<String>,
}

fn numbers(re: &Regex, text: &str) -> Vec<i64> {
    let mut out: Vec<i64> = re
        .captures_iter(text)
        .filter_map(|c| c.get(1)?.as_str().parse().ok())
        .collect();
    out.dedup();
    out
}

/// The identifiers in `text`.
pub fn identifiers(text: &str, cx: &Context) -> Identifiers {
    let strings = |kind| {
        let mut v: Vec<String> = candidates(kind, text, cx)
            .into_iter()
            .filter_map(|c| c.value.as_str().map(str::to_owned))
            .collect();
        v.dedup();
        v
    };
    Identifiers {
        customer_numbers: numbers(&CUSTOMER_NUMBER, text),
        contract_numbers: numbers(&CONTRACT_NUMBER, text),
        meter_numbers: strings(Kind::MeterNumber),
        emails: strings(Kind::Email),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn labelled_numbers_only() {
        let cx = Context {
            reference: NaiveDate::from_ymd_opt(2026, 10, 14).unwrap_or_default(),
            language: "de",
        };
        let ids = identifiers(
            "Kundennummer: 83771, Vertragsnummer 746839, Zähler 1ESY1160669167, Stand 12345 kWh, tom@mustermann.de",
            &cx,
        );
        assert_eq!(ids.customer_numbers, vec![83771]);
        assert_eq!(ids.contract_numbers, vec![746839]);
        assert_eq!(ids.meter_numbers, vec!["1ESY1160669167".to_owned()]);
        assert_eq!(ids.emails, vec!["tom@mustermann.de".to_owned()]);
    }
}
