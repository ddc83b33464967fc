# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet report's bounded history and its inline SVG trends."""

from __future__ import annotations

import datetime
import json
import os
import stat
import threading
from html.parser import HTMLParser

from ansible_collections.bim.wall_system.plugins.module_utils.reporting import history
from ansible_collections.bim.wall_system.plugins.module_utils.reporting.report_files import write_report
from ansible_collections.bim.wall_system.plugins.module_utils.reporting.report_json import build_report
from ansible_collections.bim.wall_system.plugins.module_utils.reporting.report_svg import trend_charts

START = datetime.datetime(2026, 1, 1, 2, 0, tzinfo=datetime.timezone.utc)


def iso(value):
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def health(status):
    return {"overall_status": status, "checks": [{"name": "database", "status": "healthy", "metrics": {}}],
            "alerts": [], "recommendations": []}


def report_at(day, status_pg1="healthy", drill_day=None, over_window=False):
    now = START + datetime.timedelta(days=day)
    backup_at = now - datetime.timedelta(hours=3)
    backup = {"kind": "backup", "generated_at": iso(now), "hosts": {
        h: {"status": "ok", "finished_at": iso(backup_at), "referenced_bytes": 1000 * (day + 1)} for h in ("pg1", "lite1")}}
    drill_at = START + datetime.timedelta(days=drill_day if drill_day is not None else 0)
    drill = {"kind": "drill", "generated_at": iso(drill_at), "hosts": {
        "pg1": {"status": "passed", "rto_s": 40.0 + (drill_day or 0), "rpo_s": 60, "finished_at": iso(drill_at)}}}
    started = now - datetime.timedelta(hours=1)
    finished = started + datetime.timedelta(minutes=90 if over_window else 20)
    maintenance = {"kind": "maintenance", "generated_at": iso(now), "hosts": {"lite1": {
        "status": "ok", "tier": "daily", "deadline": iso(started + datetime.timedelta(hours=1)),
        "tasks": [{"task": "database_cleanup", "started": iso(started), "finished": iso(finished)}]}}}
    return build_report({"pg1": health(status_pg1), "lite1": health("healthy")}, backup, drill, maintenance,
                        generated_at=now)


def test_history_is_bounded_by_runs_and_days(tmp_path):
    path = str(tmp_path / "fleet-report-history.json")
    for day in range(120):
        entries = history.record(path, report_at(day), runs=500, days=90)
    assert len(entries) == 91  # days 29..119: the last 90 days, both ends included
    assert entries[0]["at"] == iso(START + datetime.timedelta(days=29))
    entries = history.record(path, report_at(120), runs=10, days=90)
    assert [e["at"] for e in entries] == [iso(START + datetime.timedelta(days=d)) for d in range(111, 121)]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert json.load(open(path))["entries"] == entries


def test_damaged_history_is_set_aside_and_a_new_one_begins(tmp_path):
    path = tmp_path / "h.json"
    path.write_text("{not json")
    entries = history.record(str(path), report_at(1))
    assert len(entries) == 1
    assert (tmp_path / "h.json.corrupt").read_text() == "{not json"


def test_overlapping_runs_all_land(tmp_path):
    path = str(tmp_path / "h.json")
    threads = [threading.Thread(target=history.record, args=(path, report_at(day))) for day in range(30)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(history.read(path)) == 30


class Svg(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def parsed(markup):
    parser = Svg()
    parser.feed(markup)
    return parser.tags


def test_trends_draw_every_run_and_every_event_once():
    entries = [history.entry_of(report_at(day, status_pg1="degraded" if day == 3 else "healthy",
                                          drill_day=0 if day < 5 else 5, over_window=day == 6))
               for day in range(8)]
    charts = {chart_id: parsed(svg) for chart_id, _title, svg in trend_charts(entries)}
    assert sorted(charts) == ["backup-age", "backup-size", "drill", "maintenance", "status"]
    runs = [a for tag, a in charts["status"] if tag == "rect"]
    assert len(runs) == 16  # 8 runs x 2 hosts
    assert [a["data-status"] for a in runs if a.get("data-status") == "degraded"] == ["degraded"]
    points = [a for tag, a in charts["backup-age"] if tag == "circle"]
    assert len(points) == 16  # sampled every run
    drill_points = [a for tag, a in charts["drill"] if tag == "circle"]
    assert len(drill_points) == 4  # two drills of pg1, RTO and RPO each: repeated runs count once
    bars = [a for tag, a in charts["maintenance"] if tag == "rect"]
    assert len(bars) == 8 and [b["data-over"] for b in bars].count("true") == 1
    for tags in charts.values():
        assert not [t for t, _a in tags if t in ("script", "image", "img", "foreignobject", "a")]


def test_page_embeds_the_trends_and_json_says_how_many_runs(tmp_path):
    dest = tmp_path / "reports"
    for day in range(3):
        out = write_report({"pg1": health("healthy")}, str(dest), generated_at=START + datetime.timedelta(days=day))
    html = open(out["html_path"]).read()
    assert html.count('<figure class="trend"') == 5 and "<script" not in html
    assert json.load(open(out["json_path"]))["history"] == {"runs": 3, "since": iso(START)}
    assert out["history_path"] == str(dest / "fleet-report-history.json")
