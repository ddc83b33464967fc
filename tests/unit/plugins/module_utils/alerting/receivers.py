# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real loopback receivers for alert tests (127.0.14.0/24): an SMTP server (aiosmtpd, optional
STARTTLS / implicit TLS / AUTH) and an HTTP server recording every request.

Used by the unit tests here and by tests/scenarios/test_alerts_*.py.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import subprocess
import threading
import urllib.parse
from email import message_from_bytes
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SMTP_ADDRESS = "127.0.14.1"
HTTP_ADDRESS = "127.0.14.2"
DOWN_ADDRESS = "127.0.14.250"  # nothing listens there


def free_port(address):
    with socket.socket() as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


def self_signed_cert(folder):
    """(certfile, keyfile) of a throw-away self-signed certificate made with openssl."""
    cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    if not os.path.exists(cert):
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=127.0.14.1", "-keyout", key, "-out", cert],
                       check=True, capture_output=True)
    return cert, key


class SMTPReceiver:
    """aiosmtpd on loopback; ``messages`` holds ``{"mail_from", "rcpt_tos", "message", "raw", "login"}``."""

    def __init__(self, address=SMTP_ADDRESS, port=None, tls=None, cert_folder=None, users=None):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        self.address = address
        self.port = port or free_port(address)
        self.messages = []
        self.logins = []
        receiver = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                receiver.messages.append({
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": list(envelope.rcpt_tos),
                    "raw": envelope.original_content or envelope.content,
                    "message": message_from_bytes(envelope.original_content or envelope.content, policy=policy.default),
                })
                return "250 Message accepted for delivery"

        def authenticator(server, session, envelope, mechanism, auth_data):
            if isinstance(auth_data, LoginPassword):
                user, password = auth_data.login.decode(), auth_data.password.decode()
                ok = users is not None and users.get(user) == password
                receiver.logins.append((user, ok))
                return AuthResult(success=ok, handled=False)
            return AuthResult(success=False, handled=False)

        kwargs = {"hostname": address, "port": self.port}
        context = None
        if tls:
            cert, key = self_signed_cert(cert_folder)
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert, key)
        if tls == "starttls":
            kwargs["tls_context"] = context
            kwargs["require_starttls"] = True
        elif tls == "ssl":
            kwargs["ssl_context"] = context
        if users is not None:
            kwargs["authenticator"] = authenticator
            kwargs["auth_require_tls"] = tls is not None
            kwargs["auth_required"] = True
            # smtplib retries a refused PLAIN with LOGIN, which aiosmtpd 1.4 answers slowly; offer PLAIN only
            kwargs["auth_exclude_mechanism"] = ["LOGIN"]
        self.controller = Controller(Handler(), server_hostname="bim-test-smtp", **kwargs)

    def __enter__(self):
        self.controller.start()
        return self

    def __exit__(self, *exc):
        self.controller.stop()


class HTTPReceiver:
    """Threaded HTTP server; ``requests`` holds ``{"method", "path", "headers", "body", "json", "form"}``.

    ``status`` (default 200) is what every request gets; set it to 500 to simulate a broken endpoint.
    ``echo_path`` makes it a careless endpoint that quotes the request path in its reason phrase and body.
    """

    def __init__(self, address=HTTP_ADDRESS, port=None):
        self.address = address
        self.port = port or free_port(address)
        self.requests = []
        self.status = 200
        self.echo_path = False
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _record(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                entry = {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body,
                         "json": None, "form": None}
                ctype = self.headers.get("Content-Type", "")
                if ctype.startswith("application/json"):
                    entry["json"] = json.loads(body.decode("utf-8"))
                elif ctype.startswith("application/x-www-form-urlencoded"):
                    entry["form"] = dict(urllib.parse.parse_qsl(body.decode("utf-8")))
                receiver.requests.append(entry)
                if receiver.echo_path:
                    self.send_response(receiver.status, "no hook at %s" % self.path)
                    payload = json.dumps({"error": "no hook at %s" % self.path, "url": self.path}).encode()
                else:
                    self.send_response(receiver.status)
                    payload = b'{"ok": true}'
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_POST = _record
            do_PUT = _record

        self.server = ThreadingHTTPServer((address, self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self):
        return "http://%s:%d" % (self.address, self.port)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def on(self, prefix):
        return [r for r in self.requests if r["path"].startswith(prefix)]
