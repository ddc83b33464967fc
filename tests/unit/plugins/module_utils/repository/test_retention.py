# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Retention keeps exactly what restic's rules say (table-driven, synthetic timestamps)."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.repository.retention import (
    RetentionError, normalize, plan)


def series(*stamps):
    return [{"id": s, "finished": datetime.datetime.fromisoformat(s + "+00:00")} for s in stamps]


DAILY_TWICE = series(
    "2026-01-01T02:00:00", "2026-01-01T14:00:00",
    "2026-01-02T02:00:00", "2026-01-02T14:00:00",
    "2026-01-03T02:00:00", "2026-01-03T14:00:00",
    "2026-01-04T02:00:00",
)

# Mondays are ISO week starts: 2026-01-05 is a Monday.
WEEKS = series(
    "2026-01-04T10:00:00",  # Sunday, week 1
    "2026-01-05T10:00:00",  # Monday, week 2
    "2026-01-09T10:00:00",  # week 2
    "2026-01-12T10:00:00",  # week 3
    "2026-01-18T23:00:00",  # Sunday, week 3
    "2026-01-19T00:30:00",  # Monday, week 4
)

MONTHS = series(
    "2025-11-30T10:00:00", "2025-12-01T10:00:00", "2025-12-31T23:59:00",
    "2026-01-15T10:00:00", "2026-02-01T10:00:00", "2026-02-20T10:00:00",
)

CASES = [
    ("nothing set keeps all", DAILY_TWICE, {}, [s["id"] for s in reversed(DAILY_TWICE)]),
    ("zero means unset", DAILY_TWICE, {"keep_last": 0}, [s["id"] for s in reversed(DAILY_TWICE)]),
    ("keep_last 3", DAILY_TWICE, {"keep_last": 3},
     ["2026-01-04T02:00:00", "2026-01-03T14:00:00", "2026-01-03T02:00:00"]),
    ("keep_last larger than count", DAILY_TWICE[:2], {"keep_last": 10}, [s["id"] for s in reversed(DAILY_TWICE[:2])]),
    ("keep_daily 2 keeps newest of each day", DAILY_TWICE, {"keep_daily": 2},
     ["2026-01-04T02:00:00", "2026-01-03T14:00:00"]),
    ("keep_daily 10 one per day", DAILY_TWICE, {"keep_daily": 10},
     ["2026-01-04T02:00:00", "2026-01-03T14:00:00", "2026-01-02T14:00:00", "2026-01-01T14:00:00"]),
    ("keep_last 1 plus daily 3 overlap", DAILY_TWICE, {"keep_last": 1, "keep_daily": 3},
     ["2026-01-04T02:00:00", "2026-01-03T14:00:00", "2026-01-02T14:00:00"]),
    ("keep_last 2 plus daily 2", DAILY_TWICE, {"keep_last": 2, "keep_daily": 2},
     ["2026-01-04T02:00:00", "2026-01-03T14:00:00"]),
    ("keep_weekly 2 uses ISO weeks", WEEKS, {"keep_weekly": 2},
     ["2026-01-19T00:30:00", "2026-01-18T23:00:00"]),
    ("keep_weekly 4", WEEKS, {"keep_weekly": 4},
     ["2026-01-19T00:30:00", "2026-01-18T23:00:00", "2026-01-09T10:00:00", "2026-01-04T10:00:00"]),
    ("keep_monthly 3", MONTHS, {"keep_monthly": 3},
     ["2026-02-20T10:00:00", "2026-01-15T10:00:00", "2025-12-31T23:59:00"]),
    ("daily 1 weekly 2 monthly 2 (GFS)", MONTHS, {"keep_daily": 1, "keep_weekly": 2, "keep_monthly": 2},
     ["2026-02-20T10:00:00", "2026-02-01T10:00:00", "2026-01-15T10:00:00"]),
    ("gaps: daily counts days that have backups", series("2026-03-01T01:00:00", "2026-03-10T01:00:00"),
     {"keep_daily": 2}, ["2026-03-10T01:00:00", "2026-03-01T01:00:00"]),
]


@pytest.mark.parametrize("name,backups,rules,expected", CASES, ids=[c[0] for c in CASES])
def test_retention_table(name, backups, rules, expected):
    keep, forget, reasons = plan(backups, rules)
    assert keep == expected
    assert sorted(keep + forget) == sorted(b["id"] for b in backups)
    assert set(keep) == set(reasons) or not rules


def test_input_order_and_iso_text_do_not_matter():
    shuffled = [{"id": b["id"], "finished": b["finished"].isoformat()} for b in reversed(DAILY_TWICE)]
    assert plan(shuffled, {"keep_daily": 2})[0] == plan(DAILY_TWICE, {"keep_daily": 2})[0]


def test_timezones_are_compared_in_utc():
    backups = [{"id": "a", "finished": "2026-01-01T23:30:00-02:00"},  # 2026-01-02 01:30 UTC
               {"id": "b", "finished": "2026-01-02T00:10:00+00:00"}]
    assert plan(backups, {"keep_daily": 5})[0] == ["a"]


@pytest.mark.parametrize("bad", [{"keep_yearly": 1}, {"keep_last": -1}, {"keep_last": "many"}])
def test_bad_rules(bad):
    with pytest.raises(RetentionError):
        normalize(bad)
