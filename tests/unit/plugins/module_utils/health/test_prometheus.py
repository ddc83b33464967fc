# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Prometheus textfile parses with the reference parser and holds the expected samples."""

from __future__ import annotations

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.health.base import CheckContext
from ansible_collections.bim.wall_system.plugins.module_utils.health.prometheus import render
from ansible_collections.bim.wall_system.plugins.module_utils.health.runner import (
    build_report, run_checks, thresholds_for)

parser = pytest.importorskip("prometheus_client.parser")


def _samples(text):
    families = list(parser.text_string_to_metric_families(text))
    samples = {}
    for family in families:
        assert family.type == "gauge"
        assert family.documentation
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return families, samples


def test_report_renders_and_parses():
    report = {
        "overall_status": "degraded",
        "checks": [
            {"name": "cache", "status": "warning", "message": "x", "duration_ms": 2.5,
             "metrics": {"cache_hit_rate": 0.6, "note": "text is skipped"}},
            {"name": "database", "status": "error", "message": 'quote " and \\ backslash', "duration_ms": 1.0,
             "metrics": {"connect_time_ms": 3.25, "spatial_indexes_invalid": ["idx_walls_geometry"]}},
            {"name": "application", "status": "healthy", "message": "", "duration_ms": 1.0,
             "metrics": {"up": True, "throughput_ops": 12}},
        ],
        "alerts": [{"check": "cache"}],
    }
    _families, samples = _samples(render(report))
    assert samples[("bim_health_overall_status", ())] == 1
    assert samples[("bim_health_check_status", (("check", "cache"),))] == 1
    assert samples[("bim_health_check_status", (("check", "database"),))] == 2
    assert samples[("bim_health_check_status", (("check", "application"),))] == 0
    assert samples[("bim_health_check_duration_ms", (("check", "cache"),))] == 2.5
    assert samples[("bim_cache_hit_rate", (("check", "cache"),))] == 0.6
    assert samples[("bim_connect_time_ms", (("check", "database"),))] == 3.25
    assert samples[("bim_up", (("check", "application"),))] == 1
    assert samples[("bim_throughput_ops", (("check", "application"),))] == 12
    assert samples[("bim_health_alerts", ())] == 1
    assert not any(name.startswith("bim_note") for name, _labels in samples)


def test_real_report_with_system_stats_parses():
    ctx = CheckContext(thresholds=thresholds_for(), timeout=10)
    report = build_report(run_checks(ctx, ["memory", "system"]))
    families, samples = _samples(render(report))
    names = {f.name for f in families}
    assert {"bim_health_overall_status", "bim_health_check_status", "bim_system_cpu_cores",
            "bim_system_memory_total_bytes", "bim_system_cpu_load_average_1m"} <= names
    # every family appears once (HELP/TYPE not repeated)
    text = render(report)
    assert text.count("# TYPE bim_health_check_status gauge") == 1
    assert samples[("bim_health_overall_status", ())] == 0
