# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The disaster recovery's preflight in one run (restore/preflight.py) and its restore with the
application's commands around the swap and the steps logged (recovery_steps.py, app_commands.py,
recovery_log.py), on real PostgreSQL and SQLite databases and a real repository."""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import Repository
from ansible_collections.bim.wall_system.plugins.module_utils.restore import runner
from ansible_collections.bim.wall_system.plugins.module_utils.restore.app_commands import AppCommands
from ansible_collections.bim.wall_system.plugins.module_utils.restore.errors import RestoreError
from ansible_collections.bim.wall_system.plugins.module_utils.restore.preflight import run_preflight
from ansible_collections.bim.wall_system.plugins.module_utils.restore.recovery_log import RecoveryLog
from ansible_collections.bim.wall_system.plugins.module_utils.restore.recovery_steps import restore_with_steps


def _options(tmp_path, state, repository, secondary=None):
    return dict(repository=repository, backup_id="latest", secondary_repository=secondary,
                secondary_staging=str(tmp_path / "staging"), mode="swap", jobs=2, state_dir=state,
                data_dir=None, staging_dir=None, repository_key=None)


def test_preflight_chooses_verifies_and_plans_in_one_run(rs_params, rs_repo, rs_state, tmp_path, take_backup, digests):
    backup = take_backup(rs_params, rs_repo)
    chunks = len(Repository(rs_repo).manifest_chunks(Repository(rs_repo).load_manifest(backup["backup_id"])))
    live = digests(rs_params)

    result = run_preflight(rs_params, _options(tmp_path, rs_state, rs_repo), False)

    assert result["repository_used"] == rs_repo and result["backup_id"] == backup["backup_id"]
    assert "secondary" not in result
    assert result["checksums"]["passed"] is True and result["checksums"]["chunks"] == chunks
    assert result["checksums"]["recorded"] is True
    assert os.listdir(os.path.join(rs_repo, "verifications"))  # the checksum result was recorded
    assert result["plan"]["fits"] is True and result["plan"]["bytes_to_read"] > 0
    assert result["plan"]["backup_id"] == backup["backup_id"] and result["plan"]["mode"] == "swap"
    assert digests(rs_params) == live  # a preflight changes no database


def test_preflight_in_check_mode_records_nothing(rs_sqlite_params, rs_repo, rs_state, tmp_path, take_backup):
    take_backup(rs_sqlite_params, rs_repo)
    result = run_preflight(rs_sqlite_params, _options(tmp_path, rs_state, rs_repo), True)
    assert result["checksums"]["passed"] is True and result["checksums"]["recorded"] is False
    assert not os.path.exists(os.path.join(rs_repo, "verifications")) or not os.listdir(
        os.path.join(rs_repo, "verifications"))


def test_a_damaged_backup_fails_the_preflight(rs_params, rs_repo, rs_state, tmp_path, take_backup, flip_chunk):
    backup = take_backup(rs_params, rs_repo)
    chunks = Repository(rs_repo).load_manifest(backup["backup_id"])["streams"]["database"]["chunks"]
    chunk_id = chunks[len(chunks) // 2][0]
    flip_chunk(rs_repo, chunk_id)
    with pytest.raises(RestoreError, match="failed checksum verification, nothing was changed") as caught:
        run_preflight(rs_params, _options(tmp_path, rs_state, rs_repo), False)
    assert chunk_id in " ".join(caught.value.details["problems"])
    assert caught.value.details["checksums"]["passed"] is False


def test_preflight_fetches_from_the_secondary_and_verifies_the_staging_copy(rs_sqlite_params, rs_repo, rs_state,
                                                                            tmp_path, take_backup):
    backup = take_backup(rs_sqlite_params, rs_repo)
    options = _options(tmp_path, rs_state, str(tmp_path / "lost-primary"), {"url": rs_repo})
    staging = str(tmp_path / "staging")

    planned = run_preflight(rs_sqlite_params, options, True)
    assert not os.path.exists(staging)  # check mode reads the secondary only
    assert planned["checksums"] is None and planned["secondary"]["would_fetch"] is True
    assert planned["backup_id"] == backup["backup_id"] and planned["plan"]["fits"] is True

    fetched = run_preflight(rs_sqlite_params, options, False)
    assert fetched["repository_used"] == staging and fetched["secondary"]["fetched_chunks"] > 0
    assert fetched["checksums"]["passed"] is True and fetched["checksums"]["chunks"] > 0
    assert fetched["plan"]["backup_id"] == backup["backup_id"] and fetched["changed"] is True


def test_the_recovery_log_appends_json_lines_and_check_mode_writes_nothing(tmp_path):
    path = str(tmp_path / "logs" / "recovery.log")
    planned = RecoveryLog(path, "pg1", check_mode=True)
    planned.write("preflight", "ok", {"backup_id": "x"})
    assert not os.path.exists(os.path.dirname(path)) and not planned.written
    assert [r["step"] for r in planned.records] == ["preflight"]

    log = RecoveryLog(path, "pg1")
    log.write("start", "ok", {"backup_id": "latest"})
    log.write("preflight", "failed", {"msg": "no"})
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path) as handle:
        lines = [json.loads(line) for line in handle]
    assert [(e["host"], e["step"], e["status"]) for e in lines] == [("pg1", "start", "ok"), ("pg1", "preflight", "failed")]
    assert set(lines[0]) == {"time", "host", "step", "status", "detail"} and lines[0]["time"].endswith("Z")
    assert log.records[0]["at"] <= log.records[1]["at"] and log.written


def _runner_seeing(params, seen, digests):
    """run(cmd) for AppCommands: runs the command and notes the live digests at that moment."""
    def run(cmd):
        seen.append((cmd, digests(params)))
        done = subprocess.run(shlex.split(cmd), capture_output=True, text=True, check=False)
        return done.returncode, done.stdout, done.stderr
    return run


def _watched_app(params, digests, tmp_path, stop_command):
    """An AppCommands that notes the live digests when each command runs, and its recovery log."""
    seen = []
    log = RecoveryLog(str(tmp_path / "recovery.log"), "h1")
    return seen, log, AppCommands(_runner_seeing(params, seen, digests), stop_command, "true start", log)


def test_the_application_stops_right_before_the_swap_and_starts_after(rs_params, rs_repo, rs_state, tmp_path,
                                                                      take_backup, digests, change_data):
    backup = take_backup(rs_params, rs_repo)
    change_data(rs_params)
    live = digests(rs_params)
    seen, log, app = _watched_app(rs_params, digests, tmp_path, "true stop")

    result = restore_with_steps(rs_params, rs_repo, runner.RestoreOptions(
        backup["backup_id"], jobs=1, state_dir=rs_state), app=app, log=log)

    assert [item[0] for item in seen] == ["true stop", "true start"]
    assert seen[0][1] == live  # stopped before the swap: live data still the old
    assert seen[1][1] != live and result["verified"] is True  # started after it
    assert [(r["step"], r["status"]) for r in result["recovery_log_records"]] == [
        ("app_stop", "ok"), ("restore", "ok"), ("app_start", "ok")]
    assert [c["action"] for c in result["app_commands"]] == ["stop", "start"]
    with open(str(tmp_path / "recovery.log")) as handle:
        restored = [json.loads(line) for line in handle][1]
    assert restored["detail"]["backup_id"] == backup["backup_id"]
    assert restored["detail"]["restore_point"] == result["restore_point"]


def test_a_failing_stop_command_swaps_nothing_and_starts_the_application_again(rs_params, rs_repo, rs_state,
                                                                               tmp_path, take_backup, digests,
                                                                               change_data):
    backup = take_backup(rs_params, rs_repo)
    change_data(rs_params)
    live = digests(rs_params)
    seen, log, app = _watched_app(rs_params, digests, tmp_path, "false")

    with pytest.raises(RestoreError, match="stop command 'false' failed .*nothing was swapped.*started again") as caught:
        restore_with_steps(rs_params, rs_repo, runner.RestoreOptions(backup["backup_id"], jobs=1, state_dir=rs_state),
                           app=app, log=log)

    assert digests(rs_params) == live
    assert [item[0] for item in seen] == ["false", "true start"]
    assert [(r["step"], r["status"]) for r in caught.value.details["recovery_log_records"]] == [
        ("app_stop", "failed"), ("restore", "failed"), ("app_start", "ok")]
    assert runner.list_restore_points(rs_params, state_dir=rs_state) == []


def test_a_restore_that_fails_before_the_swap_never_stops_the_application(rs_sqlite_params, rs_repo, rs_state,
                                                                          tmp_path, take_backup, flip_chunk, digests):
    backup = take_backup(rs_sqlite_params, rs_repo)
    chunks = Repository(rs_repo).load_manifest(backup["backup_id"])["streams"]["database"]["chunks"]
    flip_chunk(rs_repo, chunks[0][0])
    seen, log, app = _watched_app(rs_sqlite_params, digests, tmp_path, "true stop")
    with pytest.raises(RestoreError, match="damaged, nothing was changed") as caught:
        restore_with_steps(rs_sqlite_params, rs_repo, runner.RestoreOptions(
            backup["backup_id"], jobs=1, state_dir=rs_state), app=app, log=log)
    assert seen == []
    assert [(r["step"], r["status"]) for r in caught.value.details["recovery_log_records"]] == [("restore", "failed")]
