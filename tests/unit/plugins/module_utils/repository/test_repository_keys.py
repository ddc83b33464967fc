# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keyed repositories attacked for real: real backups of a real SQLite database, then forged,
flipped, replayed and moved files on disk, wrong keys, rotation, and what an encrypted repository
lets a reader of its files see. The unkeyed counterpart of each forgery is shown to succeed, so
every assertion here can fail."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.repository.backup import backup_summary, run_backup
from ansible_collections.bim.wall_system.plugins.module_utils.repository.copy import copy_backups, parse_target
from ansible_collections.bim.wall_system.plugins.module_utils.repository import keys
from ansible_collections.bim.wall_system.plugins.module_utils.repository.keys import TAG_SIZE
from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import (
    CorruptChunkError, Repository, RepositoryError, manifest_checksum)
from ansible_collections.bim.wall_system.plugins.module_utils.restore.runner import verify_backups
from ansible_collections.bim.wall_system.plugins.module_utils.restore.stage import pull_backup

pytest.importorskip("cryptography")

KEY = "correct horse battery staple 42"
OTHER_KEY = "another operator's key, 2026"


def _backup(params, path, key=KEY, encryption=True, **extra):
    options = {"type": "full", "repository_key": key, "repository_encryption": encryption}
    options.update(extra)
    return run_backup(params, path, options)


def _files(path):
    """{relative path: bytes} of every file below ``path``."""
    out = {}
    for root, _dirs, names in os.walk(path):
        for name in names:
            full = os.path.join(root, name)
            with open(full, "rb") as handle:
                out[os.path.relpath(full, path)] = handle.read()
    return out


def _chunk_files(path):
    return {rel: data for rel, data in _files(path).items() if rel.startswith("chunks" + os.sep)}


def _forge_rows(manifest):
    """The manifest with walls.rows=1 and a recomputed (unkeyed) checksum: what a forger can do."""
    forged = dict(manifest, tables=dict(manifest["tables"], walls=dict(manifest["tables"]["walls"], rows=1)))
    forged["checksum"] = manifest_checksum(forged)
    return json.dumps(forged, indent=1, sort_keys=True).encode("utf-8")


def test_forged_manifest_passes_unkeyed_but_is_rejected_keyed(sqlite_conn_params, tmp_path):
    unkeyed, keyed = str(tmp_path / "unkeyed"), str(tmp_path / "keyed")
    plain_id = run_backup(sqlite_conn_params, unkeyed, {"type": "full"})["backup_id"]
    keyed_id = _backup(sqlite_conn_params, keyed, encryption=False)["backup_id"]

    # Unkeyed: the forgery is accepted (the threat), and the repository warns that it is unauthenticated.
    repo = Repository(unkeyed)
    forged = _forge_rows(repo.load_manifest(plain_id))
    with open(repo.manifest_path(plain_id), "wb") as handle:
        handle.write(forged)
    assert Repository(unkeyed).load_manifest(plain_id)["tables"]["walls"]["rows"] == 1
    assert "unauthenticated" in Repository(unkeyed).warnings[0]

    # Keyed (authenticated only: the JSON is readable, so the forger edits it and keeps the tag).
    repo = Repository(keyed, key=KEY)
    assert repo.warnings == []
    path = repo.manifest_path(keyed_id)
    with open(path, "rb") as handle:
        stored = handle.read()
    manifest = json.loads(stored[:-TAG_SIZE].decode("utf-8"))
    assert manifest["tables"]["walls"]["rows"] > 1
    with open(path, "wb") as handle:
        handle.write(_forge_rows(manifest) + stored[-TAG_SIZE:])
    repo = Repository(keyed, key=KEY)
    with pytest.raises(RepositoryError, match="fails its authentication"):
        repo.load_manifest(keyed_id)
    assert repo.list_backups() == []
    assert keyed_id in repo.damaged_manifests()
    with pytest.raises(Exception, match="fails its authentication"):
        verify_backups(keyed, [keyed_id], repository_key=KEY)


def test_authenticity_is_checked_before_parsing(sqlite_conn_params, repo_path):
    backup_id = _backup(sqlite_conn_params, repo_path)["backup_id"]
    repo = Repository(repo_path, key=KEY)
    manifest = repo.load_manifest(backup_id)
    # Garbage that is neither JSON nor zstd: the authentication check speaks, not the parser.
    with open(repo.manifest_path(backup_id), "wb") as handle:
        handle.write(b"{not json" * 10)
    with pytest.raises(RepositoryError, match="fails its authentication"):
        repo.load_manifest(backup_id)
    chunk_id, length = manifest["streams"]["database"]["chunks"][0]
    with open(repo.chunk_path(chunk_id), "wb") as handle:
        handle.write(b"\x28\xb5\x2f\xfd" + os.urandom(64))
    with pytest.raises(CorruptChunkError, match="fails its authentication"):
        repo.read_chunk(chunk_id, length)


@pytest.mark.parametrize("encryption", [True, False], ids=["encrypted", "authenticated"])
def test_chunk_with_one_flipped_bit_is_rejected(sqlite_conn_params, repo_path, encryption):
    backup_id = _backup(sqlite_conn_params, repo_path, encryption=encryption)["backup_id"]
    repo = Repository(repo_path, key=KEY)
    manifest = repo.load_manifest(backup_id)
    chunk_id, _length = manifest["streams"]["database"]["chunks"][-1]
    path = repo.chunk_path(chunk_id)
    with open(path, "rb") as handle:
        data = bytearray(handle.read())
    assert repo.verify_checksums([manifest]) == {backup_id: []}
    data[len(data) // 2] ^= 0x01
    with open(path, "wb") as handle:
        handle.write(bytes(data))
    problems = repo.verify_checksums([manifest])[backup_id]
    assert problems and "fails its authentication" in problems[0]
    result = verify_backups(repo_path, [backup_id], repository_key=KEY, record=False)
    assert result["passed"] is False


def test_manifest_replayed_from_another_backup_or_repository_is_rejected(sqlite_conn_params, tmp_path):
    first, second = str(tmp_path / "first"), str(tmp_path / "second")
    old_id = _backup(sqlite_conn_params, first)["backup_id"]
    new_id = _backup(sqlite_conn_params, first)["backup_id"]
    repo = Repository(first, key=KEY)
    # An older manifest put in place of the newest one ("latest" would then restore old data).
    shutil.copyfile(repo.manifest_path(old_id), repo.manifest_path(new_id))
    with pytest.raises(RepositoryError, match="fails its authentication"):
        repo.load_manifest(new_id)
    assert [m["id"] for m in repo.list_backups()] == [old_id]

    # Another repository under the same operator key has its own data key: its manifests do not fit.
    other_id = _backup(sqlite_conn_params, second)["backup_id"]
    other = Repository(second, key=KEY)
    shutil.copyfile(other.manifest_path(other_id), repo.manifest_path(other_id))
    with pytest.raises(RepositoryError, match="fails its authentication"):
        repo.load_manifest(other_id)


def test_chunk_moved_under_another_id_is_rejected(sqlite_conn_params, repo_path, tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "app.conf").write_text("listen=8080\n")
    backup_id = _backup(sqlite_conn_params, repo_path, include_paths=[str(tmp_path / "etc")])["backup_id"]
    repo = Repository(repo_path, key=KEY)
    streams = repo.load_manifest(backup_id)["streams"]
    (first, _len1), (second, len2) = streams["files"]["chunks"][0], streams["database"]["chunks"][0]
    shutil.copyfile(repo.chunk_path(first), repo.chunk_path(second))
    with pytest.raises(CorruptChunkError, match="fails its authentication") as info:
        repo.read_chunk(second, len2)
    assert info.value.chunk_id == second


def test_keys_open_only_their_repository(sqlite_conn_params, tmp_path):
    keyed, unkeyed = str(tmp_path / "keyed"), str(tmp_path / "unkeyed")
    _backup(sqlite_conn_params, keyed)
    run_backup(sqlite_conn_params, unkeyed, {"type": "full"})
    with pytest.raises(RepositoryError, match="does not open") as info:
        Repository(keyed, key=OTHER_KEY)
    assert OTHER_KEY not in str(info.value)
    with pytest.raises(RepositoryError, match="is keyed .*give its key"):
        Repository(keyed)
    with pytest.raises(RepositoryError, match="is unkeyed .*but a repository key was given"):
        Repository(unkeyed, key=KEY)
    with pytest.raises(RepositoryError, match="at least 16 characters"):
        run_backup(sqlite_conn_params, str(tmp_path / "short"), {"repository_key": "short"})
    with open(os.path.join(keyed, "config.json")) as handle:
        assert json.load(handle)["format_version"] == 2
    with open(os.path.join(unkeyed, "config.json")) as handle:
        assert json.load(handle)["format_version"] == 1


def test_mode_cannot_be_downgraded_in_config(sqlite_conn_params, repo_path):
    """Turning encryption off in config.json does not make the reader trust plaintext."""
    _backup(sqlite_conn_params, repo_path)
    config_path = os.path.join(repo_path, "config.json")
    key_path = os.path.join(repo_path, "key.json")
    for path in (config_path, key_path):
        with open(path) as handle:
            document = json.load(handle)
        document["mode"] = "authenticated"
        with open(path, "w") as handle:
            json.dump(document, handle)
    with pytest.raises(RepositoryError, match="does not open"):
        Repository(repo_path, key=KEY)


def test_rotation_rewraps_without_touching_chunks(sqlite_conn_params, repo_path):
    backup_id = _backup(sqlite_conn_params, repo_path)["backup_id"]
    before = _files(repo_path)
    result = _backup(sqlite_conn_params, repo_path, new_repository_key=OTHER_KEY, key=KEY)
    assert result["key_rotated"] is True
    after = _files(repo_path)
    for rel, data in before.items():
        if rel.startswith(("chunks", "manifests")):
            assert after[rel] == data, rel  # byte-identical
    assert after["key.json"] != before["key.json"]
    with pytest.raises(RepositoryError, match="does not open"):
        Repository(repo_path, key=KEY)
    repo = Repository(repo_path, key=OTHER_KEY)
    manifests = repo.list_backups()
    assert [m["id"] for m in manifests] == [backup_id, result["backup_id"]]
    assert repo.verify_checksums(manifests) == {backup_id: [], result["backup_id"]: []}


def test_encrypted_repository_holds_no_plaintext(sqlite_conn_params, tmp_path):
    marker = "bim-marker-%s" % uuid.uuid4().hex
    folder = tmp_path / ("config-%s" % marker)
    folder.mkdir()
    (folder / "settings.ini").write_text("token=%s\n%s\n" % (marker, os.urandom(2048).hex()))
    content = (folder / "settings.ini").read_bytes()
    plain, encrypted = str(tmp_path / "plain"), str(tmp_path / "encrypted")
    run_backup(sqlite_conn_params, plain, {"type": "full", "include_paths": [str(folder)]})
    _backup(sqlite_conn_params, encrypted, include_paths=[str(folder)])

    def holding(path, needle):
        return sorted(rel for rel, data in _files(path).items() if needle in data)

    # Unkeyed: the marker is in a chunk (the tar) and in the manifest (include_paths).
    assert holding(plain, marker.encode())
    assert any(rel.startswith("manifests") for rel in holding(plain, marker.encode()))
    assert holding(encrypted, marker.encode()) == []
    assert holding(encrypted, b'"walls"') == []  # table names are in the manifest: ciphertext
    # Keyed chunk names reveal nothing: no stored name is the SHA-256 of a known content.
    names = {os.path.basename(rel) for rel in _chunk_files(encrypted)}
    assert hashlib.sha256(content).hexdigest() not in names
    repo = Repository(encrypted, key=KEY)
    manifest = repo.list_backups()[0]
    for chunk_id, _length in manifest["streams"]["database"]["chunks"]:
        assert hashlib.sha256(repo.read_chunk(chunk_id)).hexdigest() != chunk_id
    assert repo.verify_checksums([manifest]) == {manifest["id"]: []}


def test_unkeyed_repository_stays_readable_and_warns(sqlite_conn_params, repo_path):
    backup_id = run_backup(sqlite_conn_params, repo_path, {"type": "full"})["backup_id"]
    result = run_backup(sqlite_conn_params, repo_path, {"type": "incremental"})
    assert result["protection"] == "unkeyed" and "unauthenticated" in result["warnings"][0]
    summary = backup_summary(Repository(repo_path))
    assert summary["count"] == 2 and "unauthenticated" in summary["warnings"][0]
    verified = verify_backups(repo_path, [backup_id], record=False)
    assert verified["passed"] and "unauthenticated" in verified["warnings"][0]
    keyed = _backup(sqlite_conn_params, repo_path + "-keyed")
    assert keyed["protection"] == "encrypted" and keyed["warnings"] == []


def test_copies_and_secondary_pull_keep_the_key(sqlite_conn_params, tmp_path):
    primary, secondary, staging = str(tmp_path / "primary"), str(tmp_path / "secondary"), str(tmp_path / "staging")
    first = _backup(sqlite_conn_params, primary, copy_to=[secondary])
    assert first["storage_locations"][1]["status"] == "ok", first["storage_locations"]
    assert _files(secondary)["key.json"] == _files(primary)["key.json"]
    with pytest.raises(RepositoryError, match="is keyed"):
        Repository(secondary)
    # Rotation on the primary reaches the copy with the next backup; the old key opens neither.
    second = _backup(sqlite_conn_params, primary, copy_to=[secondary], new_repository_key=OTHER_KEY)
    assert second["storage_locations"][1]["status"] == "ok", second["storage_locations"]
    target = Repository(secondary, key=OTHER_KEY)
    assert [m["id"] for m in target.list_backups()] == [first["backup_id"], second["backup_id"]]
    with pytest.raises(RepositoryError, match="does not open"):
        Repository(secondary, key=KEY)
    # Disaster recovery pulls from the copy into a staging repository that is the same keyed repository.
    pulled = pull_backup({"url": secondary}, "latest", staging, key=OTHER_KEY)
    assert pulled["backup_id"] == second["backup_id"]
    local = Repository(staging, key=OTHER_KEY)
    assert local.verify_checksums(local.list_backups()) == {second["backup_id"]: []}
    # A forged manifest on the copy is passed over: the pull takes the newest authentic one.
    with open(target.manifest_path(second["backup_id"]), "rb") as handle:
        genuine = handle.read()
    with open(target.manifest_path(second["backup_id"]), "wb") as handle:
        handle.write(genuine[:-1] + bytes([genuine[-1] ^ 1]))
    pulled = pull_backup({"url": secondary}, "latest", str(tmp_path / "staging2"), key=OTHER_KEY)
    assert pulled["backup_id"] == first["backup_id"]


def test_keyed_copy_refuses_a_target_holding_another_repository(sqlite_conn_params, tmp_path):
    primary, other = str(tmp_path / "primary"), str(tmp_path / "other")
    _backup(sqlite_conn_params, other)
    _backup(sqlite_conn_params, primary)
    repo = Repository(primary, key=KEY)
    status = copy_backups(repo, parse_target(other), repo.list_backups())
    assert status["status"] == "failed" and "holds another repository" in status["error"]


def test_a_run_derives_the_key_once_per_key_file(sqlite_conn_params, tmp_path):
    """A backup with a copy opens two folders holding the same key.json: scrypt runs once. Another
    key file (a rotation writes a new salt) or another key is derived anew, and a wrong key still fails."""
    primary, secondary = str(tmp_path / "primary"), str(tmp_path / "secondary")
    _backup(sqlite_conn_params, primary, copy_to=[secondary])
    keys._scrypt.cache_clear()

    result = _backup(sqlite_conn_params, primary, copy_to=[secondary])

    assert result["storage_locations"][1]["status"] == "ok", result["storage_locations"]
    assert keys._scrypt.cache_info().misses == 1
    Repository(secondary, key=KEY)
    assert keys._scrypt.cache_info().misses == 1
    with pytest.raises(RepositoryError, match="does not open"):
        Repository(secondary, key=OTHER_KEY)
    assert keys._scrypt.cache_info().misses == 2
    Repository(primary, key=KEY).rotate_key(OTHER_KEY)
    Repository(primary, key=OTHER_KEY)
    assert keys._scrypt.cache_info().misses == 3  # the rotation's new salt, derived by the wrap only
