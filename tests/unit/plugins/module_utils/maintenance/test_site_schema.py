# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Maintenance on the "site" schema variant (names the collection discovers, not the guide's):
walls.outline with GiST walls_outline_gist, logs(logged_at, severity), R*Tree rtree_walls and none
on intersections. Fixtures ``pg_site_params`` / ``sqlite_site_params`` in tests/unit/conftest.py."""

from __future__ import annotations

import dataclasses
import datetime
import sqlite3

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.health.base import CheckContext
from ansible_collections.bim.wall_system.plugins.module_utils.health.runner import (
    build_report, run_checks, thresholds_for)
from ansible_collections.bim.wall_system.plugins.module_utils.maintenance.operations import run_maintenance

psycopg = pytest.importorskip("psycopg")


def by_op(result):
    return {r["operation"]: r for r in result["results"]}


def database_check(params):
    report = build_report(run_checks(CheckContext(conn=params, thresholds=thresholds_for(), timeout=30), ["database"]))
    return report, report["checks"][0]


def pg_scalar(params, query, args=None):
    with psycopg.connect(host=params.db_host, port=params.db_port, user=params.db_user, dbname=params.db_name,
                         autocommit=True) as conn:
        return conn.execute(query, args).fetchone()[0]


def pg_execute(params, *statements):
    with psycopg.connect(host=params.db_host, port=params.db_port, user=params.db_user, dbname=params.db_name,
                         autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def test_invalid_gist_on_a_renamed_column_is_an_error_that_reindex_repairs(pg_site_params, tmp_path):
    pg_execute(pg_site_params,
               "CREATE INDEX walls_outline_gist_ccnew ON walls USING gist (outline)",
               "UPDATE pg_index SET indisvalid = false WHERE indexrelid IN "
               "('walls_outline_gist'::regclass, 'walls_outline_gist_ccnew'::regclass)")
    report, result = database_check(pg_site_params)
    assert result["status"] == "error"
    assert set(result["metrics"]["spatial_indexes_invalid"]) == {"walls_outline_gist", "walls_outline_gist_ccnew"}
    assert any("REINDEX INDEX CONCURRENTLY walls_outline_gist" in r for r in report["recommendations"])

    cutoff_rows = pg_scalar(pg_site_params, "SELECT count(*) FROM logs WHERE logged_at < now() - interval '30 days'")
    result = run_maintenance(pg_site_params, ["cleanup_logs", "reindex"],
                             dict(state_dir=str(tmp_path / "state"), reindex_mode="repair"))
    reindex, cleanup = by_op(result)["reindex"], by_op(result)["cleanup_logs"]
    assert reindex["success"] and reindex["changed"], reindex
    assert {(d["action"], d["index"]) for d in reindex["details"]["done"]} == {
        ("drop", "walls_outline_gist_ccnew"), ("rebuild", "walls_outline_gist")}
    assert reindex["details"]["valid_after"] == {"walls_outline_gist": True, "idx_intersections_point": True}
    assert cleanup["details"]["time_column"] == "logged_at" and cleanup["details"]["deleted"] == cutoff_rows > 0
    assert pg_scalar(pg_site_params, "SELECT count(*) FROM logs WHERE logged_at < now() - interval '30 days'") == 0
    report, result = database_check(pg_site_params)
    assert result["status"] == "healthy", result["message"]
    assert result["metrics"]["spatial_indexes"] == ["walls_outline_gist", "idx_intersections_point"]


def test_sqlite_site_schema_cleanup_reindex_and_checks(sqlite_site_params, tmp_path):
    ops = ["cleanup_logs", "cleanup_temp", "reindex", "integrity_check"]
    options = dict(state_dir=str(tmp_path / "state"), reindex_mode="repair")
    first = by_op(run_maintenance(sqlite_site_params, ops, options))
    assert all(r["success"] for r in first.values()), first
    assert first["cleanup_logs"]["details"]["time_column"] == "logged_at" and first["cleanup_logs"]["details"]["deleted"] > 0
    assert first["integrity_check"]["details"]["rtree"] == {"rtree_walls": None}
    assert first["reindex"]["details"]["rtree"] == {"rtree_walls": None}
    second = by_op(run_maintenance(sqlite_site_params, ops, options))
    assert not any(r["changed"] for r in second.values()), second
    # the R*Tree found by discovery is checked for real: lose one of its rows
    with sqlite3.connect(sqlite_site_params.sqlite_path) as conn:
        conn.execute("DELETE FROM rtree_walls_rowid WHERE rowid = (SELECT min(rowid) FROM rtree_walls_rowid)")
    damaged = by_op(run_maintenance(sqlite_site_params, ["integrity_check"], options))["integrity_check"]
    assert not damaged["success"] and damaged["details"]["rtree"]["rtree_walls"]


def test_cleanup_without_a_time_column_is_skipped_until_bim_schema_names_it(sqlite_site_params, tmp_path):
    with sqlite3.connect(sqlite_site_params.sqlite_path) as conn:
        conn.execute("ALTER TABLE logs RENAME COLUMN logged_at TO happened")
    options = dict(state_dir=str(tmp_path / "state"))
    res = by_op(run_maintenance(sqlite_site_params, ["cleanup_logs"], options))["cleanup_logs"]
    assert res["skipped"] and res["success"] and not res["changed"]
    assert "logs has no usable time column" in res["details"]["reason"]
    assert "set bim_schema.logs.time_column" in res["details"]["reason"]
    named = dataclasses.replace(sqlite_site_params, schema={"logs": {"time_column": "happened"}})
    res = by_op(run_maintenance(named, ["cleanup_logs"], options))["cleanup_logs"]
    assert res["changed"] and res["details"]["time_column"] == "happened"
    cutoff = datetime.datetime.fromisoformat(res["details"]["cutoff"]).strftime("%Y-%m-%d %H:%M:%S")
    with sqlite3.connect(sqlite_site_params.sqlite_path) as conn:
        assert conn.execute("SELECT count(*) FROM logs WHERE happened < ?", (cutoff,)).fetchone()[0] == 0
