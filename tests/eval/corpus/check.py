#!/usr/bin/env python3
"""Consistency check for tests/eval/corpus/mails.jsonl.

Usage: python3 tests/eval/corpus/check.py [path/to/mails.jsonl]
Exits non-zero on any error; prints warnings and the counts per split/intent/language/sentiment.
"""
import calendar, collections, datetime as dt, json, os, re, sys

PATH = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "mails.jsonl")
SLUGS = {
    "meter_reading": {"meterNumber": str, "meterReading": (int, float), "readingDate": "date"},
    "relocation": {"moveDate": "date", "newAddress": str},
    "cancel_contract": {"cancellationDate": "date"},
    "revocation_agent": {},
    "bank_data_agent": {"iban": str},
    "deposit_agent": {"newDeposit": (int, float)},
    "invoice_question": {},
    "payment_plan": {},
}
# `test2` is the second frozen evaluation split (see README): never used for tuning.
SPLITS = ("train", "test", "test2")
FIELDS = ["id", "split", "lang", "date", "from", "subject", "body", "intents", "params",
          "sentiment", "spam", "autoReply", "invalidIban"]
errors, warnings = [], []
def err(mid, msg): errors.append(f"{mid}: {msg}")
def warn(mid, msg): warnings.append(f"{mid}: {msg}")

def conv(s): return "".join(str(ord(c) - 55) if c.isalpha() else c for c in s)
def iban_ok(i):
    i = i.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{10,30}", i): return False
    return int(conv(i[4:] + i[:4])) % 97 == 1
IBAN_RE = re.compile(r"\b([A-Za-z]{2}\d{2}(?:[ ]?[A-Za-z0-9]{4}){3,7}(?:[ ]?[A-Za-z0-9]{1,4})?)\b")
IBAN_LEN = {"DE": 22, "AT": 20, "NL": 18}
def ibans_in(text):
    found = []
    for m in IBAN_RE.finditer(text):
        s = m.group(1).replace(" ", "").upper()
        if s[:2] in IBAN_LEN:
            s = s[:IBAN_LEN[s[:2]]]
            if len(s) == IBAN_LEN[s[:2]]: found.append(s)
    return found

QUOTE_START = re.compile(r"^(Am .* schrieb .*:|On .* wrote:|-----\s*Urspr.ngliche Nachricht|----- Urspr|> On .* wrote:)", re.M)
def own_text(body):
    """Body without quoted previous messages (lines starting with '>' and everything after a quote header)."""
    m = QUOTE_START.search(body)
    if m: body = body[:m.start()]
    return "\n".join(l for l in body.split("\n") if not l.lstrip().startswith(">"))

# ---- relative date expressions ----
DE_WD = {"montag": 0, "dienstag": 1, "mittwoch": 2, "donnerstag": 3, "freitag": 4, "samstag": 5, "sonntag": 6}
EN_WD = {"monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5, "sunday": 6}
DE_MON = {"januar": 1, "februar": 2, "märz": 3, "maerz": 3, "april": 4, "mai": 5, "juni": 6, "juli": 7,
          "august": 8, "september": 9, "oktober": 10, "november": 11, "dezember": 12}
EN_MON = {m.lower(): i for i, m in enumerate(calendar.month_name) if m}
NUM_WORDS = {"ein": 1, "einer": 1, "einem": 1, "zwei": 2, "drei": 3, "vier": 4, "fünf": 5, "vierzehn": 14,
             "a": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "ten": 10, "fourteen": 14}
def num(w): return int(w) if w.isdigit() else NUM_WORDS[w.lower()]
def month_end(y, m): return dt.date(y, m, calendar.monthrange(y, m)[1])
def next_occ(d, wd): return d + dt.timedelta((wd - d.weekday()) % 7 or 7)
def last_occ(d, wd): return d - dt.timedelta((d.weekday() - wd) % 7 or 7)
def next_week(d, wd): return d - dt.timedelta(d.weekday()) + dt.timedelta(7 + wd)
def end_of_next(d, mon):
    """Last day of the next month `mon` that has not ended yet ('Ende Oktober' written on 9 October = 31 October)."""
    y = d.year if mon >= d.month else d.year + 1
    return dt.date(y, mon, calendar.monthrange(y, mon)[1])
def relative_dates(text, lang, d):
    """(expression, resolved date) for every relative date expression in text."""
    out = []
    t = text
    if lang == "de":
        for w, off in (("heute", 0), ("gestern", -1), ("vorgestern", -2), ("morgen", 1), ("übermorgen", 2)):
            for _ in re.finditer(rf"(?<![A-Za-zÄÖÜäöüß]){w}\b", t):  # case-sensitive: 'Guten Morgen' is no date
                out.append((w, d + dt.timedelta(off)))
        for m in re.finditer(r"\b(nächsten|nächster|naechsten|naechster)\s+(" + "|".join(DE_WD) + r")\b", t, re.I):
            out.append((m.group(0), next_week(d, DE_WD[m.group(2).lower()])))
        for m in re.finditer(r"\b(kommenden|kommender|diesen|am)\s+(" + "|".join(DE_WD) + r")\b", t, re.I):
            out.append((m.group(0), next_occ(d, DE_WD[m.group(2).lower()])))
        for m in re.finditer(r"\bEnde\s+(" + "|".join(DE_MON) + r")\b", t, re.I):
            out.append((m.group(0), end_of_next(d, DE_MON[m.group(1).lower()])))
        for m in re.finditer(r"\b(letzten|letzter|vergangenen|vergangener)\s+(" + "|".join(DE_WD) + r")\b", t, re.I):
            out.append((m.group(0), last_occ(d, DE_WD[m.group(2).lower()])))
        for m in re.finditer(r"\bin\s+(\d+|einer|einem|zwei|drei|vier|fünf|vierzehn)\s+(Tag|Tagen|Woche|Wochen)\b", t, re.I):
            out.append((m.group(0), d + dt.timedelta(num(m.group(1)) * (7 if m.group(2).lower().startswith("woche") else 1))))
        for m in re.finditer(r"\b(Ende\s+des\s+Monats|Monatsende|Ende\s+dieses\s+Monats)\b", t, re.I):
            out.append((m.group(0), month_end(d.year, d.month)))
        for m in re.finditer(r"\b(Ende\s+des\s+nächsten\s+Monats|Ende\s+nächsten\s+Monats)\b", t, re.I):
            n = dt.date(d.year + d.month // 12, d.month % 12 + 1, 1)
            out.append((m.group(0), month_end(n.year, n.month)))
    else:
        for w, off in (("today", 0), ("this morning", 0), ("yesterday", -1), ("tomorrow", 1)):
            for _ in re.finditer(rf"\b{w}\b", t, re.I):
                out.append((w, d + dt.timedelta(off)))
        for m in re.finditer(r"\b(next|this|on)\s+(" + "|".join(EN_WD) + r")\b", t, re.I):
            out.append((m.group(0), next_occ(d, EN_WD[m.group(2).lower()])))
        for m in re.finditer(r"\bend of\s+(" + "|".join(EN_MON) + r")\b", t, re.I):
            out.append((m.group(0), end_of_next(d, EN_MON[m.group(1).lower()])))
        for m in re.finditer(r"\blast\s+(" + "|".join(EN_WD) + r")\b", t, re.I):
            out.append((m.group(0), last_occ(d, EN_WD[m.group(1).lower()])))
        for m in re.finditer(r"\bin\s+(\d+|a|one|two|three|four|five|ten|fourteen)\s+(days?|weeks?)\b", t, re.I):
            out.append((m.group(0), d + dt.timedelta(num(m.group(1)) * (7 if m.group(2).lower().startswith("week") else 1))))
        for m in re.finditer(r"\bend of (?:the|this) month\b", t, re.I):
            out.append((m.group(0), month_end(d.year, d.month)))
        for m in re.finditer(r"\bend of next month\b", t, re.I):
            n = dt.date(d.year + d.month // 12, d.month % 12 + 1, 1)
            out.append((m.group(0), month_end(n.year, n.month)))
    return out

DAY_ONLY_DE = re.compile(r"\b(?:am|ab|ab dem|zum|bis zum|vom)\s+(\d{1,2})\.(?!\d)(?!\s*(?:\d|" + "|".join(DE_MON) + r")\b)", re.I)
DAY_ONLY_EN = re.compile(r"\b(?:on|from|by|as of|until)\s+the\s+(\d{1,2})(?:st|nd|rd|th)\b(?!\s+of\s+[A-Z])")
def day_only(text, lang, d, key):
    """Dates written as a day of the month only ("ab dem 15.", "from the 15th"): a reading date is the most
    recent such day on or before the mail date, a move or cancellation date the next one after it, or,
    for a move, the most recent one (a move already made)."""
    out = set()
    for m in (DAY_ONLY_DE if lang == "de" else DAY_ONLY_EN).finditer(text):
        n = int(m.group(1))
        if not 1 <= n <= 31: continue
        prev = [dt.date(y, mo, n) for y, mo in ((d.year, d.month), (d.year - (d.month == 1), (d.month - 2) % 12 + 1))
                if n <= calendar.monthrange(y, mo)[1] and dt.date(y, mo, n) <= d]
        nxt = [dt.date(y, mo, n) for y, mo in ((d.year, d.month), (d.year + (d.month == 12), d.month % 12 + 1))
               if n <= calendar.monthrange(y, mo)[1] and dt.date(y, mo, n) > d]
        if key != "cancellationDate" and prev: out.add(prev[0])
        if key != "readingDate" and nxt: out.add(nxt[0])
    return out

def date_mentioned(text, day):
    """Is an absolute form of `day` written in the text (with or without year)?"""
    d, m, y = day.day, day.month, day.year
    pats = [rf"\b0?{d}\.0?{m}\.(?:{y}|{y % 100:02d})?(?!\d)", rf"\b{y}-{m:02d}-{d:02d}\b",
            rf"\b0?{d}/0?{m}/(?:{y}|{y % 100:02d})\b",
            rf"\b0?{d}\.?\s+(?:{'|'.join(k for k, v in DE_MON.items() if v == m)})\b",
            rf"\b{calendar.month_name[m]}\s+{d}(?:st|nd|rd|th)?\b", rf"\b{d}(?:st|nd|rd|th)?\s+{calendar.month_name[m]}\b"]
    return any(re.search(p, text, re.I) for p in pats)

def number_forms(x):
    """Ways a customer may write the number x (German and English formats)."""
    forms = set()
    ip = int(abs(x)); frac = round(abs(x) - ip, 6)
    ints = {str(ip), f"{ip:,}", f"{ip:,}".replace(",", ".")}
    if frac == 0:
        forms |= ints | {i + ",00" for i in ints} | {i + ".00" for i in ints}
    else:
        fs = f"{abs(x):.6f}".split(".")[1].rstrip("0")
        for i in ints:
            for sep in ",.":
                if sep in i and sep == ("," if "," in i else "."): continue
                forms.add(i + sep + fs)
                if len(fs) == 1: forms.add(i + sep + fs + "0")
    return forms

def main():
    ids = set(); recs = []
    with open(PATH, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip(): err(f"line {n}", "empty line"); continue
            try: r = json.loads(line)
            except Exception as e: err(f"line {n}", f"invalid JSON: {e}"); continue
            recs.append(r)
    for r in recs:
        mid = r.get("id", "?")
        if list(r.keys()) != FIELDS: err(mid, f"fields {list(r.keys())} != {FIELDS}")
        if mid in ids: err(mid, "duplicate id")
        ids.add(mid)
        if r.get("lang") not in ("de", "en"): err(mid, "bad lang")
        if not re.fullmatch(rf"{r.get('lang')}-\d{{3}}", mid): err(mid, "id must be <lang>-NNN")
        if r.get("split") not in SPLITS: err(mid, "bad split")
        if r.get("sentiment") not in ("positive", "neutral", "negative"): err(mid, "bad sentiment")
        for b in ("spam", "autoReply", "invalidIban"):
            if not isinstance(r.get(b), bool): err(mid, f"{b} not bool")
        for s in ("from", "subject", "body"):
            if not isinstance(r.get(s), str) or not r[s].strip(): err(mid, f"{s} empty")
        try:
            md = dt.datetime.fromisoformat(r["date"])
            if md.tzinfo is None or not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", r["date"]): raise ValueError
            if not (2025 <= md.year <= 2026): err(mid, "date outside 2025-2026")
            day = md.date()
        except Exception:
            err(mid, "date not RFC 3339 with offset"); continue
        intents, params = r["intents"], r["params"]
        if len(set(intents)) != len(intents): err(mid, "duplicate intents")
        for it in intents:
            if it not in SLUGS: err(mid, f"unknown intent {it}")
        if not isinstance(params, dict): err(mid, "params not object"); continue
        text = r["subject"] + "\n" + r["body"]
        own = r["subject"] + "\n" + own_text(r["body"])
        own_nospace = re.sub(r"\s", "", own)
        rel = relative_dates(own, r["lang"], day)
        for it, pp in params.items():
            if it not in intents: err(mid, f"params for unlabelled intent {it}"); continue
            if not pp: err(mid, f"empty params object for {it} (omit it)")
            for k, v in pp.items():
                typ = SLUGS[it].get(k)
                if typ is None: err(mid, f"unknown param {it}.{k}"); continue
                if typ == "date":
                    try: pd = dt.date.fromisoformat(v)
                    except Exception: err(mid, f"{it}.{k} not YYYY-MM-DD"); continue
                    rel_hit = [e for e, x in rel if x == pd] or (pd in day_only(own, r["lang"], day, k))
                    if not rel_hit and not date_mentioned(own, pd):
                        err(mid, f"{it}.{k}={v} neither written in the mail nor the resolution of a relative date {[(e, x.isoformat()) for e, x in rel]}")
                    if k == "readingDate" and not (day - dt.timedelta(60) <= pd <= day):
                        err(mid, f"readingDate {v} not within 60 days before the mail date")
                    if k in ("moveDate", "cancellationDate") and not (day - dt.timedelta(31) <= pd <= day + dt.timedelta(400)):
                        err(mid, f"{k} {v} implausible for mail date {day}")
                elif not isinstance(v, typ) or isinstance(v, bool):
                    err(mid, f"{it}.{k} has wrong type")
            if it == "meter_reading":
                if "meterNumber" in pp:
                    mn = pp["meterNumber"]
                    if " " in mn or mn not in own_nospace: err(mid, f"meterNumber {mn} not in mail (spaces removed) or contains spaces")
                if "meterReading" in pp and not any(f in own for f in number_forms(pp["meterReading"])):
                    err(mid, f"meterReading {pp['meterReading']} not written in mail")
            if it == "deposit_agent" and "newDeposit" in pp and not any(f in own for f in number_forms(pp["newDeposit"])):
                err(mid, f"newDeposit {pp['newDeposit']} not written in mail")
            if it == "relocation" and "newAddress" in pp:
                if not re.fullmatch(r"[^,]+ \d+[a-z]?, \d{5} [^,]+", pp["newAddress"]):
                    err(mid, f"newAddress not '<Street> <No>, <PLZ> <City>': {pp['newAddress']}")
                street = pp["newAddress"].split(",")[0].rsplit(" ", 1)[0]
                plz = re.search(r"\d{5}", pp["newAddress"]).group(0)
                if street not in own or plz not in own: err(mid, "newAddress street/postal code not in mail")
            if it == "bank_data_agent" and "iban" in pp:
                ib = pp["iban"]
                if ib != ib.replace(" ", "").upper(): err(mid, "iban must be uppercase without spaces")
                if not iban_ok(ib): err(mid, f"iban {ib} fails mod-97")
                if ib not in [x for x in ibans_in(own)]: err(mid, f"iban {ib} not found in mail text")
        # relative date expressions must agree with date params, if the mail has any date params
        dparams = {v for pp in params.values() for k, v in pp.items() if SLUGS.get(k) == "date" or k in ("readingDate", "moveDate", "cancellationDate")}
        if dparams:
            for e, x in rel:
                if x.isoformat() not in dparams and e.lower() not in ("heute", "today"):
                    warn(mid, f"relative expression '{e}' resolves to {x} which is no labelled date {sorted(dparams)}")
        # IBAN rules
        body_ibans = ibans_in(own)
        if r["invalidIban"]:
            if "bank_data_agent" not in intents: err(mid, "invalidIban without bank_data_agent")
            if "iban" in params.get("bank_data_agent", {}): err(mid, "invalidIban but iban param set")
            if not body_ibans: err(mid, "invalidIban but no IBAN found in mail")
            if any(iban_ok(x) for x in body_ibans): err(mid, "invalidIban but a valid IBAN is in the mail")
        else:
            for x in body_ibans:
                if not iban_ok(x): err(mid, f"invalid IBAN {x} in mail but invalidIban is false")
            if "bank_data_agent" in intents and "iban" not in params.get("bank_data_agent", {}):
                warn(mid, "bank_data_agent without iban param and not invalidIban")
        for x in ibans_in(r["body"]):
            if x not in body_ibans and not iban_ok(x): err(mid, f"quoted IBAN {x} invalid")
        if (r["spam"] or r["autoReply"]) and intents: err(mid, "spam/autoReply mail with intents")

    # ---- counts ----
    C = collections.Counter
    def cat(r): return "none" if not r["intents"] else (r["intents"][0] if len(r["intents"]) == 1 else "multi")
    print(f"{len(recs)} mails")
    print("split      ", dict(C(r["split"] for r in recs)))
    print("lang       ", dict(C(r["lang"] for r in recs)))
    print("sentiment  ", dict(C(r["sentiment"] for r in recs)))
    print("split×lang ", dict(C((r["split"], r["lang"]) for r in recs)))
    print("split×sent ", dict(C((r["split"], r["sentiment"]) for r in recs)))
    print("lang×sent  ", dict(C((r["lang"], r["sentiment"]) for r in recs)))
    print("spam", sum(r["spam"] for r in recs), "autoReply", sum(r["autoReply"] for r in recs),
          "invalidIban", sum(r["invalidIban"] for r in recs), dict(C(r["split"] for r in recs if r["invalidIban"])))
    print("multi-intent sizes", dict(C(len(r["intents"]) for r in recs)))
    print("\ncategory (single intent / multi / none) × split × lang")
    cats = sorted({cat(r) for r in recs})
    print(f"{'':18}{'train-de':>9}{'train-en':>9}{'test-de':>8}{'test-en':>8}{'test2-de':>9}{'test2-en':>9}{'total':>7}")
    for c in cats:
        row = [sum(1 for r in recs if cat(r) == c and r["split"] == s and r["lang"] == l) for s in SPLITS for l in ("de", "en")]
        print(f"{c:18}{row[0]:>9}{row[1]:>9}{row[2]:>8}{row[3]:>8}{row[4]:>9}{row[5]:>9}{sum(row):>7}")
    print("\nintent occurrences (single + multi) × split × lang")
    for it in SLUGS:
        row = [sum(1 for r in recs if it in r["intents"] and r["split"] == s and r["lang"] == l) for s in SPLITS for l in ("de", "en")]
        print(f"{it:18}{row[0]:>9}{row[1]:>9}{row[2]:>8}{row[3]:>8}{row[4]:>9}{row[5]:>9}{sum(row):>7}")
    for w in warnings: print("WARNING", w)
    for e in errors: print("ERROR", e)
    print(f"\n{len(errors)} errors, {len(warnings)} warnings")
    return 1 if errors else 0

if __name__ == "__main__":
    sys.exit(main())
