# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A keyed, encrypted repository on the fleet, as an operator runs it: the key lives in Ansible
Vault; backup, verify_backups and disaster_recovery run with it (at -v) on a PostgreSQL and a SQLite
host; the key appears in no output, the repository holds no plaintext, a run without the key fails
with a message, and the database comes back with the backup's digests."""

from __future__ import annotations

import json
import os
import subprocess
import uuid

import pytest

import restore_helpers as rh
from conftest import _tool, ansible_env

HOSTS = ["pg1", "lite1"]
KEY = "vaulted-repository-key-%s" % uuid.uuid4().hex


def _vault_files(tmp_path):
    """A vault password file and a vars file holding the key as a real !vault value."""
    password = tmp_path / "vault-password"
    password.write_text("fleet vault password %s\n" % uuid.uuid4().hex)
    proc = subprocess.run([_tool("ansible-vault"), "encrypt_string", "--vault-password-file", str(password),
                           "--name", "bim_backup_repository_key", KEY],
                          text=True, capture_output=True, check=True)
    assert KEY not in proc.stdout
    variables = tmp_path / "vault.yml"
    variables.write_text(proc.stdout)
    return password, variables


def _run(fleet, tmp_path, playbook, extra_vars, vault=None):
    cmd = [_tool("ansible-playbook"), "-v", "-i", fleet.inventory, "--limit", ",".join(HOSTS),
           "-e", json.dumps(extra_vars)]
    if vault:
        cmd += ["--vault-password-file", str(vault[0]), "-e", "@%s" % vault[1]]
    cmd.append(playbook)
    proc = subprocess.run(cmd, cwd=str(tmp_path), env=ansible_env(fleet), text=True, stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=900, check=False)
    return proc.returncode, proc.stdout + proc.stderr


def _files_holding(folder, needle):
    found = []
    for root, _dirs, names in os.walk(folder):
        for name in names:
            with open(os.path.join(root, name), "rb") as handle:
                if needle in handle.read():
                    found.append(os.path.join(root, name))
    return found


@pytest.fixture
def keyed_hosts(fleet):
    yield HOSTS
    for name in HOSTS:
        os.chmod(fleet.hdir(name), 0o755)
        fleet.reset(name)
        try:
            rh.drop_restore_points(fleet, name, os.path.join(fleet.state_dir, name, "restore-state"))
        except Exception:  # a broken host must not hide the test's own failure
            pass


def test_vaulted_key_backup_verify_restore(fleet, tmp_path, keyed_hosts):
    from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import Repository

    vault = _vault_files(tmp_path)
    folder = "keyed-%s" % uuid.uuid4().hex[:8]
    base = fleet.state_dir + "/{{ inventory_hostname }}"
    common = {"bim_backup_repository": base + "/" + folder, "bim_backup_copy_enabled": False}
    outputs = []

    rc, out = _run(fleet, tmp_path, "bim.wall_system.backup", common, vault)
    outputs.append(out)
    assert rc == 0, out[-6000:]
    assert "unauthenticated" not in out

    manifests = {}
    for host in HOSTS:
        path = os.path.join(fleet.state_dir, host, folder)
        with open(os.path.join(path, "config.json")) as handle:
            config = json.load(handle)
        assert config["format_version"] == 2 and config["mode"] == "encrypted"
        manifests[host] = Repository(path, key=KEY).list_backups()[-1]
        # Only ciphertext: no table name, no source description, no key.
        for needle in (b"walls", b"intersections", KEY.encode()):
            assert _files_holding(path, needle) == [], (host, needle)

    # Without the key: a clear message, no traceback, and the repository is untouched.
    rc, out = _run(fleet, tmp_path, "bim.wall_system.verify_backups",
                   dict(common, bim_verify_restore_backups=[], bim_verify_checksum_backups=["latest"],
                        bim_verify_state_dir=base + "/restore-state"), None)
    outputs.append(out)
    assert rc != 0 and "is keyed" in out and "Traceback" not in out, out[-6000:]

    rc, out = _run(fleet, tmp_path, "bim.wall_system.verify_backups",
                   dict(common, bim_verify_state_dir=base + "/restore-state"), vault)
    outputs.append(out)
    assert rc == 0, out[-6000:]
    for host in HOSTS:
        state = Repository(os.path.join(fleet.state_dir, host, folder), key=KEY).verification_state(manifests[host]["id"])
        assert state and state["passed"] and state["level"] == "restore", (host, state)

    # The hosts lose their data; disaster recovery brings the backup back with the vaulted key.
    for host in HOSTS:
        if fleet.hosts[host]["kind"] == "sqlite":
            os.unlink(fleet.hosts[host]["sqlite_path"])
        else:
            rh.drop_pg_database(fleet, host)
        assert rh.live_digests(fleet, host) is None
    rc, out = _run(fleet, tmp_path, "bim.wall_system.disaster_recovery",
                   dict(common, bim_restore_hosts=",".join(HOSTS), bim_restore_state_dir=base + "/restore-state",
                        bim_restore_log=base + "/recovery/recovery.log", bim_restore_health_retries=3,
                        bim_restore_health_delay=1), vault)
    outputs.append(out)
    assert rc == 0, out[-6000:]
    for host in HOSTS:
        assert rh.live_digests(fleet, host, like=manifests[host]) == rh.manifest_digests(manifests[host]), host

    # -v prints every module result: the key is in none of them (nor in what the runs wrote).
    for out in outputs:
        assert KEY not in out
    assert _files_holding(str(tmp_path / "bim-reports"), KEY.encode()) == []
