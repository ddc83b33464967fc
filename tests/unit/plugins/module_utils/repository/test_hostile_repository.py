# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A repository someone tampered with, attacked for real (issue 13): symbolic links that would lead
housekeeping outside the repository, an empty database that would replace good backups, damaged
manifests, malformed chunk entries and lock files. Each test checks that nothing outside the
repository changed and that no good backup was lost."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import sqlite3
import time

import pytest
import zstandard

from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import ConnectionParams
from ansible_collections.bim.wall_system.plugins.module_utils.repository.backup import plan_backup, run_backup
from ansible_collections.bim.wall_system.plugins.module_utils.repository.chunker import MAX_CHUNK_SIZE
from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import (
    ContainmentError, CorruptChunkError, LockedError, Repository, RepositoryError, manifest_checksum)


@pytest.fixture
def outside(tmp_path):
    """A folder of someone else's files, with a subfolder, that must survive every test."""
    folder = tmp_path / "precious"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("keep me")
    (folder / "sub" / "b.bin").write_bytes(os.urandom(100))
    (folder / "x.tmp").write_text("looks like a leftover")
    (folder / ".hidden").write_text("also")
    return str(folder)


def _ids(repo_path):
    return [m["id"] for m in Repository(repo_path).list_backups()]


def _rewrite_manifest(repo, backup_id, edit):
    """Edit a manifest and give it a matching checksum (what someone with write access can do)."""
    path = repo.manifest_path(backup_id)
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    edit(data)
    data["checksum"] = manifest_checksum(data)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(data, handle)


# ------------------------------------------------------------------ containment
def test_tmp_symlink_to_an_outside_folder_is_replaced_not_emptied(folder_tree, sqlite_conn_params, repo_path,
                                                                  outside, repository_sound):
    first = run_backup(sqlite_conn_params, repo_path, {"type": "full"})
    before = folder_tree(outside)
    shutil.rmtree(os.path.join(repo_path, "tmp"))
    os.symlink(outside, os.path.join(repo_path, "tmp"))

    result = run_backup(sqlite_conn_params, repo_path, {"retention": {"keep_last": 5}})

    assert folder_tree(outside) == before
    assert os.path.isdir(os.path.join(repo_path, "tmp")) and not os.path.islink(os.path.join(repo_path, "tmp"))
    assert any("tmp was a symbolic link" in w and outside in w for w in result["warnings"]), result["warnings"]
    assert _ids(repo_path) == [first["backup_id"], result["backup_id"]]
    repository_sound(repo_path)


def test_a_link_inside_tmp_is_removed_itself_never_its_target(folder_tree, sqlite_conn_params, repo_path, outside):
    run_backup(sqlite_conn_params, repo_path, {"type": "full"})
    before = folder_tree(outside)
    leftover = os.path.join(repo_path, "tmp", "crashed-run")
    os.mkdir(leftover)
    os.symlink(outside, os.path.join(leftover, "link-to-dir"))
    os.symlink(os.path.join(outside, "a.txt"), os.path.join(repo_path, "tmp", "link-to-file"))

    assert Repository(repo_path).clean_tmp() >= 2

    assert os.listdir(os.path.join(repo_path, "tmp")) == []
    assert folder_tree(outside) == before


def _other_repository(tmp_path, sqlite_conn_params):
    """A second repository of a different database (so its chunks differ)."""
    other_db = str(tmp_path / "other.db")
    shutil.copy(sqlite_conn_params.sqlite_path, other_db)
    with sqlite3.connect(other_db) as conn:
        conn.execute("UPDATE walls SET name = name || '-other'")
    other = str(tmp_path / "other-repo")
    run_backup(ConnectionParams(engine="sqlite", sqlite_path=other_db), other, {"type": "full"})
    return other


def test_chunk_folder_linked_into_another_repository_loses_nothing_there(folder_tree, sqlite_conn_params, repo_path,
                                                                         tmp_path, repository_sound):
    run_backup(sqlite_conn_params, repo_path, {"type": "full"})
    other = _other_repository(tmp_path, sqlite_conn_params)
    mine = Repository(repo_path).list_chunks()
    foreign = sorted(Repository(other).list_chunks() - mine)
    assert foreign, "the other database should have chunks of its own"
    prefix = foreign[0][:2]
    link = os.path.join(repo_path, "chunks", prefix)
    if os.path.isdir(link):  # the attack replaces the folder
        shutil.move(link, str(tmp_path / "moved-aside"))
    os.symlink(os.path.join(other, "chunks", prefix), link)
    before = folder_tree(other)

    repo = Repository(repo_path)
    assert not any(c.startswith(prefix) for c in repo.list_chunks())
    assert any("symbolic link" in w for w in repo.warnings)
    repo.prune()
    assert folder_tree(other) == before
    with pytest.raises(ContainmentError, match="symbolic link"):
        repo.remove_chunk(foreign[0])
    assert folder_tree(other) == before

    result = run_backup(sqlite_conn_params, repo_path, {"retention": {"keep_last": 1}})
    assert folder_tree(other) == before
    assert not os.path.islink(link)
    assert any("chunks/%s was a symbolic link" % prefix in w for w in result["warnings"]), result["warnings"]
    repository_sound(other)


def test_a_top_level_folder_that_is_a_link_is_refused(folder_tree, sqlite_conn_params, repo_path, outside):
    run_backup(sqlite_conn_params, repo_path, {"type": "full"})
    manifests = os.path.join(repo_path, "manifests")
    shutil.copytree(manifests, outside, dirs_exist_ok=True)
    shutil.rmtree(manifests)
    os.symlink(outside, manifests)
    before = folder_tree(outside)

    with pytest.raises(ContainmentError, match="manifests is a symbolic link"):
        run_backup(sqlite_conn_params, repo_path, {"retention": {"keep_last": 1}})

    assert folder_tree(outside) == before


# ------------------------------------------------------------------ suspicious backups
def _empty_database(tmp_path):
    path = tmp_path / "empty.db"
    path.write_bytes(b"")
    return ConnectionParams(engine="sqlite", sqlite_path=str(path))


def test_an_empty_database_never_replaces_good_backups(sqlite_conn_params, repo_path, tmp_path, repository_sound):
    good = [run_backup(sqlite_conn_params, repo_path, {"type": "full"})["backup_id"] for _run in range(2)]

    empty = run_backup(_empty_database(tmp_path), repo_path, {"type": "full", "retention": {"keep_last": 1}})

    assert empty["suspicious"] and "none of the BIM tables" in empty["suspicious_reasons"][0]
    assert empty["expired"] == []
    assert any("retention expired nothing" in w for w in empty["warnings"])
    assert _ids(repo_path) == good + [empty["backup_id"]]
    manifest = Repository(repo_path).load_manifest(empty["backup_id"])
    assert manifest["suspicious"] == empty["suspicious_reasons"]

    # The next good backup: the suspicious one is kept (it counts for no keep_last), the good ones
    # are expired by the rules as usual.
    after = run_backup(sqlite_conn_params, repo_path, {"type": "full", "retention": {"keep_last": 1}})
    assert not after["suspicious"]
    assert after["expired"] == good
    assert _ids(repo_path) == [empty["backup_id"], after["backup_id"]]
    repository_sound(repo_path)


def test_a_walls_drop_beyond_the_share_is_suspicious(sqlite_conn_params, repo_path):
    first = run_backup(sqlite_conn_params, repo_path, {"type": "full"})
    with sqlite3.connect(sqlite_conn_params.sqlite_path) as conn:
        total = conn.execute("SELECT count(*) FROM walls").fetchone()[0]
        conn.execute("DELETE FROM walls WHERE rowid IN (SELECT rowid FROM walls LIMIT ?)", (int(total * 0.6),))
    kept = run_backup(sqlite_conn_params, repo_path, {"suspicious_drop": 0.7, "retention": {"keep_last": 1}})
    assert not kept["suspicious"] and kept["expired"] == [first["backup_id"]]

    with sqlite3.connect(sqlite_conn_params.sqlite_path) as conn:
        conn.execute("DELETE FROM walls WHERE rowid IN (SELECT rowid FROM walls LIMIT ?)", (int(total * 0.3),))
    flagged = run_backup(sqlite_conn_params, repo_path, {"retention": {"keep_last": 1}})
    assert flagged["suspicious"] and "walls rows dropped from" in flagged["suspicious_reasons"][0]
    assert kept["backup_id"] in flagged["suspicious_reasons"][0]
    assert _ids(repo_path) == [kept["backup_id"], flagged["backup_id"]]


@pytest.mark.parametrize("share", [0, -0.1, 1.5, "half"])
def test_a_bad_suspicious_drop_is_refused(sqlite_conn_params, repo_path, share):
    with pytest.raises(RepositoryError, match="suspicious_drop"):
        run_backup(sqlite_conn_params, repo_path, {"suspicious_drop": share})


def _drop_walls(path, share):
    with sqlite3.connect(path) as conn:
        total = conn.execute("SELECT count(*) FROM walls").fetchone()[0]
        conn.execute("DELETE FROM walls WHERE rowid IN (SELECT rowid FROM walls LIMIT ?)", (int(total * share),))


def _sqlite_copy(source, target):
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)


def test_a_suspicious_backup_is_forgotten_once_examined_here_and_on_the_copies(sqlite_conn_params, repo_path,
                                                                               tmp_path, repository_sound):
    live = sqlite_conn_params.sqlite_path
    copy = {"url": str(tmp_path / "copy")}
    good = run_backup(sqlite_conn_params, repo_path, {"type": "full", "copy_to": [copy]})["backup_id"]
    saved = str(tmp_path / "before-the-drop.db")
    _sqlite_copy(live, saved)
    _drop_walls(live, 0.9)
    bad = run_backup(sqlite_conn_params, repo_path, {"type": "full", "copy_to": [copy]})
    assert bad["suspicious"] and _ids(copy["url"]) == [good, bad["backup_id"]]
    own = set(Repository.manifest_chunks(Repository(repo_path).load_manifest(bad["backup_id"])))
    own -= set(Repository.manifest_chunks(Repository(repo_path).load_manifest(good)))
    assert own, "the dropped rows should leave chunks of the suspicious backup's own"
    Repository(repo_path).record_verification(bad["backup_id"], "checksums", True)
    _sqlite_copy(saved, live)  # the operator restored the live database
    options = {"forget_suspicious": [bad["backup_id"]], "copy_to": [copy], "retention": {"keep_last": 5}}

    plan = plan_backup(sqlite_conn_params, repo_path, options)
    assert plan["forgotten"] == [bad["backup_id"]]
    assert _ids(repo_path) == [good, bad["backup_id"]]  # check mode removes nothing

    after = run_backup(sqlite_conn_params, repo_path, options)

    assert after["forgotten"] == [bad["backup_id"]] and not after["suspicious"]
    assert _ids(repo_path) == [good, after["backup_id"]]
    assert not own & Repository(repo_path).list_chunks()  # its chunks went with this run's prune
    assert not os.path.exists(Repository(repo_path).verification_path(bad["backup_id"]))
    assert after["storage_locations"][1]["forgotten"] == [bad["backup_id"]]
    assert _ids(copy["url"]) == [good, after["backup_id"]]
    assert not own & Repository(copy["url"]).list_chunks()
    repository_sound(repo_path)
    repository_sound(copy["url"])
    # Asked again (the same -e on the next run): nothing to forget, and said so.
    again = run_backup(sqlite_conn_params, repo_path, options)
    assert again["forgotten"] == [] and again["storage_locations"][1]["forgotten"] == []
    assert any("%s is not in repository" % bad["backup_id"] in w for w in again["warnings"]), again["warnings"]


def test_forget_suspicious_never_removes_a_good_backup(sqlite_conn_params, repo_path):
    good = run_backup(sqlite_conn_params, repo_path, {"type": "full"})["backup_id"]
    for run in (plan_backup, run_backup):
        with pytest.raises(RepositoryError, match="backup %s is not suspicious.*nothing was removed" % good):
            run(sqlite_conn_params, repo_path, {"forget_suspicious": [good]})
    with pytest.raises(RepositoryError, match="not a valid id"):
        run_backup(sqlite_conn_params, repo_path, {"forget_suspicious": ["20261127T124501Z"]})
    assert _ids(repo_path) == [good]  # and no backup was taken by the refused runs


def test_the_newest_restore_verified_backup_is_never_expired(sqlite_conn_params, repo_path):
    verified = run_backup(sqlite_conn_params, repo_path, {"type": "full"})["backup_id"]
    repo = Repository(repo_path)
    manifest = repo.load_manifest(verified)
    repo.record_verification(verified, "restore", True, details={"manifest_checksum": manifest["checksum"]})

    later = [run_backup(sqlite_conn_params, repo_path, {"retention": {"keep_last": 1}})["backup_id"]
             for _run in range(2)]

    assert _ids(repo_path) == [verified, later[1]]
    plan = plan_backup(sqlite_conn_params, repo_path, {"retention": {"keep_last": 1}})
    assert verified not in plan["expired"] and later[1] in plan["expired"]
    # A later failed restore-level verification withdraws the protection.
    repo.record_verification(verified, "restore", False, problems=["digest differs"])
    assert verified in plan_backup(sqlite_conn_params, repo_path, {"retention": {"keep_last": 1}})["expired"]


# ------------------------------------------------------------------ damaged manifests, chunk entries, locks
def test_a_damaged_newest_manifest_stops_no_backup_and_latest_refuses_it(sqlite_conn_params, repo_path):
    good = run_backup(sqlite_conn_params, repo_path, {"type": "full"})["backup_id"]
    newest = run_backup(sqlite_conn_params, repo_path, {})["backup_id"]
    repo = Repository(repo_path)
    with open(repo.manifest_path(newest), "ab") as handle:
        handle.write(b"garbage")

    with pytest.raises(RepositoryError, match="newest backup %s cannot be used.*newest readable one is %s"
                       % (newest, good)):
        repo.resolve("latest")
    assert repo.resolve(good)["id"] == good

    time.sleep(1)  # the next backups start in a later second than the damaged one (ids are to the second)
    for prune in (False, True):
        result = run_backup(sqlite_conn_params, repo_path, {"prune": prune, "retention": {"keep_last": 1}})
        assert any("not pruning" in w and newest in w for w in result["warnings"]), result["warnings"]
    assert os.path.exists(repo.manifest_path(newest))
    assert Repository(repo_path).resolve("latest")["id"] == result["backup_id"]


@pytest.mark.parametrize("entry", [["../../../etc/passwd", 10], "0c", [None], ["ab" * 32, "ten"], ["ab" * 32]])
def test_a_malformed_chunk_entry_is_a_clear_error(sqlite_conn_params, repo_path, entry):
    backup_id = run_backup(sqlite_conn_params, repo_path, {"type": "full"})["backup_id"]
    repo = Repository(repo_path)
    _rewrite_manifest(repo, backup_id, lambda m: m["streams"]["database"]["chunks"].insert(0, entry))

    with pytest.raises(RepositoryError, match="stream database: chunk entry 0 is malformed"):
        repo.resolve(backup_id)
    assert "chunk entry 0 is malformed" in repo.damaged_manifests()[backup_id]
    with pytest.raises(RepositoryError, match="latest"):
        repo.resolve("latest")
    # No path is built from it: the chunks of the repository are all still there after a backup.
    chunks = repo.list_chunks()
    run_backup(sqlite_conn_params, repo_path, {"type": "full"})
    assert chunks <= Repository(repo_path).list_chunks()


@pytest.mark.parametrize("content", [b"[1, 2]", b"\xff\xfe not json", b'"a string"'])
def test_a_malformed_lock_file_is_a_clear_error(sqlite_conn_params, repo_path, content):
    run_backup(sqlite_conn_params, repo_path, {"type": "full"})
    with open(os.path.join(repo_path, "lock"), "wb") as handle:
        handle.write(content)
    with pytest.raises(LockedError, match="not a lock record.*remove %s" % os.path.join(repo_path, "lock")):
        run_backup(sqlite_conn_params, repo_path, {"lock_timeout": 0})


def test_a_lock_that_is_a_folder_is_a_clear_error(sqlite_conn_params, repo_path):
    run_backup(sqlite_conn_params, repo_path, {"type": "full"})
    os.mkdir(os.path.join(repo_path, "lock"))
    with pytest.raises(RepositoryError, match="cannot read the lock file"):
        run_backup(sqlite_conn_params, repo_path, {"lock_timeout": 0})


def test_a_check_mode_plan_of_a_secondary_refuses_a_malformed_chunk_id(sqlite_conn_params, repo_path, tmp_path):
    from ansible_collections.bim.wall_system.plugins.module_utils.restore.stage import RestoreError, plan_pull
    backup_id = run_backup(sqlite_conn_params, repo_path, {"type": "full"})["backup_id"]
    _rewrite_manifest(Repository(repo_path), backup_id,
                      lambda m: m["streams"]["database"]["chunks"].insert(0, ["../../../../etc/passwd", 1]))
    staging = str(tmp_path / "staging")
    with pytest.raises(RestoreError, match="chunk entry 0 is malformed"):
        plan_pull({"url": repo_path}, backup_id, staging)
    assert not os.path.exists(staging)


# ------------------------------------------------------------------ oversized chunks
def _zero_bomb(size, declare):
    """A zstd frame of ``size`` zero bytes (a few KiB on disk), with or without its declared size,
    and the SHA-256 name of that content (a valid name in an unkeyed repository)."""
    out, name = io.BytesIO(), hashlib.sha256()
    compressor = zstandard.ZstdCompressor(write_content_size=declare)
    with compressor.stream_writer(out, size=size if declare else -1, closefd=False) as writer:
        block = bytes(1024 * 1024)
        for _step in range(size // len(block)):
            writer.write(block)
            name.update(block)
    return out.getvalue(), name.hexdigest()


def _plant_chunk(repo, chunk_id, frame):
    os.makedirs(os.path.dirname(repo.chunk_path(chunk_id)), exist_ok=True)
    with open(repo.chunk_path(chunk_id), "wb") as handle:
        handle.write(frame)


@pytest.mark.parametrize("declare", [True, False], ids=["declared-size", "no-declared-size"])
def test_a_forged_chunk_larger_than_any_chunk_is_refused_before_it_is_inflated(sqlite_conn_params, repo_path,
                                                                               declare):
    backup_id = run_backup(sqlite_conn_params, repo_path, {"type": "full"})["backup_id"]
    repo = Repository(repo_path)
    # 8 MiB of zeros in a frame of a few KiB, named by its real SHA-256; the manifest lies about
    # its length (1000 bytes, a plausible chunk), so only the frame itself tells its size.
    frame, bomb = _zero_bomb(8 * 1024 * 1024, declare)
    assert len(frame) < 64 * 1024
    _plant_chunk(repo, bomb, frame)

    def add_bomb(manifest):
        manifest["streams"]["database"]["chunks"].insert(0, [bomb, 1000])
        manifest["streams"]["database"]["size"] += 1000
    _rewrite_manifest(repo, backup_id, add_bomb)

    manifest = repo.resolve(backup_id)
    with pytest.raises(CorruptChunkError, match="largest chunk a backup writes \\(%d bytes\\)" % MAX_CHUNK_SIZE) as info:
        repo.open_stream(manifest).read(10)
    assert info.value.chunk_id == bomb
    problems = repo.verify_checksums([manifest])[backup_id]
    assert len(problems) == 1 and bomb in problems[0] and "largest chunk" in problems[0], problems


def test_a_manifest_entry_longer_than_any_chunk_makes_the_manifest_damaged(sqlite_conn_params, repo_path):
    backup_id = run_backup(sqlite_conn_params, repo_path, {"type": "full"})["backup_id"]
    repo = Repository(repo_path)
    first = repo.load_manifest(backup_id)["streams"]["database"]["chunks"][0][0]
    _rewrite_manifest(repo, backup_id, lambda m: m["streams"]["database"]["chunks"].insert(0, [first, 2 ** 40]))

    with pytest.raises(RepositoryError, match="chunk entry 0 gives chunk %s %d bytes, more than the largest chunk"
                       % (first, 2 ** 40)):
        repo.resolve(backup_id)
    assert "largest chunk" in repo.damaged_manifests()[backup_id]
    # The codec refuses such a length on its own too, before it reads the frame.
    with pytest.raises(CorruptChunkError, match="manifest entry gives it %d bytes" % (MAX_CHUNK_SIZE + 1)):
        repo.read_chunk(first, expected_length=MAX_CHUNK_SIZE + 1)


def test_a_chunk_of_the_largest_size_is_read(repo_path):
    repo = Repository(repo_path, create=True)
    data = os.urandom(MAX_CHUNK_SIZE)
    frame = zstandard.ZstdCompressor(write_content_size=False).compress(data)
    _plant_chunk(repo, hashlib.sha256(data).hexdigest(), frame)
    assert repo.read_chunk(hashlib.sha256(data).hexdigest(), expected_length=MAX_CHUNK_SIZE) == data
