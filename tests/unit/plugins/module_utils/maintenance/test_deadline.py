# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deadline parsing and estimates, and the run history file."""

from __future__ import annotations

import datetime
import os

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.maintenance import deadline as dl
from ansible_collections.bim.wall_system.plugins.module_utils.maintenance.history import History

NOW = datetime.datetime(2026, 11, 28, 2, 30, 0).timestamp()  # local time


@pytest.mark.parametrize("value,expected", [
    (None, None), ("", None), (60, NOW + 60), ("3600", NOW + 3600), ("04:00", NOW + 5400),
    ("02:29", NOW + 86400 - 60), ("02:30:30", NOW + 30),
    ("2026-11-28T03:00:00", NOW + 1800),
])
def test_parse_deadline(value, expected):
    assert dl.parse_deadline(value, now=NOW) == expected


def test_parse_deadline_with_offset():
    assert dl.parse_deadline("2026-11-28T04:00:00+00:00") == datetime.datetime(
        2026, 11, 28, 4, tzinfo=datetime.timezone.utc).timestamp()


@pytest.mark.parametrize("bad", ["25:00", "soon", "12:60", "2026-13-01T00:00"])
def test_bad_deadline(bad):
    with pytest.raises(dl.DeadlineError):
        dl.parse_deadline(bad, now=NOW)


def test_estimates_grow_with_work_and_use_slower_history():
    small = dl.estimate_seconds("vacuum", 1e6)[0]
    big = dl.estimate_seconds("vacuum", 1e10)[0]
    assert big > small
    slow, basis = dl.estimate_seconds("vacuum", 1e9, history_rate=1e6)
    assert slow > big / 10 and "earlier runs" in basis
    assert dl.estimate_seconds("vacuum", 1e9, history_rate=1e12)[0] < dl.estimate_seconds("vacuum", 1e9)[0]
    two = dl.estimate_seconds("reindex", 0, units=2)[0]
    assert two >= 2 * dl.REINDEX_OVERHEAD_S


def test_history_roundtrip_and_modes(tmp_path):
    folder = str(tmp_path / "state")
    hist = History(folder, "postgresql-1/x", "pg")
    hist.record("vacuum", 2.0, 100e6)
    hist.record("vacuum", 1.0, 100e6)
    hist.set_snapshot({"walls": {"kind": "table", "bytes": 10}})
    hist.save()
    again = History(folder, "postgresql-1/x")
    assert again.rate("vacuum") == 50e6
    assert again.snapshot()["sizes"]["walls"]["bytes"] == 10
    assert oct(os.stat(folder).st_mode & 0o777) == "0o700"
    assert oct(os.stat(again.path).st_mode & 0o777) == "0o600"
    assert "/" not in os.path.basename(again.path)[len("history-"):]


def test_corrupt_history_starts_afresh(tmp_path):
    folder = tmp_path / "state"
    folder.mkdir()
    hist = History(str(folder), "db")
    with open(hist.path, "w", encoding="utf-8") as handle:
        handle.write("{not json")
    assert History(str(folder), "db").rate("vacuum") is None
