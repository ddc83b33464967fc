# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The operator's alerting story on the loopback fleet: health check, then role alerting.

Real receivers on 127.0.14.0/24: an SMTP server (aiosmtpd) and an HTTP server standing in for
Slack, Twilio and a generic webhook. A host is made sick for real (its application reports a
95 % heap); the seed rule "High Memory Usage" (critical, email/slack/sms, 5 m cooldown) fires.
The cooldown clock is moved by editing the timestamps in the state file, never by sleeping.
Other rules may fire too when another test breaks a host meanwhile: assertions look at the
High Memory Usage notifications only.
"""

from __future__ import annotations

import importlib.util
import json
import os

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "bim_alert_receivers", os.path.join(os.path.dirname(HERE), "unit", "plugins", "module_utils", "alerting", "receivers.py"))
receivers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(receivers)

BASE = ["pg1", "pg2", "lite1"]
RULE = "High Memory Usage"
DEFAULT_HEAP = 0.45  # the application stand-in's default heap_used_percent (0..1)


def restore(fleet, host):
    """Put the heap back first (reset() may fail on a database another test holds), then reset."""
    fleet.set_app_metrics(host, heap_used_percent=DEFAULT_HEAP)
    fleet.reset(host)


SMTP_PASSWORD = "scenario-smtp-Secret-0451"
SLACK_SECRET = "T0SCEN/B0SCEN/scenario-slack-secret"
TWILIO_TOKEN = "scenario-twilio-token-9a8b7c"
WEBHOOK_SECRET = "scenario-webhook-secret-path"
HEADER_SECRET = "Bearer scenario-header-secret"
SECRETS = (SMTP_PASSWORD, SLACK_SECRET, TWILIO_TOKEN, WEBHOOK_SECRET, HEADER_SECRET)

PLAYBOOK = """---
- name: Health check, alerts and fleet report
  hosts: bim
  gather_facts: false
  roles:
    - role: bim.wall_system.health_check
    - role: bim.wall_system.alerting
"""


def write_playbook(tmp_path):
    path = tmp_path / "health_and_alerts.yml"
    path.write_text(PLAYBOOK)
    return str(path)


@pytest.fixture
def smtp(tmp_path):
    with receivers.SMTPReceiver(tls="starttls", cert_folder=str(tmp_path), users={"alerts": SMTP_PASSWORD}) as server:
        yield server


@pytest.fixture
def http():
    with receivers.HTTPReceiver() as server:
        yield server


def channel_vars(smtp, http, **overrides):
    values = {
        "bim_alerting_email_host": smtp.address,
        "bim_alerting_email_port": smtp.port,
        "bim_alerting_email_security": "starttls",
        "bim_alerting_email_validate_certs": False,
        "bim_alerting_email_username": "alerts",
        "bim_alerting_email_password": SMTP_PASSWORD,
        "bim_alerting_email_from": "bim-alerts@example.test",
        "bim_alerting_email_to": ["ops@example.test"],
        "bim_alerting_slack_webhook_url": "%s/slack/%s" % (http.base_url, SLACK_SECRET),
        "bim_alerting_sms_account_sid": "ACscenario",
        "bim_alerting_sms_auth_token": TWILIO_TOKEN,
        "bim_alerting_sms_from_number": "+15550001000",
        "bim_alerting_sms_to_numbers": ["+15550001001"],
        "bim_alerting_sms_api_base": http.base_url + "/twilio",
        "bim_alerting_webhook_url": "%s/hook/%s" % (http.base_url, WEBHOOK_SECRET),
        "bim_alerting_webhook_headers": {"Authorization": HEADER_SECRET},
        # the seed rules, plus the webhook on the memory rule so every channel is exercised
        "bim_alerting_extra_rules": [],
    }
    values.update(overrides)
    return values


def memory_mails(smtp):
    return [m for m in smtp.messages if RULE in m["message"]["Subject"]]


def memory_posts(http, prefix):
    out = []
    for request in http.on(prefix):
        text = json.dumps(request["json"]) if request["json"] is not None else json.dumps(request["form"])
        if RULE in text:
            out.append(request)
    return out


def state_of(result):
    with open(os.path.join(result.cwd, "bim-reports", "alert-state.json"), encoding="utf-8") as handle:
        return json.load(handle)


def assert_no_secret_anywhere(results):
    """No secret in any captured output nor in any file the runs wrote (state, reports, JSON-lines log)."""
    for result in results:
        for secret in SECRETS:
            assert secret not in result.stdout and secret not in result.stderr, secret
        for folder, _dirs, files in os.walk(result.cwd):
            for name in files:
                if name.endswith(".yml") or name.endswith(".pem"):
                    continue  # the test's own playbook and throw-away TLS key
                with open(os.path.join(folder, name), "rb") as handle:
                    data = handle.read()
                for secret in SECRETS:
                    assert secret.encode() not in data, (secret, os.path.join(folder, name))


def test_alert_delivered_suppressed_then_sent_again(fleet, run_playbook, tmp_path, smtp, http):
    playbook = write_playbook(tmp_path)
    extra = channel_vars(smtp, http)
    extra["bim_alerting_rules"] = [{
        "name": RULE, "condition": {"check": "memory", "metric": "heap_used_percent", "comparison": ">", "threshold": 0.9},
        "severity": "critical", "channels": ["email", "slack", "sms", "webhook"], "cooldown": "5m"}]
    env = {"ANSIBLE_CALLBACKS_ENABLED": "bim.wall_system.jsonl_log", "BIM_JSONL_LOG_FOLDER": str(tmp_path / "bim-reports" / "logs")}
    fleet.set_app_metrics("lite1", heap_used_percent=0.95)
    try:
        first = run_playbook(playbook, extra_vars=extra, limit=BASE, env=env)
        assert first.rc == 0, str(first)
        mails = memory_mails(smtp)
        assert len(mails) == 1, str(first)
        message = mails[0]["message"]
        assert message["Subject"] == "[BIM CRITICAL] High Memory Usage: 1 host (lite1)"
        assert "lite1 - memory.heap_used_percent=0.95 (> 0.9)" in message.get_content()
        assert mails[0]["rcpt_tos"] == ["ops@example.test"] and smtp.logins == [("alerts", True)]
        slack = memory_posts(http, "/slack/")
        assert len(slack) == 1 and "lite1" in slack[0]["json"]["text"] and slack[0]["json"]["channel"] == "#bim-alerts"
        sms = memory_posts(http, "/twilio/2010-04-01/Accounts/ACscenario/Messages.json")
        assert len(sms) == 1 and sms[0]["form"]["To"] == "+15550001001" and "lite1" in sms[0]["form"]["Body"]
        hooks = memory_posts(http, "/hook/")
        assert len(hooks) == 1 and hooks[0]["json"]["severity"] == "critical"
        assert [h["host"] for h in hooks[0]["json"]["hosts"]] == ["lite1"]
        assert hooks[0]["headers"]["Authorization"] == HEADER_SECRET

        # inside the cooldown: nothing sent, the suppression recorded
        fleet.set_app_metrics("lite1", heap_used_percent=0.95)  # again, in case a parallel test reset lite1
        second = run_playbook(playbook, extra_vars=extra, limit=BASE, env=env)
        assert second.rc == 0, str(second)
        assert len(memory_mails(smtp)) == 1 and len(memory_posts(http, "/slack/")) == 1
        history = [h for h in state_of(second)["history"] if h["rule"] == RULE]
        assert [h["event"] for h in history] == ["sent", "suppressed"]
        assert history[1]["hosts"] == ["lite1"] and history[1]["cooldown_remaining_s"] > 0
        assert "suppressed" in second.stdout

        # move the clock: the last send is now 301 s old, past the 5 m cooldown
        path = os.path.join(second.cwd, "bim-reports", "alert-state.json")
        state = state_of(second)
        state["rules"][RULE]["last_sent"] -= 301
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(state, handle)
        fleet.set_app_metrics("lite1", heap_used_percent=0.95)
        third = run_playbook(playbook, extra_vars=extra, limit=BASE, env=env)
        assert third.rc == 0, str(third)
        assert len(memory_mails(smtp)) == 2 and len(memory_posts(http, "/slack/")) == 2
        assert len(memory_posts(http, "/twilio/")) == 2 and len(memory_posts(http, "/hook/")) == 2
        history = [h["event"] for h in state_of(third)["history"] if h["rule"] == RULE]
        assert history == ["sent", "suppressed", "sent"]
    finally:
        restore(fleet, "lite1")
    # the state file is the owner's only; the JSON-lines log has every task result of the three runs
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    log_dir = tmp_path / "bim-reports" / "logs"
    lines = [json.loads(line) for f in sorted(log_dir.iterdir()) for line in f.read_text().splitlines()]
    assert len({line["run_id"] for line in lines}) == 3
    alert_lines = [line for line in lines if line.get("action") == "bim.wall_system.alert"]
    assert len(alert_lines) == 3 and all(line["status"] == "changed" for line in alert_lines)
    assert [line["event"] for line in lines].count("playbook_stats") == 3
    assert_no_secret_anywhere([first, second, third])


def test_receiver_down_is_reported_and_others_deliver(fleet, run_playbook, tmp_path, smtp, http):
    playbook = write_playbook(tmp_path)
    down = "http://%s:%d" % (receivers.DOWN_ADDRESS, receivers.free_port(receivers.DOWN_ADDRESS))
    extra = channel_vars(smtp, http, bim_alerting_slack_webhook_url="%s/slack/%s" % (down, SLACK_SECRET))
    fleet.set_app_metrics("pg2", heap_used_percent=0.97)
    try:
        result = run_playbook(playbook, extra_vars=extra, limit=BASE)
    finally:
        restore(fleet, "pg2")
    assert result.rc == 0, str(result)
    mails = memory_mails(smtp)
    assert len(mails) == 1 and "pg2" in mails[0]["message"]["Subject"], str(result)
    assert len(memory_posts(http, "/twilio/")) == 1  # sms delivered
    assert memory_posts(http, "/slack/") == []
    assert "channel slack failed" in result.stdout + result.stderr
    entry = [h for h in state_of(result)["history"] if h["rule"] == RULE][-1]
    assert entry["event"] == "sent" and entry["channels"] == {"email": "sent", "slack": "failed", "sms": "sent"}
    assert_no_secret_anywhere([result])


def test_channels_without_configuration_are_reported(fleet, run_playbook, tmp_path):
    playbook = write_playbook(tmp_path)
    fleet.set_app_metrics("pg1", heap_used_percent=0.96)
    try:
        result = run_playbook(playbook, limit=BASE)
    finally:
        restore(fleet, "pg1")
    assert result.rc == 0, str(result)
    entry = [h for h in state_of(result)["history"] if h["rule"] == RULE][-1]
    assert entry["event"] == "undelivered"
    assert entry["channels"] == {"email": "not configured", "slack": "not configured", "sms": "not configured"}
    assert "last_sent" not in state_of(result)["rules"][RULE]


def test_database_down_fires_the_seed_rule_with_its_channels(fleet, run_playbook, tmp_path, smtp, http):
    """The seed rules as shipped: pg2's database stops; Database Connection Failure (critical,
    email/slack/sms) lists pg2 and nothing else fires for it."""
    playbook = write_playbook(tmp_path)
    extra = channel_vars(smtp, http)
    fleet.stop_db("pg2")
    try:
        result = run_playbook(playbook, extra_vars=extra, limit=BASE)
    finally:
        fleet.reset("pg2")
    assert result.rc == 0, str(result)
    mails = [m for m in smtp.messages if "Database Connection Failure" in m["message"]["Subject"]]
    assert len(mails) == 1, str(result)
    assert mails[0]["message"]["Subject"].startswith("[BIM CRITICAL] Database Connection Failure")
    assert "pg2" in mails[0]["message"]["Subject"]
    assert "pg2 - status unhealthy" in mails[0]["message"].get_content()
    slack = [r for r in http.on("/slack/") if "Database Connection Failure" in r["json"]["text"]]
    sms = [r for r in http.on("/twilio/") if "Database Connection Failure" in r["form"]["Body"]]
    assert len(slack) == 1 and len(sms) == 1
    assert http.on("/hook/") == [] or all("Database" not in r["json"]["rule"] for r in http.on("/hook/"))  # not a channel of that rule
    state = state_of(result)
    assert state["rules"]["Database Connection Failure"]["firing"] is True
    assert "pg2" in state["rules"]["Database Connection Failure"]["hosts"]
    assert_no_secret_anywhere([result])
