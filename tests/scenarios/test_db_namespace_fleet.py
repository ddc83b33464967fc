# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An installation that keeps the BIM tables in a PostgreSQL schema of its own, beside another
application's ``public.walls``, reached through ansible-playbook: without ``bim_db_namespace`` the
health check says which tables it cannot find and which schema holds them; with it, the health check and a backup read the
BIM schema, and the backup records its five tables."""

from __future__ import annotations

import json
import os
import shutil
import uuid

import psycopg
import pytest

import generate

HOST = "pg1"
WALLS = 200


def _connect(fleet, dbname):
    info = fleet.hosts[HOST]
    return psycopg.connect(host=info["address"], port=info["db_port"], user=info["db_user"], dbname=dbname,
                           password=fleet.password, connect_timeout=5, autocommit=True)


@pytest.fixture
def namespaced(fleet):
    """A database on pg1's cluster with the BIM tables in schema ``bim`` and a three-row public.walls."""
    info = fleet.hosts[HOST]
    name = "bim_ns_%s" % uuid.uuid4().hex[:8]
    with _connect(fleet, "postgres") as admin:
        admin.execute('CREATE DATABASE "%s"' % name)
    try:
        with _connect(fleet, name) as conn:
            conn.execute("CREATE EXTENSION postgis")
            conn.execute("CREATE SCHEMA bim")
            # The generator creates its tables in the first schema of the search_path.
            conn.execute('ALTER DATABASE "%s" SET search_path = bim, public' % name)
        generate.populate_postgresql("host=%s port=%d user=%s password=%s dbname=%s" % (
            info["address"], info["db_port"], info["db_user"], fleet.password, name), WALLS, seed=5)
        with _connect(fleet, name) as conn:
            conn.execute('ALTER DATABASE "%s" RESET search_path' % name)
            conn.execute("CREATE TABLE public.walls (id integer PRIMARY KEY, note text NOT NULL)")
            conn.execute("INSERT INTO public.walls VALUES (1, 'another application'), (2, 'its rows'), (3, 'three')")
        yield name
    finally:
        with _connect(fleet, "postgres") as admin:
            admin.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)


def _health_entry(result):
    with open(os.path.join(result.cwd, "bim-reports", "health-summary.json"), encoding="utf-8") as handle:
        return json.load(handle)["hosts"][HOST]


def test_bim_db_namespace_points_the_health_check_and_the_backup_at_the_bim_schema(fleet, run_playbook, namespaced):
    from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import Repository

    common = {"bim_db_name": namespaced}
    plain = run_playbook("bim.wall_system.health_check", limit=HOST, extra_vars=common)
    entry = _health_entry(plain)
    assert any("missing BIM tables: intersections, quality_metrics, logs, temp_geometry" in r
               for r in entry["reasons"]), entry
    assert any('schema "bim" holds all the BIM tables: set bim_db_namespace' in r
               for r in entry["recommendations"]), entry

    common["bim_db_namespace"] = "bim"
    checked = run_playbook("bim.wall_system.health_check", limit=HOST, extra_vars=common)
    assert checked.rc == 0, checked
    reasons = _health_entry(checked)["reasons"]
    assert not any(r.startswith("database") for r in reasons), reasons

    repository = os.path.join(fleet.state_dir, HOST, "ns-repo-%s" % uuid.uuid4().hex[:8])
    try:
        backed_up = run_playbook("bim.wall_system.backup", limit=HOST, extra_vars=dict(
            common, bim_backup_repository=repository, bim_backup_copy_enabled=False))
        assert backed_up.rc == 0, backed_up
        tables = Repository(repository).list_backups()[-1]["tables"]
        assert sorted(tables) == ["intersections", "logs", "quality_metrics", "temp_geometry", "walls"]
        assert tables["walls"]["rows"] == WALLS
    finally:
        shutil.rmtree(repository, ignore_errors=True)
