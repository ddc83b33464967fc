# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Maintenance windows on the loopback fleet: the operator runs the playbook and checks the data,
the summary and the exit status."""

from __future__ import annotations

import datetime
import json
import os
import sqlite3
import subprocess
import threading
import time
import urllib.request
import uuid

import psycopg
import pytest

PLAYBOOK = "bim.wall_system.maintenance_window"
LOCK_KEY = (0x42494D, 0x4D4E54)


def pg(fleet, name):
    info = fleet.hosts[name]
    return psycopg.connect(host=info["address"], port=info["db_port"], user=info["db_user"], dbname=info["db_name"],
                           password=fleet.password, connect_timeout=5, autocommit=True)


def pg_scalar(fleet, name, query, args=None):
    with pg(fleet, name) as conn:
        return conn.execute(query, args).fetchone()[0]


def summary_of(result):
    path = os.path.join(result.cwd, "bim-reports", "maintenance-summary.json")
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def task_of(summary, host, task):
    for entry in summary["hosts"][host]["tasks"]:
        if entry["task"] == task:
            return entry
    raise AssertionError("no task %s for %s in %s" % (task, host, json.dumps(summary["hosts"][host])[:2000]))


def ops_of(entry):
    return {r["operation"]: r for r in entry["results"]}


def window_vars(tmp_path, **extra):
    base = {"bim_maintenance_state_dir": str(tmp_path / "state"), "bim_maintenance_serial": "100%"}
    base.update(extra)
    return base


def add_edge_logs(fleet, name, cutoff_guess, marker):
    with pg(fleet, name) as conn:
        for delta in (-3600, -5, 120, 3600):
            conn.execute("INSERT INTO logs (created_at, level, category, message) VALUES (%s, 'info', 'api', %s)",
                         [cutoff_guess + datetime.timedelta(seconds=delta), marker])


def test_daily_window_deletes_exactly_past_the_boundary_and_a_second_run_changes_nothing(fleet, run_playbook, tmp_path):
    marker = "edge-%s" % uuid.uuid4().hex[:8]
    guess = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=30)
    add_edge_logs(fleet, "pg1", guess, marker)
    lite = fleet.hosts["lite1"]["sqlite_path"]
    with sqlite3.connect(lite) as conn:
        conn.executemany("INSERT INTO logs (created_at, level, category, message) VALUES (?, 'info', 'api', ?)",
                         [((guess + datetime.timedelta(seconds=d)).strftime("%Y-%m-%d %H:%M:%S"), marker)
                          for d in (-3600, -5, 120, 3600)])
    extra = window_vars(tmp_path, bim_maintenance_tier="daily", bim_maintenance_hosts="pg1:lite1",
                        bim_maintenance_window_end=1800)
    before_check = pg_scalar(fleet, "pg1", "SELECT count(*) FROM logs")
    checked = run_playbook(PLAYBOOK, extra_vars=extra, check=True)
    assert checked.rc == 0, str(checked)
    assert pg_scalar(fleet, "pg1", "SELECT count(*) FROM logs") == before_check, str(checked)
    assert not os.path.exists(os.path.join(checked.cwd, "bim-reports", "maintenance-summary.json"))

    first = run_playbook(PLAYBOOK, extra_vars=extra)
    assert first.rc == 0, str(first)
    summary = summary_of(first)
    assert summary["counts"] == {"ok": 2}, summary["problems"]
    cleanup = ops_of(task_of(summary, "pg1", "database_cleanup"))["cleanup_logs"]
    cutoff = datetime.datetime.fromisoformat(cleanup["details"]["cutoff"])
    assert cleanup["changed"] and cleanup["details"]["deleted"] >= 2
    assert pg_scalar(fleet, "pg1", "SELECT count(*) FROM logs WHERE created_at < %s", [cutoff]) == 0
    assert pg_scalar(fleet, "pg1", "SELECT count(*) FROM logs WHERE message = %s", [marker]) == 2
    with sqlite3.connect(lite) as conn:
        assert conn.execute("SELECT count(*) FROM logs WHERE message = ?", (marker,)).fetchone()[0] == 2
    for task in summary["hosts"]["pg1"]["tasks"]:
        assert set(task) >= {"task", "success", "started", "finished", "results", "errors"}

    second = run_playbook(PLAYBOOK, extra_vars=extra)
    assert second.rc == 0, str(second)
    again = summary_of(second)
    for host in ("pg1", "lite1"):
        changed = [r["operation"] for r in task_of(again, host, "database_cleanup")["results"] if r["changed"]]
        assert changed == [], (host, changed)


def test_two_concurrent_runs_the_second_skips_cleanly(fleet, run_ansible, tmp_path, host_libraries):
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=60)
    with pg(fleet, "pg2") as conn:
        conn.execute("INSERT INTO logs (created_at, level, category, message)"
                     " SELECT %s, 'info', 'api', 'old' FROM generate_series(1, 200)", [old])
    args = {"engine": "{{ bim_db_engine }}", "db_host": "{{ bim_db_host }}", "db_port": "{{ bim_db_port }}",
            "db_user": "{{ bim_db_user }}", "db_password": "{{ bim_db_password }}", "db_name": "{{ bim_db_name }}",
            "operations": ["cleanup_logs"], "state_dir": str(tmp_path / "state")}
    slow = dict(args, batch_size=1, batch_pause_ms=100)
    from conftest import HOST_VENV_PYTHON, ansible_env, _tool  # the fixture module's helpers, for a background run
    first = subprocess.Popen([_tool("ansible"), "-i", fleet.inventory, "pg2", "-m", "bim.wall_system.db_maintenance",
                              "-a", json.dumps(slow), "-e", HOST_VENV_PYTHON], cwd=str(tmp_path), env=ansible_env(fleet),
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            held = pg_scalar(fleet, "pg2", "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s"
                                           " AND objid = %s AND granted", list(LOCK_KEY))
            if held:
                break
            time.sleep(0.2)
        assert held, "the first run never took the maintenance lock"
        second = run_ansible("pg2", "bim.wall_system.db_maintenance", args)
        assert second.hosts.get("pg2") == "ok", str(second)
        assert "another maintenance run holds the maintenance lock" in second.stdout
        assert '"lock_busy": true' in second.stdout
    finally:
        out = first.communicate(timeout=300)[0]
    assert first.returncode == 0, out
    assert '"changed": true' in out


def test_one_minute_left_skips_the_reindex_with_its_reason(fleet, run_playbook, tmp_path):
    extra = window_vars(tmp_path, bim_maintenance_tier="weekly", bim_maintenance_hosts="pg1",
                        bim_maintenance_tasks=["database_optimization"], bim_maintenance_window_end="60")
    result = run_playbook(PLAYBOOK, extra_vars=extra)
    assert result.rc == 0, str(result)
    reindex = ops_of(task_of(summary_of(result), "pg1", "database_optimization"))["reindex"]
    assert reindex["skipped"] and not reindex["changed"]
    assert "left before the deadline" in reindex["details"]["reason"]


def test_weekly_tier_repairs_an_invalid_spatial_index_by_default(fleet, run_playbook, tmp_path):
    """The invalid index makes the health check say unhealthy; the gate does not hold the host back
    for it (it is what the tier repairs), the default reindex repairs it and the summary says so."""
    with pg(fleet, "pg1") as conn:
        conn.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'idx_walls_geometry'::regclass")
        conn.execute("CREATE INDEX CONCURRENTLY IF NOT EXISTS idx_walls_geometry_ccnew ON walls USING gist (geom)")
        conn.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'idx_walls_geometry_ccnew'::regclass")
    try:
        extra = window_vars(tmp_path, bim_maintenance_tier="weekly", bim_maintenance_hosts="pg1",
                            bim_maintenance_tasks=["database_optimization"])
        result = run_playbook(PLAYBOOK, extra_vars=extra)
        assert result.rc == 0, str(result)
        assert pg_scalar(fleet, "pg1", "SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx_walls_geometry'::regclass")
        assert pg_scalar(fleet, "pg1", "SELECT count(*) FROM pg_class WHERE relname = 'idx_walls_geometry_ccnew'") == 0
        host = summary_of(result)["hosts"]["pg1"]
        assert host["status"] == "ok", host
        assert any("idx_walls_geometry" in r and "invalid" in r for r in host["repairs"]), host["repairs"]
        assert any("drop idx_walls_geometry_ccnew" in r for r in host["repairs"]), host["repairs"]
        assert "idx_walls_geometry" in result.stdout  # the closing line names what was repaired
    finally:
        with pg(fleet, "pg1") as conn:
            conn.execute("DROP INDEX IF EXISTS idx_walls_geometry_ccnew")
            conn.execute("REINDEX INDEX idx_walls_geometry")


@pytest.mark.parametrize("policy", ["skip", "abort"])
def test_unreachable_database_blocks_the_host_an_unhealthy_application_does_not(fleet, run_playbook, tmp_path, policy):
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=90)
    marker = "gate-%s" % uuid.uuid4().hex[:8]
    for name in ("pg1", "pg2"):
        with pg(fleet, name) as conn:
            conn.execute("INSERT INTO logs (created_at, level, category, message) VALUES (%s, 'info', 'api', %s)",
                         [old, marker])
    fleet.set_app_health("pg1", False)  # unhealthy, but nothing that makes maintenance unsafe
    fleet.stop_db("pg2")
    try:
        extra = window_vars(tmp_path, bim_maintenance_tier="daily", bim_maintenance_hosts="pg1:pg2",
                            bim_maintenance_tasks=["database_cleanup"], bim_maintenance_blocked_policy=policy)
        result = run_playbook(PLAYBOOK, extra_vars=extra)
        assert result.rc != 0, str(result)
        summary = summary_of(result)
        pg2 = summary["hosts"]["pg2"]
        assert pg2["status"] == ("aborted" if policy == "abort" else "skipped_blocked"), pg2
        assert "database unreachable" in pg2["reasons"][0], pg2
        pg1_left = pg_scalar(fleet, "pg1", "SELECT count(*) FROM logs WHERE message = %s", [marker])
        if policy == "skip":
            assert summary["hosts"]["pg1"]["status"] == "ok" and pg1_left == 0, summary["hosts"]["pg1"]
        else:
            assert summary["hosts"]["pg1"]["status"] != "ok" and pg1_left == 1
    finally:
        fleet.reset("pg1")
        fleet.reset("pg2")
    assert pg_scalar(fleet, "pg2", "SELECT count(*) FROM logs WHERE message = %s", [marker]) == 1


def test_drain_stops_and_restarts_the_application(fleet, run_playbook, tmp_path):
    pid_file = os.path.join(fleet.hosts["lite1"]["app_dir"], "app.pid")
    with open(pid_file, encoding="utf-8") as handle:
        pid_before = handle.read().strip()
    extra = window_vars(tmp_path, bim_maintenance_tier="daily", bim_maintenance_hosts="lite1",
                        bim_maintenance_tasks=["database_cleanup"], bim_maintenance_drain=True)
    try:
        result = run_playbook(PLAYBOOK, extra_vars=extra)
        assert result.rc == 0, str(result)
        with open(pid_file, encoding="utf-8") as handle:
            assert handle.read().strip() != pid_before
        with urllib.request.urlopen(fleet.hosts["lite1"]["app_url"] + "/health", timeout=5) as response:
            assert response.status == 200
    finally:
        fleet.reset("lite1")


def test_cache_optimization_removes_idle_keys_of_the_application(fleet, run_playbook, tmp_path):
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    prefix = "bimtest:mt:scn:%s:" % uuid.uuid4().hex[:6]
    try:
        for i in range(20):
            client.set(prefix + "old%d" % i, "x" * 500)
        time.sleep(3.2)
        client.set(prefix + "fresh", "y")
        stop = threading.Event()

        def application():  # the application keeps using its fresh entry while the window runs
            while not stop.is_set():
                client.get(prefix + "fresh")
                time.sleep(0.3)

        user = threading.Thread(target=application)
        user.start()
        extra = window_vars(tmp_path, bim_maintenance_tier="daily", bim_maintenance_hosts="pg1",
                            bim_maintenance_tasks=["cache_optimization"], bim_maintenance_health_gate=False,
                            bim_maintenance_cache_url="redis://127.0.0.1:6379/0", bim_maintenance_cache_prefix=prefix,
                            bim_maintenance_cache_max_idle=1)
        try:
            result = run_playbook(PLAYBOOK, extra_vars=extra)
        finally:
            stop.set()
            user.join()
        assert result.rc == 0, str(result)
        cleanup = ops_of(task_of(summary_of(result), "pg1", "cache_optimization"))["cleanup"]
        assert cleanup["changed"] and cleanup["details"]["removed"] == 20
        assert sorted(k.decode() for k in client.scan_iter(match=prefix + "*")) == [prefix + "fresh"]
    finally:
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
