#!/usr/bin/env python3
"""A real SMTP server for the tests (and the local demo): aiosmtpd (Debian's python3-aiosmtpd)
on the given port, writing one JSON line per received mail to --out.

  smtp_sink.py --port 2525 --out mails.jsonl [--reject a@x.example,b@y.example]
               [--xoauth2-introspect http://127.0.0.1:8081/introspect]

Each line: messageId, from (envelope), headerFrom, rcpt (envelope recipients), to, cc, subject,
inReplyTo, references, autoSubmitted, body (the text part, decoded), receivedAt (unix seconds).
Recipients named in --reject are refused with 550 at RCPT (a permanent failure for the sender).
With --xoauth2-introspect, AUTH XOAUTH2 is required (over plain text: a test server) and the
bearer token is checked with that OAuth 2.0 introspection endpoint (RFC 7662: POST token=…,
answer {"active": true, "username": …}), the way Dovecot's oauth2 passdb does; a token that is
not active or names another user gets 535. Lines then also carry authUser and authMechanism.
"""

import argparse
import asyncio
import base64
import email
import email.policy
import json
import signal
import sys
import threading
import time
import urllib.parse
import urllib.request

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


def introspect(url, token):
    """The introspection endpoint's answer for the token ({} when it cannot be asked)."""
    body = urllib.parse.urlencode({"token": token}).encode()
    try:
        with urllib.request.urlopen(url, data=body, timeout=10) as r:
            return json.loads(r.read().decode())
    except Exception as e:  # refused like an inactive token, and said why
        print("introspection failed: %s" % e, file=sys.stderr, flush=True)
        return {}


class Sink:
    def __init__(self, out, reject, introspect_url=None):
        self.out = out
        self.reject = {r.strip().lower() for r in reject if r.strip()}
        self.lock = threading.Lock()
        self.introspect_url = introspect_url

    async def auth_XOAUTH2(self, server, args):
        """SASL XOAUTH2: user=<addr>^Aauth=Bearer <token>^A^A, as initial response or after 334."""
        if not self.introspect_url:
            return AuthResult(success=False)
        if len(args) > 1:
            raw = args[1]
        else:
            answer = await server.challenge_auth("")
            if not isinstance(answer, bytes):
                return AuthResult(success=False)
            raw = base64.b64encode(answer).decode()
        try:
            fields = dict(f.split("=", 1) for f in
                          base64.b64decode(raw, validate=True).decode().split("\x01") if f)
        except Exception:
            return AuthResult(success=False)
        user = fields.get("user", "")
        token = fields.get("auth", "")[len("Bearer "):]
        info = await asyncio.get_running_loop().run_in_executor(
            None, introspect, self.introspect_url, token)
        if info.get("active") is True and info.get("username", "").lower() == user.lower():
            return AuthResult(success=True, auth_data={"user": user, "mechanism": "XOAUTH2"})
        return AuthResult(success=False)

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
            "authUser": (session.auth_data or {}).get("user"),
            "authMechanism": (session.auth_data or {}).get("mechanism"),
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
    p.add_argument("--xoauth2-introspect", default="")
    a = p.parse_args()
    auth = {}
    if a.xoauth2_introspect:
        auth = {"auth_required": True, "auth_require_tls": False,
                "auth_exclude_mechanism": ["PLAIN", "LOGIN"]}
    controller = Controller(Sink(a.out, a.reject.split(","), a.xoauth2_introspect or None),
                            hostname=a.host, port=a.port, data_size_limit=50 * 1024 * 1024,
                            **auth)
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
