# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Copies to secondary repositories: a local folder, and SFTP through a real sshd on 127.0.11.1
(fixture ``sshd``, tests/unit/sshd_server.py) that the test cuts off mid-copy."""

from __future__ import annotations

import os
import threading
import time

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.repository.backup import run_backup
from ansible_collections.bim.wall_system.plugins.module_utils.repository.copy import parse_target
from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import Repository, RepositoryError


@pytest.fixture
def payload(tmp_path):
    """Incompressible application files: enough chunks that a cut lands mid-copy."""
    folder = tmp_path / "app-config"
    folder.mkdir()
    for index in range(6):
        (folder / ("blob%d.bin" % index)).write_bytes(os.urandom(1024 * 1024))
    return str(folder)


def test_copy_to_local_folder(sqlite_conn_params, repo_path, tmp_path):
    target = str(tmp_path / "secondary")
    result = run_backup(sqlite_conn_params, repo_path, {"copy_to": [{"url": target}]})
    status = result["storage_locations"][1]
    assert status["status"] == "ok" and status["copied_backups"] == [result["backup_id"]]
    copy = Repository(target)
    assert copy.verify_checksums(copy.list_backups()) == {result["backup_id"]: []}
    again = run_backup(sqlite_conn_params, repo_path, {"copy_to": [{"url": target}]})
    assert again["storage_locations"][1]["copied_backups"] == [again["backup_id"]]


def test_retention_applies_to_the_copy_too(sqlite_conn_params, repo_path, tmp_path, repository_sound):
    import sqlite3
    target = str(tmp_path / "secondary")
    ids = []
    for index in range(3):
        with sqlite3.connect(sqlite_conn_params.sqlite_path) as conn:
            conn.execute("UPDATE walls SET thickness_mm = thickness_mm + ? WHERE id = (SELECT min(id) FROM walls)",
                         (index + 1,))
        result = run_backup(sqlite_conn_params, repo_path, {"copy_to": [{"url": target}], "retention": {"keep_last": 2}})
        ids.append(result["backup_id"])
    status = result["storage_locations"][1]
    assert status["status"] == "ok" and status["expired"] == [ids[0]] and status["pruned_chunks"] >= 1
    copy = Repository(target)
    assert [m["id"] for m in copy.list_backups()] == ids[1:]
    needed = set()
    for manifest in copy.list_backups():
        needed.update(Repository.manifest_chunks(manifest))
    assert copy.list_chunks() == needed
    repository_sound(target)


@pytest.mark.parametrize("url", ["relative/path", "sftp://host-only", "sftp://u:secret@h/x", "ftp://h/x"])
def test_bad_copy_urls(url):
    with pytest.raises(RepositoryError) as info:
        parse_target({"url": url})
    assert "secret" not in str(info.value)


def test_sftp_copy_cut_mid_copy_then_completed(sqlite_conn_params, repo_path, sshd, payload, tmp_path):
    remote = str(tmp_path / "remote-repo")
    copy_to = [{"url": sshd.url(remote), "key_file": sshd.key, "known_hosts_file": str(tmp_path / "known_hosts")}]
    chunk_dir = os.path.join(remote, "chunks")
    stop = threading.Event()

    def cut_when_copying():
        while not stop.is_set():
            count = sum(len(files) for _root, _dirs, files in os.walk(chunk_dir)) if os.path.isdir(chunk_dir) else 0
            if count >= 5:
                sshd.cut()
                return
            time.sleep(0.005)

    watcher = threading.Thread(target=cut_when_copying)
    watcher.start()
    try:
        first = run_backup(sqlite_conn_params, repo_path, {"include_paths": [payload], "copy_to": copy_to})
    finally:
        stop.set()
        watcher.join()
    # the primary backup succeeded; the copy is reported failed with its reason
    primary, copy = first["storage_locations"]
    assert primary["status"] == "ok"
    assert copy["status"] == "failed" and copy["error"], copy
    assert first["copy_failed"] is True
    repo = Repository(repo_path)
    assert repo.verify_checksums([repo.load_manifest(first["backup_id"])]) == {first["backup_id"]: []}
    # the target lists no backup: no manifest reached it
    assert os.listdir(os.path.join(remote, "manifests")) == []
    # the storage host comes back; the next run completes the earlier copy too
    sshd.start()
    second = run_backup(sqlite_conn_params, repo_path, {"include_paths": [payload], "copy_to": copy_to})
    status = second["storage_locations"][1]
    assert status["status"] == "ok", status
    assert status["copied_backups"] == [first["backup_id"], second["backup_id"]]
    target = Repository(remote)
    manifests = target.list_backups()
    assert [m["id"] for m in manifests] == [first["backup_id"], second["backup_id"]]
    assert target.verify_checksums(manifests) == {first["backup_id"]: [], second["backup_id"]: []}
    assert os.listdir(os.path.join(remote, "tmp")) == []
    # retention reaches the storage host too (over SFTP): keep_last 1 leaves the newest backup only
    third = run_backup(sqlite_conn_params, repo_path, {"copy_to": copy_to, "retention": {"keep_last": 1}})
    status = third["storage_locations"][1]
    assert status["status"] == "ok", status
    assert sorted(status["expired"]) == sorted([first["backup_id"], second["backup_id"]])
    assert [m["id"] for m in target.list_backups()] == [third["backup_id"]]
    assert target.verify_checksums(target.list_backups()) == {third["backup_id"]: []}
    assert target.list_chunks() == set(Repository.manifest_chunks(target.load_manifest(third["backup_id"])))
    for root, dirs, files in os.walk(remote):
        for name in dirs:
            assert os.stat(os.path.join(root, name)).st_mode & 0o777 == 0o700
        for name in files:
            assert os.stat(os.path.join(root, name)).st_mode & 0o777 == 0o600


def test_keyed_sftp_copy_then_pull_with_the_key(sqlite_conn_params, repo_path, sshd, tmp_path):
    """A keyed repository copied over SFTP: the copy gets the key file, holds only what the primary
    sealed, prunes there with its manifests authenticated, and disaster recovery pulls from it."""
    pytest.importorskip("cryptography")
    from ansible_collections.bim.wall_system.plugins.module_utils.restore.stage import pull_backup
    key = "sftp copy repository key 2026"
    remote = str(tmp_path / "remote-keyed")
    target = {"url": sshd.url(remote), "key_file": sshd.key, "known_hosts_file": str(tmp_path / "known_hosts")}
    options = {"repository_key": key, "copy_to": [target], "retention": {"keep_last": 1}}
    first = run_backup(sqlite_conn_params, repo_path, options)
    second = run_backup(sqlite_conn_params, repo_path, dict(options, type="full"))
    status = second["storage_locations"][1]
    assert status["status"] == "ok" and status["expired"] == [first["backup_id"]], status
    with open(os.path.join(repo_path, "key.json"), "rb") as mine, open(os.path.join(remote, "key.json"), "rb") as theirs:
        assert mine.read() == theirs.read()
    copy = Repository(remote, key=key)
    assert copy.verify_checksums(copy.list_backups()) == {second["backup_id"]: []}
    pulled = pull_backup(target, "latest", str(tmp_path / "staging"), key=key)
    assert pulled["backup_id"] == second["backup_id"] and pulled["fetched_chunks"] >= 1
    with pytest.raises(Exception, match="does not open"):
        pull_backup(target, "latest", str(tmp_path / "staging-2"), key="not the repository key!!")
