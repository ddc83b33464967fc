# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The storage host's SSH host key changes between two backups (someone answers in its place, or it
was reinstalled): the first backup trusted and recorded the key; the second backup still succeeds
but its copy is refused, both fingerprints named; disaster recovery refuses to fetch from it and
leaves the host as it was. Only storage1's sshd is restarted (by its PID), and its key is put back."""

from __future__ import annotations

import json
import os

from conftest import fingerprint, replace_storage_host_key

HOST = "lite1"


def _summary(result, kind):
    with open(os.path.join(result.cwd, "bim-reports", "%s-summary.json" % kind), encoding="utf-8") as handle:
        return json.load(handle)


def _manifests(folder):
    path = os.path.join(folder, "manifests")
    return sorted(n for n in os.listdir(path) if n.endswith(".json")) if os.path.isdir(path) else []


def test_changed_storage_host_key_is_refused_by_copies_and_fetch(fleet, run_playbook, storage_key, tmp_path):
    known_hosts = os.path.join(fleet.state_dir, HOST, "known_hosts-host-key-scenario")
    if os.path.exists(known_hosts):
        os.unlink(known_hosts)
    copy_vars = {"bim_backup_copy_key_file": fleet.client_key, "bim_backup_known_hosts_file": known_hosts}
    storage_folder = os.path.join(fleet.hosts["storage1"]["backups_dir"], HOST)
    old_fp = fingerprint(storage_key + ".pub")

    first = run_playbook("bim.wall_system.backup", extra_vars=copy_vars, limit=HOST)
    assert first.rc == 0, first
    entry = _summary(first, "backup")["hosts"][HOST]
    assert entry["status"] == "ok", entry
    assert entry["storage_locations"][1]["host_key"] == {"fingerprint": old_fp, "trust": "recorded"}
    with open(known_hosts, encoding="ascii") as handle:
        recorded = handle.read()
    assert recorded.startswith(fleet.hosts["storage1"]["address"] + " ssh-ed25519 ")

    replace_storage_host_key(fleet, storage_key)
    new_fp = fingerprint(storage_key + ".pub")
    assert new_fp != old_fp
    copied_before = _manifests(storage_folder)

    second = run_playbook("bim.wall_system.backup", extra_vars=copy_vars, limit=HOST)
    assert second.rc == 0, second  # the backup itself succeeded; the refused copy is reported
    entry = _summary(second, "backup")["hosts"][HOST]
    assert entry["status"] == "copy_failed", entry
    reason = " ".join(entry["reasons"])
    assert "CHANGED" in reason and old_fp in reason and new_fp in reason, reason
    assert old_fp in second.stdout and new_fp in second.stdout  # the operator sees both in the play's output
    assert entry["backup_id"] + ".json" in _manifests(fleet.hosts[HOST]["backup_repository"])
    assert _manifests(storage_folder) == copied_before  # nothing went to the impostor
    with open(known_hosts, encoding="ascii") as handle:
        assert handle.read() == recorded  # the trust did not move

    # Disaster recovery from that secondary (the primary cut off) refuses it too, and changes nothing.
    repo = fleet.hosts[HOST]["backup_repository"]
    database = fleet.hosts[HOST]["sqlite_path"]
    with open(database, "rb") as handle:
        live_before = handle.read()
    staging = str(tmp_path / "secondary-staging")
    secondary = {"url": "sftp://root@%s%s" % (fleet.hosts["storage1"]["address"], storage_folder),
                 "key_file": fleet.client_key}
    os.rename(repo, repo + ".cut-off")
    try:
        result = run_playbook("bim.wall_system.disaster_recovery", extra_vars={
            "bim_restore_hosts": HOST, "bim_restore_secondary_repository": secondary,
            "bim_restore_known_hosts_file": known_hosts, "bim_restore_secondary_staging": staging,
            "bim_restore_state_dir": str(tmp_path / "restore-state"),
            "bim_restore_log": str(tmp_path / "recovery.log")})
    finally:
        os.rename(repo + ".cut-off", repo)
    assert result.rc != 0, result
    assert "not trusted" in result.stdout and old_fp in result.stdout and new_fp in result.stdout, result
    assert _manifests(staging) == []
    with open(database, "rb") as handle:
        assert handle.read() == live_before
