# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one Prometheus renderer: a host's health result parses with the reference parser, with one
meaning per metric name whoever writes it (health_check module, monitoring service, fleet report)."""

from __future__ import annotations

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.health.base import CheckContext
from ansible_collections.bim.wall_system.plugins.module_utils.health.runner import (
    build_report, run_checks, thresholds_for)
from ansible_collections.bim.wall_system.plugins.module_utils.reporting.prometheus import (
    metric_name, render_host)
from ansible_collections.bim.wall_system.plugins.module_utils.reporting.report_json import build_report as fleet_report

parser = pytest.importorskip("prometheus_client.parser")

REPORT = {
    "overall_status": "degraded",
    "checks": [
        {"name": "cache", "status": "warning", "message": "x", "duration_ms": 2.5,
         "metrics": {"cache_hit_rate": 0.6, "note": "text is skipped"}},
        {"name": "database", "status": "error", "message": 'quote " and \\ backslash', "duration_ms": 1.0,
         "metrics": {"connect_time_ms": 3.25, "spatial_indexes_invalid": ["idx_walls_geometry"]}},
        {"name": "application", "status": "healthy", "message": "", "duration_ms": 1.0,
         "metrics": {"up": True, "throughput_ops": 12, "average_offset_time_ms": 1000.0}},
        {"name": "memory", "status": "healthy", "message": "", "duration_ms": 1.0,
         "metrics": {"heap_used_percent": 0.45}},
    ],
    "alerts": [{"check": "cache", "severity": "warning"}],
}


def _samples(text):
    families = list(parser.text_string_to_metric_families(text))
    samples = {}
    for family in families:
        assert family.type == "gauge"
        assert family.documentation
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return families, samples


def test_health_result_renders_in_base_units_with_state_sets():
    _families, samples = _samples(render_host(dict(REPORT, host="lite1"), sections=("health",)))
    assert samples[("bim_health_status", (("host", "lite1"), ("status", "degraded")))] == 1
    assert samples[("bim_health_status", (("host", "lite1"), ("status", "healthy")))] == 0
    assert samples[("bim_health_check_status", (("check", "cache"), ("host", "lite1"), ("status", "warning")))] == 1
    assert samples[("bim_health_check_status", (("check", "database"), ("host", "lite1"), ("status", "error")))] == 1
    assert samples[("bim_health_check_duration_seconds", (("check", "cache"), ("host", "lite1")))] == 0.0025
    assert samples[("bim_cache_hit_rate", (("check", "cache"), ("host", "lite1")))] == 0.6
    assert samples[("bim_database_connect_time_seconds", (("check", "database"), ("host", "lite1")))] == 0.00325
    assert samples[("bim_application_up", (("check", "application"), ("host", "lite1")))] == 1
    assert samples[("bim_application_average_offset_time_seconds", (("check", "application"), ("host", "lite1")))] == 1.0
    assert samples[("bim_memory_heap_used_ratio", (("check", "memory"), ("host", "lite1")))] == 0.45
    assert samples[("bim_health_alerts", (("host", "lite1"), ("severity", "warning")))] == 1
    assert not any(name.startswith("bim_cache_note") for name, _labels in samples)
    # the old host-side names (0/1/2 status codes, milliseconds) are gone
    assert not any(name in ("bim_health_overall_status", "bim_health_check_duration_ms") for name, _l in samples)


def test_host_and_fleet_report_agree_on_every_health_series():
    """The host-side textfile and the fleet report's textfile of the same result hold the same series."""
    host_side = _samples(render_host(dict(REPORT, host="pg1"), sections=("health",)))[1]
    row = fleet_report({"pg1": REPORT})["hosts"][0]
    controller = _samples(render_host(row, sections=("health",)))[1]
    assert host_side == controller


def test_metric_name_is_what_the_textfile_holds():
    assert metric_name("database", "database_response_time_ms") == ("bim_database_response_time_seconds", 1000.0)
    assert metric_name("cache", "cache_hit_rate") == ("bim_cache_hit_rate", 1.0)
    assert metric_name("geometric_operations", "operation_failure_rate") == (
        "bim_geometric_operations_operation_failure_rate", 1.0)
    assert metric_name("memory", "heap_used_percent") == ("bim_memory_heap_used_ratio", 1.0)


def test_real_report_with_system_stats_parses():
    ctx = CheckContext(thresholds=thresholds_for(), timeout=10)
    report = build_report(run_checks(ctx, ["memory", "system"]))
    text = render_host(dict(report, host="h1"), sections=("health",), check_times={"memory": 1.0e9})
    families, samples = _samples(text)
    names = {f.name for f in families}
    assert {"bim_health_status", "bim_health_check_status", "bim_system_cpu_cores",
            "bim_system_memory_total_bytes", "bim_system_cpu_load_average"} <= names
    assert samples[("bim_health_check_timestamp_seconds", (("check", "memory"), ("host", "h1")))] == 1.0e9
    # every family appears once (HELP/TYPE not repeated)
    assert text.count("# TYPE bim_health_check_status gauge") == 1
    assert samples[("bim_health_status", (("host", "h1"), ("status", "healthy")))] == 1


def test_recovery_section_exports_backup_drill_and_recoverable_window():
    row = {"host": "pg1", "backup": {"age_hours": 2.0, "last_backup_at": "2026-03-01T10:00:00Z", "ok": True,
                                     "stored_bytes": 1234, "suspicious": True,
                                     "recoverable_window": {"earliest": "2026-02-01T00:00:00Z",
                                                            "latest": "2026-03-01T11:59:00Z"}},
           "drill": {"ok": False, "rto_seconds": 42.5, "rpo_seconds": 60}}
    _families, samples = _samples(render_host(row, sections=("recovery",)))
    host = (("host", "pg1"),)
    assert samples[("bim_backup_age_seconds", host)] == 7200.0
    assert samples[("bim_backup_last_timestamp_seconds", host)] == 1772359200.0
    assert samples[("bim_backup_stored_bytes", host)] == 1234
    assert samples[("bim_backup_suspicious", host)] == 1
    assert samples[("bim_recoverable_window_earliest_timestamp_seconds", host)] == 1769904000.0
    assert samples[("bim_recoverable_window_latest_timestamp_seconds", host)] == 1772366340.0
    assert samples[("bim_drill_last_ok", host)] == 0
    assert samples[("bim_drill_rto_seconds", host)] == 42.5
    assert not any(name.startswith("bim_health") for name, _l in samples)
