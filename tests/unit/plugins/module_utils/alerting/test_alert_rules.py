# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Alert rules, durations and secret scrubbing."""

from __future__ import annotations

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.alerting.rules import (
    RuleError, compare, evaluate_rule, lookup_metric, normalize_rule, parse_duration)
from ansible_collections.bim.wall_system.plugins.module_utils.alerting.scrub import MASK, collect_secrets, scrub

RESULT = {
    "overall_status": "unhealthy",
    "checks": [
        {"name": "database", "status": "error", "message": "connection refused", "metrics": {}},
        {"name": "memory", "status": "healthy", "message": "ok", "metrics": {"heap_used_percent": 0.5}},
        {"name": "application", "status": "warning", "message": "slow", "metrics": {"average_offset_time_ms": 6000}},
    ],
}


@pytest.mark.parametrize("value,seconds", [(300, 300), ("300", 300), ("5m", 300), ("1m", 60), ("10m", 600),
                                           ("15m", 900), ("2s", 2), ("1h", 3600), ("1d", 86400), ("0", 0), (1.5, 1.5)])
def test_parse_duration(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["5 minutes", "-1", -3, "m", True])
def test_parse_duration_rejects(value):
    with pytest.raises(RuleError):
        parse_duration(value)


def test_normalize_rule_errors_name_the_rule():
    with pytest.raises(RuleError, match="'X'.*exactly one"):
        normalize_rule({"name": "X", "channels": ["email"]})
    with pytest.raises(RuleError, match="unknown channel"):
        normalize_rule({"name": "X", "expression": "true", "channels": ["pager"]})
    with pytest.raises(RuleError, match="comparison"):
        normalize_rule({"name": "X", "condition": {"metric": "m", "comparison": "=>", "threshold": 1}})
    with pytest.raises(RuleError, match="severity"):
        normalize_rule({"name": "X", "expression": "true", "severity": "panic"})


def test_lookup_metric():
    assert lookup_metric(RESULT, "memory", "heap_used_percent") == 0.5
    assert lookup_metric(RESULT, None, "average_offset_time_ms") == 6000
    assert lookup_metric(RESULT, None, "overall_status") == "unhealthy"
    assert lookup_metric(RESULT, "database", "status") == "error"
    assert lookup_metric(RESULT, "cache", "cache_hit_rate") is None


def test_compare():
    assert compare(0.95, ">", 0.9) and not compare(0.9, ">", 0.9) and compare(0.9, ">=", "0.9")
    assert compare(0, "==", 0) and compare("error", "==", "ERROR") and compare("ok", "!=", "error")
    assert not compare(None, "<", 1) and not compare("abc", ">", 1) and not compare(float("nan"), ">", 1)


def test_condition_and_expression_rules():
    results = {"pg1": RESULT, "pg2": {"overall_status": "healthy", "checks": []}}
    rule = normalize_rule({"name": "Slow", "condition": {"metric": "average_offset_time_ms", "threshold": 5000}})
    affected, errors = evaluate_rule(rule, results)
    assert [a["host"] for a in affected] == ["pg1"] and affected[0]["value"] == 6000 and errors == []
    rule = normalize_rule({"name": "DB", "expression": "{{ check.database.status == 'error' }}"})
    affected, errors = evaluate_rule(rule, results)
    assert [a["host"] for a in affected] == ["pg1"] and "database: connection refused" in affected[0]["message"]
    rule = normalize_rule({"name": "Broken", "expression": "metrics.memory.heap_used_percent > 'x'"})
    affected, errors = evaluate_rule(rule, results)
    assert affected == [] and errors and errors[0]["host"] == "pg1"


def test_expression_sandbox_blocks_internals():
    rule = normalize_rule({"name": "Evil", "expression": "host.__class__.__mro__[1].__subclasses__()"})
    affected, errors = evaluate_rule(rule, {"pg1": RESULT})
    assert affected == [] and "SecurityError" in errors[0]["error"]


def test_scrub():
    config = {"slack": {"webhook_url": "http://x/hooks/SECRETPATH"}, "email": {"password": "hunter22", "port": 25},
              "webhook": {"headers": {"Authorization": "Bearer tok-123"}}}
    secrets = collect_secrets(config)
    # a secret URL's path counts too, whole and by its long segments: endpoints echo it alone
    assert secrets == {"http://x/hooks/SECRETPATH", "/hooks/SECRETPATH", "hooks/SECRETPATH", "SECRETPATH",
                       "hunter22", "Bearer tok-123"}
    assert scrub("404: no hook at /hooks/SECRETPATH", secrets) == "404: no hook at %s" % MASK
    out = scrub({"msg": "failed to POST http://x/hooks/SECRETPATH with hunter22", "password": "other",
                 "nested": [{"auth_token": "t"}], "bim_app_url": "http://app:8080",
                 "u": "https://user:pw@host/path"}, secrets)
    assert out["msg"] == "failed to POST %s with %s" % (MASK, MASK)
    assert out["password"] == MASK and out["nested"][0]["auth_token"] == MASK
    assert out["bim_app_url"] == "http://app:8080" and out["u"] == "https://%s@host/path" % MASK
