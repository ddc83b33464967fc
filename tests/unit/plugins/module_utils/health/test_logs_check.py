# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The logs check on real PostgreSQL and SQLite databases with a known logs table."""

from __future__ import annotations

import dataclasses
import datetime
import sqlite3

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.database.sqlite.sqlite_logs import normalize_message
from ansible_collections.bim.wall_system.plugins.module_utils.health.base import CheckContext
from ansible_collections.bim.wall_system.plugins.module_utils.health.logs_check import check_logs
from ansible_collections.bim.wall_system.plugins.module_utils.health.thresholds import merge_thresholds

NOW = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
THRESHOLDS = merge_thresholds({"error_rate": {"warning": 0.05, "critical": 0.10, "lower_is_worse": False}}, None)


def rows(window_errors, window_total=100, baseline_errors=10, baseline_total=1000):
    """(created_at, level, category, message) rows: baseline spread over the 24 h before the window."""
    out = []
    for i in range(baseline_total):
        at = NOW - datetime.timedelta(hours=1, seconds=60 + i * 80)
        err = i < baseline_errors
        out.append((at, "error" if err else "info", "geometry", "old failure %d" % i if err else "ok %d" % i))
    for i in range(window_total):
        at = NOW - datetime.timedelta(seconds=10 + i * 3000.0 / window_total)
        if i < window_errors:
            if i % 5 == 4:
                out.append((at, "critical", "database", "timeout on 0x%X for 123e4567-e89b-12d3-a456-42661417400%d" % (i, i % 10)))
            else:
                out.append((at, "ERROR", "geometry", "wall %d offset failed after %d.5 ms" % (1000 + i, i)))
        else:
            out.append((at, "info", "api", "request %d served" % i))
    out.append((NOW + datetime.timedelta(minutes=5), "error", "future", "not in any window"))
    out.append((NOW - datetime.timedelta(days=3), "error", "ancient", "before the baseline"))
    return out


def fill_pg(params, data, time="created_at", level="level"):
    psycopg = pytest.importorskip("psycopg")
    with psycopg.connect(host=params.db_host, port=params.db_port, user=params.db_user, dbname=params.db_name,
                         autocommit=True) as conn:
        conn.execute("DELETE FROM logs")
        with conn.cursor() as cur:
            cur.executemany("INSERT INTO logs (%s, %s, category, message) VALUES (%%s, %%s, %%s, %%s)" % (time, level),
                            data)


def fill_sqlite(params, data, time="created_at", level="level"):
    conn = sqlite3.connect(params.sqlite_path)
    with conn:
        conn.execute("DELETE FROM logs")
        conn.executemany("INSERT INTO logs (%s, %s, category, message) VALUES (?, ?, ?, ?)" % (time, level),
                         [(d[0].strftime("%Y-%m-%d %H:%M:%S"),) + d[1:] for d in data])
    conn.close()


@pytest.fixture(params=["postgresql", "sqlite"])
def db(request):
    if request.param == "postgresql":
        return request.getfixturevalue("pg_conn_params"), fill_pg
    return request.getfixturevalue("sqlite_conn_params"), fill_sqlite


def run(params):
    ctx = CheckContext(conn=params, thresholds=THRESHOLDS, options={"now": NOW})
    return check_logs(ctx)


def test_high_error_rate_with_anomaly_and_top_messages(db):
    params, fill = db
    fill(params, rows(window_errors=20))
    result = run(params)
    m = result.metrics
    assert (m["window_entries"], m["window_errors"], m["error_rate"]) == (100, 20, 0.2)
    assert (m["baseline_entries"], m["baseline_errors"], m["baseline_error_rate"]) == (1000, 10, 0.01)
    assert m["anomaly"] is True
    assert m["errors_by_category"] == {"api": 0, "database": 4, "geometry": 16}
    assert m["error_rate_by_category"] == {"api": 0.0, "database": 1.0, "geometry": 1.0}
    assert m["top_errors"][0]["message"] == "wall N offset failed after N ms"
    assert m["top_errors"][0]["count"] == 16 and m["top_errors"][0]["category"] == "geometry"
    assert m["top_errors"][1] == {"category": "database", "message": "timeout on <hex> for <uuid>", "count": 4,
                                  "example": m["top_errors"][1]["example"]}
    assert result.status == "error"
    assert {(a.metric, a.severity) for a in result.alerts} == {("error_rate", "critical"), ("error_rate_anomaly", "warning")}
    assert "wall N offset failed" in result.message and result.recommendations


def test_quiet_host_is_healthy(db):
    params, fill = db
    fill(params, rows(window_errors=2))
    result = run(params)
    assert result.status == "healthy", result.message
    assert result.metrics["error_rate"] == 0.02 and result.metrics["anomaly"] is False


def test_anomaly_without_threshold_breach(db):
    """4 % errors is below the 5 % warning level but 4 x the 1 % baseline: warning by anomaly."""
    params, fill = db
    fill(params, rows(window_errors=8, window_total=200))
    result = run(params)
    assert result.metrics["error_rate"] == 0.04 and result.metrics["anomaly"] is True
    assert result.status == "warning"


def test_empty_window(db):
    params, fill = db
    fill(params, [])
    result = run(params)
    assert result.status == "healthy" and result.metrics["error_rate"] == 0.0 and result.metrics["top_errors"] == []


@pytest.mark.parametrize("engine", ["postgresql", "sqlite"])
def test_renamed_log_columns_are_discovered(engine, request):
    """The "site" schema keeps its entries in logs(logged_at, severity, ...): same figures."""
    params = request.getfixturevalue("pg_site_params" if engine == "postgresql" else "sqlite_site_params")
    (fill_pg if engine == "postgresql" else fill_sqlite)(params, rows(window_errors=20), "logged_at", "severity")
    result = run(params)
    m = result.metrics
    assert m["columns"] == {"time": "logged_at", "level": "severity", "category": "category", "message": "message"}
    assert (m["window_entries"], m["window_errors"], m["baseline_errors"]) == (100, 20, 10)
    assert m["errors_by_category"] == {"api": 0, "database": 4, "geometry": 16}
    assert m["top_errors"][0]["message"] == "wall N offset failed after N ms"


def test_unknown_log_columns_warn_until_bim_schema_names_them(sqlite_site_params):
    fill_sqlite(sqlite_site_params, rows(window_errors=20), "logged_at", "severity")
    with sqlite3.connect(sqlite_site_params.sqlite_path) as conn:
        conn.execute("ALTER TABLE logs RENAME COLUMN logged_at TO happened")  # TEXT: no name or type to go by
        conn.execute("ALTER TABLE logs DROP COLUMN category")
    result = run(sqlite_site_params)
    assert result.status == "warning"
    assert "logs has no usable time column" in result.message and "set bim_schema.logs.time_column" in result.message
    named = dataclasses.replace(sqlite_site_params, schema={"logs": {"time_column": "happened"}})
    result = run(named)
    assert result.metrics["columns"]["time"] == "happened" and result.metrics["columns"]["category"] is None
    # without a category column every entry is in one category
    assert result.metrics["errors_by_category"] == {"all": 20} and result.metrics["window_entries"] == 100
    wrong = dataclasses.replace(sqlite_site_params, schema={"logs": {"time_column": "created_at"}})
    result = run(wrong)
    assert result.status == "warning"
    assert "bim_schema.logs.time_column names column created_at, which logs does not have" in result.message


def test_missing_database_is_an_error_result(tmp_path):
    from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import ConnectionParams
    result = run(ConnectionParams(engine="sqlite", sqlite_path=str(tmp_path / "nope.db")))
    assert result.status == "error" and "logs" in result.message
    assert not (tmp_path / "nope.db").exists()


@pytest.mark.parametrize("raw,normalized", [
    ("wall 1234 offset failed after 3.5 ms", "wall N offset failed after N ms"),
    ("id 123e4567-e89b-12d3-a456-426614174000 at 0xDEADbeef", "id <uuid> at <hex>"),
    ("no numbers", "no numbers"),
])
def test_normalize_message(raw, normalized):
    assert normalize_message(raw) == normalized
