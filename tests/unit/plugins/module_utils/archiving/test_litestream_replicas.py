# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Litestream with two replicas (a real sshd's SFTP and a folder), the real litestream binary:
the SFTP replica is pinned to the host key the known_hosts file trusts, both replicas receive
every transaction and each restores on its own; a changed host key is refused (configuration
and replica reads), naming both fingerprints; a host with several key types is pinned to the
one Litestream's SSH library asks for."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.archiving import replica_host_key
from ansible_collections.bim.wall_system.plugins.module_utils.archiving.archives import open_archive
from ansible_collections.bim.wall_system.plugins.module_utils.archiving.common import ArchiveError
from ansible_collections.bim.wall_system.plugins.module_utils.archiving.configure import configure, find_litestream


@pytest.fixture
def litestream_binary():
    try:
        return find_litestream()
    except ArchiveError as exc:
        pytest.skip(str(exc))


def _opts(sshd, tmp_path, binary, **extra):
    opts = {"litestream_binary": binary, "known_hosts_file": str(tmp_path / "known_hosts"), "sync_interval": "200ms",
            "replicas": [{"type": "sftp", "host": "%s:%d" % (sshd.address, sshd.port), "user": "root",
                          "path": str(tmp_path / "remote"), "key_path": sshd.key},
                         {"type": "file", "path": str(tmp_path / "folder")}]}
    opts.update(extra)
    return opts


def _count(path):
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT count(*) FROM bim_recovery_markers").fetchone()[0]


def _write_markers(params, count):
    with sqlite3.connect(params.sqlite_path) as conn:
        for index in range(count):
            conn.execute("INSERT INTO bim_recovery_markers (written_at, run) VALUES (datetime('now'), ?)",
                         ("unit-%d" % index,))
            conn.commit()


def test_two_replicas_each_restore_and_the_sftp_one_is_pinned(sqlite_conn_params, sshd, tmp_path, litestream_binary,
                                                              wait_until):
    archive_dir = str(tmp_path / "archiving")
    opts = _opts(sshd, tmp_path, litestream_binary)
    planned = configure(sqlite_conn_params, archive_dir, opts, check_mode=True)
    assert any("on first use" in c for c in planned["changes"]) and not os.path.exists(opts["known_hosts_file"])
    result = configure(sqlite_conn_params, archive_dir, opts)
    fingerprint = sshd.host_key_fingerprint()
    assert any(fingerprint in c for c in result["changes"]), result["changes"]
    with open(opts["known_hosts_file"], encoding="utf-8") as handle:
        assert handle.read().startswith("[%s]:%d ssh-ed25519 " % (sshd.address, sshd.port))
    with open(os.path.join(archive_dir, "litestream.yml"), encoding="utf-8") as handle:
        assert '"host-key": "ssh-ed25519 ' in handle.read()
    assert result["command"] == ["/bin/bash", os.path.join(archive_dir, "litestream-replicas.sh")]
    assert configure(sqlite_conn_params, archive_dir, opts)["changed"] is False

    daemon = subprocess.Popen(result["command"], start_new_session=True, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        _write_markers(sqlite_conn_params, 20)
        archive = open_archive(sqlite_conn_params, archive_dir)
        wait_until("both replicas to catch up",
                   lambda: all(t.replica_position()[0] >= t.local_txid() > 0 for t in archive.tools), 60, 0.2)
        health = archive.info()["archive_health"]
        assert [r["replica_reachable"] for r in health["replicas"]] == [True, True], health
        assert all(r["daemon_pid"] for r in health["replicas"]), health
    finally:
        os.killpg(daemon.pid, signal.SIGTERM)
        daemon.wait(30)
    for index, tool in enumerate(archive.tools):
        out = str(tmp_path / ("restored-%d.db" % index))
        tool.restore(out)
        assert _count(out) == 20


def test_a_changed_host_key_is_refused_with_both_fingerprints(sqlite_conn_params, sshd, tmp_path, litestream_binary):
    archive_dir = str(tmp_path / "archiving")
    opts = _opts(sshd, tmp_path, litestream_binary)
    configure(sqlite_conn_params, archive_dir, opts)
    old = sshd.host_key_fingerprint()
    sshd.cut()
    sshd.new_host_key()
    sshd.start()
    new = sshd.host_key_fingerprint()

    with pytest.raises(ArchiveError) as refused:
        configure(sqlite_conn_params, archive_dir, opts)
    assert "CHANGED" in str(refused.value) and old in str(refused.value) and new in str(refused.value)
    # Litestream, still pinned to the old key, refuses the host; the archive names both keys.
    health = open_archive(sqlite_conn_params, archive_dir).info()["archive_health"]
    sftp, folder = health["replicas"]
    assert sftp["replica_reachable"] is False and folder["replica_reachable"] is True
    assert "CHANGED" in sftp["replica_error"] and old in sftp["replica_error"] and new in sftp["replica_error"]


def test_strict_mode_refuses_an_unknown_storage_host(sqlite_conn_params, sshd, tmp_path, litestream_binary):
    opts = _opts(sshd, tmp_path, litestream_binary, strict_host_key_checking=True)
    with pytest.raises(ArchiveError, match="strict_host_key_checking is on"):
        configure(sqlite_conn_params, str(tmp_path / "archiving"), opts)
    assert not os.path.exists(opts["known_hosts_file"])


def test_a_host_with_several_keys_is_pinned_to_the_one_go_asks_for(sshd, tmp_path):
    """Our copies (paramiko) record the Ed25519 key; Litestream's Go library asks for ECDSA first."""
    ecdsa = os.path.join(sshd.base, "host_key_ecdsa")
    subprocess.check_call(["ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", ecdsa])
    with open(sshd.config, "a", encoding="utf-8") as handle:
        handle.write("HostKey %s\n" % ecdsa)
    sshd.cut()
    sshd.start()
    known_hosts = str(tmp_path / "known_hosts")
    name = "[%s]:%d" % (sshd.address, sshd.port)
    with open(sshd.host_key + ".pub", encoding="utf-8") as handle:
        ed25519_line = " ".join(handle.read().split()[:2])
    with open(known_hosts, "w", encoding="utf-8") as handle:
        handle.write("%s %s\n" % (name, ed25519_line))
    address = "%s:%d" % (sshd.address, sshd.port)

    with pytest.raises(ArchiveError, match="ssh-keyscan -t ecdsa"):
        replica_host_key.pin(address, known_hosts, strict=True)
    line, status, _fp = replica_host_key.pin(address, known_hosts)
    assert line.startswith("ecdsa-sha2-nistp256 ") and status == "recorded"
    with open(known_hosts, encoding="utf-8") as handle:
        assert handle.read().splitlines()[1].startswith(name + " ecdsa-sha2-nistp256 ")
    assert replica_host_key.pin(address, known_hosts)[1] == "known"
