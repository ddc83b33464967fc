# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SFTP host-key trust of the copies, against a real sshd (fixture ``sshd``) whose host key the
tests replace: first use is recorded, a changed key (or a key of another type) is refused with
both fingerprints and nothing reaches the host, strict mode refuses an unknown host."""

from __future__ import annotations

import os
import stat
import subprocess

from ansible_collections.bim.wall_system.plugins.module_utils.repository.backup import run_backup
from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import Repository


def _copy_to(sshd, remote, known_hosts, **extra):
    entry = {"url": sshd.url(remote), "key_file": sshd.key, "known_hosts_file": known_hosts}
    entry.update(extra)
    return [entry]


def _manifests(remote):
    folder = os.path.join(remote, "manifests")
    return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


def _read(path):
    with open(path, "rb") as handle:
        return handle.read()


def test_first_use_is_recorded_and_a_changed_key_is_refused(sqlite_conn_params, repo_path, sshd, tmp_path):
    remote = str(tmp_path / "remote-repo")
    known_hosts = str(tmp_path / "trust" / "known_hosts")
    copy_to = _copy_to(sshd, remote, known_hosts)
    old_fp = sshd.host_key_fingerprint()

    first = run_backup(sqlite_conn_params, repo_path, {"copy_to": copy_to})
    status = first["storage_locations"][1]
    assert status["status"] == "ok", status
    assert status["host_key"] == {"fingerprint": old_fp, "trust": "recorded"}
    recorded = _read(known_hosts)
    assert recorded.decode().startswith("[%s]:%d ssh-ed25519 " % (sshd.address, sshd.port))
    assert stat.S_IMODE(os.stat(known_hosts).st_mode) == 0o600
    # OpenSSH reads the file the collection keeps, and finds the same key there
    found = subprocess.run(["ssh-keygen", "-F", "[%s]:%d" % (sshd.address, sshd.port), "-f", known_hosts],
                           capture_output=True, text=True, check=False)
    assert found.returncode == 0 and "ssh-ed25519" in found.stdout

    second = run_backup(sqlite_conn_params, repo_path, {"copy_to": copy_to})
    assert second["storage_locations"][1]["host_key"] == {"fingerprint": old_fp, "trust": "known"}
    assert _read(known_hosts) == recorded

    # The storage host's key is replaced (or someone answers in its place).
    sshd.cut()
    sshd.new_host_key()
    sshd.start()
    new_fp = sshd.host_key_fingerprint()
    assert new_fp != old_fp
    before = _manifests(remote)
    third = run_backup(sqlite_conn_params, repo_path, {"copy_to": copy_to})
    primary, refused = third["storage_locations"]
    assert primary["status"] == "ok" and third["copy_failed"] is True
    assert refused["status"] == "failed"
    assert "CHANGED" in refused["error"] and old_fp in refused["error"] and new_fp in refused["error"], refused
    assert known_hosts in refused["error"]
    # nothing reached the host, the trust is unchanged, and the backup itself is whole
    assert _manifests(remote) == before
    assert _read(known_hosts) == recorded
    repo = Repository(repo_path)
    assert repo.verify_checksums([repo.load_manifest(third["backup_id"])]) == {third["backup_id"]: []}


def test_a_recorded_key_of_another_type_is_refused(sqlite_conn_params, repo_path, sshd, tmp_path):
    """An attacker's server that offers only ed25519 where an ECDSA key was recorded: not a first use."""
    other = str(tmp_path / "other_key")
    subprocess.check_call(["ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", other])
    with open(other + ".pub", encoding="ascii") as handle:
        key_type, blob = handle.read().split()[:2]
    known_hosts = str(tmp_path / "known_hosts")
    with open(known_hosts, "w", encoding="ascii") as handle:
        handle.write("[%s]:%d %s %s\n" % (sshd.address, sshd.port, key_type, blob))
    recorded_fp = subprocess.check_output(["ssh-keygen", "-l", "-E", "sha256", "-f", other + ".pub"], text=True).split()[1]
    remote = str(tmp_path / "remote-repo")

    result = run_backup(sqlite_conn_params, repo_path, {"copy_to": _copy_to(sshd, remote, known_hosts)})

    status = result["storage_locations"][1]
    assert status["status"] == "failed"
    assert recorded_fp in status["error"] and sshd.host_key_fingerprint() in status["error"], status
    assert not os.path.exists(remote)


def test_strict_refuses_an_unknown_host_and_accepts_a_known_one(sqlite_conn_params, repo_path, sshd, tmp_path):
    known_hosts = str(tmp_path / "known_hosts")
    remote = str(tmp_path / "remote-repo")
    copy_to = _copy_to(sshd, remote, known_hosts, strict_host_key_checking=True)

    refused = run_backup(sqlite_conn_params, repo_path, {"copy_to": copy_to})["storage_locations"][1]

    assert refused["status"] == "failed"
    assert sshd.host_key_fingerprint() in refused["error"] and "strict_host_key_checking" in refused["error"]
    assert not os.path.exists(remote) and not os.path.exists(known_hosts)

    # The operator adds the key they checked; strict mode then copies.
    with open(sshd.host_key + ".pub", encoding="ascii") as handle:
        key_type, blob = handle.read().split()[:2]
    with open(known_hosts, "w", encoding="ascii") as handle:
        handle.write("[%s]:%d %s %s\n" % (sshd.address, sshd.port, key_type, blob))
    accepted = run_backup(sqlite_conn_params, repo_path, {"copy_to": copy_to})["storage_locations"][1]
    assert accepted["status"] == "ok", accepted
    assert accepted["host_key"]["trust"] == "known"
    assert len(_manifests(remote)) == 2
