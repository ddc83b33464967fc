# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet report: JSON model, HTML page (parsed), Prometheus textfiles (prometheus_client parser)."""

from __future__ import annotations

import datetime
import json
import os
import stat
from html.parser import HTMLParser

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.reporting.report_files import write_report
from ansible_collections.bim.wall_system.plugins.module_utils.reporting.report_json import build_report
from ansible_collections.bim.wall_system.plugins.module_utils.reporting.prometheus import render_host

NOW = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)


def health(status, db_status="healthy", heap=0.5, alerts=()):
    return {
        "overall_status": status,
        "checks": [
            {"name": "database", "status": db_status, "message": "connected in 3 ms <b>bold</b>",
             "metrics": {"connect_time_ms": 3.2, "active_connections": 2, "disk_usage": 0.41,
                         "spatial_indexes_invalid": []}, "duration_ms": 12.5},
            {"name": "memory", "status": "healthy", "message": "ok",
             "metrics": {"heap_used_percent": heap, "host_memory_total_bytes": 8 * 2 ** 30}, "duration_ms": 1.0},
            {"name": "logs", "status": "healthy", "message": "",
             "metrics": {"error_rate": 0.01, "anomaly": False, "errors_by_category": {"geometry": 3, "api": 0},
                         "top_errors": [{"message": "wall N failed", "count": 3}]}, "duration_ms": 4.0},
        ],
        "alerts": list(alerts),
        "recommendations": ["database: run db_maintenance"] if status != "healthy" else [],
        "system": {"cpu_count": 2, "platform": "Linux"},
    }


RESULTS = {
    "pg1": health("healthy"),
    "pg2": health("unhealthy", db_status="error",
                  alerts=[{"check": "database", "metric": "database_response_time_ms", "value": 6100.0,
                           "threshold": 5000.0, "severity": "critical"}]),
    "lite1": health("degraded", heap=0.93),
}
BACKUP = {"kind": "backup", "generated_at": "2026-03-01T06:00:00Z",
          "hosts": {"pg1": {"status": "ok", "reasons": [], "backup_id": "20260301T020000-full", "finished_at": "2026-03-01T02:00:00Z"},
                    "pg2": {"status": "failed", "reasons": ["repository locked"]},
                    "lite1": {"status": "ok", "reasons": []}}}
DRILL = {"kind": "drill", "generated_at": "2026-02-28T03:00:00Z",
         "hosts": {"pg1": {"status": "passed", "reasons": [], "rto_seconds": 42.5, "rpo_seconds": 3600},
                   "lite1": {"status": "failed", "reasons": ["digest mismatch on walls"]}}}


def test_build_report_model():
    report = build_report(RESULTS, BACKUP, DRILL, hosts=["pg1", "pg2", "lite1", "gone1"], generated_at=NOW)
    assert [r["host"] for r in report["hosts"]] == ["gone1", "lite1", "pg1", "pg2"]
    status = {r["host"]: r["overall_status"] for r in report["hosts"]}
    assert status == {"gone1": "unreachable", "lite1": "degraded", "pg1": "healthy", "pg2": "unhealthy"}
    assert report["fleet"] == {"hosts": 4, "overall_status": "unreachable", "alerts": 1,
                               "status_counts": {"healthy": 1, "degraded": 1, "unhealthy": 1, "unreachable": 1}}
    rows = {r["host"]: r for r in report["hosts"]}
    assert rows["pg1"]["backup"]["age_hours"] == 10.0 and rows["pg1"]["backup"]["backup_id"] == "20260301T020000-full"
    assert rows["lite1"]["backup"]["age_hours"] == 6.0  # no time in the entry: the summary's time
    assert rows["pg2"]["backup"]["ok"] is False and rows["pg2"]["backup"]["age_hours"] is None
    assert rows["pg1"]["drill"]["ok"] is True and rows["pg1"]["drill"]["rto_seconds"] == 42.5
    assert rows["lite1"]["drill"]["ok"] is False and "digest mismatch" in rows["lite1"]["drill"]["message"]
    assert rows["pg2"]["drill"] is None and rows["gone1"]["backup"] is None


class _Rows(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self.external = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "host-row" in (attrs.get("class") or ""):
            self.rows.append((attrs["data-host"], attrs["data-status"]))
        for key in ("src", "href"):
            value = attrs.get(key) or ""
            if value and not value.startswith("#"):
                self.external.append(value)
        if tag in ("script", "link", "img"):
            self.external.append(tag)


def test_files_written(tmp_path):
    dest = tmp_path / "bim-reports"
    out = write_report(RESULTS, str(dest), hosts=list(RESULTS), backup_summary=BACKUP, drill_summary=DRILL, generated_at=NOW)
    report = json.loads((dest / "fleet-report.json").read_text())
    assert report["fleet"]["hosts"] == 3
    html = (dest / "fleet-report.html").read_text()
    parser = _Rows()
    parser.feed(html)
    assert parser.rows == [("lite1", "degraded"), ("pg1", "healthy"), ("pg2", "unhealthy")]
    assert parser.external == []  # self-contained
    assert "&lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold</b>" not in html  # escaped
    assert "10.0 h ago" in html and "RTO 42.5 s" in html
    for path in (dest / "fleet-report.json", dest / "fleet-report.html"):
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert sorted(out["prometheus_files"]) == ["lite1", "pg1", "pg2"]
    assert os.path.basename(out["prometheus_files"]["pg1"]) == "bim_pg1.prom"


def test_check_mode_writes_nothing(tmp_path):
    write_report(RESULTS, str(tmp_path / "r"), check_mode=True, generated_at=NOW)
    assert not (tmp_path / "r").exists()


def test_prometheus_textfile_parses():
    parser = pytest.importorskip("prometheus_client.parser")
    report = build_report(RESULTS, BACKUP, DRILL, hosts=list(RESULTS) + ["gone1"], generated_at=NOW)
    samples = {}
    for row in report["hosts"]:
        text = render_host(row, NOW.timestamp())
        for family in parser.text_string_to_metric_families(text):
            assert family.type == "gauge"
            assert family.name.startswith("bim_")
            for sample in family.samples:
                assert sample.labels["host"] == row["host"]
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    assert samples[("bim_health_status", (("host", "pg2"), ("status", "unhealthy")))] == 1.0
    assert samples[("bim_health_status", (("host", "pg2"), ("status", "healthy")))] == 0.0
    assert samples[("bim_health_up", (("host", "gone1"),))] == 0.0
    assert samples[("bim_database_connect_time_seconds", (("check", "database"), ("host", "pg1")))] == pytest.approx(0.0032)
    assert samples[("bim_memory_heap_used_ratio", (("check", "memory"), ("host", "lite1")))] == 0.93
    assert samples[("bim_logs_errors_by_category", (("category", "geometry"), ("check", "logs"), ("host", "pg1")))] == 3.0
    assert samples[("bim_health_check_status", (("check", "database"), ("host", "pg2"), ("status", "error")))] == 1.0
    assert samples[("bim_health_alerts", (("host", "pg2"), ("severity", "critical")))] == 1.0
    assert samples[("bim_backup_age_seconds", (("host", "pg1"),))] == 36000.0
    assert samples[("bim_drill_last_ok", (("host", "lite1"),))] == 0.0
    assert samples[("bim_drill_rto_seconds", (("host", "pg1"),))] == 42.5


def test_the_built_in_page_from_jinjas_bytecode_cache_is_the_same_page(tmp_path, monkeypatch):
    """The built-in template is compiled once into Jinja2's per-user cache folder; a page rendered
    from that cache, or where no cache folder can be had, is the page compiled afresh."""
    from ansible_collections.bim.wall_system.plugins.module_utils.reporting import report_html

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    report = build_report(RESULTS, BACKUP, DRILL, generated_at=NOW)
    first = report_html.render_html(report)
    cached = [name for name in os.listdir(str(tmp_path)) if name.startswith("_jinja2-cache")]
    assert len(cached) == 1 and os.listdir(str(tmp_path / cached[0])), os.listdir(str(tmp_path))
    assert report_html.render_html(report) == first

    # the same template given as an operator's (compiled afresh, never cached)
    assert report_html.render_html(report, template=report_html.TEMPLATE) == first

    # a cache folder that is not the user's own (here: a file in its place) is no cache at all
    monkeypatch.setenv("TMPDIR", str(tmp_path / "elsewhere"))
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / cached[0]).write_text("not a folder")
    assert report_html.render_html(report) == first


def test_an_operators_template_is_not_cached(tmp_path, monkeypatch):
    from ansible_collections.bim.wall_system.plugins.module_utils.reporting import report_html

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    page = report_html.render_html(build_report(RESULTS, BACKUP, DRILL, generated_at=NOW), template="<p>{{ report.title | e }}</p>")
    assert page.startswith("<p>") and not os.listdir(str(tmp_path))
