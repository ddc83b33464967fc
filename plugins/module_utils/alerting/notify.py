# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One alerting run: evaluate every rule over the fleet, honour cooldowns, send, record.

``run_alerts()`` is what the ``bim.wall_system.alert`` action plugin calls. Per rule and run:
at most one notification, listing every affected host. Inside the cooldown the notification is
suppressed and the suppression recorded in the history. A rule that stops firing can send one
"resolved" notification. A failing channel is reported and the others still deliver; the
cooldown starts only when at least one channel delivered (so an undelivered alert is retried).
"""

from __future__ import annotations

import time

from ansible_collections.bim.wall_system.plugins.module_utils.alerting.notification import (
    ChannelError, Notification, is_configured)
from ansible_collections.bim.wall_system.plugins.module_utils.alerting.rules import (
    ExpressionEvaluator,
    evaluate_rule,
    normalize_rule,
)
from ansible_collections.bim.wall_system.plugins.module_utils.alerting.scrub import collect_secrets, scrub
from ansible_collections.bim.wall_system.plugins.module_utils.alerting.state import locked_state, unlocked_state, write_state

NOT_CONFIGURED = "not configured"


def _host_names(entries):
    return [e["host"] for e in entries]


def _deliver(notification, channel_names, channels_config, sender, secrets):
    """Send through each channel; return {channel: {"status", "detail"}}."""
    outcome = {}
    for kind in channel_names:
        config = (channels_config or {}).get(kind)
        if not is_configured(kind, config):
            outcome[kind] = {"status": NOT_CONFIGURED, "detail": "channel %s has no configuration; skipped" % kind}
            continue
        try:
            detail = sender(kind, config, notification)
            outcome[kind] = {"status": "sent", "detail": scrub(str(detail), secrets)}
        except ChannelError as exc:
            outcome[kind] = {"status": "failed", "detail": scrub(str(exc), secrets)}
        except Exception as exc:  # one broken channel never stops the others
            outcome[kind] = {"status": "failed", "detail": scrub("%s: unexpected %s: %s" % (kind, type(exc).__name__, exc), secrets)}
    return outcome


def send_through_channel(kind, config, notification):
    """The default sender: the channel senders are imported only when something is sent."""
    from ansible_collections.bim.wall_system.plugins.module_utils.alerting.channels import send
    return send(kind, config, notification)


class _Run:
    """What one alerting run shares between its rules: the result, the history, the delivery."""

    def __init__(self, out, history, now, check_mode, channels_config, sender, secrets):
        self.out, self.history, self.now, self.check_mode = out, history, now, check_mode
        self.channels_config, self.sender, self.secrets = channels_config, sender, secrets

    def send(self, notification, channels):
        if self.check_mode:
            return {c: {"status": "would send", "detail": ""} for c in channels}
        return _deliver(notification, channels, self.channels_config, self.sender, self.secrets)

    def record(self, rule, event, hosts, **extra):
        self.history.append(dict({"time": self.now, "rule": rule["name"], "severity": rule["severity"],
                                  "event": event, "hosts": hosts}, **extra))


def _fire(run, rule, affected, rule_state):
    """A rule that fires: notify (outside its cooldown) or record the suppression."""
    name, now = rule["name"], run.now
    hosts = _host_names(affected)
    run.out["firing"].append({"rule": name, "severity": rule["severity"], "hosts": hosts})
    last_sent = rule_state.get("last_sent")
    remaining = (last_sent + rule["cooldown"] - now) if last_sent is not None else 0
    if not rule_state.get("firing"):
        rule_state["first_fired"] = now
    rule_state.update(firing=True, hosts=hosts, last_fired=now, severity=rule["severity"])
    if remaining > 0:
        run.out["suppressed"].append({"rule": name, "severity": rule["severity"], "hosts": hosts,
                                      "cooldown_remaining_s": round(remaining, 3)})
        run.record(rule, "suppressed", hosts, cooldown_remaining_s=round(remaining, 3))
        return
    notification = Notification(rule, "firing", affected, now)
    entry = {"rule": name, "severity": rule["severity"], "status": "firing", "hosts": hosts,
             "affected": affected, "subject": notification.subject(), "channels": run.send(notification, rule["channels"])}
    if not run.check_mode:
        sent = any(c["status"] == "sent" for c in entry["channels"].values())
        if sent:
            rule_state["last_sent"] = now
        run.record(rule, "sent" if sent else "undelivered", hosts,
                   channels={k: v["status"] for k, v in entry["channels"].items()})
    run.out["notifications"].append(entry)


def _resolve(run, rule, rule_state, send_resolved):
    """A rule that stopped firing: forget its cooldown, send "resolved" when asked."""
    previous = list(rule_state.get("hosts") or [])
    rule_state.update(firing=False, hosts=[], resolved_at=run.now)
    rule_state.pop("last_sent", None)
    entry = {"rule": rule["name"], "severity": rule["severity"], "status": "resolved", "hosts": previous}
    if send_resolved:
        notification = Notification(rule, "resolved", [{"host": h} for h in previous], run.now)
        entry["subject"] = notification.subject()
        entry["channels"] = run.send(notification, rule["channels"])
    run.record(rule, "resolved", previous, channels={k: v["status"] for k, v in entry.get("channels", {}).items()})
    run.out["resolved"].append(entry)


def run_alerts(rules, results, channels_config, state_path, send_resolved=False, check_mode=False,
               now=None, sender=None, history_limit=500, lock_timeout=60.0, extra_secrets=()):
    """Evaluate ``rules`` over ``results`` (host -> health result) and notify.

    Returns a plain dict (already free of secrets)::

        {"notifications": [...], "suppressed": [...], "resolved": [...], "firing": [...],
         "channel_errors": [...], "rule_errors": [...], "changed": bool, "state_file": path}
    """
    secrets = collect_secrets(channels_config or {}) | set(s for s in extra_secrets if s)
    rules = [normalize_rule(r) for r in rules]
    evaluator = ExpressionEvaluator() if any("expression" in r for r in rules) else None
    out = {"notifications": [], "suppressed": [], "resolved": [], "firing": [], "quiet": [],
           "channel_errors": [], "rule_errors": [], "changed": False, "state_file": state_path}

    state_context = unlocked_state(state_path) if check_mode else locked_state(state_path, timeout=lock_timeout)
    with state_context as state:
        run = _Run(out, state["history"], time.time() if now is None else float(now), check_mode,
                   channels_config, sender or send_through_channel, secrets)
        for rule in rules:
            affected, errors = evaluate_rule(rule, results, evaluator)
            out["rule_errors"].extend(dict(err, rule=rule["name"]) for err in errors)
            rule_state = state["rules"].setdefault(rule["name"], {"firing": False, "hosts": []})
            if affected:
                _fire(run, rule, affected, rule_state)
                continue
            out["quiet"].append(rule["name"])
            if rule_state.get("firing"):
                _resolve(run, rule, rule_state, send_resolved)
        for entry in out["notifications"] + out["resolved"]:
            for kind, outcome in (entry.get("channels") or {}).items():
                if outcome["status"] == "failed":
                    out["channel_errors"].append({"rule": entry["rule"], "channel": kind, "error": outcome["detail"]})
        # Rules removed from the configuration drop out of the state.
        known = set(r["name"] for r in rules)
        for stale in [n for n in state["rules"] if n not in known]:
            del state["rules"][stale]
        if not check_mode:
            write_state(state_path, scrub(state, secrets, mask_keys=False), history_limit=history_limit)
            out["changed"] = bool(out["notifications"] or out["resolved"] or out["suppressed"])
        else:
            out["changed"] = bool(out["notifications"] or out["resolved"])
    return scrub(out, secrets, mask_keys=False)
