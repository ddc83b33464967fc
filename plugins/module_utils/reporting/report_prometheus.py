# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per-host Prometheus textfile metrics of the fleet report (for node_exporter's textfile
collector on the controller, one ``<host>.prom`` file per host).

Conventions followed: ``bim_`` namespace, snake_case, base units in the name (``_seconds``,
``_bytes``, ``_ratio``; millisecond figures are converted to seconds), every series labelled
with ``host``; statuses are state sets (one series per possible state, value 1 for the current
one) so alerting rules can match on labels; ``*_by_<label>`` metric dicts get a ``<label>`` label,
other nested dicts are flattened into the name.
"""

from __future__ import annotations

import math
import re

HOST_STATUSES = ("healthy", "degraded", "unhealthy", "failed", "unreachable", "unknown")
CHECK_STATUSES = ("healthy", "warning", "error")
_BAD = re.compile(r"[^a-zA-Z0-9_]")


def _name(*parts):
    name = _BAD.sub("_", "_".join(p for p in parts if p)).strip("_")
    name = re.sub(r"_+", "_", name)
    return name if not name[:1].isdigit() else "_" + name


def _metric_name(check, metric):
    """``bim_<check>_<metric>``, without repeating the check's name (``cache_hit_rate`` of ``cache``)."""
    check = _name(str(check or "unknown"))
    if metric == check or metric.startswith(check + "_"):
        return _name("bim", metric)
    return _name("bim", check, metric)


def _label(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value):
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        value = float(value)
        if math.isnan(value) or math.isinf(value):
            return None
        return value
    return None


def _unit(metric, value):
    """(name suffix-adjusted, value) in base units."""
    if metric.endswith("_ms"):
        return metric[:-3] + "_seconds", value / 1000.0
    if metric.endswith("_percent") and 0.0 <= value <= 1.0:
        return metric[:-8] + "_ratio", value
    if metric.endswith("_total"):  # _total is reserved for counters; these are gauges
        return metric[:-6] + "_sum", value
    return metric, value


_BY = re.compile(r"_by_([a-z][a-z0-9_]*)$")


def _flatten(metrics, prefix=""):
    """(name, extra labels, number) of every numeric leaf of a check's metrics.

    ``*_by_<label>`` dicts become one series per key with label ``<label>``
    (``errors_by_category`` -> ``{category="geometry"}``); other nested dicts are flattened into the
    name (``memory.total_bytes`` -> ``memory_total_bytes``); ``load_average`` lists get a
    ``minutes`` label; strings and other lists are left out.
    """
    for key, value in sorted(metrics.items(), key=lambda kv: str(kv[0])):
        name = _name(prefix, str(key)) if prefix else _name(str(key))
        if isinstance(value, dict):
            match = _BY.search(name)
            if match:
                for inner_key, inner in sorted(value.items(), key=lambda kv: str(kv[0])):
                    if _number(inner) is not None:
                        yield name, {match.group(1): str(inner_key)}, _number(inner)
            else:
                yield from _flatten(value, name)
        elif isinstance(value, (list, tuple)):
            if name.endswith("load_average") and len(value) == 3:
                for minutes, inner in zip((1, 5, 15), value):
                    if _number(inner) is not None:
                        yield name, {"minutes": str(minutes)}, _number(inner)
        elif _number(value) is not None:
            yield name, {}, _number(value)


class _Families:
    def __init__(self):
        self.families = {}

    def add(self, name, help_text, labels, value):
        number = _number(value)
        if number is None:
            return
        self.families.setdefault(name, (help_text, []))[1].append((labels, number))

    def render(self):
        lines = []
        for name in sorted(self.families):
            help_text, samples = self.families[name]
            lines.append("# HELP %s %s" % (name, help_text.replace("\\", "\\\\").replace("\n", " ")))
            lines.append("# TYPE %s gauge" % name)
            seen = set()
            for labels, value in samples:
                label_text = ",".join('%s="%s"' % (k, _label(v)) for k, v in sorted(labels.items()))
                if label_text in seen:
                    continue
                seen.add(label_text)
                lines.append("%s{%s} %s" % (name, label_text, repr(value)))
        return "\n".join(lines) + "\n"


def render_host(row, generated_at_epoch=None):
    """Textfile content for one host row of the fleet report."""
    fam = _Families()
    host = row["host"]
    base = {"host": host}
    status = row.get("overall_status") if row.get("overall_status") in HOST_STATUSES else "unknown"
    for state in HOST_STATUSES:
        fam.add("bim_health_status", "Overall health of the BIM host (state set: 1 for the current status).",
                dict(base, status=state), 1 if state == status else 0)
    fam.add("bim_health_up", "1 when the health check returned a result for the host.", base,
            0 if status == "unreachable" else 1)
    for check in row.get("checks") or []:
        labels = dict(base, check=check.get("name") or "unknown")
        for state in CHECK_STATUSES:
            fam.add("bim_health_check_status", "Health check status (state set: 1 for the current status).",
                    dict(labels, status=state), 1 if check.get("status") == state else 0)
        if check.get("duration_ms") is not None:
            fam.add("bim_health_check_duration_seconds", "Time the health check took.", labels,
                    float(check["duration_ms"]) / 1000.0)
        for name, extra, number in _flatten(check.get("metrics") or {}):
            name, number = _unit(name, number)
            fam.add(_metric_name(check.get("name"), name), "Health metric %s of check %s." % (name, check.get("name")),
                    dict(labels, **extra), number)
    counts = {"warning": 0, "critical": 0}
    for alert in row.get("alerts") or []:
        severity = alert.get("severity") if isinstance(alert, dict) else None
        if severity in counts:
            counts[severity] += 1
    for severity, count in counts.items():
        fam.add("bim_health_alerts", "Threshold alerts raised by the last health check.", dict(base, severity=severity), count)
    backup = row.get("backup") or {}
    if backup.get("age_hours") is not None:
        fam.add("bim_backup_age_seconds", "Age of the host's last known backup.", base, backup["age_hours"] * 3600.0)
    if backup.get("ok") is not None:
        fam.add("bim_backup_last_ok", "1 when the last backup run succeeded.", base, backup["ok"])
    drill = row.get("drill") or {}
    if drill.get("ok") is not None:
        fam.add("bim_drill_last_ok", "1 when the last recovery drill passed.", base, drill["ok"])
    if drill.get("rto_seconds") is not None:
        fam.add("bim_drill_rto_seconds", "Recovery time measured by the last drill.", base, drill["rto_seconds"])
    if drill.get("rpo_seconds") is not None:
        fam.add("bim_drill_rpo_seconds", "Recovery point (data loss window) measured by the last drill.", base, drill["rpo_seconds"])
    if generated_at_epoch is not None:
        fam.add("bim_report_generated_timestamp_seconds", "When the fleet report was generated (Unix time).", base,
                generated_at_epoch)
    return fam.render()


def host_file_name(host):
    """A safe file name for ``host``'s textfile (node_exporter reads ``*.prom``)."""
    return "bim_%s.prom" % re.sub(r"[^A-Za-z0-9_.-]", "_", host)
