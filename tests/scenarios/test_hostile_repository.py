# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A tampered or unlucky repository on a fleet host, attacked for real through the collection's
modules (issue 13): symbolic links that would lead housekeeping outside the repository, an empty
database that would replace good backups (and forgetting it once examined), a damaged newest
manifest, a malformed lock file.

Each story asserts what the operator cares about: nothing outside the repository (or the restore
target) changed, and no good backup was lost. The repositories are scratch folders of the test on
host lite1 (the fleet's hosts share this machine's file system), so the fleet's own backups are
left alone."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time

import pytest
from snapshot import tree

HOST = "lite1"
OTHER = "lite2"
# backup_verify names the host's database (level checksum reads only the repository)
VERIFY = {"engine": "sqlite", "sqlite_path": "{{ bim_sqlite_path }}", "level": "checksum"}


def manifests(repo):
    folder = os.path.join(repo, "manifests")
    return sorted(n[:-5] for n in os.listdir(folder) if n.endswith(".json"))


def payload(result):
    """The module's JSON result from an ad-hoc run's output ("lite1 | CHANGED => {...}")."""
    return json.loads(result.stdout.split("=>", 1)[1])


@pytest.fixture
def area(fleet, request):
    """A scratch folder of this test, with someone else's files in ``outside`` that must survive."""
    folder = os.path.join(fleet.state_dir, "hostile", request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(os.path.join(folder, "outside", "sub"))
    with open(os.path.join(folder, "outside", "a.txt"), "w", encoding="utf-8") as handle:
        handle.write("keep me")
    with open(os.path.join(folder, "outside", "sub", "b.tmp"), "wb") as handle:
        handle.write(os.urandom(64))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def backup(run_ansible):
    def run(repo, host=HOST, sqlite_path="{{ bim_sqlite_path }}", **extra):
        args = {"engine": "sqlite", "sqlite_path": sqlite_path, "repository": repo, "type": "full", "lock_timeout": 0}
        args.update(extra)
        return run_ansible(host, "bim.wall_system.backup", args)
    return run


def _ok(result):
    assert result.hosts.get(HOST) in ("ok", "changed") or set(result.hosts.values()) <= {"ok", "changed"}, str(result)
    return payload(result)


def test_a_tmp_link_to_an_outside_folder_is_replaced_and_its_files_survive(area, backup):
    repo = os.path.join(area, "repo")
    outside = os.path.join(area, "outside")
    first = _ok(backup(repo))["backup_id"]
    before = tree(outside)
    shutil.rmtree(os.path.join(repo, "tmp"))
    os.symlink(outside, os.path.join(repo, "tmp"))

    result = backup(repo, retention={"keep_last": 5})

    second = _ok(result)["backup_id"]
    assert tree(outside) == before
    assert "tmp was a symbolic link" in result.stdout + result.stderr, str(result)
    assert not os.path.islink(os.path.join(repo, "tmp"))
    assert manifests(repo) == sorted([first, second])


def test_a_chunk_folder_linked_into_another_repository_loses_nothing_there(area, backup, run_ansible):
    mine, other = os.path.join(area, "repo"), os.path.join(area, "other")
    _ok(backup(mine))
    _ok(backup(other, host=OTHER))
    own = {n for d in os.listdir(os.path.join(mine, "chunks")) for n in os.listdir(os.path.join(mine, "chunks", d))}
    foreign = sorted(n for d in os.listdir(os.path.join(other, "chunks"))
                     for n in os.listdir(os.path.join(other, "chunks", d)) if n not in own)
    assert foreign, "lite2's database should have chunks lite1's has not"
    prefix = foreign[0][:2]
    link = os.path.join(mine, "chunks", prefix)
    if os.path.isdir(link):  # the attack puts a link where the folder was
        shutil.move(link, os.path.join(area, "moved-aside"))
    os.symlink(os.path.join(other, "chunks", prefix), link)
    before = tree(other)

    result = backup(mine, retention={"keep_last": 1})

    _ok(result)
    assert tree(other) == before
    assert "chunks/%s was a symbolic link" % prefix in result.stdout + result.stderr, str(result)
    verify = run_ansible(OTHER, "bim.wall_system.backup_verify", dict(VERIFY, repository=other, backups=["all"]))
    assert verify.hosts.get(OTHER) in ("ok", "changed"), str(verify)
    checked = payload(verify)
    assert checked["passed"] is True and [b["passed"] for b in checked["backups"]] == [True], str(verify)


def test_an_empty_database_with_keep_last_one_loses_no_good_backup(area, backup, run_ansible):
    repo = os.path.join(area, "repo")
    good = [_ok(backup(repo))["backup_id"] for _run in range(2)]
    empty = os.path.join(area, "empty.db")
    open(empty, "wb").close()
    before = tree(os.path.join(area, "outside"))

    result = _ok(backup(repo, sqlite_path=empty, retention={"keep_last": 1}))

    assert result["suspicious"] is True and result["expired"] == [], result
    assert "none of the BIM tables" in result["suspicious_reasons"][0]
    assert manifests(repo) == sorted(good + [result["backup_id"]])
    with open(os.path.join(repo, "manifests", result["backup_id"] + ".json"), encoding="utf-8") as handle:
        assert json.load(handle)["suspicious"] == result["suspicious_reasons"]
    info = run_ansible(HOST, "bim.wall_system.backup_info", {"repository": repo})
    assert payload(info)["suspicious"] == [result["backup_id"]], str(info)
    assert tree(os.path.join(area, "outside")) == before
    assert os.path.getsize(empty) == 0

    # Examined: the operator forgets it with the next backup; a good backup cannot be forgotten so.
    refused = backup(repo, forget_suspicious=[good[0]])
    assert refused.hosts.get(HOST) == "failed" and "is not suspicious" in refused.stdout, str(refused)
    assert manifests(repo) == sorted(good + [result["backup_id"]])
    forgot = _ok(backup(repo, forget_suspicious=[result["backup_id"]]))
    assert forgot["forgotten"] == [result["backup_id"]] and not forgot["suspicious"], forgot
    assert manifests(repo) == sorted(good + [forgot["backup_id"]])


def test_a_damaged_newest_manifest_stops_no_backup_and_latest_refuses_it(area, backup, run_ansible):
    repo = os.path.join(area, "repo")
    good = _ok(backup(repo))["backup_id"]
    newest = _ok(backup(repo))["backup_id"]
    with open(os.path.join(repo, "manifests", newest + ".json"), "ab") as handle:
        handle.write(b"\x00damaged")
    target = os.path.join(area, "target.db")
    with sqlite3.connect(target) as conn:
        conn.execute("CREATE TABLE marker (v TEXT)")
        conn.execute("INSERT INTO marker VALUES ('untouched')")
    target_before = tree(area)

    verify = run_ansible(HOST, "bim.wall_system.backup_verify", dict(VERIFY, repository=repo, backups=["latest"]))
    assert verify.hosts.get(HOST) == "failed", str(verify)
    assert "newest backup %s cannot be used" % newest in payload(verify)["msg"], str(verify)
    restore = run_ansible(HOST, "bim.wall_system.restore", {
        "engine": "sqlite", "sqlite_path": target, "repository": repo, "backup_id": "latest",
        "state_dir": os.path.join(area, "restore-state")})
    assert restore.hosts.get(HOST) == "failed", str(restore)
    assert "newest backup %s cannot be used" % newest in payload(restore)["msg"], str(restore)
    assert {k: v for k, v in tree(area).items() if not k.startswith("restore-state")} == target_before

    time.sleep(1)  # ids are to the second: the next backup starts after the damaged one
    for prune in (False, True):
        result = backup(repo, prune=prune, retention={"keep_last": 5})
        _ok(result)
        assert "not pruning" in result.stdout + result.stderr, str(result)
    assert good in manifests(repo) and newest in manifests(repo)


def test_a_malformed_lock_file_gives_a_clear_message(area, backup):
    repo = os.path.join(area, "repo")
    good = _ok(backup(repo))["backup_id"]
    with open(os.path.join(repo, "lock"), "w", encoding="utf-8") as handle:
        handle.write("[1, 2]")
    before = tree(area)

    result = backup(repo)

    assert result.hosts.get(HOST) == "failed", str(result)
    message = payload(result)["msg"]
    assert "not a lock record" in message and os.path.join(repo, "lock") in message, message
    assert "Traceback" not in result.stdout + result.stderr
    assert tree(area) == before
    assert manifests(repo) == [good]
