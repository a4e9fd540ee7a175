//! Spam and automatic mail. The dark-processing gates never answer either: a reply to an
//! out-of-office or a bounce starts a mail loop, a reply to spam confirms the address.
//!
//! Heuristics, not a trained filter: utility mailboxes get little classic spam behind the
//! provider's filter, but many newsletters, auto-replies and bounces.

/// The seeds' automatic `spamStatus` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpamStatus {
    /// Unsolicited mail: advertising, phishing.
    Spam,
    /// Sent by a machine: auto-replies, bounces, newsletters, no-reply senders.
    Programmatic,
    Clean,
}

impl SpamStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SpamStatus::Spam => "auto_spam",
            SpamStatus::Programmatic => "auto_programmatic",
            SpamStatus::Clean => "auto_clean",
        }
    }
}

/// What the decision is based on.
#[derive(Debug, Clone, Copy, Default)]
pub struct MailFacts<'a> {
    pub from: Option<&'a str>,
    pub subject: &'a str,
    pub body: &'a str,
    /// Set by ingest from `Auto-Submitted`, `X-Autoreply`, `Precedence: bulk/auto_reply`,
    /// a delivery-status report and the like.
    pub auto_submitted: bool,
    pub list_unsubscribe: bool,
}

const AUTO_REPLY_SUBJECTS: &[&str] = &[
    "out of office",
    "out-of-office",
    "automatic reply",
    "auto reply",
    "autoreply",
    "auto-reply",
    "abwesenheitsnotiz",
    "abwesenheit",
    "automatische antwort",
    "automatische rückantwort",
    "ich bin nicht im büro",
    "i am out of the office",
    "undeliverable",
    "undelivered mail",
    "delivery status notification",
    "mail delivery failed",
    "mail delivery subsystem",
    "returned mail",
    "unzustellbar",
    "nicht zustellbar",
    "delivery failure",
    "lesebestätigung",
    "read receipt",
    "eingangsbestätigung",
];

const AUTO_REPLY_BODY: &[&str] = &[
    "ich bin bis zum",
    "ich bin derzeit nicht im büro",
    "ich bin zurzeit nicht im büro",
    "i am currently out of the office",
    "i'm currently out of the office",
    "i am out of the office",
    "i will be out of the office",
    "i'm out of the office",
    "this is an automatically generated",
    "dies ist eine automatisch generierte",
    "diese nachricht wurde automatisch",
    "this message was created automatically",
    "delivery has failed to these recipients",
    "could not be delivered",
    "konnte nicht zugestellt werden",
];

const NEWSLETTER: &[&str] = &[
    "unsubscribe",
    "abmelden",
    "abbestellen",
    "newsletter",
    "view this email in your browser",
    "im browser ansehen",
    "webversion",
];

const SPAM: &[&str] = &[
    "viagra",
    "cialis",
    "casino",
    "lottery",
    "lotto-gewinn",
    "you have won",
    "sie haben gewonnen",
    "gewinnspiel",
    "bitcoin",
    "crypto",
    "krypto",
    "investment opportunity",
    "make money",
    "work from home",
    "nigerian",
    "inheritance",
    "erbschaft",
    "beneficiary",
    "dear friend",
    "verify your account",
    "konto verifizieren",
    "ihr konto wurde gesperrt",
    "your account has been suspended",
    "click here",
    "klicken sie hier",
    "limited time offer",
    "act now",
    "100% free",
    "seo services",
    "backlinks",
    "weight loss",
    "abnehmen",
    "dating",
    "singles",
    "rolex",
    "pharmacy",
    "enlargement",
    "million dollars",
    "millionen euro",
    "wire transfer",
    "seo",
    "google",
    "platz 1",
    "ranking",
    "% rabatt",
    "% off",
    "kostenloses erstgespräch",
    "free consultation",
    "garantiert",
    "guaranteed",
    "action required",
    "handlungsbedarf",
    "verfällt ihr anspruch",
    "innerhalb von 24 stunden",
    "within 24 hours",
    "within 48 hours",
    "unless you verify",
    "kreditkarte",
    "credit card",
    "card number",
];

/// A request for credentials behind a link: phishing, whatever else it says.
fn phishing(text: &str) -> bool {
    let asks = [
        "kreditkarte",
        "credit card",
        "card number",
        " pin",
        "passwort",
        "password",
        "tan ",
        "zugangsdaten",
        "login details",
    ]
    .iter()
    .any(|w| text.contains(w));
    let link = text.contains("http://") || text.contains("https://") || text.contains("www.");
    asks && link
}

/// Whether a mail is spam, machine-sent or from a person.
pub fn classify(facts: &MailFacts) -> SpamStatus {
    let subject = facts.subject.to_lowercase();
    let body = facts.body.to_lowercase();
    let from = facts.from.unwrap_or_default().to_lowercase();
    let machine_sender = [
        "mailer-daemon",
        "postmaster@",
        "no-reply",
        "noreply",
        "do-not-reply",
        "donotreply",
    ]
    .iter()
    .any(|w| from.contains(w));
    if facts.auto_submitted
        || machine_sender
        || AUTO_REPLY_SUBJECTS.iter().any(|w| subject.contains(w))
        || AUTO_REPLY_BODY.iter().any(|w| body.contains(w))
    {
        return SpamStatus::Programmatic;
    }
    if phishing(&body) {
        return SpamStatus::Spam;
    }
    let spam_hits = SPAM
        .iter()
        .filter(|w| subject.contains(*w) || body.contains(*w))
        .count();
    if spam_hits >= 2 || (spam_hits == 1 && subject.chars().filter(|c| *c == '!').count() >= 2) {
        return SpamStatus::Spam;
    }
    let newsletter_hits = NEWSLETTER.iter().filter(|w| body.contains(*w)).count();
    if facts.list_unsubscribe || newsletter_hits >= 2 {
        return SpamStatus::Programmatic;
    }
    SpamStatus::Clean
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(subject: &'a str, body: &'a str) -> MailFacts<'a> {
        MailFacts {
            subject,
            body,
            ..MailFacts::default()
        }
    }

    #[test]
    fn auto_replies_and_bounces_are_programmatic() {
        assert_eq!(
            classify(&facts(
                "Abwesenheitsnotiz: Ihr Zählerstand",
                "Ich bin bis zum 3.11. nicht im Büro."
            )),
            SpamStatus::Programmatic
        );
        assert_eq!(
            classify(&MailFacts {
                from: Some("MAILER-DAEMON@mx.example.org"),
                ..facts("Undelivered Mail Returned to Sender", "")
            }),
            SpamStatus::Programmatic
        );
        assert_eq!(
            classify(&MailFacts {
                auto_submitted: true,
                ..facts("Re: Ihr Anliegen", "Danke")
            }),
            SpamStatus::Programmatic
        );
    }

    #[test]
    fn spam_and_newsletters() {
        assert_eq!(
            classify(&facts(
                "You have won!!",
                "Click here to claim your lottery prize"
            )),
            SpamStatus::Spam
        );
        assert_eq!(
            classify(&facts(
                "Unser Oktober-Newsletter",
                "Zum Abmelden klicken Sie auf abbestellen."
            )),
            SpamStatus::Programmatic
        );
    }

    #[test]
    fn phishing_and_marketing_are_spam() {
        assert_eq!(
            classify(&facts("Action required: your direct debit has been suspended", "verify your bank details (IBAN, card number and PIN) here: https://billing-support.example/verify")),
            SpamStatus::Spam
        );
        assert_eq!(
            classify(&facts(
                "Platz 1 bei Google garantiert",
                "Wir haben 47 SEO-Fehler gefunden! Jetzt 50 % Rabatt."
            )),
            SpamStatus::Spam
        );
    }

    #[test]
    fn customers_are_clean() {
        assert_eq!(
            classify(&facts(
                "Zählerstand",
                "Mein Zählerstand ist 12345 kWh. Bitte klicken Sie nicht auf Abmelden."
            )),
            SpamStatus::Clean
        );
    }
}
