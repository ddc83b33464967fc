# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet report as the operator sees it: HTML page opened in headless Chromium, JSON beside
it, Prometheus textfiles parsed with prometheus_client, backup age and last drill per host, and
the trends drawn from the report's history (inline SVG).

The screenshot is kept in tests/output/ (gitignored) as a test artifact.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.reporting import history as history_lib
from ansible_collections.bim.wall_system.plugins.module_utils.reporting.fleet_summary import build_summary, write_summary
from ansible_collections.bim.wall_system.plugins.module_utils.reporting.report_json import build_report

HERE = os.path.dirname(os.path.abspath(__file__))
OUTPUT = os.path.join(os.path.dirname(HERE), "output")
BASE = ["pg1", "pg2", "lite1"]
PLAYBOOK = """---
- name: Health check, alerts and fleet report
  hosts: bim
  gather_facts: false
  roles:
    - role: bim.wall_system.health_check
    - role: bim.wall_system.alerting
"""


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("headless Chromium is required for the HTML report test (apt-get install chromium)")


def chromium_run(tmp_path, *args):
    profile = tmp_path / "chromium-profile"
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run", "--user-data-dir=%s" % profile] + list(args)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


class HostRows(HTMLParser):
    """Rows of the hosts table as the browser built them: (host, data-status, status badge text)."""

    def __init__(self):
        super().__init__()
        self.rows = []
        self._in_row = None
        self._in_status = False
        self.requests = []
        self.charts = {}
        self._chart = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        classes = (attrs.get("class") or "").split()
        if tag == "figure" and "trend" in classes:
            self._chart = self.charts.setdefault(attrs.get("data-chart"), [])
        elif self._chart is not None and tag in ("rect", "circle"):
            self._chart.append((tag, attrs))
        if tag == "tr" and "host-row" in classes:
            self._in_row = {"host": attrs.get("data-host"), "status": attrs.get("data-status"), "badge": "", "text": ""}
            self.rows.append(self._in_row)
        elif tag == "span" and "status" in classes and self._in_row is not None:
            self._in_status = True
        if tag in ("script", "img", "link", "iframe"):
            self.requests.append(tag)

    def handle_endtag(self, tag):
        if tag == "figure":
            self._chart = None
        if tag == "tr":
            self._in_row = None
        if tag == "span":
            self._in_status = False

    def handle_data(self, data):
        if self._in_row is not None:
            self._in_row["text"] += data
            if self._in_status:
                self._in_row["badge"] += data.strip()


def seed_summaries(report_dir):
    """Backup and drill summaries as the backup and recovery_drill roles write them (fleet_summary)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    three_hours_ago = (now - datetime.timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")
    backup = build_summary("backup", BASE, {
        "pg1": {"status": "ok", "reasons": [], "backup_id": "pg1-full-1", "type": "full", "finished_at": three_hours_ago},
        "pg2": {"status": "failed", "reasons": ["backup repository locked by another run"]},
        # as role backup writes it: no time of its own, the summary's generated_at dates it
        "lite1": {"status": "ok", "reasons": [], "backup_id": "lite1-incr-7", "type": "incremental"},
    }, generated_at=now - datetime.timedelta(hours=3))
    drill = build_summary("drill", BASE, {
        "pg1": {"status": "passed", "reasons": [], "rto_s": 48.2, "rpo_s": 10800, "verified": True, "live_unchanged": True},
        "lite1": {"status": "failed", "reasons": ["restored copy does not match the manifest digests"], "verified": False},
    })
    write_summary(report_dir, backup)
    write_summary(report_dir, drill)


def seed_history(report_dir, days=30):
    """Thirty earlier daily runs of the report, as the report itself records them: pg2 degraded on
    some days, a drill every ten days, a nightly maintenance that once ran past its window."""
    now = datetime.datetime.now(datetime.timezone.utc)
    path = os.path.join(report_dir, "fleet-report-history.json")
    os.makedirs(report_dir, exist_ok=True)
    for day in range(days, 0, -1):
        at = now - datetime.timedelta(days=day)
        stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        results = {h: {"overall_status": "degraded" if (h == "pg2" and day % 7 == 0) else "healthy", "checks": [],
                       "alerts": []} for h in BASE}
        backup = {"generated_at": stamp, "hosts": {h: {"status": "ok", "finished_at": (
            at - datetime.timedelta(hours=2 + day % 5)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "referenced_bytes": (50 + i * 20) * 2 ** 20 + day * 2 ** 18} for i, h in enumerate(BASE)}}
        drill_at = (now - datetime.timedelta(days=day - day % 10 + 10)).strftime("%Y-%m-%dT%H:%M:%SZ")
        drill = {"generated_at": drill_at, "hosts": {h: {"status": "passed", "rto_s": 30 + i * 10 + day % 10,
                                                         "rpo_s": 3600 + day * 60, "finished_at": drill_at}
                                                     for i, h in enumerate(BASE)}}
        start = at - datetime.timedelta(hours=3)
        maintenance = {"generated_at": stamp, "hosts": {h: {"status": "ok", "tier": "daily",
                                                            "deadline": (start + datetime.timedelta(hours=2)).isoformat(),
                                                            "tasks": [{"started": start.isoformat(), "finished": (
                                                                start + datetime.timedelta(minutes=150 if day == 12 else 40 + i * 10)).isoformat()}]}
                                                        for i, h in enumerate(BASE)}}
        history_lib.record(path, build_report(results, backup, drill, maintenance, generated_at=at))
    return days


def test_html_report_in_chromium_and_prometheus_textfiles(fleet, run_playbook, tmp_path):
    parser = pytest.importorskip("prometheus_client.parser")
    playbook = tmp_path / "health_and_report.yml"
    playbook.write_text(PLAYBOOK)
    seed_summaries(str(tmp_path / "bim-reports"))
    earlier_runs = seed_history(str(tmp_path / "bim-reports"))
    fleet.set_app_metrics("lite1", cache_hit_rate=0.6)  # warning level: lite1 is degraded
    try:
        result = run_playbook(str(playbook), limit=BASE)
    finally:
        fleet.reset("lite1")
    assert result.rc == 0, str(result)
    reports = tmp_path / "bim-reports"
    report = json.loads((reports / "fleet-report.json").read_text())
    health = json.loads((reports / "health-summary.json").read_text())
    expected = {row["host"]: row["overall_status"] for row in report["hosts"]}
    assert sorted(expected) == sorted(BASE)
    # the report agrees with the health summary of the same run, and lite1 is degraded
    assert expected == {h: e["status"] for h, e in health["hosts"].items()}
    assert expected["lite1"] == "degraded"

    page = reports / "fleet-report.html"
    dom = chromium_run(tmp_path, "--dump-dom", page.as_uri())
    rows = HostRows()
    rows.feed(dom)
    assert rows.requests == []  # self-contained: no scripts, images or stylesheets to fetch
    assert [r["host"] for r in rows.rows] == sorted(BASE)  # one row per host
    for row in rows.rows:
        assert row["status"] == expected[row["host"]] and row["badge"] == expected[row["host"]], row
    by_host = {r["host"]: r["text"] for r in rows.rows}
    assert "3.0 h ago" in by_host["pg1"] and "passed" in by_host["pg1"] and "RTO 48.2 s" in by_host["pg1"]
    assert "failed" in by_host["pg2"] and "failed" in by_host["lite1"]

    # the trends: every earlier run plus this one, per host; drills and maintenance runs once each
    assert sorted(rows.charts) == ["backup-age", "backup-size", "drill", "maintenance", "status"]
    runs = [a for tag, a in rows.charts["status"] if tag == "rect"]
    assert len(runs) == (earlier_runs + 1) * len(BASE)
    assert [a["data-status"] for a in runs].count("degraded") == 4 + 1  # pg2 on days 28, 21, 14, 7; lite1 now
    # this run's backups: pg1 and lite1 have an age, pg2's failed backup has none
    assert len([1 for tag, _a in rows.charts["backup-age"] if tag == "circle"]) == earlier_runs * len(BASE) + 2
    bars = [a for tag, a in rows.charts["maintenance"] if tag == "rect"]
    assert len(bars) == earlier_runs * len(BASE) and [b["data-over"] for b in bars].count("true") == len(BASE)  # day 12

    os.makedirs(OUTPUT, exist_ok=True)
    shot = os.path.join(OUTPUT, "fleet-report.png")
    if os.path.exists(shot):
        os.unlink(shot)
    chromium_run(tmp_path, "--window-size=1400,2600", "--screenshot=%s" % shot, page.as_uri())
    with open(shot, "rb") as handle:
        assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    shutil.copy(page, os.path.join(OUTPUT, "fleet-report.html"))

    prom_dir = reports / "prometheus"
    assert sorted(os.listdir(prom_dir)) == sorted("bim_%s.prom" % h for h in BASE)
    for host in BASE:
        families = list(parser.text_string_to_metric_families((prom_dir / ("bim_%s.prom" % host)).read_text()))
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}
        assert all(dict(labels)["host"] == host for _name, labels in samples)
        status = expected[host] if expected[host] in ("healthy", "degraded", "unhealthy") else None
        if status:
            assert samples[("bim_health_status", (("host", host), ("status", status)))] == 1.0
    lite = {(s.name, tuple(sorted(s.labels.items()))): s.value
            for f in parser.text_string_to_metric_families((prom_dir / "bim_lite1.prom").read_text()) for s in f.samples}
    assert lite[("bim_cache_hit_rate", (("check", "cache"), ("host", "lite1")))] == 0.6
    assert lite[("bim_drill_last_ok", (("host", "lite1"),))] == 0.0
    assert 3 * 3600 - 120 < lite[("bim_backup_age_seconds", (("host", "lite1"),))] < 4 * 3600
