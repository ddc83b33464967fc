# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Thresholds: the seed defaults declared by the checks, user overrides, and evaluation."""

from __future__ import annotations

from ansible_collections.bim.wall_system.plugins.module_utils.health.base import (
    ERROR, WARNING, Alert, HealthError)

LEVELS = ("warning", "critical")


def default_thresholds(registry):
    """``{name: {"warning", "critical", "lower_is_worse"}}`` from every registered check."""
    merged = {}
    for spec in registry.values():
        for name, threshold in spec.thresholds.items():
            merged[name] = {
                "warning": threshold.warning,
                "critical": threshold.critical,
                "lower_is_worse": threshold.lower_is_worse,
            }
    return merged


def merge_thresholds(defaults, overrides):
    """Apply user ``overrides`` on ``defaults``; a partial dict changes only the levels it names.

    An override may be a dict ``{"warning": x, "critical": y}`` or a bare number (the warning
    level). Unknown threshold names or levels raise ``HealthError`` listing the valid ones.
    """
    merged = {name: dict(levels) for name, levels in defaults.items()}
    if not overrides:
        return merged
    if not isinstance(overrides, dict):
        raise HealthError("thresholds must be a dict of threshold name -> {warning, critical}")
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise HealthError("unknown threshold name(s) %s; valid names are: %s"
                          % (", ".join(unknown), ", ".join(sorted(defaults))))
    for name, override in overrides.items():
        if not isinstance(override, dict):
            override = {"warning": override}
        bad = sorted(set(override) - set(LEVELS))
        if bad:
            raise HealthError("threshold %s: unknown level(s) %s; valid levels are: %s"
                              % (name, ", ".join(bad), ", ".join(LEVELS)))
        for level, value in override.items():
            if value is None and level == "critical":
                merged[name][level] = None
                continue
            try:
                merged[name][level] = float(value)
            except (TypeError, ValueError):
                raise HealthError("threshold %s.%s must be a number, got %r" % (name, level, value))
        levels = merged[name]
        if levels["critical"] is not None:
            wrong_order = (levels["critical"] > levels["warning"] if levels["lower_is_worse"]
                           else levels["critical"] < levels["warning"])
            if wrong_order:
                raise HealthError("threshold %s: critical (%s) must be %s than warning (%s)"
                                  % (name, levels["critical"],
                                     "lower" if levels["lower_is_worse"] else "higher",
                                     levels["warning"]))
    return merged


def breached(value, levels):
    """``"critical"``, ``"warning"`` or None for ``value`` against ``levels``."""
    if value is None:
        return None
    lower = levels.get("lower_is_worse", False)

    def beyond(limit):
        if limit is None:
            return False
        return value < limit if lower else value > limit

    if beyond(levels.get("critical")):
        return "critical"
    if beyond(levels.get("warning")):
        return "warning"
    return None


def evaluate(result, ctx, metric, value, threshold_name=None):
    """Compare ``value`` with threshold ``threshold_name`` (default: ``metric``).

    Adds an alert to ``result`` and worsens its status: warning -> ``warning``,
    critical -> ``error``. Returns the severity or None.
    """
    name = threshold_name or metric
    levels = ctx.thresholds.get(name)
    if levels is None or value is None:
        return None
    severity = breached(value, levels)
    if severity is not None:
        result.alerts.append(Alert(result.name, metric, value, levels[severity], severity))
        result.worsen(ERROR if severity == "critical" else WARNING)
    return severity
