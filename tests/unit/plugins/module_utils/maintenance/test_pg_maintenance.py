# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Maintenance of a real PostgreSQL + PostGIS database."""

from __future__ import annotations

import dataclasses
import datetime
import stat
import os
import threading
import time

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine
from ansible_collections.bim.wall_system.plugins.module_utils.maintenance.operations import (
    MaintenanceError,
    run_maintenance,
)

psycopg = pytest.importorskip("psycopg")


def by_op(result):
    return {r["operation"]: r for r in result["results"]}


def test_vacuum_removes_dead_tuples_made_by_updates(mt_pg, mt_sql, state_dir):
    walls = mt_sql.scalar("SELECT count(*) FROM walls")
    mt_sql.execute("UPDATE walls SET name = name || '*'")
    assert mt_sql.scalar("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'walls'") >= walls
    res = by_op(run_maintenance(mt_pg, ["vacuum"], dict(state_dir=state_dir)))["vacuum"]
    assert res["success"] and res["changed"]
    assert res["details"]["removed_tuples"]["walls"] == walls
    assert mt_sql.scalar("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'walls'") == 0
    again = by_op(run_maintenance(mt_pg, ["vacuum"], dict(state_dir=state_dir)))["vacuum"]
    assert again["success"] and not again["changed"]


def test_cleanup_boundary_check_mode_and_second_run(mt_pg, mt_sql, state_dir):
    now = datetime.datetime.now(datetime.timezone.utc)
    cutoff_guess = now - datetime.timedelta(days=30)
    # rows just around the boundary, on top of the generator's old and recent rows
    for delta in (-120, -2, 60, 600):
        mt_sql.execute("INSERT INTO logs (created_at, level, category, message) VALUES (%s, 'info', 'api', 'edge')",
                       [cutoff_guess + datetime.timedelta(seconds=delta)])
    total = mt_sql.scalar("SELECT count(*) FROM logs")
    check = run_maintenance(mt_pg, ["cleanup_logs"], dict(state_dir=state_dir), check_mode=True)
    would = by_op(check)["cleanup_logs"]["details"]["would_delete"]
    assert would > 0 and check["changed"]
    assert mt_sql.scalar("SELECT count(*) FROM logs") == total, "check mode deleted rows"
    assert not os.path.exists(state_dir), "check mode wrote history"

    keep_ids = None
    result = run_maintenance(mt_pg, ["cleanup_logs", "cleanup_temp", "vacuum", "analyze"], dict(state_dir=state_dir))
    res = by_op(result)["cleanup_logs"]
    cutoff = datetime.datetime.fromisoformat(res["details"]["cutoff"])
    assert res["changed"] and res["details"]["deleted"] >= would
    assert mt_sql.scalar("SELECT count(*) FROM logs WHERE created_at < %s", [cutoff]) == 0
    # everything at or after the cutoff is still there: the two edge rows after it and the recent ones
    assert mt_sql.scalar("SELECT count(*) FROM logs WHERE message = 'edge'") == 2
    assert mt_sql.scalar("SELECT count(*) FROM logs") == total - res["details"]["deleted"]
    assert keep_ids is None
    assert result["changed"]

    second = run_maintenance(mt_pg, ["cleanup_logs", "cleanup_temp", "vacuum", "analyze"], dict(state_dir=state_dir))
    assert not second["changed"], [(r["operation"], r["details"]) for r in second["results"] if r["changed"]]
    mode = stat.S_IMODE(os.stat(state_dir).st_mode)
    assert mode == 0o700
    for name in os.listdir(state_dir):
        assert stat.S_IMODE(os.stat(os.path.join(state_dir, name)).st_mode) == 0o600


def test_second_concurrent_run_skips_cleanly(mt_pg, mt_sql, state_dir):
    other = open_engine(mt_pg)
    other.read_only = False
    other.connect()
    try:
        got, _holder = other.maint_try_lock()
        assert got
        result = run_maintenance(mt_pg, ["cleanup_logs"], dict(state_dir=state_dir))
        assert result["lock_busy"] and not result["changed"] and result["results"] == []
        assert "another maintenance run holds the maintenance lock" in result["msg"]
        assert result["lock"]["holder"] == other.conn.info.backend_pid
        assert mt_sql.scalar("SELECT count(*) FROM logs WHERE created_at < now() - interval '30 days'") > 0
    finally:
        other.close()
    assert not run_maintenance(mt_pg, ["cleanup_logs"], dict(state_dir=state_dir))["lock_busy"]


def test_invalid_spatial_index_and_leftover_are_repaired(mt_pg, mt_sql, state_dir):
    mt_sql.execute("CREATE INDEX CONCURRENTLY idx_walls_geometry_ccnew ON walls USING gist (geom)")
    mt_sql.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid IN "
                   "('idx_walls_geometry'::regclass, 'idx_walls_geometry_ccnew'::regclass)")
    mt_sql.execute("CREATE INDEX CONCURRENTLY walls_geom_dup ON walls USING gist (geom)")
    mt_sql.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'walls_geom_dup'::regclass")
    res = by_op(run_maintenance(mt_pg, ["reindex"], dict(state_dir=state_dir, reindex_mode="repair")))["reindex"]
    assert res["success"] and res["changed"], res
    actions = {(d["action"], d["index"]) for d in res["details"]["done"]}
    assert actions == {("drop", "idx_walls_geometry_ccnew"), ("drop", "walls_geom_dup"), ("rebuild", "idx_walls_geometry")}
    assert mt_sql.scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx_walls_geometry'::regclass")
    assert mt_sql.scalar("SELECT count(*) FROM pg_class WHERE relname IN ('idx_walls_geometry_ccnew', 'walls_geom_dup')") == 0
    again = by_op(run_maintenance(mt_pg, ["reindex"], dict(state_dir=state_dir, reindex_mode="repair")))["reindex"]
    assert again["success"] and not again["changed"]


def test_missing_spatial_index_is_created_when_declared(mt_pg, mt_sql, state_dir):
    mt_sql.execute("DROP INDEX idx_intersections_point")
    # nobody declared it: nothing to repair (the health check reports the table as information)
    res = by_op(run_maintenance(mt_pg, ["reindex"], dict(state_dir=state_dir, reindex_mode="repair")))["reindex"]
    assert res["success"] and not res["changed"] and res["details"]["plan"] == []
    declared = dataclasses.replace(mt_pg, schema={"intersections": {"spatial_index": "idx_intersections_point"}})
    res = by_op(run_maintenance(declared, ["reindex"], dict(state_dir=state_dir, reindex_mode="repair")))["reindex"]
    assert res["changed"] and res["success"], res
    assert res["details"]["done"] == [{"action": "create", "index": "idx_intersections_point", "reason": "missing"}]
    assert mt_sql.scalar("SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_intersections_point'").endswith(
        "USING gist (point)")


def test_one_minute_left_skips_reindex_with_reason(mt_pg, mt_sql, state_dir):
    result = run_maintenance(mt_pg, ["cleanup_logs", "reindex"], dict(state_dir=state_dir, deadline="60"))
    ops = by_op(result)
    assert ops["cleanup_logs"]["changed"] and not ops["cleanup_logs"]["skipped"]
    assert ops["reindex"]["skipped"] and not ops["reindex"]["changed"]
    assert "left before the deadline" in ops["reindex"]["details"]["reason"]
    assert "reindex" in result["skipped_operations"]


def test_passed_deadline_skips_everything(mt_pg, mt_sql, state_dir):
    past = (datetime.datetime.now().astimezone() - datetime.timedelta(minutes=5)).isoformat()
    result = run_maintenance(mt_pg, ["cleanup_logs", "vacuum"], dict(state_dir=state_dir, deadline=past))
    assert all(r["skipped"] for r in result["results"]) and not result["changed"]
    assert mt_sql.scalar("SELECT count(*) FROM logs WHERE created_at < now() - interval '30 days'") > 0


def test_cleanup_survives_a_row_lock_and_a_concurrent_writer(mt_pg, mt_sql, state_dir):
    victim = mt_sql.scalar("SELECT min(id) FROM logs WHERE created_at < now() - interval '40 days'")
    holder = mt_sql.connect()
    holder.autocommit = False
    holder.execute("SELECT id FROM logs WHERE id = %s FOR UPDATE", [victim])
    stop = threading.Event()
    written = []

    def writer():
        with mt_sql.connect() as conn:
            while not stop.is_set():
                conn.execute("INSERT INTO logs (created_at, level, category, message) VALUES (now(), 'info', 'api', 'w')")
                written.append(1)
                time.sleep(0.005)

    timer = threading.Timer(0.6, holder.rollback)
    thread = threading.Thread(target=writer)
    thread.start()
    timer.start()
    try:
        res = by_op(run_maintenance(mt_pg, ["cleanup_logs"], dict(state_dir=state_dir, lock_timeout_ms=200,
                                                                  batch_size=20)))["cleanup_logs"]
    finally:
        stop.set()
        thread.join()
        timer.join()
        holder.close()
    assert res["success"], res
    assert res["details"]["lock_timeouts"] >= 1
    assert res["details"]["batches"] > 2
    assert mt_sql.scalar("SELECT count(*) FROM logs WHERE created_at < %s",
                         [datetime.datetime.fromisoformat(res["details"]["cutoff"])]) == 0
    assert mt_sql.scalar("SELECT count(*) FROM logs WHERE message = 'w'") == len(written) > 0


def test_bloat_report_levels_and_pgstattuple(mt_pg, mt_sql, state_dir):
    mt_sql.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
    mt_sql.execute("ALTER TABLE quality_metrics SET (autovacuum_enabled = false)")
    mt_sql.execute("UPDATE quality_metrics SET value = value + 1")
    mt_sql.execute("UPDATE quality_metrics SET value = value + 1")
    res = by_op(run_maintenance(mt_pg, ["bloat_report"], dict(state_dir=state_dir, bloat_min_bytes=0)))["bloat_report"]
    entries = {e["name"]: e for e in res["details"]["entries"]}
    qm = entries["quality_metrics"]
    assert qm["method"] == "pgstattuple" and qm["wasted_percent"] >= 50 and qm["level"] == "critical"
    assert res["details"]["level"] == "critical" and not res["changed"]
    assert {e["kind"] for e in entries.values()} == {"table", "index"}


def test_performance_report_growth_and_slow_statements(mt_pg, mt_sql, state_dir):
    first = by_op(run_maintenance(mt_pg, ["performance_report"], dict(state_dir=state_dir)))["performance_report"]
    assert first["details"]["growth_since"] is None
    mt_sql.execute("INSERT INTO logs (created_at, level, category, message)"
                   " SELECT now(), 'info', 'api', repeat('x', 500) FROM generate_series(1, 2000)")
    second = by_op(run_maintenance(mt_pg, ["performance_report"], dict(state_dir=state_dir)))["performance_report"]
    assert second["details"]["growth_since"] is not None
    assert second["details"]["growth"]["logs"]["growth_bytes"] > 0
    assert not second["changed"]


def test_bad_input_is_a_clear_error(mt_pg, mt_sql, state_dir):
    with pytest.raises(MaintenanceError, match="unknown operation"):
        run_maintenance(mt_pg, ["drop_everything"], dict(state_dir=state_dir))
    with pytest.raises(MaintenanceError, match="deadline"):
        run_maintenance(mt_pg, ["vacuum"], dict(state_dir=state_dir, deadline="tomorrow-ish"))
    with pytest.raises(MaintenanceError, match="tables must be BIM tables"):
        run_maintenance(mt_pg, ["vacuum"], dict(state_dir=state_dir, tables=["pg_class"]))


def test_vacuum_full_only_by_name_and_it_shrinks_the_table(mt_pg, mt_sql, state_dir):
    mt_sql.execute("DELETE FROM quality_metrics WHERE id % 2 = 0")
    before = mt_sql.scalar("SELECT pg_relation_size('quality_metrics')")
    plain = by_op(run_maintenance(mt_pg, ["vacuum"], dict(state_dir=state_dir, tables=["quality_metrics"])))["vacuum"]
    assert plain["changed"] and not plain["details"]["full"]
    # plain VACUUM frees space inside the file for reuse; the pages are spread, so the file stays
    assert mt_sql.scalar("SELECT pg_relation_size('quality_metrics')") == before
    full = by_op(run_maintenance(mt_pg, ["vacuum_full"], dict(state_dir=state_dir, tables=["quality_metrics"])))
    res = full["vacuum_full"]
    assert res["success"] and res["changed"] and res["details"]["full"]
    assert mt_sql.scalar("SELECT pg_relation_size('quality_metrics')") < before


def test_check_mode_of_every_operation_changes_nothing(mt_pg, mt_sql, state_dir):
    mt_sql.execute("UPDATE walls SET name = name || '!'")
    mt_sql.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'idx_walls_geometry'::regclass")
    counts = mt_sql.scalar("SELECT array_agg(n ORDER BY t) FROM (SELECT 'logs' t, count(*) n FROM logs"
                           " UNION ALL SELECT 'temp', count(*) FROM temp_geometry) s")
    ops = ["cleanup_logs", "cleanup_temp", "vacuum", "vacuum_full", "analyze", "reindex", "bloat_report",
           "performance_report"]
    result = run_maintenance(mt_pg, ops, dict(state_dir=state_dir), check_mode=True)
    assert result["changed"]  # it would change things...
    assert mt_sql.scalar("SELECT array_agg(n ORDER BY t) FROM (SELECT 'logs' t, count(*) n FROM logs"
                         " UNION ALL SELECT 'temp', count(*) FROM temp_geometry) s") == counts
    assert mt_sql.scalar("SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'walls'") > 0
    assert not mt_sql.scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = 'idx_walls_geometry'::regclass")
    plan = by_op(result)["reindex"]["details"]["plan"]
    assert {"action": "rebuild", "index": "idx_walls_geometry", "reason": "invalid"} in plan
    assert not os.path.exists(state_dir)  # ...and wrote nothing, not even history
