# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""run_alerts() against real loopback receivers: SMTP (aiosmtpd) and HTTP (Slack, Twilio, webhook)."""

from __future__ import annotations

import importlib.util
import json
import multiprocessing
import os
import stat

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.alerting.notify import run_alerts
from ansible_collections.bim.wall_system.plugins.module_utils.alerting.state import StateError, read_state

_spec = importlib.util.spec_from_file_location("bim_alert_receivers", os.path.join(os.path.dirname(__file__), "receivers.py"))
receivers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(receivers)

SMTP_PASSWORD = "smtp-Pa55word-very-secret"
SLACK_SECRET = "T000/B000/slack-webhook-secret-xyz"
TWILIO_TOKEN = "twilio-auth-token-secret-123"
WEBHOOK_SECRET = "hook-path-secret-456"
HEADER_SECRET = "Bearer header-secret-789"
SECRETS = (SMTP_PASSWORD, SLACK_SECRET, TWILIO_TOKEN, WEBHOOK_SECRET, HEADER_SECRET)


def health(status="healthy", heap=0.5, db_status="healthy", error_rate=0.0):
    return {
        "overall_status": status,
        "checks": [
            {"name": "database", "status": db_status, "message": "db %s" % db_status, "metrics": {"connection_time_ms": 3.0}, "duration_ms": 4},
            {"name": "memory", "status": "healthy", "message": "heap %d%%" % (heap * 100), "metrics": {"heap_used_percent": heap}, "duration_ms": 1},
            {"name": "logs", "status": "healthy", "message": "", "metrics": {"error_rate": error_rate}, "duration_ms": 2},
        ],
        "alerts": [],
        "recommendations": [],
    }


RULES = [
    {"name": "High Memory Usage", "condition": {"check": "memory", "metric": "heap_used_percent", "comparison": ">", "threshold": 0.9},
     "severity": "critical", "channels": ["email", "slack", "sms", "webhook"], "cooldown": "5m"},
    {"name": "Database Connection Failure", "expression": "check.database is defined and check.database.status == 'error'",
     "severity": "critical", "channels": ["email", "slack"], "cooldown": "1m"},
    {"name": "High Error Rate", "condition": {"check": "logs", "metric": "error_rate", "threshold": 0.1},
     "severity": "warning", "channels": ["email", "slack"], "cooldown": 600},
]


@pytest.fixture
def smtp(tmp_path):
    with receivers.SMTPReceiver() as server:
        yield server


@pytest.fixture
def http():
    with receivers.HTTPReceiver() as server:
        yield server


def channels_for(smtp, http, **overrides):
    config = {
        "email": {"host": smtp.address, "port": smtp.port, "security": "none", "from": "bim@example.test",
                  "to": ["ops@example.test", "dba@example.test"]},
        "slack": {"webhook_url": "%s/slack/%s" % (http.base_url, SLACK_SECRET), "channel": "#bim-alerts"},
        "sms": {"account_sid": "AC123", "auth_token": TWILIO_TOKEN, "from_number": "+15550000001",
                "to_numbers": ["+15550000002", "+15550000003"], "api_base": http.base_url + "/twilio"},
        "webhook": {"url": "%s/hook/%s" % (http.base_url, WEBHOOK_SECRET), "headers": {"Authorization": HEADER_SECRET}},
    }
    config.update(overrides)
    return config


def assert_no_secret(*blobs):
    for blob in blobs:
        text = blob if isinstance(blob, str) else json.dumps(blob, default=str)
        for secret in SECRETS:
            assert secret not in text


def test_one_notification_per_rule_lists_every_host(tmp_path, smtp, http):
    state = str(tmp_path / "reports" / "alert-state.json")
    results = {"pg1": health("degraded", heap=0.95), "pg2": health(), "lite1": health("degraded", heap=0.97)}
    out = run_alerts(RULES, results, channels_for(smtp, http), state, now=1000.0)

    assert [n["rule"] for n in out["notifications"]] == ["High Memory Usage"]
    note = out["notifications"][0]
    assert note["hosts"] == ["lite1", "pg1"]
    assert {k: v["status"] for k, v in note["channels"].items()} == {"email": "sent", "slack": "sent", "sms": "sent", "webhook": "sent"}
    # one email (to both recipients) listing both hosts
    assert len(smtp.messages) == 1
    mail = smtp.messages[0]
    assert sorted(mail["rcpt_tos"]) == ["dba@example.test", "ops@example.test"]
    assert mail["message"]["Subject"] == "[BIM CRITICAL] High Memory Usage: 2 hosts (lite1, pg1)"
    body = mail["message"].get_content()
    assert "pg1 - memory.heap_used_percent=0.95 (> 0.9)" in body
    assert "lite1 - memory.heap_used_percent=0.97 (> 0.9)" in body
    # one Slack post
    slack = http.on("/slack/")
    assert len(slack) == 1 and slack[0]["json"]["channel"] == "#bim-alerts"
    assert "High Memory Usage" in slack[0]["json"]["text"] and "lite1" in slack[0]["json"]["text"]
    # Twilio: one Messages call per number, basic auth with SID and token
    sms = http.on("/twilio/2010-04-01/Accounts/AC123/Messages.json")
    assert sorted(r["form"]["To"] for r in sms) == ["+15550000002", "+15550000003"]
    assert all(r["form"]["From"] == "+15550000001" and "High Memory Usage" in r["form"]["Body"] for r in sms)
    assert all(r["headers"]["Authorization"].startswith("Basic ") for r in sms)
    # webhook: JSON payload and the custom header
    hook = http.on("/hook/")
    assert len(hook) == 1 and hook[0]["headers"]["Authorization"] == HEADER_SECRET
    assert hook[0]["json"]["rule"] == "High Memory Usage" and [h["host"] for h in hook[0]["json"]["hosts"]] == ["lite1", "pg1"]
    # state: 0600, history recorded, no secret
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o600
    saved = read_state(state)
    assert saved["rules"]["High Memory Usage"]["last_sent"] == 1000.0
    assert saved["history"][-1]["event"] == "sent"
    assert_no_secret(out, open(state).read())


def test_cooldown_suppresses_then_sends_again(tmp_path, smtp, http):
    state = str(tmp_path / "alert-state.json")
    rules = [dict(RULES[0], cooldown="2s", channels=["email", "slack"])]
    results = {"pg1": health("degraded", heap=0.95)}
    channels = channels_for(smtp, http)
    run_alerts(rules, results, channels, state, now=1000.0)
    assert len(smtp.messages) == 1

    second = run_alerts(rules, results, channels, state, now=1001.0)
    assert second["notifications"] == []
    assert second["suppressed"][0]["rule"] == "High Memory Usage" and second["suppressed"][0]["hosts"] == ["pg1"]
    assert len(smtp.messages) == 1 and len(http.on("/slack/")) == 1
    assert read_state(state)["history"][-1]["event"] == "suppressed"

    third = run_alerts(rules, results, channels, state, now=1002.5)
    assert [n["rule"] for n in third["notifications"]] == ["High Memory Usage"]
    assert len(smtp.messages) == 2 and len(http.on("/slack/")) == 2
    assert [h["event"] for h in read_state(state)["history"]] == ["sent", "suppressed", "sent"]


def test_failing_channel_is_reported_and_others_deliver(tmp_path, smtp, http):
    state = str(tmp_path / "alert-state.json")
    down = "http://%s:%d" % (receivers.DOWN_ADDRESS, receivers.free_port(receivers.DOWN_ADDRESS))
    channels = channels_for(smtp, http, slack={"webhook_url": "%s/slack/%s" % (down, SLACK_SECRET), "timeout": 3})
    out = run_alerts([RULES[0]], {"pg1": health(heap=0.99)}, channels, state, now=50.0)
    note = out["notifications"][0]
    assert note["channels"]["slack"]["status"] == "failed"
    assert note["channels"]["email"]["status"] == "sent"
    assert note["channels"]["webhook"]["status"] == "sent"
    assert out["channel_errors"] == [{"rule": "High Memory Usage", "channel": "slack", "error": note["channels"]["slack"]["detail"]}]
    assert "slack" in out["channel_errors"][0]["error"]
    assert len(smtp.messages) == 1
    assert_no_secret(out, open(state).read())


def test_http_error_status_is_a_failure(tmp_path, smtp, http):
    http.status = 500
    out = run_alerts([dict(RULES[0], channels=["webhook", "email"])], {"pg1": health(heap=0.99)},
                     channels_for(smtp, http), str(tmp_path / "s.json"), now=1.0)
    assert out["notifications"][0]["channels"]["webhook"] == {"status": "failed", "detail": "webhook: the endpoint answered HTTP 500"}
    assert out["notifications"][0]["channels"]["email"]["status"] == "sent"


def test_an_endpoint_that_echoes_the_secret_path_leaks_nothing(tmp_path, smtp, http):
    """A Slack or webhook endpoint answering 404 "no hook at /slack/T000/B000/<secret>": the
    warning names the status only, and no part of the secret path survives anywhere."""
    http.status = 404
    http.echo_path = True
    state = str(tmp_path / "s.json")
    out = run_alerts([dict(RULES[0], channels=["slack", "webhook"])], {"pg1": health(heap=0.99)},
                     channels_for(smtp, http), state, now=1.0)
    channels = out["notifications"][0]["channels"]
    assert channels["slack"] == {"status": "failed", "detail": "slack: the endpoint answered HTTP 404"}
    assert channels["webhook"] == {"status": "failed", "detail": "webhook: the endpoint answered HTTP 404"}
    assert len(http.on("/slack/")) == 1  # the endpoint did get the request (and echoed its path)
    assert_no_secret(out, open(state).read())
    for fragment in ("slack-webhook-secret-xyz", "T000/B000"):
        assert fragment not in json.dumps(out) and fragment not in open(state).read()


def test_all_channels_failing_does_not_start_the_cooldown(tmp_path):
    state = str(tmp_path / "s.json")
    port = receivers.free_port(receivers.DOWN_ADDRESS)
    channels = {"email": {"host": receivers.DOWN_ADDRESS, "port": port, "security": "none", "to": ["a@b.c"], "timeout": 3}}
    rules = [dict(RULES[0], channels=["email", "sms"])]
    out = run_alerts(rules, {"pg1": health(heap=0.99)}, channels, state, now=1.0)
    assert out["notifications"][0]["channels"]["email"]["status"] == "failed"
    assert out["notifications"][0]["channels"]["sms"]["status"] == "not configured"
    assert "last_sent" not in read_state(state)["rules"]["High Memory Usage"]
    again = run_alerts(rules, {"pg1": health(heap=0.99)}, channels, state, now=2.0)
    assert again["suppressed"] == [] and len(again["notifications"]) == 1


def test_unconfigured_channels_are_skipped(tmp_path, smtp, http):
    out = run_alerts([RULES[0]], {"pg1": health(heap=0.99)}, {"email": channels_for(smtp, http)["email"]},
                     str(tmp_path / "s.json"), now=1.0)
    statuses = {k: v["status"] for k, v in out["notifications"][0]["channels"].items()}
    assert statuses == {"email": "sent", "slack": "not configured", "sms": "not configured", "webhook": "not configured"}
    assert out["channel_errors"] == []


def test_resolved_notification(tmp_path, smtp, http):
    state = str(tmp_path / "s.json")
    rules = [dict(RULES[0], channels=["email"])]
    channels = channels_for(smtp, http)
    run_alerts(rules, {"pg1": health(heap=0.99)}, channels, state, now=1.0, send_resolved=True)
    out = run_alerts(rules, {"pg1": health(heap=0.2)}, channels, state, now=2.0, send_resolved=True)
    assert out["resolved"][0]["hosts"] == ["pg1"] and out["resolved"][0]["channels"]["email"]["status"] == "sent"
    assert smtp.messages[-1]["message"]["Subject"] == "[BIM RESOLVED] High Memory Usage: 1 host (pg1)"
    # and nothing more on the next quiet run
    out = run_alerts(rules, {"pg1": health(heap=0.2)}, channels, state, now=3.0, send_resolved=True)
    assert out["resolved"] == [] and len(smtp.messages) == 2


def test_check_mode_sends_and_writes_nothing(tmp_path, smtp, http):
    state = str(tmp_path / "s.json")
    out = run_alerts([RULES[0]], {"pg1": health(heap=0.99)}, channels_for(smtp, http), state, now=1.0, check_mode=True)
    assert out["notifications"][0]["channels"]["email"]["status"] == "would send"
    assert smtp.messages == [] and http.requests == [] and not os.path.exists(state)


def test_starttls_with_auth(tmp_path):
    with receivers.SMTPReceiver(tls="starttls", cert_folder=str(tmp_path), users={"alerts": SMTP_PASSWORD}) as server:
        channels = {"email": {"host": server.address, "port": server.port, "security": "starttls", "username": "alerts",
                              "password": SMTP_PASSWORD, "to": ["ops@example.test"], "validate_certs": False}}
        out = run_alerts([RULES[0]], {"pg1": health(heap=0.99)}, channels, str(tmp_path / "s.json"), now=1.0)
        assert out["notifications"][0]["channels"]["email"]["status"] == "sent"
        assert server.logins == [("alerts", True)] and len(server.messages) == 1
        # a wrong password is an authentication failure that does not leak the password
        channels["email"]["password"] = "wrong-" + SMTP_PASSWORD
        out = run_alerts([dict(RULES[0], cooldown=0)], {"pg1": health(heap=0.99)}, channels, str(tmp_path / "s2.json"), now=1.0)
        assert out["notifications"][0]["channels"]["email"]["status"] == "failed"
        assert "authentication failed" in out["notifications"][0]["channels"]["email"]["detail"]
        assert_no_secret(out)


def test_implicit_tls(tmp_path):
    with receivers.SMTPReceiver(tls="ssl", cert_folder=str(tmp_path)) as server:
        channels = {"email": {"host": server.address, "port": server.port, "security": "ssl", "to": ["ops@example.test"],
                              "validate_certs": False}}
        out = run_alerts([RULES[0]], {"pg1": health(heap=0.99)}, channels, str(tmp_path / "s.json"), now=1.0)
        assert out["notifications"][0]["channels"]["email"]["status"] == "sent"
        assert len(server.messages) == 1


def test_certificate_is_verified_by_default(tmp_path):
    with receivers.SMTPReceiver(tls="ssl", cert_folder=str(tmp_path)) as server:
        channels = {"email": {"host": server.address, "port": server.port, "security": "ssl", "to": ["ops@example.test"]}}
        out = run_alerts([RULES[0]], {"pg1": health(heap=0.99)}, channels, str(tmp_path / "s.json"), now=1.0)
        assert out["notifications"][0]["channels"]["email"]["status"] == "failed"
        assert server.messages == []


def _overlapping_run(args):
    state, now = args
    out = run_alerts([dict(RULES[0], channels=["email"], cooldown="1h")], {"pg1": health(heap=0.99)},
                     {"email": {"host": receivers.DOWN_ADDRESS, "port": 9, "to": ["a@b.c"], "security": "none", "timeout": 1}},
                     state, now=now, sender=lambda kind, config, note: "sent")
    return len(out["notifications"]), len(out["suppressed"])


def test_overlapping_runs_send_once(tmp_path):
    """Eight processes race on one state file: exactly one sends, the others see its cooldown."""
    state = str(tmp_path / "s.json")
    with multiprocessing.get_context("fork").Pool(8) as pool:
        outcomes = pool.map(_overlapping_run, [(state, 100.0 + i * 0.001) for i in range(8)])
    assert sum(o[0] for o in outcomes) == 1
    assert sum(o[1] for o in outcomes) == 7
    history = read_state(state)["history"]
    assert [h["event"] for h in history].count("sent") == 1 and len(history) == 8


def test_corrupt_state_is_a_clear_error(tmp_path):
    state = tmp_path / "s.json"
    state.write_text("{not json")
    with pytest.raises(StateError, match="not valid JSON"):
        run_alerts([RULES[0]], {"pg1": health()}, {}, str(state), now=1.0)
