# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the restore tests: real databases (prefix ``bimtest_rs_`` on 127.0.0.1:5432, SQLite
files in tmp_path) backed up into a real repository with the backup library."""

from __future__ import annotations

import os
import uuid

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import ConnectionParams
from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine
from ansible_collections.bim.wall_system.plugins.module_utils.repository.backup import run_backup

RS_WALLS = 150
PG_HOST = os.environ.get("BIM_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("BIM_TEST_PG_PORT", "5432"))


def _admin():
    psycopg = pytest.importorskip("psycopg")
    return psycopg.connect(host=PG_HOST, port=PG_PORT, user="postgres", dbname="postgres", autocommit=True)


def drop_family(name):
    """Drop ``name`` and every database named ``name__*`` (scratch copies, restore points)."""
    with _admin() as admin:
        rows = admin.execute("SELECT datname FROM pg_database WHERE datname = %s OR left(datname, %s) = %s",
                             (name, len(name) + 2, name + "__")).fetchall()
        for (db,) in rows:
            admin.execute('ALTER DATABASE "%s" ALLOW_CONNECTIONS true' % db)
            admin.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % db)


@pytest.fixture
def rs_pg_params(bim_generator):
    name = "bimtest_rs_%s" % uuid.uuid4().hex[:10]
    with _admin() as admin:
        admin.execute('CREATE DATABASE "%s"' % name)
    try:
        bim_generator.populate_postgresql("host=%s port=%d user=postgres dbname=%s" % (PG_HOST, PG_PORT, name),
                                          RS_WALLS, seed=1)
        yield ConnectionParams(engine="postgresql", db_host=PG_HOST, db_port=PG_PORT, db_user="postgres",
                               db_name=name, connect_timeout=5)
    finally:
        drop_family(name)


@pytest.fixture
def rs_sqlite_params(tmp_path, bim_generator):
    folder = tmp_path / "data"
    folder.mkdir()
    path = str(folder / "bim_walls.db")
    bim_generator.populate_sqlite(path, RS_WALLS, seed=1)
    return ConnectionParams(engine="sqlite", sqlite_path=path, connect_timeout=5)


@pytest.fixture(params=["postgresql", "sqlite"])
def rs_params(request):
    return request.getfixturevalue("rs_pg_params" if request.param == "postgresql" else "rs_sqlite_params")


@pytest.fixture
def rs_repo(tmp_path):
    return str(tmp_path / "repo")


@pytest.fixture
def rs_state(tmp_path):
    return str(tmp_path / "state")


def take_backup(params, repo, **options):
    options.setdefault("type", "full")
    return run_backup(params, repo, options)


def digests(params, like=None):
    """The table digests of ``params``' database; ``like``: a manifest's tables, whose forms and
    entries the digests are taken in (and then returned as the manifest records them)."""
    if params.engine == "sqlite" and not os.path.exists(params.sqlite_path):
        return None
    if params.engine == "postgresql":
        with _admin() as admin:
            if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (params.db_name,)).fetchall():
                return None
    with open_engine(params) as eng:
        if not like:
            return eng.table_digests()
        found = eng.table_digests(tuple(like), forms={t: e.get("digest_form") for t, e in like.items()}, recorded=like)
        return {t: dict(like[t], rows=e["rows"], digest=e["digest"]) for t, e in found.items()}


def change_data(params, delete_ids=(1, 2, 3)):
    """Delete a few walls (and what refers to them) so the live data differs from the backup."""
    if params.engine == "sqlite":
        import sqlite3
        conn = sqlite3.connect(params.sqlite_path)
        with conn:
            for wid in delete_ids:
                conn.execute("DELETE FROM intersections WHERE wall_a = ? OR wall_b = ?", (wid, wid))
                conn.execute("DELETE FROM quality_metrics WHERE wall_id = ?", (wid,))
                conn.execute("DELETE FROM walls_rtree WHERE id = ?", (wid,))
                conn.execute("DELETE FROM walls WHERE id = ?", (wid,))
        conn.close()
        return
    psycopg = pytest.importorskip("psycopg")
    with psycopg.connect(host=params.db_host, port=params.db_port, user=params.db_user, dbname=params.db_name,
                         autocommit=True) as conn:
        for wid in delete_ids:
            conn.execute("DELETE FROM intersections WHERE wall_a = %s OR wall_b = %s", (wid, wid))
            conn.execute("DELETE FROM quality_metrics WHERE wall_id = %s", (wid,))
            conn.execute("DELETE FROM walls WHERE id = %s", (wid,))


@pytest.fixture(name="take_backup")
def _take_backup_fixture():
    return take_backup


@pytest.fixture(name="digests")
def _digests_fixture():
    return digests


@pytest.fixture(name="change_data")
def _change_data_fixture():
    return change_data
