# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus alerting and recording rules from the collection's own thresholds and alert rules.

* Threshold rules: one alert per threshold, level and metric the threshold applies to (the checks
  declare those in their ``ThresholdSpec``), with the collection's semantics: a value strictly
  beyond the level fires (``>``, or ``<`` when lower is worse), the level itself does not; warning
  and critical share the alert name and differ by the ``severity`` label (Alertmanager inhibits the
  warning while the critical fires). Thresholds are per host (the inventory may override them for
  some hosts): hosts that share a level share a rule; the others get a rule of their own with a
  ``host`` matcher (and their ``level`` label).
* The guide's alert rules (role ``alerting``): a ``condition`` becomes the same comparison on the
  metric's Prometheus name and unit; an ``expression`` rule needs a ``promql`` key (the Jinja2
  expression cannot be translated) and is otherwise listed as skipped. Their cooldown is an
  Alertmanager ``repeat_interval`` (see :func:`alertmanager_routes`).
* Rules on the live service itself (a textfile that stops moving, write errors) and on the host's
  overall status; recording rules for the headline figures of the dashboard.

Everything is plain data, dumped as YAML by the caller.
"""

from __future__ import annotations

import collections
import re

from ansible_collections.bim.wall_system.plugins.module_utils.alerting.rules import RuleError, normalize_rule, parse_duration
from ansible_collections.bim.wall_system.plugins.module_utils.health.registry import checks as registered_checks
from ansible_collections.bim.wall_system.plugins.module_utils.reporting.prometheus import metric_name

GROUP_THRESHOLDS = "bim-thresholds"
GROUP_GUIDE = "bim-guide-alerts"
GROUP_SERVICE = "bim-monitoring"
GROUP_RECORDING = "bim-recording"
_OPERATORS = {">": ">", ">=": ">=", "<": "<", "<=": "<=", "==": "==", "!=": "!="}
_RE2_SPECIAL = re.compile(r"([\\.^$|?*+()\[\]{}])")

# Recording rules: the headline figures of the dashboard, one series per host (or for the fleet).
RECORDING_RULES = (
    ("bim:hosts_by_status:sum", "sum by (status) (bim_health_status)"),
    ("bim_host:health_severity:max",
     'max by (host) ((bim_health_status{status="healthy"} == 1) * 0 or (bim_health_status{status="degraded"} == 1) * 1'
     ' or (bim_health_status{status="unhealthy"} == 1) * 2)'),
    ("bim_host_check:health_severity:max",
     'max by (host, check) ((bim_health_check_status{status="healthy"} == 1) * 0 or (bim_health_check_status{status="warning"} == 1) * 1'
     ' or (bim_health_check_status{status="error"} == 1) * 2)'),
    ("bim_host:database_response_time_seconds:max5m",
     "max by (host) (max_over_time(bim_database_response_time_seconds[5m]))"),
    ("bim_host:cache_hit_rate:avg5m", "avg by (host) (avg_over_time(bim_cache_hit_rate[5m]))"),
    ("bim_host:operation_failure_rate:avg5m",
     "avg by (host) (avg_over_time(bim_geometric_operations_operation_failure_rate[5m]))"),
    ("bim_host:average_offset_time_seconds:avg5m",
     "avg by (host) (avg_over_time(bim_application_average_offset_time_seconds[5m]))"),
    ("bim_host:throughput_ops:avg5m", "avg by (host) (avg_over_time(bim_application_throughput_ops[5m]))"),
    ("bim_host:memory_usage:max",
     "max by (host) (bim_memory_host_memory_usage or bim_memory_heap_used_ratio)"),
    ("bim_host:logs_error_rate:max", "max by (host) (bim_logs_error_rate)"),
    ("bim_host:backup_age_seconds:live", "time() - max by (host) (bim_backup_last_timestamp_seconds)"),
    ("bim_host:recoverable_window_seconds:max",
     "max by (host) (bim_recoverable_window_latest_timestamp_seconds - bim_recoverable_window_earliest_timestamp_seconds)"),
)


def camel(text):
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", str(text)) if part)


def number(value):
    """A PromQL number literal that reads back as exactly ``value``."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)


def _host_regex(hosts):
    return "|".join(_RE2_SPECIAL.sub(r"\\\1", h) for h in sorted(hosts))


def threshold_targets():
    """``[(threshold, check, metric, fallback_of)]`` for every threshold of every registered check."""
    targets = []
    for check, spec in registered_checks().items():
        for name, threshold in spec.thresholds.items():
            metrics = threshold.metrics or (name,)
            for metric in metrics:
                targets.append((name, check, metric, None))
            for metric in threshold.fallback_metrics:
                targets.append((name, check, metric, metrics))
    return targets


def _host_groups(host_thresholds, name, level):
    """``[(value, matcher)]``: hosts sharing a level share a rule; ``matcher`` is a label matcher or ''."""
    by_value = collections.OrderedDict()
    for host in sorted(host_thresholds):
        levels = host_thresholds[host].get(name) or {}
        by_value.setdefault(levels.get(level), []).append(host)
    if list(by_value) == [None]:
        return []
    if len(by_value) == 1:
        return [(next(iter(by_value)), "")]
    # the most common level applies to every host but the others (hosts not in the inventory too)
    common = max((v for v in by_value if v is not None), key=lambda v: (len(by_value[v]), -v))
    others = [h for v, hosts in by_value.items() if v != common for h in hosts]
    groups = [(common, 'host!~"%s"' % _host_regex(others))]
    for value, hosts in by_value.items():
        if value is not None and value != common:
            groups.append((value, 'host=~"%s"' % _host_regex(hosts)))
    return groups


def threshold_rules(host_thresholds, alert_for="1m"):
    """Alerting rules of every threshold, level and metric, for hosts -> merged thresholds."""
    rules = []
    any_levels = next(iter(host_thresholds.values())) if host_thresholds else {}
    for name, check, metric, fallback_of in threshold_targets():
        if name not in any_levels:
            continue
        prom, divisor = metric_name(check, metric)
        lower = any_levels[name].get("lower_is_worse", False)
        alert = "Bim" + camel(name) + ("" if metric == name else camel(metric))
        for level, severity in (("warning", "warning"), ("critical", "critical")):
            for value, matcher in _host_groups(host_thresholds, name, level):
                selector = "%s{%s}" % (prom, matcher) if matcher else prom
                expr = "%s %s %s" % (selector, "<" if lower else ">", number(value / divisor))
                if fallback_of:
                    expr += " unless on (host) (%s)" % " or ".join(metric_name(check, m)[0] for m in fallback_of)
                rules.append({
                    "alert": alert,
                    "expr": expr,
                    "for": alert_for,
                    # the level is a label: rules of hosts with other levels differ by it (promtool
                    # refuses rules with the same name and labels), and the operator sees it
                    "labels": {"severity": severity, "check": check, "threshold": name, "level": number(value)},
                    "annotations": {
                        "summary": "{{ $labels.host }}: %s %s %s (%s threshold %s)" % (
                            metric, "below" if lower else "above", number(value), severity, name),
                        "description": "Health check %s reports %s beyond the %s level of threshold %s "
                                       "(bim.wall_system thresholds)." % (check, metric, severity, name),
                    },
                })
    return rules


def _condition_expr(condition):
    check, metric, comparison = condition.get("check"), condition["metric"], condition["comparison"]
    if not check:
        raise RuleError("its condition names no check, so the metric's Prometheus name is unknown")
    if metric == "status":
        if comparison not in ("==", "!="):
            raise RuleError("a status condition compares with == or !=")
        expr = 'bim_health_check_status{check="%s",status="%s"} == 1' % (check, condition["threshold"])
        return expr if comparison == "==" else expr.replace("== 1", "== 0")
    try:
        threshold = float(condition["threshold"])
    except (TypeError, ValueError):
        raise RuleError("its threshold %r is not a number" % (condition["threshold"],))
    prom, divisor = metric_name(check, metric)
    return "%s %s %s" % (prom, _OPERATORS[comparison], number(threshold / divisor))


def guide_rules(alert_rules, alert_for="1m"):
    """``(rules, skipped)`` from the alert rules of role ``alerting`` (``skipped``: name -> reason)."""
    rules, skipped = [], {}
    for raw in alert_rules or []:
        try:
            rule = normalize_rule(raw)
            promql = raw.get("promql") if isinstance(raw, dict) else None
            if promql:
                expr = str(promql).strip()
            elif "condition" in rule:
                expr = _condition_expr(rule["condition"])
            else:
                raise RuleError("its expression is Jinja2; give the rule a promql key to alert in Prometheus")
        except RuleError as exc:
            name = raw.get("name") if isinstance(raw, dict) else None
            skipped[str(name or "unnamed rule")] = str(exc)
            continue
        rules.append({
            "alert": "Bim" + camel(rule["name"]),
            "expr": expr,
            "for": alert_for,
            "labels": {"severity": rule["severity"], "rule": rule["name"]},
            "annotations": {
                "summary": "{{ $labels.host }}: %s" % rule["name"],
                "description": rule["description"] or rule["name"],
                "cooldown": "%gs" % rule["cooldown"],
            },
        })
    return rules, skipped


def service_rules(stale_after="2m", alert_for="1m"):
    """Rules on the monitoring service itself and on each host's overall status."""
    floor = number(parse_duration(stale_after))
    return [
        {"alert": "BimMonitoringStale",
         "expr": "time() - max by (host) (bim_monitoring_last_cycle_timestamp_seconds) > on (host) "
                 "clamp_min(3 * min by (host) (bim_monitoring_check_interval_seconds), %s)" % floor,
         "labels": {"severity": "warning"},
         "annotations": {"summary": "{{ $labels.host }}: the monitoring textfile stopped moving",
                         "description": "The monitoring service has not written its textfile for more than three "
                                        "cycles (full disk, stopped service, node_exporter reading another folder)."}},
        {"alert": "BimMonitoringTextfileWriteErrors",
         "expr": "increase(bim_monitoring_textfile_write_errors_total[15m]) > 0",
         "labels": {"severity": "warning"},
         "annotations": {"summary": "{{ $labels.host }}: the monitoring textfile could not be written",
                         "description": "The service failed to replace its textfile (the service log says why)."}},
        {"alert": "BimBackupSuspicious",
         "expr": "bim_backup_suspicious == 1",
         "labels": {"severity": "critical"},
         "annotations": {"summary": "{{ $labels.host }}: the last backup looks wrong and was kept aside",
                         "description": "The backup's database has none of the BIM tables, or its walls rows dropped "
                                        "more than bim_backup_suspicious_drop since the previous backup. It was kept "
                                        "and retention expired nothing; look at the live database before the good "
                                        "backups age out."}},
        {"alert": "BimHostUnhealthy",
         "expr": 'bim_health_status{status="unhealthy"} == 1',
         "for": alert_for,
         "labels": {"severity": "critical"},
         "annotations": {"summary": "{{ $labels.host }} is unhealthy",
                         "description": "A health check of the host reports an error."}},
        {"alert": "BimHostDegraded",
         "expr": 'bim_health_status{status="degraded"} == 1',
         "for": alert_for,
         "labels": {"severity": "warning"},
         "annotations": {"summary": "{{ $labels.host }} is degraded",
                         "description": "A health check of the host reports a warning."}},
    ]


def recording_rules():
    return [{"record": name, "expr": expr} for name, expr in RECORDING_RULES]


def rule_groups(host_thresholds, alert_rules=(), alert_for="1m", stale_after="2m", interval=None):
    """``({"groups": [...]}, skipped)``: the rules file for Prometheus, and the alert rules left out."""
    parse_duration(alert_for)  # a bad duration fails here with the rule module's message
    guide, skipped = guide_rules(alert_rules, alert_for)
    groups = [
        {"name": GROUP_THRESHOLDS, "rules": threshold_rules(host_thresholds, alert_for)},
        {"name": GROUP_GUIDE, "rules": guide},
        {"name": GROUP_SERVICE, "rules": service_rules(stale_after, alert_for)},
        {"name": GROUP_RECORDING, "rules": recording_rules()},
    ]
    groups = [g for g in groups if g["rules"]]
    if interval:
        for group in groups:
            group["interval"] = interval
    return {"groups": groups}, skipped


def alertmanager_routes(alert_rules, receiver="bim-default"):
    """An Alertmanager ``route`` and ``inhibit_rules`` fragment: the guide rules' cooldowns as
    ``repeat_interval``, a critical alert inhibits the warning of the same alert and host."""
    routes = []
    for raw in alert_rules or []:
        try:
            rule = normalize_rule(raw)
        except RuleError:
            continue
        if rule["cooldown"] > 0:
            routes.append({"matchers": ['alertname="Bim%s"' % camel(rule["name"])],
                           "repeat_interval": "%ds" % max(1, int(rule["cooldown"])),
                           "receiver": receiver})
    return {
        "route": {"receiver": receiver, "group_by": ["alertname", "host"], "routes": routes},
        "inhibit_rules": [{"source_matchers": ['severity="critical"'], "target_matchers": ['severity="warning"'],
                           "equal": ["alertname", "host"]}],
    }
