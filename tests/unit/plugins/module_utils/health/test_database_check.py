# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The database check against real PostgreSQL+PostGIS and SQLite (fixtures in tests/unit/conftest.py)."""

from __future__ import annotations

import dataclasses
import os
import socket
import sqlite3

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import ConnectionParams
from ansible_collections.bim.wall_system.plugins.module_utils.health.base import CheckContext
from ansible_collections.bim.wall_system.plugins.module_utils.health.runner import (
    build_report, run_checks, thresholds_for)


def check(params, overrides=None, data_dir=None, secrets=()):
    ctx = CheckContext(conn=params, data_dir=data_dir, thresholds=thresholds_for(overrides), timeout=30,
                       secrets=secrets)
    report = build_report(run_checks(ctx, ["database"]))
    return report, report["checks"][0]


def _pg(params, statement):
    psycopg = pytest.importorskip("psycopg")
    with psycopg.connect(host=params.db_host, port=params.db_port, user=params.db_user, dbname=params.db_name,
                         autocommit=True) as conn:
        conn.execute(statement)


def test_postgresql_healthy(pg_conn_params, tmp_path):
    report, result = check(pg_conn_params, data_dir=str(tmp_path))
    assert result["status"] == "healthy", result["message"]
    m = result["metrics"]
    for key in ("connect_time_ms", "key_lookup_ms", "spatial_window_ms", "database_response_time_ms",
                "active_connections", "idle_connections", "max_connections", "connection_usage",
                "disk_usage", "spatial_index_count"):
        assert key in m, key
    assert m["spatial_index_count"] == 2 and m["spatial_indexes_invalid"] == []
    assert 0 < m["connection_usage"] < 1
    assert m["data_directory"] == str(tmp_path)
    assert report["overall_status"] == "healthy"


def test_postgresql_invalid_index_is_error_with_reindex(pg_conn_params):
    _pg(pg_conn_params, "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'idx_walls_geometry'::regclass")
    report, result = check(pg_conn_params)
    assert result["status"] == "error"
    assert "idx_walls_geometry" in result["message"]
    assert result["metrics"]["spatial_indexes_invalid"] == ["idx_walls_geometry"]
    assert any("REINDEX INDEX CONCURRENTLY idx_walls_geometry" in r for r in report["recommendations"])
    assert report["overall_status"] == "unhealthy"


def test_postgresql_missing_index_is_information_unless_declared(pg_conn_params):
    _pg(pg_conn_params, "DROP INDEX idx_intersections_point")
    report, result = check(pg_conn_params)
    assert result["status"] == "healthy", result["message"]
    assert result["metrics"]["tables_without_spatial_index"] == ["intersections"]
    assert "intersections has no spatial index (information)" in result["message"]
    assert any("CREATE INDEX CONCURRENTLY ON intersections USING gist (point)" in r and "bim_schema.intersections" in r
               for r in report["recommendations"])
    declared = dataclasses.replace(pg_conn_params, schema={"intersections": {"spatial_index": "idx_intersections_point"}})
    report, result = check(declared)
    assert result["status"] == "error"
    assert result["metrics"]["spatial_indexes_invalid"] == ["idx_intersections_point"]
    assert any("CREATE INDEX CONCURRENTLY idx_intersections_point ON intersections USING gist (point)" in r
               for r in report["recommendations"])


def test_postgresql_thresholds_turn_into_alerts(pg_conn_params):
    # a response-time limit of ~0 and a tiny connection limit make real measurements breach
    report, result = check(pg_conn_params, {"database_response_time_ms": {"warning": 0.0001, "critical": 100000},
                                            "connection_usage": {"warning": 0.0, "critical": 0.0}})
    metrics = {a["metric"]: a["severity"] for a in report["alerts"]}
    assert metrics == {"database_response_time_ms": "warning", "connection_usage": "critical"}
    assert result["status"] == "error"


def test_postgresql_wrong_password_clear_and_masked(pg_password_server):
    host, port, user, password = pg_password_server
    wrong = "Wrong-" + password
    params = ConnectionParams(engine="postgresql", db_host=host, db_port=port, db_user=user, db_password=wrong,
                              db_name="postgres", connect_timeout=5)
    report, result = check(params, secrets=[wrong])
    assert result["status"] == "error"
    assert "password authentication failed" in result["message"]
    text = repr(report)
    assert wrong not in text and password not in text


def test_postgresql_unreachable_server(pg_conn_params):
    params = dataclasses.replace(pg_conn_params, db_port=1, connect_timeout=2)
    _report, result = check(params)
    assert result["status"] == "error" and "cannot connect" in result["message"]


def test_sqlite_healthy(sqlite_conn_params):
    report, result = check(sqlite_conn_params)
    assert result["status"] == "healthy", result["message"]
    m = result["metrics"]
    assert m["spatial_index_count"] == 2
    assert "disk_usage" in m and "key_lookup_ms" in m
    assert report["alerts"] == []


def test_sqlite_missing_file_is_error_and_not_created(tmp_path):
    path = str(tmp_path / "nope" / "walls.db")
    params = ConnectionParams(engine="sqlite", sqlite_path=path)
    _report, result = check(params)
    assert result["status"] == "error" and "does not exist" in result["message"]
    assert not os.path.exists(path)
    flat = str(tmp_path / "walls.db")
    _report, result = check(dataclasses.replace(params, sqlite_path=flat))
    assert result["status"] == "error"
    assert not os.path.exists(flat)


def test_sqlite_missing_tables_is_error(tmp_path):
    path = str(tmp_path / "empty.db")
    sqlite3.connect(path).close()
    _report, result = check(ConnectionParams(engine="sqlite", sqlite_path=path))
    assert result["status"] == "error"
    assert "missing BIM tables" in result["message"]


def test_sqlite_dropped_rtree_is_error_only_when_declared(sqlite_conn_params):
    with sqlite3.connect(sqlite_conn_params.sqlite_path) as conn:
        conn.execute("DROP TABLE intersections_rtree")
    report, result = check(sqlite_conn_params)
    assert result["status"] == "healthy", result["message"]
    assert "intersections has no spatial index (information)" in result["message"]
    declared = dataclasses.replace(sqlite_conn_params, schema={"intersections": {"rtree": "intersections_rtree"}})
    report, result = check(declared)
    assert result["status"] == "error"
    assert "intersections_rtree missing" in result["message"]
    assert any("intersections_rtree" in r for r in report["recommendations"])


def test_server_that_never_answers_is_a_check_timeout_and_others_finish():
    """A real TCP peer that accepts the connection and then says nothing (a hung server)."""
    listener = socket.socket()
    listener.bind(("127.0.15.2", 0))
    listener.listen(4)
    accepted = []
    try:
        params = ConnectionParams(engine="postgresql", db_host="127.0.15.2", db_port=listener.getsockname()[1],
                                  db_name="bim_walls", connect_timeout=30)
        ctx = CheckContext(conn=params, thresholds=thresholds_for(), timeout=1)
        listener.settimeout(0.1)
        report = build_report(run_checks(ctx, ["database", "system"]))
        try:
            accepted.append(listener.accept()[0])
        except OSError:
            pass
    finally:
        for conn in accepted:
            conn.close()
        listener.close()
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["database"]["status"] == "error"
    assert "did not finish within 1" in checks["database"]["message"]
    assert checks["system"]["status"] == "healthy"
    assert report["overall_status"] == "unhealthy"
