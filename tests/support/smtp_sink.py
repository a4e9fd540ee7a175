#!/usr/bin/env python3
"""A real SMTP server for the tests (and the local demo): aiosmtpd (Debian's python3-aiosmtpd)
on the given port, writing one JSON line per received mail to --out.

  smtp_sink.py --port 2525 --out mails.jsonl [--reject a@x.example,b@y.example]

Each line: messageId, from (envelope), headerFrom, rcpt (envelope recipients), to, cc, subject,
inReplyTo, references, autoSubmitted, body (the text part, decoded), receivedAt (unix seconds).
Recipients named in --reject are refused with 550 at RCPT (a permanent failure for the sender).
"""

import argparse
import email
import email.policy
import json
import signal
import sys
import threading
import time

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, out, reject):
        self.out = out
        self.reject = {r.strip().lower() for r in reject if r.strip()}
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.reject:
            return "550 5.1.1 <%s>: recipient rejected" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content or envelope.content,
                                       policy=email.policy.default)
        part = msg.get_body(preferencelist=("plain", "html"))
        try:
            body = part.get_content() if part is not None else ""
        except Exception as e:  # an undecodable body is still recorded
            body = "<undecodable: %s>" % e

        def h(name):
            v = msg.get(name)
            return None if v is None else str(v)

        line = {
            "messageId": h("Message-ID"),
            "from": envelope.mail_from,
            "headerFrom": h("From"),
            "rcpt": list(envelope.rcpt_tos),
            "to": h("To"),
            "cc": h("Cc"),
            "subject": h("Subject"),
            "inReplyTo": h("In-Reply-To"),
            "references": h("References"),
            "autoSubmitted": h("Auto-Submitted"),
            "body": body,
            "receivedAt": time.time(),
        }
        with self.lock:
            with open(self.out, "a", encoding="utf-8") as f:
                f.write(json.dumps(line, ensure_ascii=False) + "\n")
                f.flush()
        return "250 2.0.0 Message accepted for delivery"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--reject", default="")
    a = p.parse_args()
    controller = Controller(Sink(a.out, a.reject.split(",")), hostname=a.host, port=a.port,
                            data_size_limit=50 * 1024 * 1024)
    controller.start()
    print("smtp sink listening on %s:%d" % (a.host, a.port), flush=True)
    stop = threading.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: stop.set())
    stop.wait()
    controller.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
