# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus text exposition of a health report, for node_exporter's textfile collector."""

from __future__ import annotations

import math
import re

from ansible_collections.bim.wall_system.plugins.module_utils.health.base import (
    CHECK_STATUSES, OVERALL_STATUSES)

_NAME_BAD = re.compile(r"[^a-zA-Z0-9_]")


def metric_name(*parts):
    name = "_".join(p for p in parts if p)
    name = _NAME_BAD.sub("_", name)
    return name if not name[:1].isdigit() else "_" + name


def _label(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _value(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
            return None
        return repr(float(value)) if isinstance(value, float) else str(value)
    return None


def _flatten(metrics, prefix=""):
    """Numeric leaves of a nested metrics dict as (name, value) pairs."""
    for key, value in metrics.items():
        name = "%s_%s" % (prefix, key) if prefix else str(key)
        if isinstance(value, dict):
            yield from _flatten(value, name)
        elif isinstance(value, (list, tuple)) and key == "load_average" and len(value) == 3:
            for minutes, item in zip((1, 5, 15), value):
                yield "%s_%dm" % (name, minutes), item
        elif _value(value) is not None:
            yield name, value


def render(report):
    """The textfile content: overall status, per-check status and duration, every numeric metric.

    Status gauges: 0 healthy, 1 warning/degraded, 2 error/unhealthy. Metric gauges are named
    ``bim_<metric>`` with a ``check`` label (system statistics: ``bim_system_<name>``).
    """
    families = {}  # name -> (help, [(labels, value)])

    def add(name, help_text, labels, value):
        families.setdefault(name, (help_text, []))[1].append((labels, value))

    add("bim_health_overall_status", "Overall health of the BIM host: 0 healthy, 1 degraded, 2 unhealthy.",
        {}, OVERALL_STATUSES.index(report["overall_status"]))
    for check in report["checks"]:
        labels = {"check": check["name"]}
        add("bim_health_check_status", "Health check status: 0 healthy, 1 warning, 2 error.",
            labels, CHECK_STATUSES.index(check["status"]))
        add("bim_health_check_duration_ms", "Health check duration in milliseconds.", labels, check["duration_ms"])
        prefix = "system" if check["name"] == "system" else ""
        for name, value in _flatten(check.get("metrics") or {}, prefix):
            add(metric_name("bim", name), "BIM health metric %s." % name, labels, value)
    add("bim_health_alerts", "Number of threshold alerts raised by the last health check.", {}, len(report["alerts"]))
    lines = []
    for name in families:
        help_text, samples = families[name]
        lines.append("# HELP %s %s" % (name, help_text))
        lines.append("# TYPE %s gauge" % name)
        for labels, value in samples:
            text = _value(value)
            if text is None:
                continue
            label_text = ",".join('%s="%s"' % (k, _label(v)) for k, v in sorted(labels.items()))
            lines.append("%s%s %s" % (name, "{%s}" % label_text if label_text else "", text))
    return "\n".join(lines) + "\n"
