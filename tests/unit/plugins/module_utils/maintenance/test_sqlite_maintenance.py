# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Maintenance of a real SQLite file."""

from __future__ import annotations

import dataclasses
import datetime
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap

from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine
from ansible_collections.bim.wall_system.plugins.module_utils.maintenance.operations import run_maintenance


def by_op(result):
    return {r["operation"]: r for r in result["results"]}


def count(path, query, args=()):
    with sqlite3.connect(path) as conn:
        return conn.execute(query, args).fetchone()[0]


def fmt(moment):
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def test_cleanup_boundary_check_mode_and_second_run(mt_sqlite, state_dir):
    path = mt_sqlite.sqlite_path
    guess = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=30)
    with sqlite3.connect(path) as conn:
        for delta in (-120, -2, 60, 600):
            conn.execute("INSERT INTO logs (created_at, level, category, message) VALUES (?, 'info', 'api', 'edge')",
                         (fmt(guess + datetime.timedelta(seconds=delta)),))
    total = count(path, "SELECT count(*) FROM logs")
    check = by_op(run_maintenance(mt_sqlite, ["cleanup_logs"], dict(state_dir=state_dir), check_mode=True))
    would = check["cleanup_logs"]["details"]["would_delete"]
    assert would > 0 and count(path, "SELECT count(*) FROM logs") == total

    ops = ["cleanup_logs", "cleanup_temp", "vacuum", "analyze", "optimize", "integrity_check"]
    first = run_maintenance(mt_sqlite, ops, dict(state_dir=state_dir, batch_size=37))
    res = by_op(first)["cleanup_logs"]
    cutoff = datetime.datetime.fromisoformat(res["details"]["cutoff"])
    assert res["details"]["deleted"] == would and res["details"]["batches"] > 2
    assert count(path, "SELECT count(*) FROM logs WHERE created_at < ?", (fmt(cutoff),)) == 0
    assert count(path, "SELECT count(*) FROM logs WHERE message = 'edge'") == 2
    assert by_op(first)["vacuum"]["changed"], "vacuum after deleting rows must free pages"
    assert first["changed"]
    second = run_maintenance(mt_sqlite, ops, dict(state_dir=state_dir))
    assert not second["changed"], [(r["operation"], r["details"]) for r in second["results"] if r["changed"]]
    assert all(r["success"] for r in second["results"])


def test_lock_file_makes_a_second_run_skip(mt_sqlite, state_dir, collection_env):
    holder = open_engine(mt_sqlite)
    assert holder.maint_try_lock()[0]
    try:
        # a second run in another process, as two ansible runs would be
        code = textwrap.dedent("""
            import json, sys
            from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import ConnectionParams
            from ansible_collections.bim.wall_system.plugins.module_utils.maintenance.operations import run_maintenance
            r = run_maintenance(ConnectionParams(engine="sqlite", sqlite_path=sys.argv[1]), ["cleanup_logs"],
                                dict(state_dir=sys.argv[2]))
            print(json.dumps(r))
        """)
        out = subprocess.run([sys.executable, "-c", code, mt_sqlite.sqlite_path, state_dir], check=True,
                             capture_output=True, text=True, env=collection_env).stdout
        assert '"lock_busy": true' in out and "another maintenance run holds the maintenance lock" in out
        assert str(os.getpid()) in out
    finally:
        holder.maint_unlock()
    assert not run_maintenance(mt_sqlite, ["cleanup_logs"], dict(state_dir=state_dir))["lock_busy"]


def _corrupt_page_of(path, name):
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA journal_mode = DELETE")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (name,)).fetchone()[0]
    with open(path, "r+b") as handle:
        handle.seek((root - 1) * page_size + 8)
        handle.write(b"\xde\xad\xbe\xef" * ((page_size - 16) // 4))


def test_integrity_check_reports_a_corrupted_page(mt_sqlite, state_dir, tmp_path):
    copy = str(tmp_path / "copy.db")
    shutil.copyfile(mt_sqlite.sqlite_path, copy)
    for suffix in ("-wal", "-shm"):
        if os.path.exists(mt_sqlite.sqlite_path + suffix):
            shutil.copyfile(mt_sqlite.sqlite_path + suffix, copy + suffix)
    _corrupt_page_of(copy, "idx_logs_created_at")
    params = dataclasses.replace(mt_sqlite, sqlite_path=copy)
    result = run_maintenance(params, ["quick_check", "integrity_check"], dict(state_dir=state_dir))
    res = by_op(result)["integrity_check"]
    assert not res["success"] and res["details"]["problems"]
    assert "integrity_check" in result["failed_operations"]
    # the intact original still checks ok
    good = by_op(run_maintenance(mt_sqlite, ["integrity_check", "foreign_key_check"], dict(state_dir=state_dir)))
    assert good["integrity_check"]["success"] and good["integrity_check"]["details"]["problems"] == []
    assert good["foreign_key_check"]["success"]


def test_foreign_key_problem_is_reported(mt_sqlite, state_dir):
    with sqlite3.connect(mt_sqlite.sqlite_path) as conn:
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("INSERT INTO quality_metrics (id, wall_id, metric, value, measured_at)"
                     " VALUES (999999, 424242, 'x', 1, '2026-01-01 00:00:00')")
    res = by_op(run_maintenance(mt_sqlite, ["foreign_key_check"], dict(state_dir=state_dir)))["foreign_key_check"]
    assert not res["success"] and "quality_metrics" in res["details"]["problems"][0]


def test_vacuum_refuses_without_room(mt_sqlite, state_dir, monkeypatch):
    with sqlite3.connect(mt_sqlite.sqlite_path) as conn:
        conn.execute("DELETE FROM quality_metrics")
    engine = open_engine(mt_sqlite)
    real = shutil.disk_usage

    def tiny(path):  # the file system reports 1 KiB free: the environment, not our code, is faked
        return real(path)._replace(free=1024)

    monkeypatch.setattr(shutil, "disk_usage", tiny)
    res = by_op(run_maintenance(mt_sqlite, ["vacuum"], dict(state_dir=state_dir), engine=engine))["vacuum"]
    assert res["skipped"] and not res["success"] and "needs room" in res["details"]["reason"]
    monkeypatch.setattr(shutil, "disk_usage", real)
    res = by_op(run_maintenance(mt_sqlite, ["vacuum"], dict(state_dir=state_dir)))["vacuum"]
    assert res["changed"] and res["details"]["freed_bytes"] > 0


def test_one_minute_left_skips_reindex(mt_sqlite, state_dir):
    result = by_op(run_maintenance(mt_sqlite, ["reindex", "cleanup_logs"], dict(state_dir=state_dir, deadline=60)))
    assert result["reindex"]["skipped"] and "left before the deadline" in result["reindex"]["details"]["reason"]
    assert result["cleanup_logs"]["changed"]


def test_lock_wait_runs_after_the_other_run_finishes(mt_sqlite, state_dir):
    import threading
    holder = open_engine(mt_sqlite)
    assert holder.maint_try_lock()[0]
    timer = threading.Timer(1.5, holder.maint_unlock)
    timer.start()
    try:
        result = run_maintenance(mt_sqlite, ["cleanup_logs"], dict(state_dir=state_dir, lock_wait=30))
    finally:
        timer.join()
    assert not result["lock_busy"] and by_op(result)["cleanup_logs"]["changed"]
