# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The disaster recovery in one run reads the backup once: the restore's reads are the preflight's
checksum verification (restore/read_checks.py). A damaged chunk in any stream stops the recovery
before the application stops and before the swap, as the preflight's failure (nothing changed,
the failure recorded); a sound backup is recorded as verified only once every chunk was read and checked.
Real PostgreSQL and SQLite databases, a real repository."""

from __future__ import annotations

import os

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import Repository
from ansible_collections.bim.wall_system.plugins.module_utils.restore import runner
from ansible_collections.bim.wall_system.plugins.module_utils.restore.app_commands import AppCommands
from ansible_collections.bim.wall_system.plugins.module_utils.restore.errors import RestoreError
from ansible_collections.bim.wall_system.plugins.module_utils.restore.preflight import run_preflight
from ansible_collections.bim.wall_system.plugins.module_utils.restore.read_checks import ReadChecks
from ansible_collections.bim.wall_system.plugins.module_utils.restore.recovery_log import RecoveryLog
from ansible_collections.bim.wall_system.plugins.module_utils.restore.recovery_steps import restore_with_steps
from ansible_collections.bim.wall_system.plugins.module_utils.restore.targets import make_target

DAMAGED = "failed checksum verification as it was read for the restore, nothing was changed"


def _options(tmp_path, state, repository):
    return dict(repository=repository, backup_id="latest", secondary_repository=None,
                secondary_staging=str(tmp_path / "staging"), mode="swap", jobs=2, state_dir=state,
                data_dir=None, staging_dir=None, repository_key=None)


class _App:
    """The application's commands as the one run runs them, noting each."""

    def __init__(self, tmp_path):
        self.ran = []
        self.log = RecoveryLog(str(tmp_path / "recovery.log"), "h1")
        self.commands = AppCommands(self._run, "stop-app", "start-app", self.log)

    def _run(self, cmd):
        self.ran.append(cmd)
        return 0, "", ""


def _one_run(params, repo, state, tmp_path, app, **restore):
    """What the restore module does with preflight + then_restore: the preflight, then the restore with
    the same ReadChecks. Returns (checks, preflight result, restore result)."""
    checks = ReadChecks()
    planned = run_preflight(params, _options(tmp_path, state, repo), False, read_checks=checks)
    assert planned["checksums"]["passed"] is None and planned["checksums"]["checked_by"] == "restore"
    assert Repository(repo).verification_records(planned["backup_id"]) == []  # the preflight read no chunk
    done = restore_with_steps(params, planned["repository_used"], runner.RestoreOptions(
        planned["backup_id"], jobs=2, state_dir=state, read_checks=checks, **restore), app=app.commands, log=app.log)
    return checks, planned, done


def _conf(tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "app.conf").write_text("from the backup\n")
    return conf


def test_a_sound_backup_is_read_once_and_recorded_as_verified(rs_params, rs_repo, rs_state, tmp_path, take_backup):
    conf = _conf(tmp_path)
    backup = take_backup(rs_params, rs_repo, include_paths=[str(conf)])
    manifest = Repository(rs_repo).load_manifest(backup["backup_id"])
    expected = set(Repository.manifest_chunks(manifest).items())
    app = _App(tmp_path)

    checks, _planned, done = _one_run(rs_params, rs_repo, rs_state, tmp_path, app)  # files not restored

    assert expected <= checks.checked  # every chunk of both streams, the files stream read after the restore
    assert done["verified"] is True
    assert done["checksums"] == dict(done["checksums"], backup_id=backup["backup_id"], passed=True,
                                     chunks=len(expected), problems=[], recorded=True, checked_by="restore")
    record = Repository(rs_repo).verification_records(backup["backup_id"])[-1]
    assert (record["level"], record["passed"], record["details"]["chunks"]) == ("checksums", True, len(expected))
    assert app.ran == ["stop-app", "start-app"]
    restored = [r for r in app.log.records if r["step"] == "restore"]
    assert restored and restored[0]["status"] == "ok"


def _assert_recorded_failed(repo, backup_id, chunk_id):
    """One record, failed, naming the chunk: a later recovery of the newest verified backup skips this one."""
    records = Repository(repo).verification_records(backup_id)
    assert [(r["level"], r["passed"]) for r in records] == [("checksums", False)]
    assert chunk_id in records[0]["problems"][0]


@pytest.mark.parametrize("where", ["first", "last"])
def test_a_damaged_database_chunk_changes_nothing_and_is_recorded_as_failed(
        rs_params, rs_repo, rs_state, tmp_path, where, take_backup, flip_chunk, digests, change_data):
    backup = take_backup(rs_params, rs_repo)
    chunks = Repository(rs_repo).load_manifest(backup["backup_id"])["streams"]["database"]["chunks"]
    chunk_id = chunks[0 if where == "first" else -1][0]
    change_data(rs_params)
    live = digests(rs_params)
    flip_chunk(rs_repo, chunk_id)
    app = _App(tmp_path)

    with pytest.raises(RestoreError, match=DAMAGED) as caught:
        _one_run(rs_params, rs_repo, rs_state, tmp_path, app)

    assert chunk_id in str(caught.value)
    checksums = caught.value.details["checksums"]
    assert (checksums["passed"], checksums["recorded"], checksums["checked_by"]) == (False, True, "restore")
    assert digests(rs_params) == live and app.ran == []  # never stopped, never swapped
    _assert_recorded_failed(rs_repo, backup["backup_id"], chunk_id)
    assert make_target(rs_params, state_dir=rs_state).restore_points() == []
    assert [(r["step"], r["status"]) for r in caught.value.details["recovery_log_records"]] == [("restore", "failed")]


@pytest.mark.parametrize("restore_files", [True, False])
def test_a_damaged_files_chunk_changes_nothing_and_is_recorded_as_failed(
        rs_params, rs_repo, rs_state, tmp_path, restore_files, take_backup, flip_chunk, digests, change_data):
    """Restored or not, the files stream is checked before anything is stopped or swapped."""
    conf = _conf(tmp_path)
    backup = take_backup(rs_params, rs_repo, include_paths=[str(conf)])
    chunk_id = Repository(rs_repo).load_manifest(backup["backup_id"])["streams"]["files"]["chunks"][0][0]
    change_data(rs_params)
    live = digests(rs_params)
    (conf / "app.conf").write_text("edited\n")
    flip_chunk(rs_repo, chunk_id)
    app = _App(tmp_path)

    with pytest.raises(RestoreError, match=DAMAGED) as caught:
        _one_run(rs_params, rs_repo, rs_state, tmp_path, app, restore_files=restore_files, files_root="/")

    assert chunk_id in str(caught.value) and caught.value.details["checksums"]["passed"] is False
    assert digests(rs_params) == live and (conf / "app.conf").read_text() == "edited\n" and app.ran == []
    _assert_recorded_failed(rs_repo, backup["backup_id"], chunk_id)
    target = make_target(rs_params, state_dir=rs_state)
    assert target.restore_points() == [] and not target.pending_journal()
    assert not os.path.exists(os.path.join(rs_state, "files-staging", target.key))


def test_a_pending_repair_waits_for_the_whole_backup_to_be_checked(rs_sqlite_params, rs_repo, rs_state, tmp_path,
                                                                   take_backup, flip_chunk, monkeypatch):
    """What a killed run left is repaired only for a backup known sound, as after a separate preflight."""
    backup = take_backup(rs_sqlite_params, rs_repo)
    flip_chunk(rs_repo, Repository(rs_repo).load_manifest(backup["backup_id"])["streams"]["database"]["chunks"][-1][0])
    repaired = []
    monkeypatch.setattr(runner, "_repairs_pending", lambda target: True)
    monkeypatch.setattr(runner, "_recover_and_plan", lambda *args: repaired.append(args))

    with pytest.raises(RestoreError, match=DAMAGED):
        _one_run(rs_sqlite_params, rs_repo, rs_state, tmp_path, _App(tmp_path))
    assert repaired == []


def test_without_read_checks_a_restore_records_no_verification(rs_sqlite_params, rs_repo, rs_state, take_backup):
    """The restore in a run of its own (service manager): its preflight verified and recorded the checksums."""
    backup = take_backup(rs_sqlite_params, rs_repo)
    done = runner.run_restore(rs_sqlite_params, rs_repo, runner.RestoreOptions(backup["backup_id"], state_dir=rs_state))
    assert done["verified"] is True and "checksums" not in done
    assert Repository(rs_repo).verification_records(backup["backup_id"]) == []


def test_a_stream_whose_chunks_do_not_add_up_is_refused_before_anything_is_read(rs_sqlite_params, rs_repo, rs_state,
                                                                                tmp_path, take_backup, digests):
    backup = take_backup(rs_sqlite_params, rs_repo)
    repo = Repository(rs_repo)
    manifest = repo.load_manifest(backup["backup_id"])
    manifest["streams"]["database"]["size"] += 1  # a forged, unkeyed manifest: its checksum is made again
    repo.write_manifest({k: v for k, v in manifest.items() if k != "checksum"})
    live = digests(rs_sqlite_params)
    app = _App(tmp_path)

    with pytest.raises(RestoreError, match="failed checksum verification, nothing was changed: stream database") as caught:
        _one_run(rs_sqlite_params, rs_repo, rs_state, tmp_path, app)
    assert caught.value.details["checksums"]["passed"] is False
    assert digests(rs_sqlite_params) == live and app.ran == []
    records = Repository(rs_repo).verification_records(backup["backup_id"])
    assert [(r["level"], r["passed"]) for r in records] == [("checksums", False)]
