# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The health gate inside the restore run (restore/health_gate.py through recovery_steps.py): after the
swap and the start command, on real PostgreSQL and SQLite databases; a failed gate undoes nothing itself
and leaves the restore point the rollback needs."""

from __future__ import annotations

import json

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.restore import runner
from ansible_collections.bim.wall_system.plugins.module_utils.restore.app_commands import AppCommands
from ansible_collections.bim.wall_system.plugins.module_utils.restore.errors import RestoreError
from ansible_collections.bim.wall_system.plugins.module_utils.restore.health_gate import HealthGate
from ansible_collections.bim.wall_system.plugins.module_utils.restore.recovery_log import RecoveryLog
from ansible_collections.bim.wall_system.plugins.module_utils.restore.recovery_steps import restore_with_steps

CLOSED_PORT_URL = "http://127.0.0.1:9"  # discard: nothing listens there, the application check fails


def _run(params, repo, state, backup, tmp_path, gate, start_command="true", check_mode=False):
    log = RecoveryLog(str(tmp_path / "recovery.log"), "h1", check_mode=check_mode)
    ran = []

    def run(cmd):
        ran.append(cmd)
        return (0, "", "") if cmd.startswith("true") else (1, "", "it did not start")

    app = AppCommands(run, "true stop", start_command, log)
    result = restore_with_steps(params, repo, runner.RestoreOptions(backup["backup_id"], jobs=1, state_dir=state,
                                                                    check_mode=check_mode),
                                app=app, log=log, gate=gate)
    return result, ran


def _steps(result):
    return [(r["step"], r["status"]) for r in result["recovery_log_records"]]


def test_the_gate_passes_after_the_start_command_and_ends_the_recovery(rs_params, rs_repo, rs_state, tmp_path,
                                                                       take_backup, digests):
    backup = take_backup(rs_params, rs_repo)
    gate = HealthGate(rs_params, {"checks": ["database"]})
    result, ran = _run(rs_params, rs_repo, rs_state, backup, tmp_path, gate)

    assert ran == ["true stop", "true"]
    assert result["health_gate"]["passed"] is True and result["health_gate"]["attempts"] == 1
    assert result["health_gate"]["overall_status"] in ("healthy", "degraded")
    assert [c["name"] for c in result["health_gate"]["checks"]] == ["database"]
    assert _steps(result) == [("app_stop", "ok"), ("restore", "ok"), ("app_start", "ok"), ("health_gate", "ok"),
                              ("done", "ok")]
    with open(str(tmp_path / "recovery.log")) as handle:
        done = [json.loads(line) for line in handle][-1]
    assert done["detail"] == {"backup_id": backup["backup_id"], "restore_point": result["restore_point"]}


def test_a_failing_gate_is_retried_then_reported_and_leaves_the_restore_point_for_the_rollback(
        rs_params, rs_repo, rs_state, tmp_path, take_backup, digests, change_data):
    backup = take_backup(rs_params, rs_repo)
    change_data(rs_params)
    live = digests(rs_params)
    slept = []
    gate = HealthGate(rs_params, {"checks": ["database", "application"], "app_url": CLOSED_PORT_URL,
                                  "retries": 2, "delay": 0.5, "check_timeout": 5}, sleep=slept.append)
    result, _ran = _run(rs_params, rs_repo, rs_state, backup, tmp_path, gate)

    assert result["health_gate"]["passed"] is False and result["health_gate"]["overall_status"] == "unhealthy"
    assert result["health_gate"]["attempts"] == 3 and slept == [0.5, 0.5]
    assert any(p.startswith("application: error") for p in result["health_gate"]["problems"])
    assert _steps(result)[-1] == ("health_gate", "failed") and ("done", "ok") not in _steps(result)
    # The gate undid nothing: the restore is in place, and its restore point brings the old data back.
    assert digests(rs_params) != live and result["restore_point"]
    runner.run_rollback(rs_params, result["restore_point"], state_dir=rs_state)
    assert digests(rs_params) == live


def test_a_start_command_that_failed_fails_the_gate_without_checks(rs_sqlite_params, rs_repo, rs_state, tmp_path,
                                                                   take_backup):
    backup = take_backup(rs_sqlite_params, rs_repo)
    slept = []
    gate = HealthGate(rs_sqlite_params, {"checks": ["database"]}, sleep=slept.append)
    result, ran = _run(rs_sqlite_params, rs_repo, rs_state, backup, tmp_path, gate, start_command="false")

    assert ran == ["true stop", "false"] and slept == []
    assert result["health_gate"]["passed"] is False and result["health_gate"]["attempts"] == 0
    assert "start command 'false' failed" in result["health_gate"]["problems"][0]
    assert _steps(result)[-2:] == [("app_start", "failed"), ("health_gate", "failed")]


def test_the_gate_does_not_run_in_check_mode(rs_sqlite_params, rs_repo, rs_state, tmp_path, take_backup):
    backup = take_backup(rs_sqlite_params, rs_repo)
    gate = HealthGate(rs_sqlite_params, {"checks": ["database"]})
    result, ran = _run(rs_sqlite_params, rs_repo, rs_state, backup, tmp_path, gate, check_mode=True)
    assert ran == [] and "health_gate" not in result
    assert "health_gate" not in [step for step, _status in _steps(result)]


def test_wrong_settings_are_refused_before_anything_runs(rs_sqlite_params):
    with pytest.raises(RestoreError, match="health_gate: unknown check"):
        HealthGate(rs_sqlite_params, {"checks": ["databse"]})
    with pytest.raises(RestoreError, match="retries and delay not negative"):
        HealthGate(rs_sqlite_params, {"retries": -1})


def test_a_gate_that_cannot_run_has_not_passed_and_shows_no_secret(rs_sqlite_params, tmp_path):
    gate = HealthGate(rs_sqlite_params, {"checks": ["database"]}, secrets=["s3cret-pw"])

    def broken(start_problem=None):
        raise OSError("cannot reach with s3cret-pw")

    gate.run = broken
    log = RecoveryLog(str(tmp_path / "recovery.log"), "h1")
    decided = gate.run_and_record(log, {"backup_id": "b", "restore_point": "rp"})
    assert decided["passed"] is False and "s3cret-pw" not in decided["problems"][0]
    assert "could not run" in decided["problems"][0]
    assert [(r["step"], r["status"]) for r in log.records] == [("health_gate", "failed")]
