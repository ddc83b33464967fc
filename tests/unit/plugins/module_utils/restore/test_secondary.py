# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A secondary repository (a local path, and SFTP to a real sshd): the check-mode plan
of a fetch reads it without writing anything and names exactly what the fetch then brings."""

from __future__ import annotations

import os
import shutil

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import Repository
from ansible_collections.bim.wall_system.plugins.module_utils.restore import runner
from ansible_collections.bim.wall_system.plugins.module_utils.restore.errors import RestoreError
from ansible_collections.bim.wall_system.plugins.module_utils.restore.stage import plan_pull, pull_backup


def _stored_bytes(repo_path, manifest):
    repo = Repository(repo_path)
    return sum(repo.chunk_stored_size(c) for c in Repository.manifest_chunks(manifest))


def test_plan_names_what_the_pull_fetches_and_writes_nothing(rs_sqlite_params, rs_repo, tmp_path, take_backup,
                                                             change_data):
    take_backup(rs_sqlite_params, rs_repo)
    change_data(rs_sqlite_params)
    latest = take_backup(rs_sqlite_params, rs_repo, type="incremental")
    manifest = Repository(rs_repo).load_manifest(latest["backup_id"])
    staging = str(tmp_path / "staging")

    chosen, planned = plan_pull({"url": rs_repo}, "latest", staging)

    assert not os.path.exists(staging)
    assert chosen == manifest
    assert planned["backup_id"] == latest["backup_id"]
    assert planned["fetch_chunks"] == len(Repository.manifest_chunks(manifest)) and planned["reused_chunks"] == 0
    assert planned["fetch_bytes"] == _stored_bytes(rs_repo, manifest)

    pulled = pull_backup({"url": rs_repo}, "latest", staging)
    assert (pulled["backup_id"], pulled["fetched_chunks"], pulled["fetched_bytes"]) == (
        planned["backup_id"], planned["fetch_chunks"], planned["fetch_bytes"])
    _chosen, again = plan_pull({"url": rs_repo}, latest["backup_id"], staging)
    assert again["fetch_chunks"] == 0 and again["fetch_bytes"] == 0
    assert again["reused_chunks"] == planned["fetch_chunks"]


def test_secondary_restore_plan_counts_the_fetch_in_the_free_space(rs_sqlite_params, rs_repo, rs_state, tmp_path,
                                                                   take_backup):
    backup = take_backup(rs_sqlite_params, rs_repo)
    os.unlink(rs_sqlite_params.sqlite_path)  # the host lost its database, and its primary repository
    staging = str(tmp_path / "staging")

    plan = runner.plan_secondary_restore(rs_sqlite_params, {"url": rs_repo}, "latest", staging, state_dir=rs_state)

    manifest = Repository(rs_repo).load_manifest(backup["backup_id"])
    assert plan["backup_id"] == backup["backup_id"] and plan["fits"] is True
    assert plan["live_exists"] is False
    assert plan["restored_bytes"] == int(manifest["streams"]["database"]["size"])
    assert plan["bytes_to_read"] == plan["secondary"]["fetch_bytes"] > 0
    labels = [label for row in plan["space"] for label in row["labels"]]
    assert "fetch from the secondary repository" in labels
    assert not os.path.exists(staging) and not os.path.exists(rs_sqlite_params.sqlite_path)


def test_unknown_backup_in_secondary_is_a_clear_error(rs_sqlite_params, rs_repo, tmp_path, take_backup):
    take_backup(rs_sqlite_params, rs_repo)
    with pytest.raises(RestoreError, match="is not in secondary repository"):
        plan_pull({"url": rs_repo}, "20200101T000000Z-00000000", str(tmp_path / "staging"))
    with pytest.raises(RestoreError, match="does not exist"):
        plan_pull({"url": str(tmp_path / "nowhere")}, "latest", str(tmp_path / "staging"))


def test_chunk_missing_in_the_secondary_is_named(rs_sqlite_params, rs_repo, tmp_path, take_backup):
    backup = take_backup(rs_sqlite_params, rs_repo)
    chunk_id = sorted(Repository.manifest_chunks(Repository(rs_repo).load_manifest(backup["backup_id"])))[0]
    os.unlink(os.path.join(rs_repo, "chunks", chunk_id[:2], chunk_id))
    with pytest.raises(RestoreError, match="chunk %s is missing in the secondary repository" % chunk_id):
        plan_pull({"url": rs_repo}, "latest", str(tmp_path / "staging"))


def test_sftp_secondary_is_trusted_on_first_use_and_refused_when_its_key_changes(rs_sqlite_params, rs_repo, tmp_path,
                                                                                 take_backup, sshd):
    """The fetch of disaster recovery from an SFTP secondary: the check-mode plan records nothing,
    the fetch records the key, and a host that answers with another key is refused by both."""
    remote = str(tmp_path / "secondary")
    known_hosts = str(tmp_path / "known_hosts")
    entry = {"url": sshd.url(remote), "key_file": sshd.key, "known_hosts_file": known_hosts}
    backup = take_backup(rs_sqlite_params, rs_repo, copy_to=[dict(entry, known_hosts_file=str(tmp_path / "kh-backup"))])
    assert backup["storage_locations"][1]["status"] == "ok"
    staging = str(tmp_path / "staging")
    fingerprint = sshd.host_key_fingerprint()

    _manifest, planned = plan_pull(entry, "latest", staging)
    assert planned["host_key"] == {"fingerprint": fingerprint, "trust": "new"}
    assert not os.path.exists(known_hosts) and not os.path.exists(staging)

    pulled = pull_backup(entry, "latest", staging)
    assert pulled["backup_id"] == backup["backup_id"]
    assert pulled["host_key"] == {"fingerprint": fingerprint, "trust": "recorded"}

    sshd.cut()
    sshd.new_host_key()
    sshd.start()
    shutil.rmtree(staging)
    for call in (plan_pull, pull_backup):
        with pytest.raises(RestoreError) as info:
            call(entry, "latest", staging)
        message = str(info.value)
        assert "not trusted" in message and fingerprint in message and sshd.host_key_fingerprint() in message
    assert not os.path.exists(os.path.join(staging, "manifests")) or not os.listdir(os.path.join(staging, "manifests"))
