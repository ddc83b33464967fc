# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A forged PostgreSQL backup is SQL (docs/security.md): whoever can write an unkeyed repository
can make a restore run statements of their choosing with the restore's database role, before
anything is verified; a keyed repository hands pg_restore no byte that did not authenticate.

The forger backs up a database of their own into the victim's repository folder. Its
``temp_geometry`` has a CHECK whose function creates a role, a global object that outlives the
scratch copy, whenever it runs in any other database: the restore's load evaluates it for every
row. The unkeyed test shows the role appearing (the threat, so the keyed assertion can fail)."""

from __future__ import annotations

import os
import shutil
import uuid

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import ConnectionParams
from ansible_collections.bim.wall_system.plugins.module_utils.repository.backup import run_backup
from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import Repository
from ansible_collections.bim.wall_system.plugins.module_utils.restore import runner
from ansible_collections.bim.wall_system.plugins.module_utils.restore.errors import RestoreError
from ansible_collections.bim.wall_system.plugins.module_utils.restore.runner import RestoreOptions
from ansible_collections.bim.wall_system.plugins.module_utils.restore.targets import make_target

pytest.importorskip("cryptography")
psycopg = pytest.importorskip("psycopg")

PG_HOST = os.environ.get("BIM_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("BIM_TEST_PG_PORT", "5432"))

KEY = "the victim's repository key, 2026"
FORGER_KEY = "the forger's own key, not the victim's"


def _admin():
    return psycopg.connect(host=PG_HOST, port=PG_PORT, user="postgres", dbname="postgres", autocommit=True)


@pytest.fixture
def marker_role():
    role = "bim_forged_%s" % uuid.uuid4().hex[:10]
    yield role
    with _admin() as admin:
        admin.execute('DROP ROLE IF EXISTS "%s"' % role)


def _role_exists(role):
    with _admin() as admin:
        return bool(admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchall())


@pytest.fixture
def forger_params(bim_generator, marker_role):
    """The forger's database: the BIM tables, and a CHECK that creates ``marker_role`` whenever it
    is evaluated outside this very database (pg_restore empties ``search_path``: all qualified)."""
    name = "bimtest_rs_forger_%s" % uuid.uuid4().hex[:8]
    with _admin() as admin:
        admin.execute('CREATE DATABASE "%s"' % name)
    try:
        conninfo = "host=%s port=%d user=postgres dbname=%s" % (PG_HOST, PG_PORT, name)
        bim_generator.populate_postgresql(conninfo, 150, seed=2)
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute("""
                CREATE FUNCTION public.forged_check(id bigint) RETURNS boolean LANGUAGE plpgsql AS $body$
                BEGIN
                    IF pg_catalog.current_database() <> '%s'
                       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = '%s') THEN
                        EXECUTE 'CREATE ROLE %s';
                    END IF;
                    RETURN true;
                END
                $body$""" % (name, marker_role, marker_role))
            conn.execute("ALTER TABLE public.temp_geometry ADD CONSTRAINT forged CHECK (public.forged_check(id))")
        yield ConnectionParams(engine="postgresql", db_host=PG_HOST, db_port=PG_PORT, db_user="postgres",
                               db_name=name, connect_timeout=5)
    finally:
        with _admin() as admin:
            admin.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)


def _copy_backup(source, backup_id, destination):
    """Put a backup's manifest and chunks from one repository folder into another, as anyone
    with write access to the destination can."""
    for sub in ("chunks", "manifests"):
        shutil.copytree(os.path.join(source, sub), os.path.join(destination, sub), dirs_exist_ok=True)
    assert os.path.exists(Repository(destination, key=KEY).manifest_path(backup_id))


def test_an_unkeyed_repository_lets_a_forged_backup_run_its_sql(rs_pg_params, forger_params, marker_role, tmp_path):
    victim = str(tmp_path / "repo")
    run_backup(rs_pg_params, victim, {"type": "full"})
    forged_id = run_backup(forger_params, victim, {"type": "full"})["backup_id"]
    assert not _role_exists(marker_role)

    result = runner.run_restore(rs_pg_params, victim, RestoreOptions(
        forged_id, mode="new", keep_target=False, state_dir=str(tmp_path / "state")))
    assert result["verified"]  # the forger's own digests describe the forger's own data
    assert _role_exists(marker_role), "the forged archive's function ran in the victim's cluster"
    assert any("unauthenticated" in w and "PostgreSQL restore runs a forged backup's SQL" in w
               for w in result.get("warnings", [])), result.get("warnings")


def _walls(params):
    with psycopg.connect(host=PG_HOST, port=PG_PORT, user="postgres", dbname=params.db_name) as conn:
        return conn.execute("SELECT count(*), sum(hashtext(w::text)) FROM walls w").fetchone()


def test_a_keyed_repository_refuses_the_forged_backup_before_pg_restore_runs(
        rs_pg_params, forger_params, marker_role, tmp_path):
    victim, forger = str(tmp_path / "repo"), str(tmp_path / "forger-repo")
    run_backup(rs_pg_params, victim, {"type": "full", "repository_key": KEY, "repository_encryption": False})
    # Without the victim's key the best forgery is a genuine backup of the forger's own keyed repository.
    forged_id = run_backup(forger_params, forger, {"type": "full", "repository_key": FORGER_KEY,
                                                   "repository_encryption": False})["backup_id"]
    _copy_backup(forger, forged_id, victim)
    live = _walls(rs_pg_params)

    with pytest.raises(RestoreError) as err:
        runner.run_restore(rs_pg_params, victim, RestoreOptions(
            forged_id, mode="swap", jobs=2, repository_key=KEY, state_dir=str(tmp_path / "state")))
    assert "fails its authentication" in str(err.value), str(err.value)
    assert not _role_exists(marker_role), "a forged archive reached pg_restore"
    assert _walls(rs_pg_params) == live
    target = make_target(rs_pg_params, state_dir=str(tmp_path / "state"))
    assert target.restore_points() == [] and target.pending_journal() is None
    assert target.engine.databases_like(rs_pg_params.db_name + "__") == []
