# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The repository on its own: ids, modes, locks, corruption, verification records, prune."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.bim.wall_system.plugins.module_utils.repository.backup import run_backup
from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import (
    CorruptChunkError, LockedError, Repository, RepositoryError, check_backup_id, manifest_format_version, new_backup_id)
from ansible_collections.bim.wall_system.plugins.module_utils.repository.writer import ChunkSession


def _store(repo, blobs, backup_type="full", verify_reused=False, format_version=1):
    """Write a manifest naming ``blobs`` (list of bytes) as the database stream."""
    session = ChunkSession(repo, verify_reused=verify_reused)
    chunks, size = session.store_stream(iter(blobs))
    backup_id = new_backup_id()
    manifest = {"format_version": format_version, "id": backup_id, "type": backup_type, "parent_id": None,
                "engine": "sqlite", "started": "2026-01-01T00:00:00+00:00",
                "finished": "2026-01-01T00:00:%02d+00:00" % (len(repo.backup_ids()) % 60),
                "source_bytes": size, "tables": {},
                "streams": {"database": {"kind": "test", "size": size, "chunks": chunks}}}
    return repo.write_manifest(manifest), session


@pytest.mark.parametrize("bad", ["../etc/passwd", "a/b", "..", "", "20261127T124501Z-3fa9c2d1/..",
                                 "20261127T124501Z-3FA9C2D1", "latest; rm -rf /", "x" * 300, None])
def test_bad_ids_rejected(repo_path, bad):
    repo = Repository(repo_path, create=True)
    with pytest.raises(RepositoryError) as info:
        repo.load_manifest(bad)
    assert "id" in str(info.value)


def test_path_characters_named_in_message():
    with pytest.raises(RepositoryError, match="path characters"):
        check_backup_id("../../x")


def test_unknown_id_rejected_clearly(repo_path):
    repo = Repository(repo_path, create=True)
    with pytest.raises(RepositoryError, match="unknown backup id 20200101T000000Z-00000000"):
        repo.load_manifest("20200101T000000Z-00000000")
    with pytest.raises(RepositoryError, match="no backup"):
        repo.resolve("latest")
    with pytest.raises(RepositoryError, match="no verified backup"):
        repo.resolve("latest_verified")


def test_not_a_repository(tmp_path):
    with pytest.raises(RepositoryError, match="not a backup repository"):
        Repository(str(tmp_path))


def test_modes_are_owner_only(sqlite_conn_params, repo_path, modes_of, tmp_path):
    old = os.umask(0o022)  # a permissive umask of the caller must not leak into the repository
    try:
        conf = tmp_path / "conf.yml"
        conf.write_text("a: 1\n")
        result = run_backup(sqlite_conn_params, repo_path, {"include_paths": [str(conf)]})
        Repository(repo_path).record_verification(result["backup_id"], "checksums", True, [], {})
        target = str(tmp_path / "copy")
        run_backup(sqlite_conn_params, repo_path, {"copy_to": [{"url": target}]})
    finally:
        os.umask(old)
    for path in (repo_path, target):
        entries = modes_of(path)
        assert len(entries) > 8
        for name, mode, is_dir in entries:
            assert mode == (0o700 if is_dir else 0o600), (name, oct(mode))


def test_manifest_checksum_detects_edit(repo_path):
    repo = Repository(repo_path, create=True)
    manifest = _store(repo, [b"a" * 1000])[0]
    path = repo.manifest_path(manifest["id"])
    data = json.load(open(path))
    data["source_bytes"] = 1
    with open(path, "w") as handle:
        json.dump(data, handle)
    with pytest.raises(RepositoryError, match="fails its checksum"):
        repo.load_manifest(manifest["id"])
    assert repo.list_backups() == []
    assert manifest["id"] in repo.damaged_manifests()
    # prune removes nothing (the damaged manifest's chunks cannot be told from orphans) and says so
    chunks = repo.list_chunks()
    assert "not pruning" in repo.prune()["skipped"] and repo.list_chunks() == chunks
    assert any("not pruning" in w for w in repo.warnings)


def test_manifest_versions_one_to_five_are_read_and_a_newer_one_refused(repo_path):
    repo = Repository(repo_path, create=True)
    for version in (1, 2, 3, 4, 5):
        manifest = _store(repo, [b"v%d" % version * 100], format_version=version)[0]
        assert repo.load_manifest(manifest["id"])["format_version"] == version
    newer = _store(repo, [b"v6" * 100], format_version=6)[0]
    with pytest.raises(RepositoryError, match=r"manifest format version 6; this release reads \[1, 2, 3, 4, 5\]"):
        repo.load_manifest(newer["id"])


def test_manifest_version_two_only_when_a_table_records_its_digest_form():
    assert manifest_format_version({}) == 1
    assert manifest_format_version({"walls": {"rows": 1, "digest": "ab"}}) == 1  # SQLite
    assert manifest_format_version({"walls": {"rows": 1, "digest": "ab", "digest_form": "copy-binary"},
                                    "logs": {"rows": 1, "digest": "cd"}}) == 2
    # the forms taken from the backup's own read: version 3, which a version-2 release refuses
    for form in ("copy-rows", "sqlite-pages"):
        assert manifest_format_version({"walls": {"rows": 1, "digest": "ab", "digest_form": form},
                                        "logs": {"rows": 1, "digest": "cd", "digest_form": "copy-binary"}}) == 3
    # the rows' digest in dump order alone (no multiset): version 4, which a version-3 release refuses
    assert manifest_format_version({"walls": {"rows": 1, "digest": "ab", "digest_form": "copy-ordered"},
                                    "logs": {"rows": 1, "digest": "cd", "digest_form": "copy-rows"}}) == 4
    # the dump's framed data: version 5, which a version-4 release refuses
    assert manifest_format_version({"walls": {"rows": 1, "digest": "ab", "digest_form": "dump-framed"},
                                    "logs": {"rows": 1, "digest": "cd", "digest_form": "copy-binary"}}, {
        "database": {"chunker": {"name": "fastcdc2020", "max_size": 1024 * 1024}}}) == 5
    # and so are chunks larger than a version-3 reader accepts, whatever the digests
    cdc = {"database": {"chunker": {"name": "fastcdc2020", "max_size": 1024 * 1024}}}
    assert manifest_format_version({}, cdc) == 4
    assert manifest_format_version({}, {"database": {"chunker": {"name": "fixed", "size": 262144}}}) == 1


def test_open_stream_names_corrupt_chunk(repo_path):
    repo = Repository(repo_path, create=True)
    blobs = [os.urandom(5000), os.urandom(7000), os.urandom(3000)]
    manifest = _store(repo, blobs)[0]
    assert repo.open_stream(manifest).read() == b"".join(blobs)
    assert repo.stream_size(manifest, "database") == 15000
    victim = manifest["streams"]["database"]["chunks"][1][0]
    import zstandard
    with open(repo.chunk_path(victim), "wb") as handle:
        handle.write(zstandard.ZstdCompressor().compress(b"evil" * 100))
    reader = repo.open_stream(manifest)
    assert reader.read(5000) == blobs[0]
    with pytest.raises(CorruptChunkError) as info:
        reader.read(10)
    assert info.value.chunk_id == victim
    problems = repo.verify_checksums([manifest])
    assert len(problems[manifest["id"]]) == 1 and victim in problems[manifest["id"]][0]


def test_verify_reads_shared_chunk_once(repo_path, monkeypatch):
    repo = Repository(repo_path, create=True)
    shared = os.urandom(4000)
    m1 = _store(repo, [shared, os.urandom(100)])[0]
    m2, s2 = _store(repo, [shared, os.urandom(200)])
    assert s2.stats["reused_chunks"] == 1 and s2.stats["new_chunks"] == 1
    reads = []
    real = Repository.read_chunk

    def counting(self, chunk_id, expected_length=None):
        reads.append(chunk_id)
        return real(self, chunk_id, expected_length)

    monkeypatch.setattr(Repository, "read_chunk", counting)
    problems = repo.verify_checksums([m1, m2])
    assert problems == {m1["id"]: [], m2["id"]: []}
    assert len(reads) == len(set(reads)) == 3


def test_full_reverifies_and_repairs_reused_chunk(repo_path):
    repo = Repository(repo_path, create=True)
    blob = os.urandom(10000)
    first = _store(repo, [blob])[0]
    chunk_id = first["streams"]["database"]["chunks"][0][0]
    with open(repo.chunk_path(chunk_id), "wb") as handle:
        handle.write(b"garbage")
    incremental, session = _store(repo, [blob], verify_reused=False)
    assert session.stats["repaired_chunks"] == 0
    full, session = _store(repo, [blob], verify_reused=True)
    assert session.stats["repaired_chunks"] == 1
    assert repo.read_chunk(chunk_id) == blob
    assert repo.verify_checksums([first, incremental, full]) == {first["id"]: [], incremental["id"]: [], full["id"]: []}


def test_verification_records(repo_path):
    repo = Repository(repo_path, create=True)
    m1 = _store(repo, [b"x" * 100])[0]
    m2 = _store(repo, [b"y" * 100])[0]
    assert repo.verification_state(m1["id"]) is None
    repo.record_verification(m1["id"], "restore", True, [], {"rto_s": 1.5})
    repo.record_verification(m2["id"], "checksums", False, ["chunk x missing"], {})
    assert repo.verification_state(m1["id"])["passed"] is True
    assert repo.verification_state(m2["id"])["problems"] == ["chunk x missing"]
    assert repo.resolve("latest_verified")["id"] == m1["id"]
    assert repo.resolve("latest")["id"] == m2["id"]
    assert repo.resolve(m1["id"])["id"] == m1["id"]
    with pytest.raises(RepositoryError):
        repo.record_verification("../x", "restore", True, [], {})
    # the manifest itself is untouched (immutable)
    assert repo.load_manifest(m1["id"]) == m1


def test_lock_exclusive_and_message(repo_path):
    repo = Repository(repo_path, create=True)
    with repo.lock("backup"):
        info = json.load(open(repo.lock_path))
        assert info["pid"] == os.getpid() and info["host"] == socket.gethostname()
        with pytest.raises(LockedError) as err:
            with Repository(repo_path).lock("prune", wait=0):
                pass
        assert "locked by pid %d" % os.getpid() in str(err.value) and "backup" in str(err.value)
    assert not os.path.exists(repo.lock_path)


def test_lock_waits_for_holder(repo_path):
    repo = Repository(repo_path, create=True)
    held = threading.Event()
    release = threading.Event()

    def holder():
        with Repository(repo_path).lock("holder"):
            held.set()
            release.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    held.wait(5)
    threading.Timer(0.5, release.set).start()
    with repo.lock("waiter", wait=30):
        assert json.load(open(repo.lock_path))["purpose"] == "waiter"
    thread.join()


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_lock_of_dead_process_is_cleared(repo_path):
    repo = Repository(repo_path, create=True)
    with open(repo.lock_path, "w") as handle:
        json.dump({"pid": _dead_pid(), "host": socket.gethostname(), "time": "2026-01-01T00:00:00+00:00",
                   "purpose": "backup"}, handle)
    with repo.lock("backup", wait=0):
        assert json.load(open(repo.lock_path))["pid"] == os.getpid()


def test_lock_is_never_visible_without_its_content(repo_path):
    """A taker killed at any moment leaves no lock or a complete one: readers never see it empty."""
    repo = Repository(repo_path, create=True)
    seen_empty = []
    stop = threading.Event()

    def reader():
        while not stop.is_set():
            raw = repo._read_lock()[0]
            if raw is not None and not raw:
                seen_empty.append(True)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for _attempt in range(300):
            with repo.lock("backup"):
                pass
    finally:
        stop.set()
        thread.join()
    assert not seen_empty
    assert [n for n in os.listdir(repo_path) if n.startswith(".lock.")] == []


def test_temp_lock_file_of_a_killed_taker_is_cleaned(repo_path):
    repo = Repository(repo_path, create=True)
    dead = os.path.join(repo_path, ".lock.%d.0123456789ab.tmp" % _dead_pid())
    live = os.path.join(repo_path, ".lock.%d.0123456789ab.tmp" % os.getpid())
    for path in (dead, live):
        with open(path, "wb") as handle:
            handle.write(b"{}")
    with repo.lock("backup"):
        repo.clean_tmp()
    assert not os.path.exists(dead)
    assert os.path.exists(live)  # a live process may be about to link it


def test_lock_of_live_process_or_other_host_is_kept(repo_path):
    repo = Repository(repo_path, create=True)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        for info in ({"pid": sleeper.pid, "host": socket.gethostname()},
                     {"pid": _dead_pid(), "host": "some-other-host"}):
            info.update(time="2026-01-01T00:00:00+00:00", purpose="backup")
            with open(repo.lock_path, "w") as handle:
                json.dump(info, handle)
            with pytest.raises(LockedError, match="locked by pid %d on host %s" % (info["pid"], info["host"])):
                with repo.lock("backup", wait=0.3):
                    pass
    finally:
        sleeper.kill()
        sleeper.wait()


def test_racing_stale_lock_clearers_get_one_winner(repo_path, collection_env):
    repo = Repository(repo_path, create=True)
    with open(repo.lock_path, "w") as handle:
        json.dump({"pid": _dead_pid(), "host": socket.gethostname(), "time": "x", "purpose": "x"}, handle)
    # threads share a pid: processes make the real race (PYTHONPATH is inherited)
    script = ("import sys, time, os\n"
              "from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import Repository\n"
              "with Repository(sys.argv[1]).lock('race', wait=30):\n"
              "    marker = os.path.join(sys.argv[1], 'inside')\n"
              "    fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)\n"
              "    time.sleep(0.05)\n"
              "    os.close(fd); os.unlink(marker)\n")
    procs = [subprocess.Popen([sys.executable, "-c", script, repo_path], stderr=subprocess.PIPE, env=collection_env)
             for _i in range(6)]
    for proc in procs:
        err = proc.communicate(timeout=60)[1]
        assert proc.returncode == 0, err.decode()  # O_EXCL on the marker fails on any overlap


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_prune_never_deletes_a_referenced_chunk(tmp_path_factory, data):
    repo = Repository(str(tmp_path_factory.mktemp("prune") / "repo"), create=True)
    pool = [bytes([i]) * (50 + i) for i in range(12)]
    backups = data.draw(st.lists(st.lists(st.sampled_from(pool), min_size=1, max_size=6), min_size=1, max_size=6))
    manifests = [_store(repo, blobs)[0] for blobs in backups]
    # some crashed run left chunks no manifest names
    orphans = data.draw(st.lists(st.binary(min_size=1, max_size=64), max_size=4))
    ChunkSession(repo).store_stream(iter(orphans))
    forget = data.draw(st.sets(st.sampled_from([m["id"] for m in manifests])))
    for backup_id in forget:
        repo.remove_backup(backup_id)
    remaining = [m for m in manifests if m["id"] not in forget]
    repo.prune()
    needed = set()
    for manifest in remaining:
        needed.update(Repository.manifest_chunks(manifest))
    assert repo.list_chunks() == needed
    for manifest in remaining:
        blobs = backups[manifests.index(manifest)]
        assert repo.open_stream(manifest).read() == b"".join(blobs)


@pytest.mark.parametrize("workers", [1, 3])
def test_parallel_stream_reader_keeps_order_and_names_corrupt_chunk(repo_path, workers):
    repo = Repository(repo_path, create=True)
    blobs = [os.urandom(1000 + 37 * n) for n in range(40)]
    manifest = _store(repo, blobs)[0]
    with repo.open_stream(manifest, workers=workers) as reader:
        assert b"".join(iter(lambda: reader.read(4096), b"")) == b"".join(blobs)
    chunks = manifest["streams"]["database"]["chunks"]
    index = len(chunks) * 3 // 4
    victim = chunks[index][0]
    import zstandard
    with open(repo.chunk_path(victim), "wb") as handle:
        handle.write(zstandard.ZstdCompressor().compress(b"evil" * 100))
    with repo.open_stream(manifest, workers=workers) as reader:
        good = sum(length for _chunk, length in chunks[:index])
        assert reader.read(good) == b"".join(blobs)[:good]  # chunks before the damage arrive intact
        with pytest.raises(CorruptChunkError) as info:
            reader.read(1)
    assert info.value.chunk_id == victim
