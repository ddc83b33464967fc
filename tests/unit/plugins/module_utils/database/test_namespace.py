# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The BIM tables in a PostgreSQL schema of their own (``db_namespace``), beside another
application's ``public.walls``: the health check, the backup's digests and counts, a swap restore
with its verification, and maintenance all work on the BIM schema and leave the other table as it
was; a schema that is not there is a clear error."""

from __future__ import annotations

import dataclasses
import os
import uuid

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import ConnectionParams
from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError
from ansible_collections.bim.wall_system.plugins.module_utils.health.base import CheckContext
from ansible_collections.bim.wall_system.plugins.module_utils.health.runner import (
    build_report, run_checks, thresholds_for)
from ansible_collections.bim.wall_system.plugins.module_utils.maintenance.operations import run_maintenance
from ansible_collections.bim.wall_system.plugins.module_utils.repository.backup import run_backup
from ansible_collections.bim.wall_system.plugins.module_utils.restore.runner import RestoreOptions, run_restore

psycopg = pytest.importorskip("psycopg")

PG_HOST = os.environ.get("BIM_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("BIM_TEST_PG_PORT", "5432"))
BIM_TABLES = ["walls", "intersections", "quality_metrics", "logs", "temp_geometry"]
WALLS = 120


def _connect(dbname, **kwargs):
    return psycopg.connect(host=PG_HOST, port=PG_PORT, user="postgres", dbname=dbname, autocommit=True, **kwargs)


def _drop_with_restore_points(name):
    with _connect("postgres") as admin:
        for (db,) in admin.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (name + "%",)).fetchall():
            admin.execute('DROP DATABASE "%s" WITH (FORCE)' % db)


@pytest.fixture
def namespaced(bim_generator):
    """ConnectionParams (db_namespace "BIM data", a name that needs quoting) of a database whose
    BIM tables live in that schema, beside a three-row ``public.walls`` of another application."""
    name = "bimtest_ns_%s" % uuid.uuid4().hex[:10]
    with _connect("postgres") as admin:
        admin.execute('CREATE DATABASE "%s"' % name)
    try:
        with _connect(name) as conn:
            conn.execute("CREATE EXTENSION postgis")
            conn.execute('CREATE SCHEMA "BIM data"')
            # The generator creates its tables in the first schema of the search_path.
            conn.execute('ALTER DATABASE "%s" SET search_path = "BIM data", public' % name)
        bim_generator.populate_postgresql("host=%s port=%d user=postgres dbname=%s" % (PG_HOST, PG_PORT, name),
                                          WALLS, seed=3)
        with _connect(name) as conn:
            conn.execute('ALTER DATABASE "%s" RESET search_path' % name)
            # Created last: the generator refuses a database that already has a walls table.
            conn.execute("CREATE TABLE public.walls (id integer PRIMARY KEY, note text NOT NULL)")
            conn.execute("INSERT INTO public.walls VALUES (1, 'not a wall'), (2, 'nor this'), (3, 'nor that')")
        yield ConnectionParams(engine="postgresql", db_host=PG_HOST, db_port=PG_PORT, db_user="postgres",
                               db_name=name, db_namespace="BIM data", connect_timeout=5)
    finally:
        _drop_with_restore_points(name)


def _other_application_s_walls(params):
    with _connect(params.db_name) as conn:
        return conn.execute("SELECT id, note FROM public.walls ORDER BY id").fetchall()


def test_every_step_works_on_the_bim_schema_and_leaves_public_walls_alone(namespaced, tmp_path):
    other = _other_application_s_walls(namespaced)
    # Without the option the user's search_path finds only the other application's walls, and the
    # health check says where the BIM tables are.
    plain = dataclasses.replace(namespaced, db_namespace=None)
    with open_engine(plain) as engine:
        assert engine.existing_tables() == ["walls"]
    report = build_report(run_checks(CheckContext(conn=plain, thresholds=thresholds_for(), timeout=30), ["database"]))
    assert report["checks"][0]["status"] == "error"
    assert ('database: schema "BIM data" holds all the BIM tables: set bim_db_namespace (option db_namespace) '
            "to the one the application uses") in report["recommendations"], report["recommendations"]
    with open_engine(namespaced) as engine:
        assert engine.existing_tables() == BIM_TABLES
        assert engine.schema().probe_index("walls").name == "idx_walls_geometry"

    report = build_report(run_checks(CheckContext(conn=namespaced, thresholds=thresholds_for(), timeout=30),
                                     ["database"]))
    database = report["checks"][0]
    assert database["status"] == "healthy" and "missing" not in database["message"], database
    assert not any("bim_db_namespace" in r for r in report["recommendations"])

    backup = run_backup(namespaced, str(tmp_path / "repo"), {"type": "full"})
    assert sorted(backup["tables"]) == sorted(BIM_TABLES)
    assert backup["tables"]["walls"]["rows"] == WALLS

    with _connect(namespaced.db_name) as conn:
        conn.execute('DELETE FROM "BIM data".quality_metrics WHERE wall_id <= 5')
        conn.execute("UPDATE public.walls SET note = 'changed after the backup'")
    result = run_restore(namespaced, str(tmp_path / "repo"), RestoreOptions(
        backup["backup_id"], verification="full", state_dir=str(tmp_path / "state")))
    assert result["verified"] and result["restore_point"], result
    with open_engine(namespaced) as engine:
        assert engine.table_digests(BIM_TABLES)["quality_metrics"]["rows"] == backup["tables"]["quality_metrics"]["rows"]
    assert _other_application_s_walls(namespaced) == other  # the whole database came back

    done = run_maintenance(namespaced, ["vacuum", "analyze", "reindex"], dict(state_dir=str(tmp_path / "mstate")))
    assert all(r["success"] for r in done["results"]), done["results"]
    with _connect(namespaced.db_name) as conn:
        analyzed = dict(conn.execute("SELECT schemaname, last_analyze IS NOT NULL FROM pg_stat_user_tables "
                                     "WHERE relname = 'walls'").fetchall())
    assert analyzed == {"BIM data": True, "public": False}


def test_a_schema_that_is_not_there_is_a_clear_error(namespaced):
    with pytest.raises(DatabaseError) as err:
        with open_engine(dataclasses.replace(namespaced, db_namespace="bim_missing")):
            pass
    assert "schema bim_missing (db_namespace) does not exist" in str(err.value), str(err.value)
