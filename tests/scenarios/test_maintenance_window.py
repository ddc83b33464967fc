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


# (time column, level column) of the logs table per schema variant of the host (fleet.json)
LOG_COLUMNS = {"seed": ("created_at", "level"), "site": ("logged_at", "severity")}


def add_logs(fleet, name, moments, marker):
    """Insert one 'info' entry per moment (aware datetimes) into the host's logs table."""
    time_column, level_column = LOG_COLUMNS[fleet.hosts[name]["variant"]]
    insert = "INSERT INTO logs (%s, %s, category, message) VALUES ({p}, 'info', 'api', {p})" % (time_column, level_column)
    if fleet.hosts[name]["engine"] == "sqlite":
        with sqlite3.connect(fleet.hosts[name]["sqlite_path"]) as conn:
            conn.executemany(insert.format(p="?"), [(m.strftime("%Y-%m-%d %H:%M:%S"), marker) for m in moments])
        return
    with pg(fleet, name) as conn:
        for moment in moments:
            conn.execute(insert.format(p="%s"), [moment, marker])


def count_logs(fleet, name, marker=None, before=None):
    time_column = LOG_COLUMNS[fleet.hosts[name]["variant"]][0]
    if fleet.hosts[name]["engine"] == "sqlite":
        query = "SELECT count(*) FROM logs WHERE " + ("message = ?" if marker else "%s < ?" % time_column)
        with sqlite3.connect(fleet.hosts[name]["sqlite_path"]) as conn:
            return conn.execute(query, (marker or before.strftime("%Y-%m-%d %H:%M:%S"),)).fetchone()[0]
    query = "SELECT count(*) FROM logs WHERE " + ("message = %s" if marker else "%s < %%s" % time_column)
    return pg_scalar(fleet, name, query, [marker or before])


BIM_HOSTS = ("pg1", "pg2", "lite1", "lite2")  # pg2 and lite2: the "site" schema (logs.logged_at, severity)


def test_daily_window_deletes_exactly_past_the_boundary_and_a_second_run_changes_nothing(fleet, run_playbook, tmp_path):
    marker = "edge-%s" % uuid.uuid4().hex[:8]
    guess = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=30)
    for host in BIM_HOSTS:
        add_logs(fleet, host, [guess + datetime.timedelta(seconds=d) for d in (-3600, -5, 120, 3600)], marker)
    extra = window_vars(tmp_path, bim_maintenance_tier="daily", bim_maintenance_hosts=":".join(BIM_HOSTS),
                        bim_maintenance_window_end=1800)
    before_check = pg_scalar(fleet, "pg1", "SELECT count(*) FROM logs")
    checked = run_playbook(PLAYBOOK, extra_vars=extra, check=True)
    assert checked.rc == 0, str(checked)
    assert pg_scalar(fleet, "pg1", "SELECT count(*) FROM logs") == before_check, str(checked)
    assert not os.path.exists(os.path.join(checked.cwd, "bim-reports", "maintenance-summary.json"))

    first = run_playbook(PLAYBOOK, extra_vars=extra)
    assert first.rc == 0, str(first)
    summary = summary_of(first)
    assert summary["counts"] == {"ok": 4}, summary["problems"]
    for host in BIM_HOSTS:
        cleanup = ops_of(task_of(summary, host, "database_cleanup"))["cleanup_logs"]
        cutoff = datetime.datetime.fromisoformat(cleanup["details"]["cutoff"])
        assert cleanup["changed"] and cleanup["details"]["deleted"] >= 2, (host, cleanup)
        assert cleanup["details"]["time_column"] == LOG_COLUMNS[fleet.hosts[host]["variant"]][0]
        assert count_logs(fleet, host, before=cutoff) == 0, host
        assert count_logs(fleet, host, marker=marker) == 2, host
    for task in summary["hosts"]["pg1"]["tasks"]:
        assert set(task) >= {"task", "success", "started", "finished", "results", "errors"}

    second = run_playbook(PLAYBOOK, extra_vars=extra)
    assert second.rc == 0, str(second)
    again = summary_of(second)
    for host in BIM_HOSTS:
        changed = [r["operation"] for r in task_of(again, host, "database_cleanup")["results"] if r["changed"]]
        assert changed == [], (host, changed)


def test_two_concurrent_runs_the_second_skips_cleanly(fleet, run_ansible, tmp_path, host_libraries):
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=60)
    add_logs(fleet, "pg2", [old] * 200, "old")
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


# pg2 has the site schema: its index and column are found by discovery
@pytest.mark.parametrize("host, index, column", [("pg1", "idx_walls_geometry", "geom"),
                                                 ("pg2", "walls_outline_gist", "outline")])
def test_weekly_tier_repairs_an_invalid_spatial_index_by_default(fleet, run_playbook, tmp_path, host, index, column):
    """The invalid index makes the health check say unhealthy; the gate does not hold the host back
    for it (it is what the tier repairs), the default reindex repairs it and the summary says so.
    On pg2 the index and its column have the site's names: found by discovery."""
    with pg(fleet, host) as conn:
        conn.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", [index])
        conn.execute("CREATE INDEX CONCURRENTLY IF NOT EXISTS %s_ccnew ON walls USING gist (%s)" % (index, column))
        conn.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", [index + "_ccnew"])
    try:
        extra = window_vars(tmp_path, bim_maintenance_tier="weekly", bim_maintenance_hosts=host,
                            bim_maintenance_tasks=["database_optimization"])
        result = run_playbook(PLAYBOOK, extra_vars=extra)
        assert result.rc == 0, str(result)
        assert pg_scalar(fleet, host, "SELECT indisvalid FROM pg_index WHERE indexrelid = %s::regclass", [index])
        assert pg_scalar(fleet, host, "SELECT count(*) FROM pg_class WHERE relname = %s", [index + "_ccnew"]) == 0
        entry = summary_of(result)["hosts"][host]
        assert entry["status"] == "ok", entry
        assert any(index in r and "invalid" in r for r in entry["repairs"]), entry["repairs"]
        assert any("drop %s_ccnew" % index in r for r in entry["repairs"]), entry["repairs"]
        assert index in result.stdout  # the closing line names what was repaired
    finally:
        with pg(fleet, host) as conn:
            conn.execute("DROP INDEX IF EXISTS %s_ccnew" % index)
            conn.execute("REINDEX INDEX %s" % index)


def test_weekly_optimization_on_both_schema_variants(fleet, run_playbook, tmp_path):
    """Every spatial index the catalog holds is rebuilt (reindex_mode always), on the guide's names
    and on the site's; lite2's intersections have no R*Tree, which is not a problem."""
    extra = window_vars(tmp_path, bim_maintenance_tier="weekly", bim_maintenance_hosts=":".join(BIM_HOSTS),
                        bim_maintenance_tasks=["database_optimization"])
    result = run_playbook(PLAYBOOK, extra_vars=extra)
    assert result.rc == 0, str(result)
    summary = summary_of(result)
    assert summary["counts"] == {"ok": 4}, summary["problems"]
    rebuilt = {host: sorted(d["index"] for d in ops_of(task_of(summary, host, "database_optimization"))["reindex"]
                            ["details"].get("done", [])) for host in ("pg1", "pg2")}
    assert rebuilt == {"pg1": ["idx_intersections_point", "idx_walls_geometry"],
                       "pg2": ["idx_intersections_point", "walls_outline_gist"]}
    rtrees = {host: ops_of(task_of(summary, host, "database_optimization"))["reindex"]["details"]["rtree"]
              for host in ("lite1", "lite2")}
    assert rtrees == {"lite1": {"walls_rtree": None, "intersections_rtree": None}, "lite2": {"rtree_walls": None}}


@pytest.mark.parametrize("policy", ["skip", "abort"])
def test_unreachable_database_blocks_the_host_an_unhealthy_application_does_not(fleet, run_playbook, tmp_path, policy):
    old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=90)
    marker = "gate-%s" % uuid.uuid4().hex[:8]
    for name in ("pg1", "pg2"):
        add_logs(fleet, name, [old], marker)
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
        pg1_left = count_logs(fleet, "pg1", marker=marker)
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
