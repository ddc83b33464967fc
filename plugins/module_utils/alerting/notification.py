# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What an alert says, apart from how it is sent: the ``Notification`` of one rule, the error a
channel raises, and which channels are configured.

Kept apart from the senders (``channels.py``) on purpose: every health check evaluates the rules,
but only a run that sends imports smtplib, ssl and ``ansible.module_utils.urls`` (about 0.1-0.2 s
of the controller's start on every run otherwise).
"""

from __future__ import annotations

from email.utils import formatdate

# What makes a channel usable; a channel missing any of these is "not configured".
REQUIRED = {
    "email": ("host", "to"),
    "slack": ("webhook_url",),
    "sms": ("account_sid", "auth_token", "from_number", "to_numbers"),
    "webhook": ("url",),
}


class ChannelError(Exception):
    """Sending through one channel failed; the message is safe to show."""


class Notification:
    """One message about one rule: every affected host listed in it."""

    def __init__(self, rule, status, hosts, timestamp, source="bim.wall_system"):
        self.rule = rule
        self.status = status  # "firing" or "resolved"
        self.hosts = hosts  # [{"host", "value", "threshold", "message", ...}]
        self.timestamp = timestamp
        self.source = source

    @property
    def severity(self):
        return self.rule["severity"]

    @property
    def host_names(self):
        return [h["host"] for h in self.hosts]

    def subject(self):
        label = "RESOLVED" if self.status == "resolved" else self.severity.upper()
        names = ", ".join(self.host_names)
        count = len(self.hosts)
        return "[BIM %s] %s: %d host%s (%s)" % (label, self.rule["name"], count, "" if count == 1 else "s", names)

    def host_line(self, entry):
        parts = [entry["host"]]
        if entry.get("value") is not None:
            metric = entry.get("metric") or "value"
            if entry.get("check"):
                metric = "%s.%s" % (entry["check"], metric)
            parts.append("%s=%s (%s %s)" % (metric, _fmt(entry["value"]), entry.get("comparison", ">"), _fmt(entry.get("threshold"))))
        if entry.get("status"):
            parts.append("status %s" % entry["status"])
        if entry.get("message"):
            parts.append(entry["message"])
        return " - ".join(parts)

    def text(self):
        when = formatdate(self.timestamp, usegmt=True)
        if self.status == "resolved":
            head = "Alert rule '%s' no longer fires (%s)." % (self.rule["name"], when)
        else:
            head = "Alert rule '%s' (%s) fires on %d host(s) (%s)." % (self.rule["name"], self.severity, len(self.hosts), when)
        lines = [head]
        if self.rule.get("description"):
            lines.append(self.rule["description"])
        lines.append("")
        lines.extend("* " + self.host_line(h) for h in self.hosts)
        lines.append("")
        lines.append("-- %s" % self.source)
        return "\n".join(lines)

    def payload(self):
        """The generic webhook's JSON body."""
        return {
            "source": self.source,
            "rule": self.rule["name"],
            "severity": self.severity,
            "status": self.status,
            "timestamp": self.timestamp,
            "summary": self.subject(),
            "hosts": self.hosts,
        }


def _fmt(value):
    if isinstance(value, float):
        return "%.4g" % value
    return str(value)


def is_configured(kind, config):
    if not isinstance(config, dict):
        return False
    return all(config.get(key) not in (None, "", [], {}) for key in REQUIRED[kind])
