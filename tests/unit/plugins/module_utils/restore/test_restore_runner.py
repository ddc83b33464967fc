# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore, rollback and verification against real PostgreSQL+PostGIS and SQLite, through a real
repository written by the backup library."""

from __future__ import annotations

import dataclasses
import fcntl
import glob
import io
import json
import os
import signal
import sqlite3

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql import pg_archive, pg_target
from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import Repository
from ansible_collections.bim.wall_system.plugins.module_utils.restore import runner
from ansible_collections.bim.wall_system.plugins.module_utils.restore.runner import RestoreOptions
from ansible_collections.bim.wall_system.plugins.module_utils.restore.errors import RestoreError
from ansible_collections.bim.wall_system.plugins.module_utils.restore.targets import make_target


def test_swap_restores_backup_and_keeps_restore_point(rs_params, rs_repo, rs_state, take_backup, digests, change_data):
    backup = take_backup(rs_params, rs_repo)
    original = digests(rs_params)
    change_data(rs_params)
    changed = digests(rs_params)
    assert changed != original

    result = runner.run_restore(rs_params, rs_repo, RestoreOptions("latest", state_dir=rs_state, jobs=2))

    assert result["changed"] and result["verified"]
    assert result["backup_id"] == backup["backup_id"]
    assert digests(rs_params) == original
    assert result["restore_point"]
    assert all(t["matches"] for t in result["tables"].values())
    # The restore point holds the replaced live data.
    target = make_target(rs_params, state_dir=rs_state)
    assert target.restore_points() == [result["restore_point"]]
    if rs_params.engine == "sqlite":
        rp_params = dataclasses.replace(rs_params, sqlite_path=result["restore_point"])
        assert not os.path.exists(rs_params.sqlite_path + "-wal")
    else:
        import psycopg
        with psycopg.connect(host=rs_params.db_host, port=rs_params.db_port, user="postgres", dbname="postgres",
                             autocommit=True) as admin:
            admin.execute('ALTER DATABASE "%s" ALLOW_CONNECTIONS true' % result["restore_point"])
        rp_params = dataclasses.replace(rs_params, db_name=result["restore_point"])
    assert digests(rp_params) == changed

    # Rolling back puts the replaced data back; the restored copy becomes a restore point.
    back = runner.run_rollback(rs_params, "latest", state_dir=rs_state)
    assert back["rolled_back_to"] == result["restore_point"]
    assert digests(rs_params) == changed
    assert len(target.restore_points()) == 1
    assert target.pending_journal() is None


def test_keep_restore_points_prunes_older(rs_params, rs_repo, rs_state, take_backup, digests, change_data):
    take_backup(rs_params, rs_repo)
    names = []
    for _round in range(3):
        names.append(runner.run_restore(rs_params, rs_repo, RestoreOptions("latest", state_dir=rs_state,
                                                                           keep_restore_points=2))["restore_point"])
    points = make_target(rs_params, state_dir=rs_state).restore_points()
    assert points == names[1:]


def test_new_mode_leaves_live_untouched(rs_params, rs_repo, rs_state, tmp_path, take_backup, digests, change_data):
    take_backup(rs_params, rs_repo)
    change_data(rs_params)
    live = digests(rs_params)
    result = runner.run_restore(rs_params, rs_repo, RestoreOptions("latest", mode="new", keep_target=False,
                                                                   check_live_unchanged=True, state_dir=rs_state))
    assert result["verified"] and result["target_dropped"]
    assert result["live_unchanged"] is True
    assert result["rto_s"] >= 0 and result["rpo_s"] >= 0
    assert digests(rs_params) == live
    if rs_params.engine == "sqlite":
        assert not glob.glob(os.path.join(os.path.dirname(rs_params.sqlite_path), ".*drill*"))


def test_new_mode_subset_of_tables(rs_params, rs_repo, rs_state, tmp_path, take_backup, digests, change_data):
    backup = take_backup(rs_params, rs_repo)
    name = str(tmp_path / "data" / "walls_only.db") if rs_params.engine == "sqlite" else rs_params.db_name + "__copy_x"
    result = runner.run_restore(rs_params, rs_repo, RestoreOptions("latest", mode="new", target_name=name, tables=["walls"],
                                                                   state_dir=rs_state))
    assert list(result["tables"]) == ["walls"]
    copy = (dataclasses.replace(rs_params, sqlite_path=name) if rs_params.engine == "sqlite"
            else dataclasses.replace(rs_params, db_name=name))
    got = digests(copy, like=backup.get("tables"))
    assert got["walls"] == backup["tables"]["walls"] if "tables" in backup and isinstance(backup["tables"], dict) \
        and "digest" in backup["tables"].get("walls", {}) else got["walls"]["rows"] > 0
    assert got["intersections"]["rows"] == 0
    with pytest.raises(RestoreError, match="already exists"):
        runner.run_restore(rs_params, rs_repo, RestoreOptions("latest", mode="new", target_name=name, state_dir=rs_state))


def test_corrupt_chunk_refused_before_live_is_touched(rs_params, rs_repo, rs_state, take_backup, digests, change_data,
                                                      flip_chunk):
    backup = take_backup(rs_params, rs_repo)
    repo = Repository(rs_repo)
    chunks = repo.load_manifest(backup["backup_id"])["streams"]["database"]["chunks"]
    chunk_id = chunks[len(chunks) // 2][0]
    flip_chunk(rs_repo, chunk_id)
    change_data(rs_params)
    live = digests(rs_params)

    checked = runner.verify_backups(rs_repo, ["all"], level="checksum")
    assert checked["passed"] is False
    assert chunk_id in " ".join(checked["backups"][0]["problems"])
    assert repo.verification_state(backup["backup_id"])["passed"] is False

    staging = os.path.join(rs_state, "staging")
    os.makedirs(staging)
    with pytest.raises(RestoreError) as err:
        runner.run_restore(rs_params, rs_repo, RestoreOptions(backup["backup_id"], state_dir=rs_state, staging_dir=staging))
    assert chunk_id in str(err.value) and "nothing was changed" in str(err.value)
    assert digests(rs_params) == live
    target = make_target(rs_params, state_dir=rs_state)
    assert target.restore_points() == []
    if rs_params.engine == "postgresql":
        # The copy the server created while the archive was staged is gone, and so is the staged file.
        assert target.engine.databases_like(rs_params.db_name + "__") == []
        assert os.listdir(staging) == []
    else:
        assert sorted(os.listdir(os.path.dirname(rs_params.sqlite_path))) == ["bim_walls.db"]


@pytest.mark.parametrize("damage", ["truncate", "edit"])
def test_damaged_manifest_is_a_clear_error(rs_sqlite_params, rs_repo, rs_state, damage, take_backup, digests, change_data):
    backup = take_backup(rs_sqlite_params, rs_repo)
    path = os.path.join(rs_repo, "manifests", backup["backup_id"] + ".json")
    raw = open(path, "rb").read()
    if damage == "truncate":
        raw = raw[: len(raw) // 2]
    else:
        data = json.loads(raw)
        data["tables"]["walls"]["rows"] += 1
        raw = json.dumps(data).encode()
    os.chmod(path, 0o600)
    with open(path, "wb") as handle:
        handle.write(raw)
    live = digests(rs_sqlite_params)
    with pytest.raises(RestoreError) as err:
        runner.run_restore(rs_sqlite_params, rs_repo, RestoreOptions(backup["backup_id"], state_dir=rs_state))
    assert backup["backup_id"] in str(err.value)
    assert "Traceback" not in str(err.value)
    assert digests(rs_sqlite_params) == live


def test_restore_level_verification_records_result(rs_params, rs_repo, rs_state, take_backup, digests, change_data):
    backup = take_backup(rs_params, rs_repo)
    live = digests(rs_params)
    result = runner.verify_backups(rs_repo, ["latest"], level="restore", params=rs_params, state_dir=rs_state)
    assert result["passed"], result
    item = result["backups"][0]
    assert item["backup_id"] == backup["backup_id"] and item["problems"] == []
    repo = Repository(rs_repo)
    assert repo.verification_state(backup["backup_id"])["level"] == "restore"
    assert repo.resolve("latest_verified")["id"] == backup["backup_id"]
    assert digests(rs_params) == live
    target = make_target(rs_params, state_dir=rs_state)
    if rs_params.engine == "postgresql":
        assert target.engine.databases_like(rs_params.db_name + "__") == []


def test_verification_failure_of_restored_copy_swaps_nothing(rs_params, rs_repo, rs_state, take_backup, digests, change_data):
    """A manifest whose recorded digest does not match its own data: the copy fails verification."""
    backup = take_backup(rs_params, rs_repo)
    repo = Repository(rs_repo)
    manifest = repo.load_manifest(backup["backup_id"])
    # every digest the entry records (copy-rows: the multiset and the ordered one)
    for field in ("digest", "ordered_digest"):
        if field in manifest["tables"]["walls"]:
            manifest["tables"]["walls"][field] = "0" * 64
    from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import manifest_checksum
    manifest.pop("checksum")
    manifest["checksum"] = manifest_checksum(manifest)
    path = repo.manifest_path(backup["backup_id"])
    with open(path, "w") as handle:
        json.dump(manifest, handle)
    change_data(rs_params)
    live = digests(rs_params)
    with pytest.raises(RestoreError) as err:
        runner.run_restore(rs_params, rs_repo, RestoreOptions("latest", state_dir=rs_state))
    assert "failed verification" in str(err.value) and "walls" in str(err.value)
    assert digests(rs_params) == live
    assert make_target(rs_params, state_dir=rs_state).restore_points() == []


def test_check_mode_plans_and_changes_nothing(rs_params, rs_repo, rs_state, take_backup, digests, change_data):
    take_backup(rs_params, rs_repo)
    change_data(rs_params)
    live = digests(rs_params)
    result = runner.run_restore(rs_params, rs_repo, RestoreOptions("latest", check_mode=True, state_dir=rs_state))
    plan = result["plan"]
    assert plan["fits"] and plan["restored_bytes"] > 0 and plan["bytes_to_read"] > 0
    assert plan["space"] and plan["space"][0]["available_bytes"] > plan["space"][0]["needed_bytes"]
    assert digests(rs_params) == live
    assert not os.path.exists(rs_state)
    ver = runner.verify_backups(rs_repo, ["latest"], level="restore", params=rs_params, check_mode=True,
                                state_dir=rs_state)
    assert ver["recorded"] is False
    assert Repository(rs_repo).verification_state(result["backup_id"]) is None


def test_restore_recreates_missing_database(rs_params, rs_repo, rs_state, take_backup, digests, change_data):
    take_backup(rs_params, rs_repo)
    original = digests(rs_params)
    target = make_target(rs_params, state_dir=rs_state)
    if rs_params.engine == "sqlite":
        os.unlink(rs_params.sqlite_path)
    else:
        target.engine.drop_database(rs_params.db_name)
    assert not target.live_exists()
    result = runner.run_restore(rs_params, rs_repo, RestoreOptions("latest", state_dir=rs_state))
    assert result["restore_point"] is None
    assert digests(rs_params) == original


def test_sqlite_wal_content_moves_into_restore_point(rs_sqlite_params, rs_repo, rs_state, take_backup, digests, change_data):
    take_backup(rs_sqlite_params, rs_repo)
    original = digests(rs_sqlite_params)
    # A writer with WAL content not yet checkpointed, and left open during nothing else.
    conn = sqlite3.connect(rs_sqlite_params.sqlite_path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA wal_autocheckpoint=0")
    with conn:
        conn.execute("UPDATE walls SET name = 'changed in wal' WHERE id <= 5")
    conn.close()
    changed = digests(rs_sqlite_params)
    result = runner.run_restore(rs_sqlite_params, rs_repo, RestoreOptions("latest", state_dir=rs_state))
    assert digests(rs_sqlite_params) == original
    rp = dataclasses.replace(rs_sqlite_params, sqlite_path=result["restore_point"])
    assert digests(rp) == changed
    for suffix in ("-wal", "-shm"):
        path = rs_sqlite_params.sqlite_path + suffix
        assert not os.path.exists(path) or os.path.getsize(path) == 0 or suffix == "-shm"


def test_not_enough_space_refused_with_numbers(rs_sqlite_params, rs_repo, rs_state, small_tmpfs, take_backup, digests, change_data):
    take_backup(rs_sqlite_params, rs_repo)
    live = dataclasses.replace(rs_sqlite_params, sqlite_path=os.path.join(small_tmpfs, "bim_walls.db"))
    import shutil
    shutil.copy(rs_sqlite_params.sqlite_path, live.sqlite_path)
    # Fill the file system so the restored copy cannot fit.
    free = os.statvfs(small_tmpfs).f_bavail * os.statvfs(small_tmpfs).f_frsize
    with open(os.path.join(small_tmpfs, "filler"), "wb") as handle:
        handle.write(b"\0" * max(free - 64 * 1024, 0))
    before = digests(live)
    with pytest.raises(RestoreError) as err:
        runner.run_restore(live, rs_repo, RestoreOptions("latest", state_dir=rs_state, check_mode=True))
    assert "needs" in str(err.value) and "free" in str(err.value) and "bytes" in str(err.value)
    with pytest.raises(RestoreError) as err:
        runner.run_restore(live, rs_repo, RestoreOptions("latest", state_dir=rs_state))
    assert "not enough free space" in str(err.value)
    assert err.value.details["plan"]["fits"] is False
    assert digests(live) == before
    assert sorted(os.listdir(small_tmpfs)) == ["bim_walls.db", "filler"]


@pytest.fixture
def small_tmpfs(tmp_path):
    import subprocess
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mnt)], check=False).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield str(mnt)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_invalid_postgresql_database_is_moved_aside(rs_pg_params, rs_repo, rs_state, take_backup, digests):
    """A DROP DATABASE interrupted by a crash leaves the database invalid: restore still brings it back."""
    take_backup(rs_pg_params, rs_repo)
    original = digests(rs_pg_params)
    import psycopg
    with psycopg.connect(host=rs_pg_params.db_host, port=rs_pg_params.db_port, user="postgres", dbname="postgres",
                         autocommit=True) as admin:
        admin.execute("UPDATE pg_database SET datconnlimit = -2 WHERE datname = %s", (rs_pg_params.db_name,))
    result = runner.run_restore(rs_pg_params, rs_repo, RestoreOptions("latest", state_dir=rs_state, keep_restore_points=0))
    assert digests(rs_pg_params) == original
    assert result["pruned_restore_points"] == [result["restore_point"]]
    assert make_target(rs_pg_params, state_dir=rs_state).restore_points() == []


def _database_properties(admin, name):
    acl = admin.execute("SELECT a.privilege_type, a.grantee = 0, pg_get_userbyid(a.grantee), a.is_grantable"
                        " FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = %s ORDER BY 3, 1",
                        (name,)).fetchall()
    settings = admin.execute("SELECT s.setrole::regrole::text, ARRAY(SELECT unnest(s.setconfig) ORDER BY 1)"
                             " FROM pg_db_role_setting s"
                             " JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = %s ORDER BY 1",
                             (name,)).fetchall()
    limit = admin.execute("SELECT datconnlimit FROM pg_database WHERE datname = %s", (name,)).fetchone()[0]
    return acl, settings, limit


def test_swap_keeps_database_privileges_and_settings(rs_pg_params, rs_repo, rs_state, take_backup, digests):
    """pg_dump without --create carries none of these; the swapped-in copy takes them from live."""
    import psycopg
    role = "bimtest_role_%s" % rs_pg_params.db_name[-6:]
    db = rs_pg_params.db_name
    with psycopg.connect(host=rs_pg_params.db_host, port=rs_pg_params.db_port, user="postgres", dbname="postgres",
                         autocommit=True) as admin:
        admin.execute('CREATE ROLE "%s"' % role)
        try:
            for statement in ('REVOKE ALL ON DATABASE "{db}" FROM PUBLIC',
                              'GRANT CONNECT ON DATABASE "{db}" TO "{role}" WITH GRANT OPTION',
                              'ALTER DATABASE "{db}" CONNECTION LIMIT 40',
                              "ALTER DATABASE \"{db}\" SET statement_timeout TO '31s'",
                              'ALTER DATABASE "{db}" SET search_path TO "$user", public, "odd, ""name"""',
                              "ALTER ROLE \"{role}\" IN DATABASE \"{db}\" SET work_mem TO '5MB'"):
                admin.execute(statement.format(db=db, role=role))
            before = _database_properties(admin, db)
            take_backup(rs_pg_params, rs_repo)

            result = runner.run_restore(rs_pg_params, rs_repo, RestoreOptions("latest", state_dir=rs_state, jobs=2))

            assert _database_properties(admin, db) == before
            assert ("CONNECT", False, role, True) in before[0] and not any(public for _p, public, _g, _o in before[0])
            assert len(before[1]) == 2 and before[2] == 40
            assert _database_properties(admin, result["restore_point"]) == before  # the old live keeps its own
        finally:
            # The role can go only once no database names it any more.
            for (name,) in admin.execute("SELECT datname FROM pg_database WHERE datname = %s OR left(datname, %s) = %s",
                                         (db, len(db) + 2, db + "__")).fetchall():
                admin.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
            admin.execute('DROP ROLE IF EXISTS "%s"' % role)


def test_rollback_puts_back_the_configuration_files_a_swap_replaced(rs_sqlite_params, rs_repo, rs_state, tmp_path,
                                                                    take_backup, digests, change_data):
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    edited, created, same = conf_dir / "app.conf", conf_dir / "extra.conf", conf_dir / "same.conf"
    for path in (edited, created, same):
        path.write_text("from the backup\n")
    take_backup(rs_sqlite_params, rs_repo, include_paths=[str(conf_dir)])
    edited.write_text("edited after the backup\n")
    os.chmod(edited, 0o640)
    created.unlink()
    change_data(rs_sqlite_params)
    live = digests(rs_sqlite_params)

    result = runner.run_restore(rs_sqlite_params, rs_repo, RestoreOptions("latest", state_dir=rs_state, restore_files=True))

    assert sorted(result["files"]["written"]) == sorted([str(edited), str(created)])
    assert result["files"]["unchanged"] == [str(same)]
    assert edited.read_text() == "from the backup\n" and created.exists()
    kept = os.path.join(rs_state, "files", os.path.basename(result["restore_point"]))
    assert oct(os.stat(kept).st_mode & 0o777) == oct(0o700)

    back = runner.run_rollback(rs_sqlite_params, result["restore_point"], state_dir=rs_state)

    assert back["files"] == {"restored": [str(edited)], "removed": [str(created)]}
    assert edited.read_text() == "edited after the backup\n" and oct(os.stat(edited).st_mode & 0o777) == oct(0o640)
    assert not created.exists() and same.read_text() == "from the backup\n"
    assert digests(rs_sqlite_params) == live
    assert not os.path.exists(kept)


def _journal_mode(path):
    conn = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return conn.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        conn.close()


def test_sqlite_restore_gives_the_file_its_journal_mode_back(rs_sqlite_params, rs_repo, rs_state, take_backup):
    """The stored image is a plain file (journal_mode delete); the application's file was in WAL
    mode and must come back in WAL mode, whether the live file is there or gone."""
    live = rs_sqlite_params.sqlite_path
    assert _journal_mode(live) == "wal"
    backup = take_backup(rs_sqlite_params, rs_repo)
    manifest = Repository(rs_repo).load_manifest(backup["backup_id"])
    assert manifest["streams"]["database"]["journal_mode"] == "wal"

    runner.run_restore(rs_sqlite_params, rs_repo, RestoreOptions("latest", state_dir=rs_state))
    assert _journal_mode(live) == "wal"
    assert not os.path.exists(live + "-wal") or os.path.getsize(live + "-wal") == 0

    os.unlink(live)  # the disaster: no live file to take the mode from, the manifest says it
    runner.run_restore(rs_sqlite_params, rs_repo, RestoreOptions("latest", state_dir=rs_state))
    assert _journal_mode(live) == "wal"


def test_sqlite_backup_recording_no_journal_mode_takes_the_live_files(rs_sqlite_params, rs_repo, rs_state, take_backup):
    backup = take_backup(rs_sqlite_params, rs_repo)
    repo = Repository(rs_repo)
    manifest = repo.load_manifest(backup["backup_id"])
    del manifest["streams"]["database"]["journal_mode"]  # as a release before this one wrote it
    target = make_target(rs_sqlite_params, state_dir=rs_state)
    scratch = target.scratch_name("restore")
    with repo.open_stream(manifest, "database") as stream:
        target.restore_into(scratch, stream)
    assert _journal_mode(scratch) == "delete"
    target.swap_in(scratch, stream_info=manifest["streams"]["database"])
    assert _journal_mode(rs_sqlite_params.sqlite_path) == "wal"


@pytest.mark.parametrize("engine", ["postgresql", "sqlite"])
def test_site_schema_verifies_and_subset_restores_empty_the_discovered_rtree(
        engine, request, rs_repo, rs_state, tmp_path, take_backup):
    """The "site" schema (walls_outline_gist, rtree_walls, no intersections R*Tree): a restore-level
    verification checks the copy's discovered spatial indexes, a subset restore empties the R*Tree
    of each table it leaves out, and a declared R*Tree the copy lacks fails the verification."""
    params = request.getfixturevalue("pg_site_params" if engine == "postgresql" else "sqlite_site_params")
    take_backup(params, rs_repo)
    result = runner.verify_backups(rs_repo, ["latest"], level="restore", params=params, state_dir=rs_state)
    assert result["passed"], result
    if engine == "sqlite":
        name = str(tmp_path / "logs_only.db")
        runner.run_restore(params, rs_repo, RestoreOptions("latest", mode="new", target_name=name, tables=["logs"],
                                                           state_dir=rs_state))
        with sqlite3.connect(name) as conn:
            assert conn.execute("SELECT count(*) FROM logs").fetchone()[0] > 0
            assert conn.execute("SELECT count(*) FROM walls").fetchone()[0] == 0
            assert conn.execute("SELECT count(*) FROM rtree_walls").fetchone()[0] == 0
            assert conn.execute("SELECT count(*) FROM projects").fetchone()[0] > 0  # not a BIM table: kept
        declared = dataclasses.replace(params, schema={"intersections": {"rtree": "intersections_rtree"}})
        missing = "spatial index intersections_rtree on intersections: missing"
    else:
        declared = dataclasses.replace(params, schema={"intersections": {"spatial_index": "intersections_gist"}})
        missing = "spatial index intersections_gist on intersections: missing"
    result = runner.verify_backups(rs_repo, ["latest"], level="restore", params=declared, state_dir=rs_state)
    assert not result["passed"] and missing in result["backups"][0]["problems"], result


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_fresh_restore_verifies_by_the_framed_digest_alone(rs_pg_params, rs_repo, rs_state, take_backup,
                                                             monkeypatch, jobs):
    """pg_restore loads each table in the dump's order: no table needs the backup's archive again."""
    from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql import pg_digests
    take_backup(rs_pg_params, rs_repo)
    reread = []
    monkeypatch.setattr(pg_digests, "archive_table_rows", lambda *args: reread.append(args[1:]))
    result = runner.run_restore(rs_pg_params, rs_repo, RestoreOptions("latest", state_dir=rs_state, jobs=jobs))
    assert result["verified"] and reread == []
    assert {t["matches"] for t in result["tables"].values()} == {True}


@pytest.mark.parametrize("jobs", [1, 2])
def test_rows_in_another_order_are_decided_by_the_backup_s_own_archive(
        rs_pg_params, rs_repo, rs_state, tmp_path, take_backup, digests, monkeypatch, jobs):
    """When a restored table's rows do not come in the dump's order, the verification compares
    their multiset with the backup's own rows: from the staged archive (jobs 2), or read again
    from the repository (jobs 1, nothing staged); the staged file is removed afterwards."""
    from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql import pg_digests
    take_backup(rs_pg_params, rs_repo)
    original = digests(rs_pg_params)
    real_dumped, real_rows = pg_digests.dumped_table_digest, pg_digests.archive_table_rows
    read_from = []

    def other_order(argv, env, schema, table):
        found = real_dumped(argv, env, schema, table)
        return "f" * 64 if table == "walls" else found

    def archive_rows(open_archive, schema, table, **sink):
        with open_archive() as stream:
            read_from.append(type(stream).__name__)
        return real_rows(open_archive, schema, table, **sink)

    monkeypatch.setattr(pg_digests, "dumped_table_digest", other_order)
    monkeypatch.setattr(pg_digests, "archive_table_rows", archive_rows)
    staging = tmp_path / "staging"
    result = runner.run_restore(rs_pg_params, rs_repo, RestoreOptions("latest", state_dir=rs_state, jobs=jobs,
                                                                      staging_dir=str(staging)))
    assert result["verified"] and result["tables"]["walls"]["matches"]
    # read twice: its framed digest checked against the manifest, then its rows
    assert read_from == (["BufferedReader"] * 2 if jobs > 1 else ["_Reread"] * 2)
    monkeypatch.undo()
    assert digests(rs_pg_params) == original
    assert not staging.exists() or not list(staging.iterdir())


class _KilledAfterFirstRead(io.RawIOBase):
    """pg_dump's pipe, narrowed to one page, whose first read kills the pg_dump writing it (our own
    child, by its PID). With more than three pages left to write (the first read, the pipe and
    pg_dump's own buffer), pg_dump is still running when it is killed: ``alive`` records it."""

    def __init__(self, pipe, proc):
        super().__init__()
        fcntl.fcntl(pipe.fileno(), pg_archive.F_SETPIPE_SZ, 4096)
        self.pipe, self.proc, self.alive = pipe, proc, None

    def readable(self):
        return True

    def readinto(self, buffer):
        count = self.pipe.readinto(buffer)
        if self.alive is None:
            self.alive = self.proc.poll() is None
            os.kill(self.proc.pid, signal.SIGKILL)
        return count


def _assert_failed_restore_left_nothing(err, params, state_dir, staging, digests, live):
    """A restore that failed before its swap: a clean message, the live database as it was, and no
    copy, restore point, journal or staged file left behind."""
    assert "Traceback" not in str(err.value)
    assert digests(params) == live
    target = make_target(params, state_dir=state_dir)
    assert target.restore_points() == [] and target.pending_journal() is None
    assert target.engine.databases_like(params.db_name + "__") == []
    assert not staging.exists() or not list(staging.iterdir())


@pytest.mark.parametrize("jobs", [1, 2])
def test_verification_s_pg_dump_killed_mid_table_swaps_nothing(rs_pg_params, rs_repo, rs_state, tmp_path, take_backup,
                                                               digests, change_data, monkeypatch, jobs):
    """The pg_dump that reads a restored table back for its digest dies mid-table (SIGKILL): the
    restore stops with pg_dump's fate in its message, before the swap; the live database is as it
    was, and neither the copy nor a staged archive is left behind."""
    take_backup(rs_pg_params, rs_repo)
    change_data(rs_pg_params)
    live = digests(rs_pg_params)
    killed = []

    class KilledDump(pg_archive.DumpProcess):
        def __init__(self, argv, env):
            super().__init__(argv, env)
            if '--table="public"."walls"' in argv:  # only the verification's read of walls
                self.stdout = _KilledAfterFirstRead(self.stdout, self.proc)
                killed.append(self.stdout)

    monkeypatch.setattr(pg_archive, "DumpProcess", KilledDump)
    staging = tmp_path / "staging"
    with pytest.raises(RestoreError) as err:
        runner.run_restore(rs_pg_params, rs_repo, RestoreOptions("latest", state_dir=rs_state, jobs=jobs,
                                                                 staging_dir=str(staging)))
    monkeypatch.undo()
    assert [pipe.alive for pipe in killed] == [True]  # killed mid-table, not after its end
    assert "pg_dump failed (killed by signal 9 (SIGKILL))" in str(err.value), str(err.value)
    _assert_failed_restore_left_nothing(err, rs_pg_params, rs_state, staging, digests, live)


def _children_named(name, parent):
    """PIDs of ``parent``'s children whose command is ``name`` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                with open("/proc/%s/comm" % entry) as handle:
                    comm = handle.read().strip()
            except OSError:
                continue
            if int(fields[1]) == parent and comm == name:
                found.append(int(entry))
    return found


def test_pg_restore_killed_while_loading_swaps_nothing(rs_pg_params, rs_repo, rs_state, tmp_path, take_backup,
                                                       digests, change_data, monkeypatch):
    """pg_restore -j2 gets SIGKILL as it starts loading walls (our own child, by its PID; its
    workers are its children): the restore fails with pg_restore's fate in the message, before
    the swap, and leaves no copy, restore point, journal or staged archive."""
    take_backup(rs_pg_params, rs_repo)
    change_data(rs_pg_params)
    live = digests(rs_pg_params)
    killed = []

    class KillOnWalls(pg_target._RestoreProgress):
        def __call__(self, event, kind, tag):
            if not killed and (event, kind) == ("launching", "TABLE DATA") and " walls " in " %s " % tag:
                leaders = _children_named("pg_restore", os.getpid())
                for pid in leaders:
                    os.kill(pid, signal.SIGKILL)
                killed.extend(leaders)
            return super().__call__(event, kind, tag)

    monkeypatch.setattr(pg_target, "_RestoreProgress", KillOnWalls)
    staging = tmp_path / "staging"
    with pytest.raises(RestoreError) as err:
        runner.run_restore(rs_pg_params, rs_repo, RestoreOptions("latest", state_dir=rs_state, jobs=2,
                                                                 staging_dir=str(staging)))
    monkeypatch.undo()
    assert len(killed) == 1, killed
    assert "pg_restore" in str(err.value) and "killed by signal 9 (SIGKILL)" in str(err.value), str(err.value)
    _assert_failed_restore_left_nothing(err, rs_pg_params, rs_state, staging, digests, live)


def test_a_damaged_chunk_read_again_is_a_clear_verification_error():
    from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError
    from ansible_collections.bim.wall_system.plugins.module_utils.repository.errors import CorruptChunkError
    from ansible_collections.bim.wall_system.plugins.module_utils.restore.reread import archive_opener

    class Repo:
        def open_stream(self, manifest, name, workers=0):
            raise CorruptChunkError("12ab", "its content does not match its name")

    with pytest.raises(DatabaseError, match="reading the backup again: chunk 12ab is corrupt"):
        with archive_opener(Repo(), {}, 2)():
            pass
