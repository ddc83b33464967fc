# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a restored copy is proven: full checks, identity with a restore-verified SQLite image, and
PostgreSQL digests started while pg_restore still runs. Real PostgreSQL+PostGIS and SQLite."""

from __future__ import annotations

import json
import os
import threading

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError
from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import Repository
from ansible_collections.bim.wall_system.plugins.module_utils.restore import runner, verifier
from ansible_collections.bim.wall_system.plugins.module_utils.restore.runner import RestoreOptions
from ansible_collections.bim.wall_system.plugins.module_utils.restore.targets import make_target


def _restore_verify(params, repo, state):
    result = runner.verify_backups(repo, ["latest"], level="restore", params=params, state_dir=state)
    assert result["passed"], result
    return result["backups"][0]


def test_sqlite_restore_of_a_restore_verified_backup_is_proven_by_identity(
        rs_sqlite_params, rs_repo, rs_state, take_backup, digests, change_data):
    backup = take_backup(rs_sqlite_params, rs_repo)
    original = digests(rs_sqlite_params)
    unverified = runner.run_restore(rs_sqlite_params, rs_repo, RestoreOptions("latest", state_dir=rs_state))
    assert unverified["verification"] == "full"

    item = _restore_verify(rs_sqlite_params, rs_repo, rs_state)
    assert item["manifest_checksum"] == Repository(rs_repo).load_manifest(backup["backup_id"])["checksum"]
    change_data(rs_sqlite_params)
    result = runner.run_restore(rs_sqlite_params, rs_repo, RestoreOptions("latest", state_dir=rs_state))

    assert result["verified"] and result["verification"] == "identity"
    assert result["identity_verified_at"]
    assert digests(rs_sqlite_params) == original
    assert {t: v["rows"] for t, v in result["tables"].items()} == {t: v["rows"] for t, v in original.items()}

    forced = runner.run_restore(rs_sqlite_params, rs_repo, RestoreOptions("latest", state_dir=rs_state, verification="full"))
    assert forced["verification"] == "full" and all(t["matches"] for t in forced["tables"].values())


def test_failed_restore_verification_withdraws_identity(rs_sqlite_params, rs_repo, rs_state, take_backup):
    backup = take_backup(rs_sqlite_params, rs_repo)
    _restore_verify(rs_sqlite_params, rs_repo, rs_state)
    Repository(rs_repo).record_verification(backup["backup_id"], "restore", False, ["table walls: differs"])

    result = runner.run_restore(rs_sqlite_params, rs_repo, RestoreOptions("latest", state_dir=rs_state))

    assert result["verification"] == "full"


def test_identity_needs_the_manifest_that_was_verified(rs_sqlite_params, rs_repo, rs_state, take_backup,
                                                       digests, change_data):
    """A manifest rewritten after its verification (with a valid checksum) gets full checks, which
    catch the wrong digest it now records."""
    backup = take_backup(rs_sqlite_params, rs_repo)
    _restore_verify(rs_sqlite_params, rs_repo, rs_state)
    repo = Repository(rs_repo)
    manifest = repo.load_manifest(backup["backup_id"])
    manifest["tables"]["walls"]["digest"] = "0" * 64
    from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import manifest_checksum
    manifest.pop("checksum")
    manifest["checksum"] = manifest_checksum(manifest)
    with open(repo.manifest_path(backup["backup_id"]), "w") as handle:
        json.dump(manifest, handle)
    change_data(rs_sqlite_params)
    live = digests(rs_sqlite_params)

    with pytest.raises(runner.RestoreError) as err:
        runner.run_restore(rs_sqlite_params, rs_repo, RestoreOptions("latest", state_dir=rs_state))

    assert "failed verification" in str(err.value) and "walls" in str(err.value)
    assert digests(rs_sqlite_params) == live


def test_postgresql_is_always_checked_in_full(rs_pg_params, rs_repo, rs_state, take_backup):
    take_backup(rs_pg_params, rs_repo)
    _restore_verify(rs_pg_params, rs_repo, rs_state)

    result = runner.run_restore(rs_pg_params, rs_repo, RestoreOptions("latest", state_dir=rs_state, jobs=2))

    assert result["verification"] == "full" and all(t["matches"] for t in result["tables"].values())


def test_identity_check_finds_a_damaged_image(rs_sqlite_params, tmp_path):
    target = make_target(rs_sqlite_params)
    size = os.path.getsize(rs_sqlite_params.sqlite_path)
    assert target.engine.check_image(rs_sqlite_params.sqlite_path, size) == []
    assert "bytes" in target.engine.check_image(rs_sqlite_params.sqlite_path, size + 1)[0]
    damaged = str(tmp_path / "damaged.db")
    with open(rs_sqlite_params.sqlite_path, "rb") as src, open(damaged, "wb") as out:
        out.write(b"\0" * 100 + src.read()[100:])  # header gone
    assert target.engine.check_image(damaged, size)


def test_bad_verification_choice_is_refused(rs_sqlite_params, rs_repo, rs_state, take_backup):
    take_backup(rs_sqlite_params, rs_repo)
    with pytest.raises(runner.RestoreError, match="verification must be auto or full"):
        runner.run_restore(rs_sqlite_params, rs_repo, RestoreOptions("latest", state_dir=rs_state, verification="fast"))


# ---- CopyVerifier: digests started early -----------------------------------------------------
def _expected(params):
    from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine
    with open_engine(params) as eng:
        return eng.table_digests()


def _count_digests(monkeypatch):
    seen = []
    real = verifier._digest_group

    def counting(params, tables, expected, archive=None):
        seen.append((threading.current_thread().name, list(tables)))
        return real(params, tables, expected, archive)
    monkeypatch.setattr(verifier, "_digest_group", counting)
    return seen


def test_early_digest_waits_for_an_idle_restore_worker(rs_pg_params, monkeypatch):
    expected = _expected(rs_pg_params)
    seen = _count_digests(monkeypatch)
    check = verifier.CopyVerifier(rs_pg_params, expected, sorted(expected), checks=lambda: [])
    check.restore_load(2, 2)  # both workers busy
    check.table_ready("walls")
    check.table_ready("logs")
    threading.Event().wait(verifier.IDLE_HOLD_S * 3)
    assert seen == []  # nothing digested while the restore keeps its workers busy

    check.restore_load(1, 2)  # a worker idle: after IDLE_HOLD_S the largest complete table goes first
    first = next(iter(check._early.values()))
    first.result(timeout=30)
    largest = max(("walls", "logs"), key=lambda t: expected[t]["rows"])
    assert seen[0] == ("bim-verify-early_0", [largest])

    problems, tables = check.finish()
    assert problems == [] and all(t["matches"] for t in tables.values())
    assert sorted(t for _thread, group in seen for t in group) == sorted(expected)  # each table once


def test_busy_restore_never_starts_early_digests(rs_pg_params, monkeypatch):
    expected = _expected(rs_pg_params)
    seen = _count_digests(monkeypatch)
    check = verifier.CopyVerifier(rs_pg_params, expected, sorted(expected), checks=lambda: ["index x is invalid"])
    check.restore_load(2, 2)
    check.table_ready("walls")
    check.restore_load(1, 2)
    check.restore_load(2, 2)  # the next item launched before the hold ended
    threading.Event().wait(verifier.IDLE_HOLD_S * 3)
    assert seen == []

    problems, _tables = check.finish()
    assert problems == ["index x is invalid"]
    assert all(thread.startswith("bim-verify_") for thread, _group in seen)


def test_cancelled_verifier_digests_nothing_more(rs_pg_params, monkeypatch):
    expected = _expected(rs_pg_params)
    seen = _count_digests(monkeypatch)
    check = verifier.CopyVerifier(rs_pg_params, expected, sorted(expected), checks=lambda: [])
    check.restore_load(2, 2)
    check.table_ready("walls")
    check.cancel()
    check.table_ready("logs")
    check.restore_load(1, 2)
    threading.Event().wait(verifier.IDLE_HOLD_S * 3)
    assert seen == [] and "logs" not in check._early


def test_digest_of_a_missing_copy_raises(rs_pg_params):
    import dataclasses
    gone = dataclasses.replace(rs_pg_params, db_name=rs_pg_params.db_name + "__gone")
    check = verifier.CopyVerifier(gone, {"walls": {"rows": 1, "digest": "0"}}, ["walls"], checks=lambda: [])
    with pytest.raises(DatabaseError):
        check.finish()


def test_verifier_digests_each_table_in_the_form_its_manifest_records(rs_pg_params):
    from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine
    with open_engine(rs_pg_params) as eng:
        binary = eng.table_digests()
        # a manifest written before binary digests: text digests, no form recorded
        old = {t: {"rows": v["rows"], "digest": v["digest"]}
               for t, v in eng.table_digests(forms=dict.fromkeys(binary, "copy-text")).items()}
    assert {v["digest_form"] for v in binary.values()} == {"copy-binary"}
    for expected in (binary, old):
        problems, tables = verifier.CopyVerifier(rs_pg_params, expected, sorted(expected), checks=lambda: []).finish()
        assert problems == [] and all(t["matches"] for t in tables.values())
    # a binary digest recorded without its form is read as text, and no longer matches
    unmarked = {t: {"rows": v["rows"], "digest": v["digest"]} for t, v in binary.items()}
    problems, _tables = verifier.CopyVerifier(rs_pg_params, unmarked, ["walls"], checks=lambda: []).finish()
    assert problems == ["table walls: content digest differs from the manifest's"]
