# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pgBackRest with a repository on a repository host reached over SSH, on the fleet: pg1 archives
into a local repo1 and into repo2 on storage1 (pgBackRest's ``repo2-host``, its ssh run as pg1's
OS user with the collection's key and known_hosts), set up by the continuous_archiving role. A
physical full backup lands in both repositories; with the local repository gone, a restore of
the latest moment reads storage1's and holds every marker. Afterwards pg1's archiving settings
are reset and it is restarted, as the other scenarios expect it."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

import pytest

import pitr_helpers as ph

HOST = "pg1"
RUN = "repo-host-%d" % int(time.time())


def _remote_repo(fleet):
    return os.path.join(fleet.hosts["storage1"]["backups_dir"], "pgbackrest", HOST)


def _vars(fleet):
    repos = [{"path": ph.archive_dir(fleet, HOST) + "/repo"},
             {"path": _remote_repo(fleet), "host": fleet.hosts["storage1"]["address"], "host_user": "root"}]
    # the fleet's client key logs in everywhere as root: pg1 -> storage1 (pgBackRest's archive-push, check,
    # restore) and, for the backups run on storage1, storage1 -> pg1 (a path on storage1, as the fleet's
    # hosts share this machine's file system; a real repository host has its own key)
    return ph.archiving_vars(fleet, bim_continuous_archiving_repositories=repos,
                             bim_continuous_archiving_repo_host_key_file=fleet.client_key,
                             bim_continuous_archiving_repo_host_pg_user="root",
                             bim_continuous_archiving_repo_host_pg_key_file=fleet.client_key)


def _playbook(fleet, cwd, name, extra):
    import conftest

    cmd = [conftest._tool("ansible-playbook"), "-i", fleet.inventory, "--limit", HOST, "-e", json.dumps(extra),
           "bim.wall_system." + name]
    return subprocess.run(cmd, cwd=str(cwd), env=conftest.ansible_env(fleet), text=True, capture_output=True,
                          check=False, timeout=900)


def _reset_archiving(fleet):
    from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine
    import restore_helpers as rh
    with open_engine(rh.params_of(fleet, HOST)) as eng:
        eng.set_archive_settings({"archive_mode": "off", "archive_command": "", "archive_timeout": "0"})
    fleet.stop_db(HOST)
    fleet.start_db(HOST)


@pytest.fixture(scope="module")
def archived(fleet, tmp_path_factory):
    cwd = tmp_path_factory.mktemp("repo-host")
    proc = _playbook(fleet, cwd, "continuous_archiving", _vars(fleet))
    try:
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
        yield fleet
    finally:
        _reset_archiving(fleet)


def test_the_role_with_a_repository_host_is_idempotent(archived, run_playbook):
    for check in (False, True):
        again = run_playbook("bim.wall_system.continuous_archiving", extra_vars=_vars(archived), limit=HOST, check=check)
        assert again.rc == 0 and ph.recap(again)[HOST]["changed"] == 0, again.stdout[-3000:]


def test_a_physical_backup_lands_on_the_repository_host_and_restores_from_it(archived, run_ansible, tmp_path):
    fleet = archived
    d = ph.descriptor(fleet, HOST)
    with open(d["config"], encoding="utf-8") as handle:
        config = handle.read()
    assert "repo2-host=%s" % fleet.hosts["storage1"]["address"] in config and "cmd-ssh=" in config
    # the repository host's key, recorded on first use in pg1's known_hosts, is the only one pgBackRest's ssh accepts
    with open(os.path.join(ph.archive_dir(fleet, HOST), "ssh", "known_hosts"), encoding="utf-8") as handle:
        pinned = handle.read().split()[1:3]
    with open(fleet.hdir(HOST, "known_hosts"), encoding="utf-8") as handle:
        assert pinned in [line.split()[1:3] for line in handle]
    check = ph.pgbackrest(fleet, HOST, "check")
    assert check.returncode == 0, check.stderr

    backup = _playbook(fleet, tmp_path, "backup", dict(_vars(fleet), bim_backup_method="physical", bim_backup_type="full"))
    assert backup.returncode == 0, backup.stdout[-6000:]
    info = json.loads(ph.pgbackrest(fleet, HOST, "info", "--output=json").stdout)[0]
    assert {b["database"]["repo-key"] for b in info["backup"]} == {1, 2}, info["backup"]
    assert os.listdir(os.path.join(_remote_repo(fleet), "backup", d["stanza"]))  # on storage1's disk

    written = ph.write_markers(fleet, HOST, 10, run=RUN)
    ph.wait_archived_past(fleet, HOST, written[-1])
    local = os.path.join(ph.archive_dir(fleet, HOST), "repo")
    os.rename(local, local + ".gone")  # the local repository is lost: only storage1's is left
    try:
        result = run_ansible(HOST, "bim.wall_system.restore", {
            "engine": "postgresql", "archive_dir": ph.archive_dir(fleet, HOST), "db_socket_dir": fleet.hosts[HOST]["db_socket_dir"],
            "db_password": fleet.password, "state_dir": fleet.hdir(HOST, "restore-state"), "target_time": "latest",
            "mode": "new", "keep_target": False, "marker_run": RUN})
    finally:
        os.rename(local + ".gone", local)
    match = re.search(r"^\S+ \| [A-Z!]+ => (\{.*)", result.stdout, re.M | re.S)
    assert match, str(result)
    out = json.loads(match.group(1))
    assert out.get("verified") is True and out["markers_restored"] == len(written), out
