//! `bodyClean`: what the customer wrote in this message, without the quoted history, the
//! signature and the legal disclaimer their mail program or company added. The AI reads it, so
//! an old quoted request is not taken for a new one.

/// Lines that start the quoted history of a reply (German and English mail programs).
fn starts_history(line: &str) -> bool {
    let l = line.trim();
    let lower = l.to_lowercase();
    if lower.starts_with("-----original message-----")
        || lower.starts_with("-----ursprüngliche nachricht-----")
        || lower.starts_with("-------- original message --------")
        || lower.starts_with("-------- ursprüngliche nachricht --------")
        || lower.starts_with("-------- weitergeleitete nachricht --------")
        || lower.starts_with("---------- forwarded message ---------")
        || lower.starts_with("begin forwarded message:")
    {
        return true;
    }
    // "On Mon, 3 Mar 2023 at 10:00, Tom <tom@example.org> wrote:" and
    // "Am 03.03.2023 um 10:00 schrieb Tom <tom@example.org>:"
    if (lower.starts_with("on ") && lower.ends_with("wrote:"))
        || (lower.starts_with("am ") && lower.ends_with(':') && lower.contains("schrieb"))
    {
        return true;
    }
    // Outlook's header block: "From: …" / "Von: …" followed by "Sent:"/"Gesendet:".
    false
}

fn outlook_header(lines: &[&str], i: usize) -> bool {
    let l = lines[i].trim().to_lowercase();
    if !(l.starts_with("from:") || l.starts_with("von:")) {
        return false;
    }
    lines[i + 1..].iter().take(3).any(|n| {
        let n = n.trim().to_lowercase();
        n.starts_with("sent:")
            || n.starts_with("gesendet:")
            || n.starts_with("date:")
            || n.starts_with("datum:")
    })
}

fn starts_signature(line: &str) -> bool {
    let l = line.trim_end();
    l == "--" || l == "-- " || l == "__" || {
        let lower = l.trim().to_lowercase();
        lower.starts_with("sent from my ")
            || lower.starts_with("von meinem iphone gesendet")
            || lower.starts_with("von meinem ipad gesendet")
            || lower.starts_with("gesendet von meinem ")
            || lower.starts_with("get outlook for ")
    }
}

fn starts_disclaimer(line: &str) -> bool {
    let lower = line.trim().to_lowercase();
    [
        "diese e-mail enthält vertrauliche",
        "diese nachricht enthält vertrauliche",
        "this e-mail and any attachments",
        "this email and any attachments",
        "this message is confidential",
        "this e-mail is confidential",
        "confidentiality notice",
        "disclaimer:",
        "haftungsausschluss",
    ]
    .iter()
    .any(|p| lower.starts_with(p))
}

/// The new text of a plain-text message body.
pub fn body_clean(plain: &str) -> String {
    let lines: Vec<&str> = plain.lines().collect();
    let mut kept: Vec<&str> = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if starts_history(line)
            || outlook_header(&lines, i)
            || starts_signature(line)
            || starts_disclaimer(line)
        {
            break;
        }
        if line.trim_start().starts_with('>') {
            continue;
        }
        kept.push(line);
    }
    let text = kept.join("\n");
    let text = text.trim();
    if text.is_empty() {
        // A message that is all quote (a bare forward) keeps its text rather than nothing.
        plain.trim().to_owned()
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_history_signature_and_disclaimer_are_removed() {
        let mail = "Hallo,\n\nmein Zählerstand ist 12345.\n\nViele Grüße\nTom\n-- \nTom Mustermann\nMusterstr. 1\n\nAm 01.03.2023 um 10:00 schrieb Stadtwerke <service@sw.de>:\n> Bitte senden Sie uns Ihren Zählerstand.";
        assert_eq!(
            body_clean(mail),
            "Hallo,\n\nmein Zählerstand ist 12345.\n\nViele Grüße\nTom"
        );
        let outlook = "Thanks, it works.\n\nFrom: Service <service@sw.de>\nSent: Monday\nTo: me\nSubject: Re: x\n\nold text";
        assert_eq!(body_clean(outlook), "Thanks, it works.");
        let with_disclaimer =
            "Bitte kündigen Sie.\n\nDiese E-Mail enthält vertrauliche Informationen.";
        assert_eq!(body_clean(with_disclaimer), "Bitte kündigen Sie.");
        let english = "New address below.\nOn Mon, 3 Mar 2023 at 10:00, SW <s@sw.de> wrote:\n> old";
        assert_eq!(body_clean(english), "New address below.");
    }

    #[test]
    fn a_message_that_is_all_quote_keeps_its_text() {
        assert_eq!(body_clean("> only a quote"), "> only a quote");
    }
}
