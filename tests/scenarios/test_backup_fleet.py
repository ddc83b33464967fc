# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The operator's story for `ansible-playbook bim.wall_system.backup` on the loopback fleet:
back up every BIM host (both schema variants), copy to storage1, read the summary; a host whose database is down fails
the play; a storage host that is cut off fails the copy but not the backup, and the next run
completes the copy."""

from __future__ import annotations

import json
import os


HOSTS = "pg1,lite1"
EVERY_BIM_HOST = ("pg1", "pg2", "lite1", "lite2")  # pg2, lite2: the "site" schema variant


def _vars(fleet, **extra):
    values = {"bim_backup_copy_key_file": fleet.client_key}
    values.update(extra)
    return values


def _summary(result):
    with open(os.path.join(result.cwd, "bim-reports", "backup-summary.json"), encoding="utf-8") as handle:
        return json.load(handle)


def _manifests(folder):
    path = os.path.join(folder, "manifests")
    return sorted(n for n in os.listdir(path) if n.endswith(".json")) if os.path.isdir(path) else []


def _storage_folder(fleet, host):
    return os.path.join(fleet.hosts["storage1"]["backups_dir"], host)


def test_backup_playbook_backs_up_and_copies(fleet, run_playbook):
    before = {h: _manifests(fleet.hosts[h]["backup_repository"]) for h in EVERY_BIM_HOST}
    planned = run_playbook("bim.wall_system.backup", extra_vars=_vars(fleet), limit=list(EVERY_BIM_HOST), check=True)
    assert planned.rc == 0, planned
    assert {h: _manifests(fleet.hosts[h]["backup_repository"]) for h in EVERY_BIM_HOST} == before

    result = run_playbook("bim.wall_system.backup", extra_vars=_vars(fleet), limit=list(EVERY_BIM_HOST))
    assert result.rc == 0, result
    summary = _summary(result)
    assert summary["kind"] == "backup" and summary["counts"] == {"ok": 4}
    for host in EVERY_BIM_HOST:
        entry = summary["hosts"][host]
        assert entry["type"] in ("full", "incremental")
        assert entry["backup_id"] + ".json" in _manifests(fleet.hosts[host]["backup_repository"])
        assert entry["backup_id"] + ".json" in _manifests(_storage_folder(fleet, host))
        assert [loc["status"] for loc in entry["storage_locations"]] == ["ok", "ok"]
        assert int(entry["source_bytes"]) > 0


def test_check_mode_on_a_host_without_libraries_says_what_it_would_install(fleet, run_playbook, host_libraries):
    """--check installs nothing, so lite1 (its virtualenv moved aside) cannot plan a backup: it says
    what the install would do and leaves the play; pg1 plans as usual; the summary names lite1."""
    venv = fleet.venv("lite1")
    aside = venv + ".aside"
    before = _manifests(fleet.hosts["lite1"]["backup_repository"])
    os.rename(venv, aside)
    try:
        planned = run_playbook("bim.wall_system.backup", extra_vars=_vars(fleet), limit="pg1,lite1", check=True)
        assert not os.path.exists(venv), "check mode created the virtualenv"
    finally:
        os.rename(aside, venv)
    assert planned.rc == 0, planned
    assert "would create %s with " % venv in planned.stdout, planned
    assert "prerequisites_pending" in planned.stdout, planned
    assert "failed=0" in planned.stdout and "failed=1" not in planned.stdout, planned
    assert _manifests(fleet.hosts["lite1"]["backup_repository"]) == before


def test_a_failed_host_fails_the_play_with_its_reason(fleet, run_playbook):
    fleet.stop_db("pg1")
    try:
        result = run_playbook("bim.wall_system.backup", extra_vars=_vars(fleet), limit=HOSTS)
    finally:
        fleet.start_db("pg1")
    assert result.rc != 0, result
    summary = _summary(result)
    assert summary["hosts"]["pg1"]["status"] == "failed", result
    assert "pg1" in [p["host"] for p in summary["problems"]]
    assert any("pg_dump" in r or "connect" in r or "snapshot" in r for r in summary["hosts"]["pg1"]["reasons"])
    assert summary["hosts"]["lite1"]["status"] == "ok"


def test_storage_host_cut_off_then_copy_completed(fleet, run_playbook):
    fleet.stop_sshd("storage1")
    try:
        cut = run_playbook("bim.wall_system.backup", extra_vars=_vars(fleet), limit="lite1")
    finally:
        fleet.start_sshd("storage1")
    assert cut.rc == 0, cut  # the backup itself succeeded
    entry = _summary(cut)["hosts"]["lite1"]
    assert entry["status"] == "copy_failed"
    assert entry["storage_locations"][1]["status"] == "failed" and entry["reasons"]
    backup_id = entry["backup_id"]
    assert backup_id + ".json" in _manifests(fleet.hosts["lite1"]["backup_repository"])
    assert backup_id + ".json" not in _manifests(_storage_folder(fleet, "lite1"))

    again = run_playbook("bim.wall_system.backup", extra_vars=_vars(fleet), limit="lite1")
    assert again.rc == 0, again
    entry2 = _summary(again)["hosts"]["lite1"]
    assert entry2["status"] == "ok"
    copied = entry2["storage_locations"][1]["copied_backups"]
    assert backup_id in copied and entry2["backup_id"] in copied
    # the backup the cut-off run could not copy is on the storage host now, with today's. (Not every
    # backup the primary holds: on a fleet that earlier runs filled, the storage host's own retention
    # may already have expired an old one the primary still keeps.)
    on_storage = set(_manifests(_storage_folder(fleet, "lite1")))
    assert {backup_id + ".json", entry2["backup_id"] + ".json"} <= on_storage


def test_copy_failure_can_fail_the_play(fleet, run_playbook):
    fleet.stop_sshd("storage1")
    try:
        result = run_playbook("bim.wall_system.backup", limit="lite1",
                              extra_vars=_vars(fleet, bim_backup_fail_on_copy_error=True))
    finally:
        fleet.start_sshd("storage1")
    assert result.rc != 0, result
    assert _summary(result)["hosts"]["lite1"]["status"] == "copy_failed"
