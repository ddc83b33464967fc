# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet summaries: per-host entries, counts, problems, fleet thresholds, files."""

from __future__ import annotations

import datetime
import json
import os
import stat

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.reporting.fleet_summary import (
    NO_RESULT_REASON, SummaryError, build_summary, host_entry, threshold_violations, write_summary)

WHEN = datetime.datetime(2026, 11, 27, 12, 0, 0, tzinfo=datetime.timezone.utc)
HEALTH = dict(status_key="overall_status", reasons_key="problems")


def test_host_entry_from_registered_results():
    assert host_entry(None) == {"status": "unreachable", "reasons": [NO_RESULT_REASON]}
    assert host_entry({"unreachable": True, "msg": "ssh: connect refused", "changed": False}) == {
        "status": "unreachable", "reasons": ["ssh: connect refused"]}
    ok = host_entry({"overall_status": "degraded", "problems": ["cache: warning: cache hit rate 0.60"],
                     "alerts": [{"metric": "cache_hit_rate"}], "changed": False},
                    include_keys=["alerts", "missing_key"], **HEALTH)
    assert ok == {"status": "degraded", "reasons": ["cache: warning: cache hit rate 0.60"],
                  "alerts": [{"metric": "cache_hit_rate"}]}
    # fail_on made the module fail, but it still reported a status
    assert host_entry({"failed": True, "overall_status": "unhealthy", "problems": ["x"]}, **HEALTH)["status"] == "unhealthy"
    # a module that failed on bad input, tolerated with failed_when: false
    failed = host_entry({"failed": False, "failed_when_result": False, "msg": "unknown threshold"}, **HEALTH)
    assert failed == {"status": "failed", "reasons": ["unknown threshold"]}
    assert host_entry({"skipped": True, "skip_reason": "Conditional result was False"})["status"] == "skipped"
    assert host_entry({"changed": False})["status"] == "unknown"


def test_summary_counts_problems_and_missing_hosts():
    entries = {
        "pg1": host_entry({"unreachable": True, "msg": "Failed to connect"}),
        "pg2": {"status": "unhealthy", "reasons": ["database: error: connection refused"]},
        "lite1": {"status": "healthy", "reasons": []},
        "extra": {"status": "degraded"},
    }
    summary = build_summary("health", ["pg1", "pg2", "lite1", "lite9"], entries, generated_at=WHEN)
    assert summary["kind"] == "health" and summary["generated_at"] == "2026-11-27T12:00:00Z"
    assert summary["total"] == 5
    assert summary["counts"] == {"unreachable": 2, "unhealthy": 1, "healthy": 1, "degraded": 1}
    assert summary["percent"]["unreachable"] == 40.0
    assert list(summary["hosts"]) == ["pg1", "pg2", "lite1", "lite9", "extra"]
    assert summary["hosts"]["lite9"] == {"status": "unreachable", "reasons": [NO_RESULT_REASON]}
    assert [(p["host"], p["status"]) for p in summary["problems"]] == [
        ("pg1", "unreachable"), ("pg2", "unhealthy"), ("lite9", "unreachable"), ("extra", "degraded")]
    assert summary["hosts"]["extra"]["reasons"] == []


def test_threshold_violations():
    entries = {"a": {"status": "unhealthy"}, "b": {"status": "healthy"}, "c": {"status": "healthy"},
               "d": {"status": "unreachable"}}
    summary = build_summary("health", list(entries), entries, generated_at=WHEN)
    assert threshold_violations(summary, {}) == []
    assert threshold_violations(summary, {"unhealthy": 25, "unreachable": None}) == []  # 25 % is not above 25 %
    messages = threshold_violations(summary, {"unhealthy": 20, "unreachable": 50, "degraded": 0})
    assert messages == ["1 of 4 hosts (25.0%) are unhealthy, more than the allowed 20%: a"]
    with pytest.raises(SummaryError, match="must be a number"):
        threshold_violations(summary, {"unhealthy": "many"})


@pytest.mark.parametrize("kind", ["", "../x", "a/b", "x" * 80])
def test_bad_kind_is_refused(kind):
    with pytest.raises(SummaryError):
        build_summary(kind, [], {})


def test_write_summary_files(tmp_path):
    summary = build_summary("backup", ["h1"], {"h1": {"status": "success"}}, generated_at=WHEN)
    folder = tmp_path / "reports" / "nested"
    latest, stamped, pruned = write_summary(str(folder), summary)
    assert pruned == []
    assert latest == str(folder / "backup-summary.json")
    assert stamped == str(folder / "backup-summary-20261127T120000Z.json")
    for path in (latest, stamped):
        assert json.loads(open(path).read()) == summary
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert summary["problems"] == []
    # no temp file left behind
    assert sorted(os.listdir(folder)) == ["backup-summary-20261127T120000Z.json", "backup-summary.json"]


def test_only_the_newest_copies_of_the_kind_stay(tmp_path):
    folder = tmp_path / "reports"
    folder.mkdir()
    older = ["health-summary-20261126T0%d0000Z.json" % hour for hour in range(5)]
    others = ["backup-summary-20261101T000000Z.json", "health-summary-notes.json", "health-summary.json.bak"]
    for name in older + others:
        (folder / name).write_text("{}")
    summary = build_summary("health", ["h1"], {"h1": {"status": "healthy"}}, generated_at=WHEN)
    _latest, stamped, pruned = write_summary(str(folder), summary, keep_copies=3)
    # the two oldest copies of this kind went; the new one, the other kinds and other names stay
    assert pruned == [str(folder / name) for name in older[:3]]
    assert sorted(os.listdir(folder)) == sorted(older[3:] + others + ["health-summary.json", os.path.basename(stamped)])
    # keep_copies below one still keeps the copy just written
    _latest, stamped, pruned = write_summary(str(folder), summary, keep_copies=0)
    assert os.path.exists(stamped) and len(pruned) == 2
