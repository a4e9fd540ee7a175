//! Raw MIME to the fields ingest stores: addresses, subject, bodies, the thread headers,
//! attachments and whether the mail was sent by a machine. mail-parser never panics and decodes
//! legacy charsets; whatever it cannot make sense of still yields a ticket (see `lib.rs`).

use chrono::{DateTime, TimeZone, Utc};
use mail_parser::{Address, HeaderValue, MessageParser, MimeHeaders, PartType};

/// One attachment or inline part, decoded.
#[derive(Debug, Clone)]
pub struct Part {
    pub name: String,
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
    pub inline: bool,
}

#[derive(Debug, Clone, Default)]
pub struct ParsedMail {
    /// Without angle brackets.
    pub message_id: Option<String>,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    pub from: Option<String>,
    pub from_name: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: Option<String>,
    pub date: Option<DateTime<Utc>>,
    pub html: Option<String>,
    pub text: Option<String>,
    pub parts: Vec<Part>,
    pub auto_reply: Option<&'static str>,
}

fn addresses(a: Option<&Address<'_>>) -> Vec<String> {
    a.map(|a| {
        a.iter()
            .filter_map(|x| x.address())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    })
    .unwrap_or_default()
}

fn id_list(v: &HeaderValue<'_>) -> Vec<String> {
    match v {
        HeaderValue::Text(t) => vec![t.trim().to_owned()],
        HeaderValue::TextList(l) => l.iter().map(|t| t.trim().to_owned()).collect(),
        _ => Vec::new(),
    }
    .into_iter()
    .map(|s| s.trim_matches(|c| c == '<' || c == '>').to_owned())
    .filter(|s| !s.is_empty())
    .collect()
}

/// Parses headers only: enough to thread and flag a mail too large to parse whole.
pub fn parse_headers(raw: &[u8]) -> Option<ParsedMail> {
    let msg = MessageParser::default().parse_headers(raw)?;
    Some(header_fields(&msg))
}

fn header_fields(msg: &mail_parser::Message<'_>) -> ParsedMail {
    let from = msg.from().and_then(|a| a.first());
    ParsedMail {
        message_id: msg
            .message_id()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
        in_reply_to: id_list(msg.in_reply_to()),
        references: id_list(msg.references()),
        from: from
            .and_then(|a| a.address())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
        from_name: from
            .and_then(|a| a.name())
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
        to: addresses(msg.to()),
        cc: addresses(msg.cc()),
        subject: msg.subject().map(|s| s.trim().to_owned()),
        date: msg
            .date()
            .and_then(|d| Utc.timestamp_opt(d.to_timestamp(), 0).single()),
        auto_reply: auto_reply(msg),
        ..Default::default()
    }
}

/// Parses a whole mail; `None` when it has no header at all.
pub fn parse(raw: &[u8]) -> Option<ParsedMail> {
    let msg = MessageParser::default().parse(raw)?;
    // The parser reads nearly anything as headers; a mail names at least a sender, recipient,
    // subject, date or id.
    if msg.from().is_none()
        && msg.to().is_none()
        && msg.subject().is_none()
        && msg.date().is_none()
        && msg.message_id().is_none()
    {
        return None;
    }
    let mut out = header_fields(&msg);
    let mut texts = Vec::new();
    for part in msg.text_bodies() {
        if let PartType::Text(t) = &part.body {
            texts.push(t.to_string());
        }
    }
    let mut htmls = Vec::new();
    for part in msg.html_bodies() {
        if let PartType::Html(h) = &part.body {
            htmls.push(h.to_string());
        }
    }
    out.text = (!texts.is_empty()).then(|| texts.join("\n"));
    out.html = (!htmls.is_empty()).then(|| htmls.join("\n"));
    let html_all = out.html.clone().unwrap_or_default();
    for (i, part) in msg.attachments().enumerate() {
        let content_type = part.content_type().map(|c| match c.subtype() {
            Some(s) => format!("{}/{}", c.ctype(), s).to_lowercase(),
            None => c.ctype().to_lowercase(),
        });
        let cid = part
            .content_id()
            .map(|c| c.trim_matches(|c| c == '<' || c == '>').to_owned());
        let referenced = cid
            .as_deref()
            .is_some_and(|c| !c.is_empty() && html_all.contains(&format!("cid:{c}")));
        let disposition_inline = part
            .content_disposition()
            .is_some_and(|d| d.ctype().eq_ignore_ascii_case("inline"));
        let inline =
            referenced || (disposition_inline && matches!(part.body, PartType::InlineBinary(_)));
        let name = part
            .attachment_name()
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| default_name(i, content_type.as_deref()));
        out.parts.push(Part {
            name,
            content_type,
            bytes: part.contents().to_vec(),
            inline,
        });
    }
    Some(out)
}

fn default_name(i: usize, content_type: Option<&str>) -> String {
    let ending = content_type
        .and_then(ending_for_type)
        .map(|e| format!(".{e}"))
        .unwrap_or_default();
    format!("attachment-{}{ending}", i + 1)
}

/// The file ending the seed's `fileEnding` shows: from the name, else from the content type.
pub fn file_ending(name: &str, content_type: Option<&str>) -> Option<String> {
    match name.rsplit_once('.') {
        Some((stem, ext))
            if !stem.is_empty()
                && !ext.is_empty()
                && ext.len() <= 8
                && ext.chars().all(|c| c.is_ascii_alphanumeric()) =>
        {
            Some(ext.to_lowercase())
        }
        _ => content_type.and_then(ending_for_type).map(str::to_owned),
    }
}

fn ending_for_type(ct: &str) -> Option<&'static str> {
    Some(match ct {
        "image/jpeg" | "image/jpg" | "image/pjpeg" => "jpg",
        "image/png" => "png",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "image/tiff" => "tiff",
        "image/bmp" => "bmp",
        "application/pdf" => "pdf",
        "text/plain" => "txt",
        "text/html" => "html",
        "message/rfc822" => "eml",
        "application/ms-tnef" | "application/vnd.ms-tnef" => "dat",
        _ => return None,
    })
}

/// Mail written by a machine (RFC 3834 and what mail programs really send): recorded like any
/// other, but it must never start an automatic answer, or two robots reply to each other.
fn auto_reply(msg: &mail_parser::Message<'_>) -> Option<&'static str> {
    let header = |name: &str| {
        msg.header_raw(name)
            .map(|v| v.trim().to_lowercase())
            .filter(|v| !v.is_empty())
    };
    let from = msg
        .from()
        .and_then(|a| a.first())
        .and_then(|a| a.address())
        .unwrap_or_default()
        .to_lowercase();
    let report = msg.content_type().is_some_and(|c| {
        c.ctype().eq_ignore_ascii_case("multipart")
            && c.subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
    });
    if report
        || header("X-Failed-Recipients").is_some()
        || from.starts_with("mailer-daemon@")
        || from.starts_with("postmaster@")
    {
        return Some("bounce");
    }
    let subject = msg.subject().unwrap_or_default().trim().to_lowercase();
    let ooo = [
        "out of office",
        "out-of-office",
        "automatic reply",
        "auto reply",
        "autoreply",
        "abwesenheitsnotiz",
        "automatische antwort",
        "abwesend:",
        "auto:",
    ];
    if ooo.iter().any(|p| subject.starts_with(p)) {
        return Some("outOfOffice");
    }
    if header("Auto-Submitted").is_some_and(|v| v != "no")
        || header("X-Autoreply").is_some()
        || header("X-Autorespond").is_some()
        || header("Precedence").is_some_and(|v| v == "auto_reply")
    {
        return Some("autoReply");
    }
    if header("Precedence").is_some_and(|v| v == "bulk" || v == "junk" || v == "list") {
        return Some("bulk");
    }
    None
}

/// A ticket number `[#123]` in a subject.
pub fn subject_ticket_ref(subject: &str) -> Option<i64> {
    let mut rest = subject;
    while let Some(at) = rest.find("[#") {
        let after = &rest[at + 2..];
        let digits: String = after.chars().take_while(|c| c.is_ascii_digit()).collect();
        if !digits.is_empty() && after[digits.len()..].starts_with(']') {
            if let Ok(id) = digits.parse() {
                return Some(id);
            }
        }
        rest = after;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_multipart_mail_with_an_inline_image_and_a_legacy_charset() {
        let raw = concat!(
            "From: =?ISO-8859-1?Q?J=FCrgen_M=FCller?= <juergen@example.org>\r\n",
            "To: service@sw.de\r\n",
            "Subject: =?ISO-8859-1?Q?Z=E4hlerstand?= [#42]\r\n",
            "Message-ID: <abc@example.org>\r\n",
            "In-Reply-To: <out-1@sw.de>\r\n",
            "References: <first@sw.de> <out-1@sw.de>\r\n",
            "Date: Wed, 01 Mar 2023 19:27:12 +0100\r\n",
            "MIME-Version: 1.0\r\n",
            "Content-Type: multipart/related; boundary=\"b1\"\r\n",
            "\r\n",
            "--b1\r\n",
            "Content-Type: text/html; charset=iso-8859-1\r\n",
            "Content-Transfer-Encoding: quoted-printable\r\n",
            "\r\n",
            "<p>Mein Z=E4hlerstand</p><img src=3D\"cid:img1\">\r\n",
            "--b1\r\n",
            "Content-Type: image/png; name=\"meter.png\"\r\n",
            "Content-ID: <img1>\r\n",
            "Content-Disposition: inline; filename=\"meter.png\"\r\n",
            "Content-Transfer-Encoding: base64\r\n",
            "\r\n",
            "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==\r\n",
            "--b1--\r\n",
        );
        let m = parse(raw.as_bytes()).expect("parses");
        assert_eq!(m.from.as_deref(), Some("juergen@example.org"));
        assert_eq!(m.from_name.as_deref(), Some("Jürgen Müller"));
        assert_eq!(m.subject.as_deref(), Some("Zählerstand [#42]"));
        assert_eq!(m.message_id.as_deref(), Some("abc@example.org"));
        assert_eq!(m.in_reply_to, vec!["out-1@sw.de".to_owned()]);
        assert_eq!(m.references.len(), 2);
        assert!(m.html.as_deref().is_some_and(|h| h.contains("Zählerstand")));
        assert_eq!(m.parts.len(), 1);
        assert!(m.parts[0].inline);
        assert_eq!(m.parts[0].name, "meter.png");
        assert_eq!(m.parts[0].content_type.as_deref(), Some("image/png"));
        assert_eq!(
            imagesize::blob_size(&m.parts[0].bytes)
                .map(|s| (s.width, s.height))
                .ok(),
            Some((1, 1))
        );
        assert_eq!(m.auto_reply, None);
        assert_eq!(
            subject_ticket_ref(m.subject.as_deref().unwrap_or_default()),
            Some(42)
        );
    }

    #[test]
    fn machines_are_recognised() {
        let ooo = "From: a@b.de\r\nSubject: Abwesenheitsnotiz: Zählerstand\r\n\r\nbin weg";
        assert_eq!(
            parse(ooo.as_bytes()).and_then(|m| m.auto_reply),
            Some("outOfOffice")
        );
        let auto = "From: a@b.de\r\nAuto-Submitted: auto-replied\r\nSubject: Re: x\r\n\r\nok";
        assert_eq!(
            parse(auto.as_bytes()).and_then(|m| m.auto_reply),
            Some("autoReply")
        );
        let bounce = "From: MAILER-DAEMON@mx.example.org\r\nSubject: Undelivered\r\n\r\nx";
        assert_eq!(
            parse(bounce.as_bytes()).and_then(|m| m.auto_reply),
            Some("bounce")
        );
        let human = "From: a@b.de\r\nAuto-Submitted: no\r\nSubject: Frage\r\n\r\nx";
        assert_eq!(parse(human.as_bytes()).and_then(|m| m.auto_reply), None);
    }

    #[test]
    fn ticket_references_and_file_endings() {
        assert_eq!(subject_ticket_ref("Re: [#] [#12a] [#77] x"), Some(77));
        assert_eq!(subject_ticket_ref("no ref"), None);
        assert_eq!(file_ending("IMG_1.JPG", None).as_deref(), Some("jpg"));
        assert_eq!(
            file_ending("noext", Some("application/pdf")).as_deref(),
            Some("pdf")
        );
        assert_eq!(file_ending(".hidden", None), None);
    }

    #[test]
    fn garbage_is_not_a_mail() {
        assert!(parse(b"").is_none());
        assert!(parse(b"\x00\x01\x02 garbage without headers").is_none());
    }
}
