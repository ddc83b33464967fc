# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Thresholds: seed defaults, partial overrides, unknown names, evaluation."""

from __future__ import annotations

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.health.base import CheckContext, CheckResult, HealthError
from ansible_collections.bim.wall_system.plugins.module_utils.health.runner import thresholds_for
from ansible_collections.bim.wall_system.plugins.module_utils.health.thresholds import breached, evaluate

SEED = {
    "database_response_time_ms": (1000, 5000),
    "memory_usage": (0.80, 0.95),
    "cache_hit_rate": (0.70, 0.50),
    "operation_failure_rate": (0.05, 0.10),
    "average_offset_time_ms": (1000, None),
    "disk_usage": (0.85, 0.95),
    "connection_usage": (0.80, 0.95),
}


def test_seed_defaults():
    merged = thresholds_for()
    for name, (warning, critical) in SEED.items():
        assert merged[name]["warning"] == warning
        assert merged[name]["critical"] == critical
    assert merged["cache_hit_rate"]["lower_is_worse"] is True
    assert merged["memory_usage"]["lower_is_worse"] is False


def test_partial_override_keeps_other_level_and_other_names():
    merged = thresholds_for({"cache_hit_rate": {"warning": 0.9}, "disk_usage": 0.5})
    assert merged["cache_hit_rate"] == {"warning": 0.9, "critical": 0.5, "lower_is_worse": True}
    assert merged["disk_usage"]["warning"] == 0.5 and merged["disk_usage"]["critical"] == 0.95
    assert merged["memory_usage"]["warning"] == 0.80
    # the defaults themselves are untouched
    assert thresholds_for()["cache_hit_rate"]["warning"] == 0.70


def test_unknown_name_lists_valid_ones():
    with pytest.raises(HealthError) as info:
        thresholds_for({"cache_hit_ratio": {"warning": 0.5}})
    text = str(info.value)
    assert "cache_hit_ratio" in text
    for name in SEED:
        assert name in text


@pytest.mark.parametrize("override, fragment", [
    ({"memory_usage": {"warn": 0.5}}, "unknown level"),
    ({"memory_usage": {"warning": "lots"}}, "must be a number"),
    ({"memory_usage": {"warning": 0.99}}, "must be higher"),
    ({"cache_hit_rate": {"critical": 0.9}}, "must be lower"),
    (["memory_usage"], "must be a dict"),
])
def test_bad_overrides_are_clear(override, fragment):
    with pytest.raises(HealthError, match=fragment):
        thresholds_for(override)


def test_breached_both_directions():
    higher = {"warning": 0.8, "critical": 0.95, "lower_is_worse": False}
    assert breached(0.5, higher) is None
    assert breached(0.8, higher) is None  # at the level is not beyond it
    assert breached(0.85, higher) == "warning"
    assert breached(0.99, higher) == "critical"
    lower = {"warning": 0.7, "critical": 0.5, "lower_is_worse": True}
    assert breached(0.9, lower) is None
    assert breached(0.6, lower) == "warning"
    assert breached(0.4, lower) == "critical"
    only_warning = {"warning": 1000.0, "critical": None, "lower_is_worse": False}
    assert breached(10 ** 9, only_warning) == "warning"


def test_evaluate_adds_alert_and_worsens_status():
    ctx = CheckContext(thresholds=thresholds_for())
    result = CheckResult("cache")
    assert evaluate(result, ctx, "cache_hit_rate", 0.6) == "warning"
    assert result.status == "warning"
    assert [a.as_dict() for a in result.alerts] == [
        {"check": "cache", "metric": "cache_hit_rate", "value": 0.6, "threshold": 0.7, "severity": "warning"}]
    assert evaluate(result, ctx, "cache_hit_rate", 0.3) == "critical"
    assert result.status == "error"
    assert result.alerts[-1].threshold == 0.5
    # a healthy value never improves a status already worsened
    assert evaluate(result, ctx, "cache_hit_rate", 0.99) is None
    assert result.status == "error"
