# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``logs`` check: errors in the application's ``logs`` table.

* error rate (error/critical/fatal entries / all entries) in the last window, overall and per
  category, against the ``error_rate`` threshold (seed: High Error Rate > 0.1);
* the most repeated error messages of the window, numbers normalized (``wall N failed``);
* an anomaly flag when the window's error rate exceeds ``k`` x the trailing baseline rate
  (the ``baseline_hours`` before the window) and the window holds at least ``min_errors``
  errors (a handful of errors on a quiet host is not an anomaly).

Options (``ctx.options``, all optional): ``logs_window_minutes`` (60), ``logs_baseline_hours``
(24), ``logs_anomaly_factor`` (3.0), ``logs_min_errors`` (5), ``logs_top_messages`` (5), and
``now`` (a timezone-aware datetime, for tests).
"""

from __future__ import annotations

import datetime

from ansible_collections.bim.wall_system.plugins.module_utils.database.probe_engines import open_probe_engine
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import (
    DatabaseError, MissingLibraryError)
from ansible_collections.bim.wall_system.plugins.module_utils.health.base import (
    ERROR, WARNING, Alert, CheckResult, ThresholdSpec, register_check)
from ansible_collections.bim.wall_system.plugins.module_utils.health.thresholds import evaluate

DEFAULTS = {
    "logs_window_minutes": 60,
    "logs_baseline_hours": 24,
    "logs_anomaly_factor": 3.0,
    "logs_min_errors": 5,
    "logs_top_messages": 5,
}


def _rate(errors, total):
    return round(errors / total, 6) if total else 0.0


def analyse(engine, now, window_minutes=60, baseline_hours=24, anomaly_factor=3.0, min_errors=5, top=5):
    """Plain analysis of the logs table through ``engine`` (connected); returns a metrics dict."""
    window_start = now - datetime.timedelta(minutes=window_minutes)
    baseline_start = window_start - datetime.timedelta(hours=baseline_hours)
    window = engine.log_counts(window_start, now)
    baseline = engine.log_counts(baseline_start, window_start)
    w_total = sum(c["total"] for c in window.values())
    w_errors = sum(c["errors"] for c in window.values())
    b_total = sum(c["total"] for c in baseline.values())
    b_errors = sum(c["errors"] for c in baseline.values())
    rate = _rate(w_errors, w_total)
    baseline_rate = _rate(b_errors, b_total)
    limit = anomaly_factor * baseline_rate
    anomaly = w_errors >= min_errors and rate > limit
    categories = sorted(set(window) | set(baseline))
    return {
        "window_minutes": window_minutes,
        "baseline_hours": baseline_hours,
        "window_entries": w_total,
        "window_errors": w_errors,
        "error_rate": rate,
        "baseline_entries": b_total,
        "baseline_errors": b_errors,
        "baseline_error_rate": baseline_rate,
        "anomaly_factor": anomaly_factor,
        "anomaly": anomaly,
        "error_rate_by_category": {c: _rate(window.get(c, {}).get("errors", 0), window.get(c, {}).get("total", 0))
                                   for c in categories if c in window},
        "errors_by_category": {c: window[c]["errors"] for c in categories if c in window},
        "baseline_error_rate_by_category": {c: _rate(baseline[c]["errors"], baseline[c]["total"])
                                            for c in categories if c in baseline},
        "top_errors": engine.top_error_messages(window_start, now, top) if w_errors else [],
    }


@register_check(
    "logs",
    thresholds={"error_rate": ThresholdSpec(0.05, 0.10, description="error entries / all entries of the "
                                            "application's logs table in the last window")},
    description="Error rate per category in the application's logs table, most repeated errors, anomaly "
                "against the trailing baseline.")
def check_logs(ctx):
    result = CheckResult("logs")
    params = ctx.conn
    if params is None:
        return result.fail("no database connection options given")
    opts = dict(DEFAULTS)
    opts.update({k: v for k, v in (ctx.options or {}).items() if k in DEFAULTS and v is not None})
    now = (ctx.options or {}).get("now") or datetime.datetime.now(datetime.timezone.utc)
    try:
        engine = open_probe_engine(params)
        engine.connect()
        try:
            if "logs" not in set(engine.existing_tables()):
                result.status = WARNING
                result.message = "the database has no logs table"
                return result
            columns = engine.schema().time_columns["logs"]
            if columns.analysis_problem():
                # the table is there but this collection cannot tell when or how bad an entry is
                result.status = WARNING
                result.message = "cannot analyse the logs table: %s" % columns.analysis_problem()
                result.recommendations.append("logs: name the columns of the logs table in the inventory "
                                              "variable bim_schema (%s)" % columns.analysis_problem())
                return result
            result.metrics["columns"] = {"time": columns.time, "level": columns.level,
                                         "category": columns.category, "message": columns.message}
            metrics = analyse(engine, now, float(opts["logs_window_minutes"]), float(opts["logs_baseline_hours"]),
                              float(opts["logs_anomaly_factor"]), int(opts["logs_min_errors"]),
                              int(opts["logs_top_messages"]))
        finally:
            engine.close()
    except MissingLibraryError as exc:
        return result.missing_library(exc)
    except DatabaseError as exc:
        result.status = ERROR
        result.message = "cannot read the logs table: %s" % ctx.mask(exc)
        return result
    for key in ("window_minutes", "baseline_hours"):
        if float(metrics[key]).is_integer():
            metrics[key] = int(metrics[key])
    result.metrics.update(metrics)
    parts = ["%d error(s) in %d entries in the last %s min (rate %.3f, baseline %.3f)" % (
        metrics["window_errors"], metrics["window_entries"], metrics["window_minutes"],
        metrics["error_rate"], metrics["baseline_error_rate"])]
    if evaluate(result, ctx, "error_rate", metrics["error_rate"]):
        worst = sorted(metrics["error_rate_by_category"].items(), key=lambda kv: -kv[1])[:3]
        result.recommendations.append(
            "logs: error rate %.1f%% is high (worst categories: %s); read the most repeated errors" % (
                metrics["error_rate"] * 100, ", ".join("%s %.0f%%" % (c, r * 100) for c, r in worst)))
    if metrics["anomaly"]:
        result.worsen(WARNING)
        result.alerts.append(Alert("logs", "error_rate_anomaly", metrics["error_rate"],
                                   round(metrics["anomaly_factor"] * metrics["baseline_error_rate"], 6), "warning"))
        parts.append("anomaly: more than %g x the %s h baseline" % (metrics["anomaly_factor"], metrics["baseline_hours"]))
    if metrics["top_errors"]:
        top = metrics["top_errors"][0]
        parts.append("most repeated: %s x%d [%s]" % (ctx.mask(top["message"])[:120], top["count"], top["category"]))
        for entry in metrics["top_errors"]:
            entry["message"] = ctx.mask(entry["message"])[:300]
            entry["example"] = ctx.mask(entry.get("example") or "")[:300]
    result.message = "; ".join(parts)
    return result
