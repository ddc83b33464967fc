# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one Prometheus text renderer of the collection.

Every writer of ``bim_*`` metrics goes through here, so a metric name has one meaning wherever it
comes from: the ``health_check`` module's textfile and the ``monitoring`` service on a host, and
the per-host textfiles of the fleet report on the controller. The Prometheus rules and the Grafana
dashboard name their metrics through :func:`metric_name` too.

Conventions: ``bim_`` namespace, snake_case, base units in the name (``_seconds``, ``_bytes``,
``_ratio``; millisecond figures are converted to seconds), every series labelled with ``host``;
statuses are state sets (one series per possible state, value 1 for the current one) so rules can
match on labels; ``*_by_<label>`` metric dicts get a ``<label>`` label, other nested dicts are
flattened into the name.
"""

from __future__ import annotations

import math
import re

HOST_STATUSES = ("healthy", "degraded", "unhealthy", "failed", "unreachable", "unknown")
CHECK_STATUSES = ("healthy", "warning", "error")
SECTIONS = ("health", "recovery")
_BAD = re.compile(r"[^a-zA-Z0-9_]")
_BY = re.compile(r"_by_([a-z][a-z0-9_]*)$")


def _name(*parts):
    name = _BAD.sub("_", "_".join(p for p in parts if p)).strip("_")
    name = re.sub(r"_+", "_", name)
    return name if not name[:1].isdigit() else "_" + name


def _unit(metric):
    """(name in base units, divisor that turns a value into that unit)."""
    if metric.endswith("_ms"):
        return metric[:-3] + "_seconds", 1000.0
    if metric.endswith("_percent"):  # the checks report every *_percent figure as a 0..1 share
        return metric[:-8] + "_ratio", 1.0
    if metric.endswith("_total"):  # _total is reserved for counters; these are gauges
        return metric[:-6] + "_sum", 1.0
    return metric, 1.0


def metric_name(check, metric):
    """``(prometheus name, divisor)`` of metric ``metric`` of check ``check``.

    ``bim_<check>_<metric>`` in base units, without repeating the check's name
    (``cache_hit_rate`` of ``cache`` is ``bim_cache_hit_rate``); a value in the check's unit divided
    by ``divisor`` is the exported value (a division, so 1000 ms is exactly 1.0 s).
    """
    metric, divisor = _unit(_name(str(metric)))
    check = _name(str(check or "unknown"))
    if metric == check or metric.startswith(check + "_"):
        return _name("bim", metric), divisor
    return _name("bim", check, metric), divisor


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


class Families:
    """Metric families in the making: HELP and TYPE once per name, one sample per label set."""

    def __init__(self):
        self.families = {}

    def add(self, name, help_text, labels, value, kind="gauge"):
        number = _number(value)
        if number is None:
            return
        self.families.setdefault(name, (help_text, kind, []))[2].append((labels, number))

    def names(self):
        return sorted(self.families)

    def render(self):
        lines = []
        for name in sorted(self.families):
            help_text, kind, samples = self.families[name]
            lines.append("# HELP %s %s" % (name, help_text.replace("\\", "\\\\").replace("\n", " ")))
            lines.append("# TYPE %s %s" % (name, kind))
            seen = set()
            for labels, value in samples:
                label_text = ",".join('%s="%s"' % (k, _label(v)) for k, v in sorted(labels.items()))
                if label_text in seen:
                    continue
                seen.add(label_text)
                lines.append("%s{%s} %s" % (name, label_text, repr(value)))
        return "\n".join(lines) + "\n"


def add_health(fam, row, base, check_times=None):
    """Overall status, per-check status, duration and metrics, alert counts of a health result.

    ``check_times``: check name -> Unix time of its last run (the monitoring service, whose checks
    run at different cadences).
    """
    status = row.get("overall_status") if row.get("overall_status") in HOST_STATUSES else "unknown"
    for state in HOST_STATUSES:
        fam.add("bim_health_status", "Overall health of the BIM host (state set: 1 for the current status).",
                dict(base, status=state), 1 if state == status else 0)
    fam.add("bim_health_up", "1 when the health check returned a result for the host.", base,
            0 if status == "unreachable" else 1)
    for check in row.get("checks") or []:
        name = check.get("name") or "unknown"
        labels = dict(base, check=name)
        for state in CHECK_STATUSES:
            fam.add("bim_health_check_status", "Health check status (state set: 1 for the current status).",
                    dict(labels, status=state), 1 if check.get("status") == state else 0)
        if check.get("duration_ms") is not None:
            fam.add("bim_health_check_duration_seconds", "Time the health check took.", labels,
                    float(check["duration_ms"]) / 1000.0)
        if check_times and check_times.get(name) is not None:
            fam.add("bim_health_check_timestamp_seconds", "When the health check last ran (Unix time).", labels,
                    check_times[name])
        for metric, extra, number in _flatten(check.get("metrics") or {}):
            prom, divisor = metric_name(name, metric)
            fam.add(prom, "Health metric %s of check %s." % (_unit(metric)[0], name), dict(labels, **extra),
                    number / divisor)
    counts = {"warning": 0, "critical": 0}
    for alert in row.get("alerts") or []:
        severity = alert.get("severity") if isinstance(alert, dict) else None
        if severity in counts:
            counts[severity] += 1
    for severity, count in counts.items():
        fam.add("bim_health_alerts", "Threshold alerts raised by the last health check.", dict(base, severity=severity),
                count)


def _epoch(value):
    """Unix time of an ISO-8601 UTC string or a number; None when it cannot be read."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str) or not value.strip():
        return None
    import datetime

    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.timestamp()


def add_recovery(fam, row, base):
    """Backup age and size, last drill, recoverable window of a fleet report row."""
    backup = row.get("backup") or {}
    if backup.get("age_hours") is not None:
        fam.add("bim_backup_age_seconds", "Age of the host's last known backup when the report was written.", base,
                backup["age_hours"] * 3600.0)
    if _epoch(backup.get("last_backup_at")) is not None:
        fam.add("bim_backup_last_timestamp_seconds", "When the host's last known backup finished (Unix time).", base,
                _epoch(backup["last_backup_at"]))
    if backup.get("ok") is not None:
        fam.add("bim_backup_last_ok", "1 when the last backup run succeeded.", base, backup["ok"])
    if backup.get("suspicious") is not None:
        fam.add("bim_backup_suspicious", "1 when the host's last backup was flagged suspicious (kept; retention "
                "expired nothing).", base, backup["suspicious"])
    if backup.get("stored_bytes") is not None:
        fam.add("bim_backup_stored_bytes", "Bytes the repository holds for the host's backups.", base,
                backup["stored_bytes"])
    window = row.get("recoverable_window") or backup.get("recoverable_window") or {}
    if isinstance(window, dict):
        for edge in ("earliest", "latest"):
            if _epoch(window.get(edge)) is not None:
                fam.add("bim_recoverable_window_%s_timestamp_seconds" % edge,
                        "The %s moment a restore of the host can reach (Unix time)." % edge, base,
                        _epoch(window[edge]))
    drill = row.get("drill") or {}
    if drill.get("ok") is not None:
        fam.add("bim_drill_last_ok", "1 when the last recovery drill passed.", base, drill["ok"])
    if drill.get("rto_seconds") is not None:
        fam.add("bim_drill_rto_seconds", "Recovery time measured by the last drill.", base, drill["rto_seconds"])
    if drill.get("rpo_seconds") is not None:
        fam.add("bim_drill_rpo_seconds", "Recovery point (data loss window) measured by the last drill.", base,
                drill["rpo_seconds"])


def render_host(row, generated_at_epoch=None, sections=SECTIONS, check_times=None, extra=None):
    """Textfile content for one host: ``row`` is a health result (``overall_status``, ``checks``,
    ``alerts``) with ``host``, and for the recovery section a fleet report row's ``backup``,
    ``drill``, ``recoverable_window``.

    ``extra``: more ``(name, help, labels, value, type)`` samples (labels get ``host`` added).
    """
    fam = Families()
    base = {"host": row["host"]}
    if "health" in sections:
        add_health(fam, row, base, check_times)
    if "recovery" in sections:
        add_recovery(fam, row, base)
    for name, help_text, labels, value, kind in extra or ():
        fam.add(name, help_text, dict(base, **labels), value, kind)
    if generated_at_epoch is not None:
        fam.add("bim_report_generated_timestamp_seconds", "When this textfile's figures were gathered (Unix time).",
                base, generated_at_epoch)
    return fam.render()


def host_file_name(host):
    """A safe file name for ``host``'s textfile (node_exporter reads ``*.prom``)."""
    return "bim_%s.prom" % re.sub(r"[^A-Za-z0-9_.-]", "_", host)
