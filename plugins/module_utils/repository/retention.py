# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Retention with restic's semantics (keep-last, keep-daily/weekly/monthly), as pure functions."""

from __future__ import annotations

import datetime

RULES = ("keep_last", "keep_daily", "keep_weekly", "keep_monthly")


class RetentionError(ValueError):
    """Bad retention settings."""


def _bucket(rule, when):
    if rule == "keep_daily":
        return when.strftime("%Y-%m-%d")
    if rule == "keep_weekly":
        year, week = when.isocalendar()[:2]
        return "%04d-W%02d" % (year, week)
    if rule == "keep_monthly":
        return when.strftime("%Y-%m")
    raise RetentionError(rule)


def normalize(retention):
    """Check a retention dict; returns {rule: int} for the rules that are set (>0)."""
    out = {}
    for key, value in (retention or {}).items():
        if key not in RULES:
            raise RetentionError("unknown retention rule %r (known: %s)" % (key, ", ".join(RULES)))
        if value is None:
            continue
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise RetentionError("retention %s must be an integer, got %r" % (key, value))
        if number < 0:
            raise RetentionError("retention %s must be >= 0, got %d" % (key, number))
        if number:
            out[key] = number
    return out


def plan(backups, retention):
    """Split ``backups`` (dicts with 'id' and 'finished' as datetime or ISO text) into keep/forget.

    Returns ``(keep, forget, reasons)``: lists of ids (newest first) and {id: [reasons]}. With no
    rule set every backup is kept.
    """
    rules = normalize(retention)
    items = []
    for backup in backups:
        when = backup["finished"]
        if isinstance(when, str):
            when = datetime.datetime.fromisoformat(when)
        if when.tzinfo is not None:
            when = when.astimezone(datetime.timezone.utc)
        items.append((when, backup["id"]))
    items.sort(reverse=True)
    if not rules:
        return [i for _w, i in items], [], {i: ["no retention rule set"] for _w, i in items}
    remaining = dict(rules)
    last_bucket = {}
    keep, forget, reasons = [], [], {}
    for index, (when, backup_id) in enumerate(items):
        why = []
        if "keep_last" in remaining and index < rules["keep_last"]:
            why.append("last %d" % rules["keep_last"])
        for rule in ("keep_daily", "keep_weekly", "keep_monthly"):
            if rule not in rules:
                continue
            bucket = _bucket(rule, when)
            if remaining[rule] > 0 and last_bucket.get(rule) != bucket:
                remaining[rule] -= 1
                last_bucket[rule] = bucket
                why.append("%s %s" % (rule.split("_")[1], bucket))
        if why:
            keep.append(backup_id)
            reasons[backup_id] = why
        else:
            forget.append(backup_id)
    return keep, forget, reasons
