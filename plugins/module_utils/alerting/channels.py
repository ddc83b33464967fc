# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Notification channels: email (smtplib), Slack incoming webhook, SMS through Twilio's REST API,
and a generic JSON webhook. Standard library plus ``ansible.module_utils.urls.open_url``.

Every sender takes the channel's configuration dict and a ``Notification`` and raises
``ChannelError`` on failure (both in ``notification.py``). Imported only when something is sent
(``notify.send_through_channel``). Error messages never contain the configuration's secrets (webhook
URLs, tokens, passwords): they name the channel and the failure class only, and the caller
scrubs them once more.
"""

from __future__ import annotations

import base64
import json
import smtplib
import socket
import ssl
import urllib.error
import urllib.parse
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from ansible.module_utils.urls import ConnectionError as UrlConnectionError
from ansible.module_utils.urls import SSLValidationError, open_url

from ansible_collections.bim.wall_system.plugins.module_utils.alerting.notification import ChannelError

DEFAULT_TIMEOUT = 10
TWILIO_API_BASE = "https://api.twilio.com"
SMS_MAX_CHARS = 1600
USER_AGENT = "bim.wall_system-alert/0.1"


def _as_list(value):
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def send(kind, config, notification):
    """Send ``notification`` through channel ``kind``; return a short safe description."""
    sender = {"email": send_email, "slack": send_slack, "sms": send_sms, "webhook": send_webhook}[kind]
    return sender(config, notification)


# --- email -------------------------------------------------------------------------------------

def send_email(config, notification):
    recipients = _as_list(config.get("to"))
    sender = config.get("from") or config.get("from_address") or "bim-alerts@localhost"
    message = EmailMessage()
    message["Subject"] = "%s%s" % (config.get("subject_prefix") or "", notification.subject())
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(notification.timestamp, usegmt=True)
    message["Message-ID"] = make_msgid(domain="bim.wall_system")
    message["X-BIM-Alert-Rule"] = notification.rule["name"]
    message["X-BIM-Alert-Severity"] = notification.severity
    message["X-BIM-Alert-Status"] = notification.status
    message.set_content(notification.text())

    security = (config.get("security") or "starttls").lower()
    host = config["host"]
    port = int(config.get("port") or (465 if security == "ssl" else 587 if security == "starttls" else 25))
    timeout = float(config.get("timeout") or DEFAULT_TIMEOUT)
    context = ssl.create_default_context()
    if config.get("validate_certs") is False:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        if security == "ssl":
            client = smtplib.SMTP_SSL(host, port, timeout=timeout, context=context)
        else:
            client = smtplib.SMTP(host, port, timeout=timeout)
        try:
            client.ehlo_or_helo_if_needed()
            if security == "starttls":
                client.starttls(context=context)
                client.ehlo()
            if config.get("username"):
                client.login(config["username"], config.get("password") or "")
            refused = client.send_message(message, from_addr=sender, to_addrs=recipients)
        finally:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()
    except smtplib.SMTPAuthenticationError as exc:
        raise ChannelError("email: SMTP authentication failed (%s)" % exc.smtp_code)
    except smtplib.SMTPNotSupportedError as exc:
        raise ChannelError("email: the SMTP server does not support it: %s" % _first_line(exc))
    except smtplib.SMTPException as exc:
        raise ChannelError("email: SMTP error: %s" % _first_line(exc))
    except ssl.SSLError as exc:
        raise ChannelError("email: TLS error with %s:%s: %s" % (host, port, exc.reason or exc))
    except (OSError, socket.timeout) as exc:
        raise ChannelError("email: cannot reach SMTP server %s:%s: %s" % (host, port, getattr(exc, "strerror", None) or exc))
    delivered = len(recipients) - len(refused or {})
    return "sent to %d recipient(s)" % delivered


def _first_line(exc):
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


# --- HTTP --------------------------------------------------------------------------------------

def _http(label, url, body, headers, timeout, method="POST", validate_certs=True):
    """POST ``body``; return the status. Errors never include the URL (it is a secret)."""
    try:
        response = open_url(url, data=body, headers=dict((str(k), str(v)) for k, v in (headers or {}).items()),
                            method=method, timeout=timeout, validate_certs=validate_certs, http_agent=USER_AGENT,
                            follow_redirects="safe")
        try:
            response.read(65536)
            return response.status
        finally:
            response.close()
    except urllib.error.HTTPError as exc:
        # the status code only: the reason phrase and the body are the endpoint's words, and an
        # endpoint may echo the request path, which for a Slack webhook is the secret itself
        raise ChannelError("%s: the endpoint answered HTTP %s" % (label, exc.code))
    except SSLValidationError:
        raise ChannelError("%s: the endpoint's TLS certificate could not be validated" % label)
    except UrlConnectionError as exc:
        raise ChannelError("%s: cannot connect to the endpoint: %s" % (label, type(exc).__name__))
    except urllib.error.URLError as exc:
        # an OS error's text, else only the kind of failure: other reasons may quote the URL
        reason = exc.reason
        text = getattr(reason, "strerror", None) or type(reason).__name__
        raise ChannelError("%s: cannot reach the endpoint: %s" % (label, text))
    except (OSError, socket.timeout) as exc:
        raise ChannelError("%s: request failed: %s" % (label, getattr(exc, "strerror", None) or type(exc).__name__))
    except ValueError:
        raise ChannelError("%s: the configured URL is not valid" % label)


def send_slack(config, notification):
    icon = {"critical": ":red_circle:", "warning": ":warning:", "info": ":information_source:"}.get(notification.severity, "")
    if notification.status == "resolved":
        icon = ":white_check_mark:"
    lines = ["%s *%s*" % (icon, notification.subject())]
    lines.extend("• " + notification.host_line(h) for h in notification.hosts)
    body = {"text": "\n".join(lines)}
    if config.get("channel"):
        body["channel"] = config["channel"]
    if config.get("username"):
        body["username"] = config["username"]
    status = _http("slack", config["webhook_url"], json.dumps(body).encode("utf-8"),
                   {"Content-Type": "application/json"}, float(config.get("timeout") or DEFAULT_TIMEOUT),
                   validate_certs=config.get("validate_certs", True))
    return "HTTP %s" % status


def send_webhook(config, notification):
    headers = {"Content-Type": "application/json"}
    headers.update(config.get("headers") or {})
    status = _http("webhook", config["url"], json.dumps(notification.payload(), default=str).encode("utf-8"),
                   headers, float(config.get("timeout") or DEFAULT_TIMEOUT), method=config.get("method") or "POST",
                   validate_certs=config.get("validate_certs", True))
    return "HTTP %s" % status


def send_sms(config, notification):
    """One Twilio Messages API call per recipient (POST /2010-04-01/Accounts/{sid}/Messages.json)."""
    base = (config.get("api_base") or TWILIO_API_BASE).rstrip("/")
    sid = config["account_sid"]
    url = "%s/2010-04-01/Accounts/%s/Messages.json" % (base, urllib.parse.quote(sid, safe=""))
    token = base64.b64encode(("%s:%s" % (sid, config["auth_token"])).encode("utf-8")).decode("ascii")
    headers = {"Authorization": "Basic " + token, "Content-Type": "application/x-www-form-urlencoded"}
    text = notification.subject()
    if notification.status != "resolved":
        text += "\n" + "\n".join(notification.host_line(h) for h in notification.hosts)
    text = text[:SMS_MAX_CHARS]
    timeout = float(config.get("timeout") or DEFAULT_TIMEOUT)
    recipients = _as_list(config.get("to_numbers"))
    failures = []
    for number in recipients:
        body = urllib.parse.urlencode({"To": number, "From": config["from_number"], "Body": text}).encode("ascii")
        try:
            _http("sms", url, body, headers, timeout, validate_certs=config.get("validate_certs", True))
        except ChannelError as exc:
            failures.append(str(exc))
    if failures:
        raise ChannelError("%s (%d of %d recipients failed)" % (failures[0], len(failures), len(recipients)))
    return "sent to %d number(s)" % len(recipients)
