# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A backup taken while the application writes, on both engines: the backup is one transactionally
consistent state, its digests describe that state, and a fully verified restore brings it back.

An application stand-in (its own process, its own connection) commits transactions that each add a
wall and its quality metric and raise wall 1's height by one. In any consistent state, wall 1's
height above its start equals the number of added walls and of their metrics; a backup that read
the tables at different moments, or half a transaction, breaks that equation, and digests taken
outside the backup's state fail the restore's verification or disagree with its row counts."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
import uuid

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import ConnectionParams
from ansible_collections.bim.wall_system.plugins.module_utils.repository.backup import run_backup
from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import Repository
from ansible_collections.bim.wall_system.plugins.module_utils.restore.runner import RestoreOptions, run_restore

FIRST_NEW_ID = 1_000_000  # above every generated id (the fixtures hold a few hundred walls)

# The application stand-in: argv[1] engine, argv[2] a libpq conninfo or a SQLite path.
WRITER = r"""
import sys, time
engine, where, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
if engine == "postgresql":
    import psycopg
    conn = psycopg.connect(where)
    statements = [
        "INSERT INTO walls (id, project_id, name, material, height_mm, thickness_mm, geom, created_at, updated_at)"
        " VALUES (%(n)s, 1, 'added', 'clay brick', 2400, 300,"
        " ST_GeomFromText('LINESTRING(0 0, 1 1)', 3857), now(), now())",
        "INSERT INTO quality_metrics (id, wall_id, metric, value, measured_at)"
        " VALUES (%(n)s, %(n)s, 'alignment_deg', 1.5, now())"]
    transaction = conn.transaction
else:
    import sqlite3
    conn = sqlite3.connect(where, timeout=30)
    statements = [
        "INSERT INTO walls (id, project_id, name, material, height_mm, thickness_mm, geom_wkt, created_at,"
        " updated_at) VALUES (:n, 1, 'added', 'clay brick', 2400, 300, 'LINESTRING(0 0, 1 1)',"
        " datetime('now'), datetime('now'))",
        "INSERT INTO walls_rtree (id, min_x, max_x, min_y, max_y) VALUES (:n, 0, 1, 0, 1)",
        "INSERT INTO quality_metrics (id, wall_id, metric, value, measured_at)"
        " VALUES (:n, :n, 'alignment_deg', 1.5, datetime('now'))"]
    transaction = lambda: conn  # its context manager commits, or rolls back
statements.append("UPDATE walls SET height_mm = height_mm + 1 WHERE id = 1")
while True:
    with transaction():
        for statement in statements:
            conn.execute(statement, {"n": n})
    n += 1
    time.sleep(0.002)
"""

STATE = ("SELECT (SELECT height_mm FROM walls WHERE id = 1), "
         "(SELECT count(*) FROM walls WHERE id >= %d), "
         "(SELECT count(*) FROM quality_metrics WHERE id >= %d), "
         "(SELECT count(*) FROM walls w JOIN quality_metrics q ON q.id = w.id AND q.wall_id = w.id "
         "WHERE w.id >= %d)" % (FIRST_NEW_ID, FIRST_NEW_ID, FIRST_NEW_ID))


def _state(params):
    """(wall 1's height, added walls, added metrics, added walls with their own metric)."""
    if params.engine == "sqlite":
        conn = sqlite3.connect(params.sqlite_path, timeout=30)
        try:
            return tuple(conn.execute(STATE).fetchone())
        finally:
            conn.close()
    import psycopg
    with psycopg.connect(_conninfo(params)) as conn:
        return tuple(conn.execute(STATE).fetchone())


def _counts(params):
    """{table: rows} of walls and quality_metrics."""
    query = "SELECT (SELECT count(*) FROM walls), (SELECT count(*) FROM quality_metrics)"
    if params.engine == "sqlite":
        conn = sqlite3.connect(params.sqlite_path, timeout=30)
        try:
            walls, metrics = conn.execute(query).fetchone()
        finally:
            conn.close()
    else:
        import psycopg
        with psycopg.connect(_conninfo(params)) as conn:
            walls, metrics = conn.execute(query).fetchone()
    return {"walls": walls, "quality_metrics": metrics}


def _conninfo(params):
    return "host=%s port=%d user=%s dbname=%s" % (params.db_host, params.db_port, params.db_user, params.db_name)


def _wait_for_added(params, at_least, timeout=60.0):
    deadline = time.monotonic() + timeout
    while True:
        state = _state(params)
        if state[1] >= at_least:
            return state
        assert time.monotonic() < deadline, "the writer added only %d walls in %.0f s" % (state[1], timeout)
        time.sleep(0.02)


@pytest.fixture(params=["postgresql", "sqlite"])
def live(request):
    return request.getfixturevalue("pg_conn_params" if request.param == "postgresql" else "sqlite_conn_params")


@pytest.fixture
def copy_params(live, tmp_path):
    """Where the restore puts its copy (mode new); a PostgreSQL copy is dropped afterwards."""
    if live.engine == "sqlite":
        os.makedirs(str(tmp_path / "copy"))
        yield ConnectionParams(engine="sqlite", sqlite_path=str(tmp_path / "copy" / "bim_walls.db"),
                               connect_timeout=5)
        return
    name = "bimtest_copy_%s" % uuid.uuid4().hex[:10]
    yield ConnectionParams(engine="postgresql", db_host=live.db_host, db_port=live.db_port,
                           db_user=live.db_user, db_name=name, connect_timeout=5)
    import psycopg
    with psycopg.connect(host=live.db_host, port=live.db_port, user=live.db_user, dbname="postgres",
                         autocommit=True) as admin:
        admin.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)


def test_a_backup_taken_while_the_application_writes_restores_one_consistent_state(live, copy_params, tmp_path):
    height_before = _state(live)[0]
    where = live.sqlite_path if live.engine == "sqlite" else _conninfo(live)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, live.engine, where, str(FIRST_NEW_ID)],
                              stderr=subprocess.PIPE)
    try:
        for _attempt in range(5):  # a short SQLite backup can fall between two commits on a busy machine
            at_start = _wait_for_added(live, 5)
            backup = run_backup(live, str(tmp_path / "repo"), {"type": "full"})
            at_end = _state(live)
            if at_end[1] > at_start[1]:
                break
        after = _wait_for_added(live, at_end[1] + 3)
    finally:
        writer.kill()  # our own child, by its PID
        _out, err = writer.communicate()
    assert writer.returncode == -9, err.decode()[-2000:]  # it was still writing: no error ended it
    assert at_end[1] > at_start[1], "no transaction committed while the backup ran: nothing was tested"

    result = run_restore(live, str(tmp_path / "repo"), RestoreOptions(
        backup["backup_id"], mode="new", target_name=copy_params.sqlite_path or copy_params.db_name,
        keep_target=True, verification="full", state_dir=str(tmp_path / "state")))
    assert result["verified"], result
    # The manifest's row counts describe the same state as its digests: the copy's.
    recorded = Repository(str(tmp_path / "repo")).load_manifest(backup["backup_id"])["tables"]
    assert {t: recorded[t]["rows"] for t in ("walls", "quality_metrics")} == _counts(copy_params)

    height, walls, metrics, paired = _state(copy_params)
    # One consistent state: every added wall came with its metric and its height step, none half.
    assert height - height_before == walls == metrics == paired, (height - height_before, walls, metrics, paired)
    # ... taken while the writer ran: after the first added walls, before the last.
    assert at_start[1] <= walls <= at_end[1] < after[1], (at_start, walls, at_end, after)
    # The live database kept the same equation throughout (the writer's transactions are whole).
    final = _state(live)
    assert final[0] - height_before == final[1] == final[2] == final[3]
