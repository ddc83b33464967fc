# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Type planning, check mode (writes nothing), backup_info's summary and max_age."""

from __future__ import annotations

import datetime
import os

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.repository.backup import (
    backup_summary, plan_backup, plan_type, run_backup)
from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import Repository, RepositoryError
from ansible_collections.bim.wall_system.plugins.modules.backup_info import parse_age

NOW = datetime.datetime(2026, 6, 10, 12, 0, tzinfo=datetime.timezone.utc)


def m(backup_id, kind, days_ago):
    return {"id": backup_id, "type": kind, "finished": (NOW - datetime.timedelta(days=days_ago)).isoformat()}


HISTORY = [m("f1", "full", 9), m("i1", "incremental", 8), m("f2", "full", 3), m("d1", "differential", 2),
           m("i2", "incremental", 1)]

PLANS = [
    ([], "auto", 7, ("full", None)),
    ([], "incremental", 7, ("full", None)),
    ([], "differential", 7, ("full", None)),
    (HISTORY, "auto", 7, ("incremental", "i2")),
    (HISTORY, "auto", 3, ("full", None)),
    (HISTORY, "auto", 0, ("incremental", "i2")),
    (HISTORY, "differential", 7, ("differential", "f2")),
    (HISTORY, "incremental", 7, ("incremental", "i2")),
    (HISTORY, "full", 7, ("full", None)),
    (HISTORY[:2], "auto", 7, ("full", None)),
]


@pytest.mark.parametrize("backups,requested,every,expected", PLANS)
def test_plan_type(backups, requested, every, expected):
    assert plan_type(backups, requested, every, NOW) == expected


def test_check_mode_writes_nothing(sqlite_conn_params, repo_path):
    plan = plan_backup(sqlite_conn_params, repo_path, {"retention": {"keep_last": 1}})
    assert plan["type"] == "full" and plan["parent_id"] is None and plan["expired"] == []
    assert not os.path.exists(repo_path)
    first = run_backup(sqlite_conn_params, repo_path, {})
    before = sorted(os.listdir(os.path.join(repo_path, "manifests")))
    plan = plan_backup(sqlite_conn_params, repo_path, {"type": "differential", "retention": {"keep_last": 1}})
    assert plan["type"] == "differential" and plan["parent_id"] == first["backup_id"]
    assert plan["expired"] == [first["backup_id"]]
    assert sorted(os.listdir(os.path.join(repo_path, "manifests"))) == before


def test_retention_and_prune_in_a_run(sqlite_conn_params, repo_path, repository_sound):
    ids = [run_backup(sqlite_conn_params, repo_path, {"type": "full"})["backup_id"] for _i in range(3)]
    result = run_backup(sqlite_conn_params, repo_path, {"retention": {"keep_last": 2}})
    assert result["expired"] == ids[:2]
    assert [b["id"] for b in Repository(repo_path).list_backups()] == [ids[2], result["backup_id"]]
    repository_sound(repo_path)


def test_bad_options_are_clear(sqlite_conn_params, repo_path):
    for options, text in (({"type": "weekly"}, "type must be one of"),
                          ({"compression_level": 40}, "compression_level"),
                          ({"retention": {"keep_yearly": 1}}, "unknown retention rule"),
                          ({"include_paths": ["relative/x"]}, "absolute path"),
                          ({"include_paths": ["/nonexistent/bim"]}, "does not exist"),
                          ({"copy_to": [{"url": "sftp://user:pw@host/x"}]}, "must not hold a password")):
        with pytest.raises(RepositoryError, match=text):
            run_backup(sqlite_conn_params, repo_path, options)
    assert not os.path.exists(os.path.join(repo_path, "manifests")) or not os.listdir(os.path.join(repo_path, "manifests"))


def test_summary_and_max_age(sqlite_conn_params, repo_path):
    first = run_backup(sqlite_conn_params, repo_path, {})
    second = run_backup(sqlite_conn_params, repo_path, {})
    repo = Repository(repo_path)
    repo.record_verification(first["backup_id"], "restore", True, [], {})
    summary = backup_summary(repo, max_age_s=3600)
    assert summary["count"] == 2 and summary["stale"] is False
    assert summary["latest"]["id"] == second["backup_id"] and summary["latest"]["parent_id"] == first["backup_id"]
    assert summary["latest_verified"]["id"] == first["backup_id"]
    later = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=30)
    stale = backup_summary(repo, now=later, max_age_s=parse_age("26h"))
    assert stale["stale"] is True and "older than max_age 26.0 h" in stale["msg"]


@pytest.mark.parametrize("text,seconds", [("93600", 93600), ("26h", 93600), ("90m", 5400), ("2d", 172800),
                                          ("1w", 604800), ("30s", 30), (None, None)])
def test_parse_age(text, seconds):
    assert parse_age(text) == seconds


@pytest.mark.parametrize("bad", ["soon", "26 hours", "-1h", "h"])
def test_parse_age_rejects(bad):
    with pytest.raises(ValueError):
        parse_age(bad)
