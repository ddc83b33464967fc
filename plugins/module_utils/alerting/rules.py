# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Alert rules: validation and evaluation over the health results of a fleet.

A rule is a plain dict::

    {"name": "High Memory Usage",
     "condition": {"check": "memory", "metric": "usage_ratio", "comparison": ">", "threshold": 0.9},
     "severity": "critical", "channels": ["email", "slack", "sms"], "cooldown": "5m"}

or, instead of ``condition``, ``expression``: a Jinja2 expression evaluated (sandboxed) for each
host with the host's health result as variables plus ``host``, ``check`` (check name -> check
entry) and ``metrics`` (check name -> metrics dict), e.g.
``check.database.status == 'error'``.
"""

from __future__ import annotations

import math
import operator
import re

SEVERITIES = ("info", "warning", "critical")
CHANNELS = ("email", "slack", "sms", "webhook")

COMPARISONS = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h|d)?\s*$", re.IGNORECASE)
_UNIT_SECONDS = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "ms": 0.001}


class RuleError(ValueError):
    """A rule is malformed; the message names the rule and the problem."""


def parse_duration(value):
    """Seconds from ``300``, ``"300"``, ``"5m"``, ``"1h"``, ``"90s"``, ``"1d"``."""
    if isinstance(value, bool):
        raise RuleError("invalid duration %r" % (value,))
    if isinstance(value, (int, float)):
        if value < 0:
            raise RuleError("invalid duration %r (negative)" % (value,))
        return float(value)
    match = _DURATION.match(str(value or ""))
    if not match:
        raise RuleError("invalid duration %r (expected seconds or a number with s, m, h or d)" % (value,))
    unit = match.group(2).lower() if match.group(2) else None
    return float(match.group(1)) * _UNIT_SECONDS[unit]


def normalize_rule(rule):
    """Return a validated copy of ``rule`` with defaults filled in; raise ``RuleError``."""
    if not isinstance(rule, dict):
        raise RuleError("each rule must be a dict, got %s" % type(rule).__name__)
    name = rule.get("name")
    if not name or not isinstance(name, str):
        raise RuleError("every rule needs a name")
    out = {
        "name": name,
        "severity": str(rule.get("severity") or "warning").lower(),
        "channels": list(rule.get("channels") or []),
        "cooldown": parse_duration(rule.get("cooldown", 0) or 0),
        "description": rule.get("description") or "",
    }
    if out["severity"] not in SEVERITIES:
        raise RuleError("rule %r: severity must be one of %s" % (name, ", ".join(SEVERITIES)))
    unknown = [c for c in out["channels"] if c not in CHANNELS]
    if unknown:
        raise RuleError("rule %r: unknown channel(s) %s (known: %s)" % (name, ", ".join(map(str, unknown)), ", ".join(CHANNELS)))
    condition = rule.get("condition")
    expression = rule.get("expression")
    if bool(condition) == bool(expression):
        raise RuleError("rule %r needs exactly one of condition or expression" % name)
    if condition:
        if not isinstance(condition, dict) or not condition.get("metric"):
            raise RuleError("rule %r: condition needs a metric" % name)
        comparison = condition.get("comparison", ">")
        if comparison not in COMPARISONS:
            raise RuleError("rule %r: comparison must be one of %s" % (name, " ".join(COMPARISONS)))
        if "threshold" not in condition:
            raise RuleError("rule %r: condition needs a threshold" % name)
        out["condition"] = {
            "check": condition.get("check"),
            "metric": condition["metric"],
            "comparison": comparison,
            "threshold": condition["threshold"],
        }
    else:
        if not isinstance(expression, str):
            raise RuleError("rule %r: expression must be a string" % name)
        out["expression"] = _strip_braces(expression)
    return out


def _strip_braces(expression):
    text = expression.strip()
    if text.startswith("{{") and text.endswith("}}"):
        text = text[2:-2].strip()
    return text


def checks_by_name(result):
    return {c.get("name"): c for c in (result.get("checks") or []) if isinstance(c, dict)}


def lookup_metric(result, check, metric):
    """The value of ``metric`` in a host's health result, or None when absent.

    With ``check``: that check's ``metrics[metric]``; ``status``/``message``/``duration_ms`` name the
    check's own fields. Without: a top-level field (``overall_status``), else the first check whose
    metrics hold ``metric``.
    """
    checks = checks_by_name(result)
    if check:
        entry = checks.get(check)
        if entry is None:
            return None
        if metric in ("status", "message", "duration_ms"):
            return entry.get(metric)
        return (entry.get("metrics") or {}).get(metric)
    if metric in result and not isinstance(result[metric], (dict, list)):
        return result[metric]
    for entry in result.get("checks") or []:
        metrics = (entry or {}).get("metrics") or {}
        if metric in metrics:
            return metrics[metric]
    return None


def compare(value, comparison, threshold):
    """Apply ``comparison``; numbers compare as floats, anything else as strings; None never matches."""
    if value is None or isinstance(value, (dict, list)):
        return False
    func = COMPARISONS[comparison]
    try:
        if isinstance(value, bool) or isinstance(threshold, bool):
            raise ValueError
        left, right = float(value), float(threshold)
        if math.isnan(left):
            return False
        return func(left, right)
    except (TypeError, ValueError):
        if comparison in ("==", "!="):
            return func(str(value).lower(), str(threshold).lower())
        return False


class ExpressionEvaluator:
    """Evaluates rule expressions with a sandboxed Jinja2 environment (controller side)."""

    def __init__(self):
        from jinja2 import ChainableUndefined
        from jinja2.sandbox import ImmutableSandboxedEnvironment
        self.env = ImmutableSandboxedEnvironment(undefined=ChainableUndefined)
        self._cache = {}

    def __call__(self, expression, host, result):
        compiled = self._cache.get(expression)
        if compiled is None:
            compiled = self._cache[expression] = self.env.compile_expression(expression)
        checks = checks_by_name(result)
        variables = dict(result)
        variables.update(
            host=host,
            result=result,
            check=checks,
            metrics={name: (c.get("metrics") or {}) for name, c in checks.items()},
        )
        value = compiled(**variables)
        return bool(value) and not _is_undefined(value)


def _is_undefined(value):
    from jinja2 import Undefined
    return isinstance(value, Undefined)


def evaluate_rule(rule, results, evaluator=None):
    """Hosts of ``results`` (host -> health result) for which ``rule`` fires.

    Returns ``(affected, errors)``: affected is a list of
    ``{"host", "value", "threshold", "status", "message"}`` sorted by host; errors lists
    ``{"host", "error"}`` for hosts whose expression could not be evaluated.
    """
    affected, errors = [], []
    for host in sorted(results):
        result = results[host]
        if not isinstance(result, dict):
            continue
        entry = {"host": host, "status": result.get("overall_status", "unknown")}
        if "condition" in rule:
            cond = rule["condition"]
            value = lookup_metric(result, cond.get("check"), cond["metric"])
            if not compare(value, cond["comparison"], cond["threshold"]):
                continue
            entry.update(value=value, threshold=cond["threshold"], comparison=cond["comparison"],
                         metric=cond["metric"], check=cond.get("check"))
            check_entry = checks_by_name(result).get(cond.get("check")) if cond.get("check") else None
            entry["message"] = (check_entry or {}).get("message") or ""
        else:
            evaluator = evaluator or ExpressionEvaluator()
            try:
                fired = evaluator(rule["expression"], host, result)
            except Exception as exc:  # a broken expression must not stop the other rules
                errors.append({"host": host, "error": "%s: %s" % (type(exc).__name__, exc)})
                continue
            if not fired:
                continue
            problems = ["%s: %s" % (c.get("name"), c.get("message") or c.get("status"))
                        for c in result.get("checks") or []
                        if isinstance(c, dict) and c.get("status") not in ("healthy", None)]
            # a host whose health check did not run has no checks: its message is the failure's
            entry.update(value=None, message="; ".join(problems) or str(result.get("msg") or ""))
        affected.append(entry)
    return affected, errors
