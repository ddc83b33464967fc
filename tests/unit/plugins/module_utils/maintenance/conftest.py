# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the maintenance tests: own databases ``bimtest_mt_*`` on the shared 5432 server."""

from __future__ import annotations

import os
import uuid

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import ConnectionParams

PG_HOST = os.environ.get("BIM_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("BIM_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("BIM_TEST_PG_USER", "postgres")
WALLS = 400


def admin(dbname="postgres"):
    psycopg = pytest.importorskip("psycopg")
    return psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=dbname, autocommit=True)


@pytest.fixture
def mt_pg(bim_generator):
    """ConnectionParams of a fresh populated PostGIS database ``bimtest_mt_<hex>``; dropped after."""
    name = "bimtest_mt_%s" % uuid.uuid4().hex[:10]
    with admin() as conn:
        conn.execute('CREATE DATABASE "%s"' % name)
    try:
        bim_generator.populate_postgresql("host=%s port=%d user=%s dbname=%s" % (PG_HOST, PG_PORT, PG_USER, name),
                                          WALLS, seed=1)
        yield ConnectionParams(engine="postgresql", db_host=PG_HOST, db_port=PG_PORT, db_user=PG_USER,
                               db_name=name, connect_timeout=5)
    finally:
        with admin() as conn:
            conn.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)


@pytest.fixture
def mt_sqlite(bim_generator, tmp_path):
    path = str(tmp_path / "bim_walls.db")
    bim_generator.populate_sqlite(path, WALLS, seed=1)
    return ConnectionParams(engine="sqlite", sqlite_path=path, connect_timeout=5)


@pytest.fixture
def state_dir(tmp_path):
    return str(tmp_path / "state")


@pytest.fixture
def mt_sql(mt_pg):
    """Helpers that run SQL directly (outside the code under test) in the ``mt_pg`` database."""

    class SQL:
        params = mt_pg

        @staticmethod
        def connect():
            return admin(mt_pg.db_name)

        @staticmethod
        def scalar(query, args=None):
            with admin(mt_pg.db_name) as conn:
                return conn.execute(query, args).fetchone()[0]

        @staticmethod
        def execute(query, args=None):
            with admin(mt_pg.db_name) as conn:
                conn.execute(query, args)
                conn.execute("SELECT pg_stat_force_next_flush()")

    return SQL
