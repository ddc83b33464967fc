# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The generated Prometheus rules, checked and unit-tested by Prometheus's own promtool.

Every threshold rule is tested at its level, one step on the good side and one step on the bad
side, with the metric value taken from the textfile the renderer writes for a health result
holding that value (so the rules and the textfile are proven to agree on names and units). The
expected alerts come from the health check's own semantics (strictly beyond a level fires).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
import yaml

from ansible_collections.bim.wall_system.plugins.module_utils.health.runner import thresholds_for
from ansible_collections.bim.wall_system.plugins.module_utils.monitoring import rules as rules_lib
from ansible_collections.bim.wall_system.plugins.module_utils.reporting.prometheus import render_host

parser = pytest.importorskip("prometheus_client.parser")

COLLECTION = os.path.abspath(os.path.join(os.path.dirname(__file__), *[os.pardir] * 5))
ALERTING_DEFAULTS = os.path.join(COLLECTION, "roles", "alerting", "defaults", "main.yml")
FOR = "1m"
EVAL = "3m"
STEP = 1e-3  # relative step beside a level: far above float noise, far below any level gap


def promtool():
    path = shutil.which("promtool")
    if not path:
        pytest.fail("promtool is required (Debian package prometheus; tests/run.sh installs it)")
    return path


def run_promtool(*args):
    proc = subprocess.run([promtool()] + list(args), capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-6000:]
    return proc.stdout + proc.stderr


def guide_alert_rules():
    with open(ALERTING_DEFAULTS, encoding="utf-8") as handle:
        return yaml.safe_load(handle)["bim_alerting_rules"]


def exported(check, metric, value, host):
    """(series selector, value) of ``check``'s ``metric`` = ``value`` as the textfile holds it."""
    row = {"host": host, "overall_status": "healthy", "alerts": [],
           "checks": [{"name": check, "status": "healthy", "metrics": {metric: value}}]}
    for family in parser.text_string_to_metric_families(render_host(row, sections=("health",))):
        for sample in family.samples:
            if sample.labels.get("check") == check and "status" not in sample.labels and family.name.startswith(
                    "bim_" + check.split("_")[0]) and family.name not in ("bim_health_check_status",):
                labels = ",".join('%s="%s"' % kv for kv in sorted(sample.labels.items()))
                return "%s{%s}" % (sample.name, labels), sample.value, dict(sample.labels)
    raise AssertionError("the renderer wrote no series for %s.%s" % (check, metric))


def annotations(rule, host):
    return {k: v.replace("{{ $labels.host }}", host) for k, v in rule["annotations"].items()}


def beyond(value, level, lower):
    return level is not None and (value < level if lower else value > level)


def threshold_cases(host_thresholds, groups):
    """promtool test groups: each threshold rule's metric at its level and one step either side."""
    by_alert = {}
    for rule in groups[rules_lib.GROUP_THRESHOLDS]:
        by_alert.setdefault(rule["alert"], []).append(rule)
    tests = []
    covered = set()
    for name, check, metric, fallback_of in rules_lib.threshold_targets():
        alert = "Bim" + rules_lib.camel(name) + ("" if metric == name else rules_lib.camel(metric))
        levels = host_thresholds["t1"][name]
        lower = levels["lower_is_worse"]
        for level_name in ("warning", "critical"):
            level = levels[level_name]
            if level is None:
                continue
            worse, better = (level * (1 - STEP), level * (1 + STEP)) if lower else (level * (1 + STEP), level * (1 - STEP))
            for case, value in (("at", level), ("better", better), ("worse", worse)):
                host = "t1"
                selector, exported_value, labels = exported(check, metric, value, host)
                expected = []
                for rule in by_alert[alert]:
                    severity = rule["labels"]["severity"]
                    if beyond(value, levels[severity], lower):
                        expected.append({"exp_labels": dict(labels, **rule["labels"]),
                                         "exp_annotations": annotations(rule, host)})
                        covered.add((alert, severity))
                tests.append({
                    "name": "%s %s %s (%s = %r)" % (alert, level_name, case, metric, value),
                    "interval": "1m",
                    "input_series": [{"series": selector, "values": "%sx10" % repr(exported_value)}],
                    "alert_rule_test": [{"alertname": alert, "eval_time": EVAL, "exp_alerts": expected}],
                })
        if fallback_of:
            # the fallback metric does not alert while the primary metric is reported
            selector, exported_value, _labels = exported(check, metric, levels["critical"] * (1 - STEP) if lower
                                                         else levels["critical"] * (1 + STEP), "t1")
            primary, primary_value, _l = exported(check, fallback_of[0], levels["warning"], "t1")
            tests.append({
                "name": "%s silent while %s is reported" % (alert, fallback_of[0]),
                "interval": "1m",
                "input_series": [{"series": selector, "values": "%sx10" % repr(exported_value)},
                                 {"series": primary, "values": "%sx10" % repr(primary_value)}],
                "alert_rule_test": [{"alertname": alert, "eval_time": EVAL, "exp_alerts": []}],
            })
    # every threshold rule fired in at least one case
    assert covered == {(r["alert"], r["labels"]["severity"]) for r in groups[rules_lib.GROUP_THRESHOLDS]}
    return tests


def guide_cases(groups):
    """The guide's rules with a condition: at, just below and just above the rule's threshold."""
    conditions = {"Bim" + rules_lib.camel(r["name"]): r["condition"] for r in guide_alert_rules() if "condition" in r}
    tests = []
    for rule in groups[rules_lib.GROUP_GUIDE]:
        condition = conditions.get(rule["alert"])
        if condition is None:
            continue
        level = float(condition["threshold"])
        for case, value in (("at", level), ("below", level * (1 - STEP)), ("above", level * (1 + STEP))):
            selector, exported_value, labels = exported(condition["check"], condition["metric"], value, "g1")
            fires = value > level if condition["comparison"] == ">" else value < level
            expected = [{"exp_labels": dict(labels, **rule["labels"]), "exp_annotations": annotations(rule, "g1")}]
            tests.append({
                "name": "%s %s" % (rule["alert"], case),
                "interval": "1m",
                "input_series": [{"series": selector, "values": "%sx10" % repr(exported_value)}],
                "alert_rule_test": [{"alertname": rule["alert"], "eval_time": EVAL,
                                     "exp_alerts": expected if fires else []}],
            })
    return tests


def connection_failure_cases(groups):
    """The promql rule of Database Connection Failure: an error without a connect time, or 0 connections."""
    rule = next(r for r in groups[rules_lib.GROUP_GUIDE] if r["alert"] == "BimDatabaseConnectionFailure")
    status = 'bim_health_check_status{check="database",host="%s",status="error"}'
    series = [
        {"series": status % "down", "values": "1x10"},  # error, no connect time: fires
        {"series": status % "slow", "values": "1x10"},  # error with a connect time (slow probes): silent
        {"series": 'bim_database_connect_time_seconds{check="database",host="slow"}', "values": "0.01x10"},
        {"series": status % "idle", "values": "0x10"},  # no connections at all: fires
        {"series": 'bim_database_connect_time_seconds{check="database",host="idle"}', "values": "0.01x10"},
        {"series": 'bim_database_active_connections{check="database",host="idle"}', "values": "0x10"},
        {"series": 'bim_database_active_connections{check="database",host="busy"}', "values": "1x10"},
    ]
    expected = [{"exp_labels": dict({"host": "down", "check": "database", "status": "error"}, **rule["labels"]),
                 "exp_annotations": annotations(rule, "down")},
                {"exp_labels": dict({"host": "idle", "check": "database"}, **rule["labels"]),
                 "exp_annotations": annotations(rule, "idle")}]
    return [{"name": "BimDatabaseConnectionFailure", "interval": "1m", "input_series": series,
             "alert_rule_test": [{"alertname": rule["alert"], "eval_time": EVAL, "exp_alerts": expected}]}]


def archiving_cases(groups):
    """The promql rules of the archiving check: a failing archive_command (PostgreSQL), a lagging,
    stopped or unreadable Litestream replica (SQLite)."""
    rules = {r["alert"]: r for r in groups[rules_lib.GROUP_GUIDE]}
    status = 'bim_health_check_status{check="archiving",host="%s",status="error"}'
    series = [
        {"series": 'bim_archiving_replica_lag_s{check="archiving",host="lagging"}', "values": "6x10"},
        {"series": 'bim_archiving_replica_lag_s{check="archiving",host="fresh"}', "values": "4x10"},
        {"series": status % "stopped", "values": "1x10"},  # Litestream down: no figures, an error
        {"series": status % "failing", "values": "1x10"},  # PostgreSQL: its own rule, not the replica's
        {"series": 'bim_archiving_archive_failing{check="archiving",host="failing"}', "values": "1x10"},
        {"series": 'bim_archiving_archive_failing{check="archiving",host="sound"}', "values": "0x10"},
    ]
    lagging, failing = rules["BimSQLiteReplicaLagging"], rules["BimWALArchivingFailing"]
    replica_alerts = [
        {"exp_labels": dict({"host": "lagging", "check": "archiving"}, **lagging["labels"]),
         "exp_annotations": annotations(lagging, "lagging")},
        {"exp_labels": dict({"host": "stopped", "check": "archiving", "status": "error"}, **lagging["labels"]),
         "exp_annotations": annotations(lagging, "stopped")}]
    archive_alerts = [{"exp_labels": dict({"host": "failing", "check": "archiving"}, **failing["labels"]),
                       "exp_annotations": annotations(failing, "failing")}]
    return [{"name": "archiving rules", "interval": "1m", "input_series": series,
             "alert_rule_test": [{"alertname": lagging["alert"], "eval_time": EVAL, "exp_alerts": replica_alerts},
                                 {"alertname": failing["alert"], "eval_time": EVAL, "exp_alerts": archive_alerts}]}]


def by_group(doc):
    return {g["name"]: g["rules"] for g in doc["groups"]}


def write_and_test(tmp_path, doc, tests):
    rules_file = tmp_path / "bim-rules.yml"
    rules_file.write_text(yaml.safe_dump(doc, sort_keys=False))
    out = run_promtool("check", "rules", str(rules_file))
    assert "SUCCESS" in out
    test_file = tmp_path / "bim-rules.test.yml"
    test_file.write_text(yaml.safe_dump({"rule_files": [rules_file.name], "evaluation_interval": "1m",
                                         "tests": tests}, sort_keys=False))
    run_promtool("test", "rules", str(test_file))


def test_threshold_and_guide_rules_at_below_and_above_every_level(tmp_path):
    host_thresholds = {"t1": thresholds_for()}
    doc, skipped = rules_lib.rule_groups(host_thresholds, guide_alert_rules(), alert_for=FOR)
    assert skipped == {}  # the expression rule carries promql
    groups = by_group(doc)
    tests = (threshold_cases(host_thresholds, groups) + guide_cases(groups) + connection_failure_cases(groups)
             + archiving_cases(groups))
    assert len(tests) >= 60
    write_and_test(tmp_path, doc, tests)


def test_a_failing_expectation_fails_promtool(tmp_path):
    """The harness can fail: a value beyond the level with no alert expected is reported by promtool."""
    host_thresholds = {"t1": thresholds_for()}
    doc, _skipped = rules_lib.rule_groups(host_thresholds, [], alert_for=FOR)
    selector, value, _labels = exported("cache", "cache_hit_rate", 0.6, "t1")
    rules_file = tmp_path / "bim-rules.yml"
    rules_file.write_text(yaml.safe_dump(doc))
    test_file = tmp_path / "t.yml"
    test_file.write_text(yaml.safe_dump({"rule_files": [rules_file.name], "tests": [{
        "interval": "1m", "input_series": [{"series": selector, "values": "%sx10" % value}],
        "alert_rule_test": [{"alertname": "BimCacheHitRate", "eval_time": EVAL, "exp_alerts": []}]}]}))
    proc = subprocess.run([promtool(), "test", "rules", str(test_file)], capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and "BimCacheHitRate" in proc.stdout + proc.stderr


def test_per_host_overrides_get_their_own_rules(tmp_path):
    """lite1 overrides cache_hit_rate warning to 0.8: 0.75 fires there and not on pg1."""
    host_thresholds = {"pg1": thresholds_for(), "pg2": thresholds_for(),
                       "lite1": thresholds_for({"cache_hit_rate": {"warning": 0.8}})}
    doc, _skipped = rules_lib.rule_groups(host_thresholds, [], alert_for=FOR)
    cache = [r for r in by_group(doc)[rules_lib.GROUP_THRESHOLDS]
             if r["alert"] == "BimCacheHitRate" and r["labels"]["severity"] == "warning"]
    assert sorted(r["expr"] for r in cache) == ['bim_cache_hit_rate{host!~"lite1"} < 0.7',
                                                'bim_cache_hit_rate{host=~"lite1"} < 0.8']
    tests = []
    for host, fires in (("pg1", False), ("lite1", True)):
        selector, value, labels = exported("cache", "cache_hit_rate", 0.75, host)
        rule = next(r for r in cache if ("=~" in r["expr"]) == fires)
        tests.append({"interval": "1m", "input_series": [{"series": selector, "values": "%sx10" % value}],
                      "alert_rule_test": [{"alertname": "BimCacheHitRate", "eval_time": EVAL, "exp_alerts": [
                          {"exp_labels": dict(labels, **rule["labels"]),
                           "exp_annotations": annotations(rule, host)}] if fires else []}]})
    write_and_test(tmp_path, doc, tests)


def test_service_rules_and_recording_rules(tmp_path):
    doc, _skipped = rules_lib.rule_groups({"t1": thresholds_for()}, [], alert_for=FOR, stale_after="2m")
    groups = by_group(doc)
    service = {r["alert"]: r for r in groups[rules_lib.GROUP_SERVICE]}
    host = 'host="s1"'
    # a textfile written every 10 s until 5m, then frozen (full disk): stale after max(3 x 10 s, 2m)
    stale = {"interval": "1m", "input_series": [
        {"series": "bim_monitoring_last_cycle_timestamp_seconds{%s}" % host, "values": "0+60x5 300x10"},
        {"series": 'bim_monitoring_check_interval_seconds{%s,check="cache"}' % host, "values": "10x15"},
        {"series": "bim_monitoring_textfile_write_errors_total{%s}" % host, "values": "0x5 1+1x10"}],
        "alert_rule_test": [
            {"alertname": "BimMonitoringStale", "eval_time": "5m", "exp_alerts": []},
            {"alertname": "BimMonitoringStale", "eval_time": "7m", "exp_alerts": []},  # 120 s: at the level
            {"alertname": "BimMonitoringStale", "eval_time": "8m", "exp_alerts": [
                {"exp_labels": {"host": "s1", "severity": "warning"},
                 "exp_annotations": annotations(service["BimMonitoringStale"], "s1")}]},
            {"alertname": "BimMonitoringTextfileWriteErrors", "eval_time": "4m", "exp_alerts": []},
            {"alertname": "BimMonitoringTextfileWriteErrors", "eval_time": "8m", "exp_alerts": [
                {"exp_labels": {"host": "s1", "severity": "warning"},
                 "exp_annotations": annotations(service["BimMonitoringTextfileWriteErrors"], "s1")}]}]}
    statuses = {"interval": "1m", "input_series": [
        {"series": 'bim_health_status{host="a",status="healthy"}', "values": "1x10"},
        {"series": 'bim_health_status{host="a",status="degraded"}', "values": "0x10"},
        {"series": 'bim_health_status{host="a",status="unhealthy"}', "values": "0x10"},
        {"series": 'bim_health_status{host="b",status="healthy"}', "values": "0x10"},
        {"series": 'bim_health_status{host="b",status="degraded"}', "values": "1x10"},
        {"series": 'bim_health_status{host="b",status="unhealthy"}', "values": "0x10"},
        {"series": 'bim_health_status{host="c",status="healthy"}', "values": "0x10"},
        {"series": 'bim_health_status{host="c",status="degraded"}', "values": "0x10"},
        {"series": 'bim_health_status{host="c",status="unhealthy"}', "values": "1x10"},
        {"series": 'bim_cache_hit_rate{host="a",check="cache"}', "values": "0.9x10"},
        {"series": 'bim_backup_last_timestamp_seconds{host="a"}', "values": "0x10"},
        {"series": 'bim_backup_suspicious{host="a"}', "values": "0x10"},
        {"series": 'bim_backup_suspicious{host="b"}', "values": "1x10"},
        {"series": 'bim_recoverable_window_earliest_timestamp_seconds{host="a"}', "values": "100x10"},
        {"series": 'bim_recoverable_window_latest_timestamp_seconds{host="a"}', "values": "160x10"}],
        "alert_rule_test": [
            {"alertname": "BimBackupSuspicious", "eval_time": EVAL, "exp_alerts": [
                {"exp_labels": {"host": "b", "severity": "critical"},
                 "exp_annotations": annotations(service["BimBackupSuspicious"], "b")}]},
            {"alertname": "BimHostDegraded", "eval_time": EVAL, "exp_alerts": [
                {"exp_labels": {"host": "b", "status": "degraded", "severity": "warning"},
                 "exp_annotations": annotations(service["BimHostDegraded"], "b")}]},
            {"alertname": "BimHostUnhealthy", "eval_time": EVAL, "exp_alerts": [
                {"exp_labels": {"host": "c", "status": "unhealthy", "severity": "critical"},
                 "exp_annotations": annotations(service["BimHostUnhealthy"], "c")}]}],
        "promql_expr_test": [
            {"expr": "bim_host:health_severity:max", "eval_time": EVAL, "exp_samples": [
                {"labels": 'bim_host:health_severity:max{host="a"}', "value": 0},
                {"labels": 'bim_host:health_severity:max{host="b"}', "value": 1},
                {"labels": 'bim_host:health_severity:max{host="c"}', "value": 2}]},
            {"expr": "bim:hosts_by_status:sum", "eval_time": EVAL, "exp_samples": [
                {"labels": 'bim:hosts_by_status:sum{status="healthy"}', "value": 1},
                {"labels": 'bim:hosts_by_status:sum{status="degraded"}', "value": 1},
                {"labels": 'bim:hosts_by_status:sum{status="unhealthy"}', "value": 1}]},
            {"expr": "bim_host:cache_hit_rate:avg5m", "eval_time": EVAL, "exp_samples": [
                {"labels": 'bim_host:cache_hit_rate:avg5m{host="a"}', "value": 0.9}]},
            {"expr": "bim_host:backup_age_seconds:live", "eval_time": EVAL, "exp_samples": [
                {"labels": 'bim_host:backup_age_seconds:live{host="a"}', "value": 180}]},
            {"expr": "bim_host:recoverable_window_seconds:max", "eval_time": EVAL, "exp_samples": [
                {"labels": 'bim_host:recoverable_window_seconds:max{host="a"}', "value": 60}]}]}
    write_and_test(tmp_path, doc, [stale, statuses])


def test_alertmanager_fragment_turns_cooldowns_into_repeat_intervals(tmp_path):
    fragment = rules_lib.alertmanager_routes(guide_alert_rules())
    routes = {r["matchers"][0]: r["repeat_interval"] for r in fragment["route"]["routes"]}
    assert routes == {'alertname="BimHighMemoryUsage"': "300s", 'alertname="BimDatabaseConnectionFailure"': "60s",
                      'alertname="BimHighErrorRate"': "600s", 'alertname="BimSlowPerformance"': "900s",
                      'alertname="BimHealthCheckFailed"': "300s", 'alertname="BimWALArchivingFailing"': "900s",
                      'alertname="BimWALArchiveLagging"': "900s", 'alertname="BimSQLiteReplicaLagging"': "600s"}
    assert fragment["inhibit_rules"][0]["equal"] == ["alertname", "host"]
    # merged into an alertmanager.yml as the docs say, Alertmanager's own checker accepts it
    amtool = shutil.which("amtool")
    if not amtool:
        pytest.fail("amtool is required (Debian package prometheus-alertmanager; tests/run.sh installs it)")
    config = dict(fragment, receivers=[{"name": "bim-default"}])
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(config))
    proc = subprocess.run([amtool, "check-config", str(tmp_path / "alertmanager.yml")], capture_output=True, text=True,
                          check=False, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    broken = dict(config, route=dict(config["route"], routes=[dict(config["route"]["routes"][0], repeat_interval="5 min")]))
    (tmp_path / "broken.yml").write_text(yaml.safe_dump(broken))
    assert subprocess.run([amtool, "check-config", str(tmp_path / "broken.yml")], capture_output=True,
                          check=False, timeout=60).returncode != 0  # the checker can fail
    # and the routes send each rule's alert where the fragment says, with its cooldown
    proc = subprocess.run([amtool, "config", "routes", "test", "--config.file", str(tmp_path / "alertmanager.yml"),
                           "--verify.receivers=bim-default", "alertname=BimHighErrorRate", "host=pg1"],
                          capture_output=True, text=True, check=False, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
