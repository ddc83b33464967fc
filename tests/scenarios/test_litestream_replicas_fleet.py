# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Litestream on lite2 with both replicas the issue asks for - SFTP on storage1 and a local
folder - set up by the continuous_archiving role and run by its one service (the unit's command
under the fleet's process control): each replica restores on its own (the restore falls back to
the folder while storage1 is down), and the SFTP replica is pinned to storage1's host key, so a
changed key makes Litestream refuse storage1 and the health check say so with both fingerprints.
storage1's key is put back (and its sshd restarted) afterwards; lite2's Litestream is stopped."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

import pytest

import pitr_helpers as ph
from conftest import fingerprint, replace_storage_host_key

HOST = "lite2"
RUN = "replicas-%d" % int(time.time())


def _vars(fleet):
    # lite2's own files: the module-scoped PITR scenarios keep lite1's
    return ph.archiving_vars(fleet)


def _litestream_configs(fleet):
    """The configuration of every litestream process replicating lite2 (from /proc)."""
    folder = ph.archive_dir(fleet, HOST)
    found = []
    for pid in ph.pids_with_cmdline(["litestream", "replicate"]):
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            argv = handle.read().decode().rstrip("\0").split("\0")
        if argv[-2:-1] == ["-config"] and argv[-1].startswith(folder + "/"):
            found.append(os.path.basename(argv[-1]))
    return sorted(found)


def _caught_up(fleet):
    from ansible_collections.bim.wall_system.plugins.module_utils.archiving.archives import open_archive
    import restore_helpers as rh
    archive = open_archive(rh.params_of(fleet, HOST), ph.archive_dir(fleet, HOST))
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if all(t.replica_position()[0] >= t.local_txid() > 0 for t in archive.tools):
            return
        time.sleep(1)
    raise AssertionError("the replicas of %s did not catch up" % HOST)


@pytest.fixture(scope="module")
def replicated(fleet, tmp_path_factory):
    import conftest

    cwd = tmp_path_factory.mktemp("replicas")
    cmd = [conftest._tool("ansible-playbook"), "-i", fleet.inventory, "--limit", HOST, "-e",
           json.dumps(_vars(fleet)), "bim.wall_system.continuous_archiving"]
    proc = subprocess.run(cmd, cwd=str(cwd), env=conftest.ansible_env(fleet), text=True, capture_output=True,
                          check=False, timeout=900)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    yield fleet
    fleet.unit_stop(HOST, ph.unit_file(fleet, HOST))


def _restore(run_ansible, fleet, **args):
    values = {"engine": "sqlite", "archive_dir": ph.archive_dir(fleet, HOST), "sqlite_path": fleet.hosts[HOST]["sqlite_path"],
              "state_dir": fleet.hdir(HOST, "restore-state"), "target_time": "latest", "mode": "new",
              "keep_target": False, "marker_run": RUN}
    values.update(args)
    result = run_ansible(HOST, "bim.wall_system.restore", values)
    match = re.search(r"^\S+ \| [A-Z!]+ => (\{.*)", result.stdout, re.M | re.S)
    assert match, str(result)
    return json.loads(match.group(1))


def test_both_replicas_run_and_each_one_restores(replicated, run_ansible):
    fleet = replicated
    assert _litestream_configs(fleet) == ["litestream-2.yml", "litestream.yml"]
    d = ph.descriptor(fleet, HOST)
    assert [r["replica"]["type"] for r in d["replicas"]] == ["sftp", "file"]
    # the SFTP replica is pinned to the key lite2's known_hosts file holds for storage1 (first use recorded)
    storage = fleet.hosts["storage1"]
    with open(fleet.hdir(HOST, "known_hosts"), encoding="utf-8") as handle:
        recorded = [line.split()[1:3] for line in handle if line.startswith(storage["address"] + " ")
                    or line.startswith("[%s]:" % storage["address"])]
    assert d["replicas"][0]["replica"]["host_key"].split() in recorded, (recorded, d["replicas"][0])

    written = ph.write_markers(fleet, HOST, 10, run=RUN)
    _caught_up(fleet)
    out = _restore(run_ansible, fleet)
    assert out["verified"] is True and out["markers_restored"] == len(written), out
    # storage1 gone: the same restore reads the local folder replica instead
    fleet.stop_sshd("storage1")
    try:
        out = _restore(run_ansible, fleet)
    finally:
        fleet.start_sshd("storage1")
    assert out["verified"] is True and out["markers_restored"] == len(written), out


def _log_has(path, text):
    with open(path, encoding="utf-8", errors="replace") as handle:
        return text in handle.read()


def test_a_changed_storage_host_key_is_refused_and_reported(replicated, storage_key, run_playbook):
    fleet = replicated
    old = fingerprint(storage_key + ".pub")
    replace_storage_host_key(fleet, storage_key)
    new = fingerprint(storage_key + ".pub")

    result = run_playbook("bim.wall_system.health_check", limit=HOST, extra_vars=_vars(fleet))
    assert result.rc == 0, str(result)
    with open(os.path.join(result.cwd, "bim-reports", "fleet-report.json"), encoding="utf-8") as handle:
        row = next(r for r in json.load(handle)["hosts"] if r["host"] == HOST)
    check = next(c for c in row["checks"] if c["name"] == "archiving")
    assert check["status"] == "error", check
    assert "CHANGED" in check["message"] and old in check["message"] and new in check["message"], check["message"]
    assert "file://" in check["message"]  # the folder replica is still read and reported

    # Litestream itself, shipping new writes, is refused by its pin: nothing reaches the impostor
    ph.write_markers(fleet, HOST, 3, run=RUN)
    log = os.path.join(fleet.hdir(HOST, "services"), "bim-litestream.service.log")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not _log_has(log, "host key mismatch"):
        time.sleep(1)
    assert _log_has(log, "host key mismatch")
    again = run_playbook("bim.wall_system.continuous_archiving", limit=HOST, extra_vars=_vars(fleet))
    assert again.rc != 0 and old in again.stdout and new in again.stdout, again.stdout[-3000:]
