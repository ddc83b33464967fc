# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a PostgreSQL archive is staged: the operator's folder when given, memory (/dev/shm, a
tmpfs on these machines) when the archive fits there comfortably, else the system temp folder;
the restore plan counts the free space of the place chosen, and the next run of the same target
removes what a killed run left there."""

from __future__ import annotations

import dataclasses
import os
import tempfile

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.common.meminfo import read_meminfo
from ansible_collections.bim.wall_system.plugins.module_utils.restore import runner, space
from ansible_collections.bim.wall_system.plugins.module_utils.restore.runner import RestoreOptions
from ansible_collections.bim.wall_system.plugins.module_utils.restore.errors import RestoreError
from ansible_collections.bim.wall_system.plugins.module_utils.restore.targets import make_target


def test_memory_is_used_only_for_what_fits_comfortably(tmp_path):
    available = read_meminfo()["available"]
    assert available > 0
    assert space.memory_staging_dir(1024 * 1024) == space.MEMORY_STAGING_DIR
    # Well above the share: other processes free memory between the two reads on a shared machine.
    assert space.memory_staging_dir(int(available * space.MEMORY_STAGING_SHARE * 2) + 1) is None
    assert space.memory_staging_dir(1024, folder=str(tmp_path)) is None  # not a tmpfs
    assert space.memory_staging_dir(1024, folder=str(tmp_path / "missing")) is None


def test_meminfo_and_mounts_are_read_as_the_kernel_writes_them(tmp_path):
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal:       24576000 kB\nMemFree:  100 kB\nMemAvailable:   20000000 kB\n")
    assert read_meminfo(str(meminfo))["available"] == 20000000 * 1024
    assert read_meminfo(str(tmp_path / "none")) is None
    mounts = tmp_path / "mounts"
    folder = tmp_path / "my data" / "shm"
    folder.mkdir(parents=True)
    escaped = str(tmp_path / "my data").replace(" ", "\\040")
    mounts.write_text("/dev/vda / ext4 rw 0 0\ntmpfs %s tmpfs rw 0 0\n" % escaped)
    assert space._filesystem_type(str(folder), mounts=str(mounts)) == "tmpfs"  # the longest mount point wins
    assert space._filesystem_type(str(tmp_path), mounts=str(mounts)) == "ext4"


@pytest.mark.parametrize("given", [False, True])
def test_plan_counts_the_staging_place_chosen(rs_pg_params, rs_repo, rs_state, tmp_path, take_backup, given):
    take_backup(rs_pg_params, rs_repo)
    staging = str(tmp_path / "staging") if given else None
    result = runner.run_restore(rs_pg_params, rs_repo, RestoreOptions("latest", check_mode=True, state_dir=rs_state,
                                                                      staging_dir=staging))
    # Rows are per file system: the staging need sits in the row of the place chosen.
    rows = [row for row in result["plan"]["space"] if "archive staging file" in row["labels"]]
    assert len(rows) == 1
    place = staging if given else space.MEMORY_STAGING_DIR
    assert space.device_of(rows[0]["path"]) == space.device_of(place)
    assert space.device_of(space.MEMORY_STAGING_DIR) != space.device_of(tempfile.gettempdir())


def test_recover_removes_what_a_killed_run_staged_for_this_target_only(rs_pg_params, rs_state, tmp_path):
    target = make_target(rs_pg_params, state_dir=rs_state, staging_dir=str(tmp_path))
    # A target whose key starts with this one's: its files must survive.
    other = make_target(dataclasses.replace(rs_pg_params, db_name=rs_pg_params.db_name + "-x"), state_dir=rs_state)
    mine = [_staged_file(target, folder) for folder in (space.MEMORY_STAGING_DIR, str(tmp_path))]
    mine.append(mine[0] + ".list")
    open(mine[-1], "w").close()
    theirs = _staged_file(other, space.MEMORY_STAGING_DIR)
    try:
        with target.lock():
            actions = target.recover()
        assert [p for p in mine if os.path.exists(p)] == []
        assert sorted(a for a in actions if "staged archive" in a) == sorted(
            "left-over staged archive %s removed" % p for p in mine)
        assert os.path.exists(theirs)
    finally:
        for path in mine + [theirs]:
            if os.path.exists(path):
                os.unlink(path)


def _staged_file(target, folder):
    """A file named as a run of ``target`` names its staged archive in ``folder``."""
    fd, path = tempfile.mkstemp(prefix=target._staged_prefix(), suffix=".dump", dir=folder)
    os.close(fd)
    return path


def test_staging_that_fails_is_a_clear_error_and_leaves_nothing(rs_pg_params, rs_repo, rs_state, tmp_path, take_backup):
    take_backup(rs_pg_params, rs_repo)
    not_a_folder = tmp_path / "staging"
    not_a_folder.write_text("a file where the staging folder should be")
    with pytest.raises(RestoreError, match="live data untouched: .*File exists"):
        runner.run_restore(rs_pg_params, rs_repo, RestoreOptions("latest", state_dir=rs_state, staging_dir=str(not_a_folder)))
    target = make_target(rs_pg_params, state_dir=rs_state)
    assert target.engine.databases_like(rs_pg_params.db_name + "__") == []
    verified = runner.verify_backups(rs_repo, ["latest"], level="restore", params=rs_pg_params, state_dir=rs_state,
                                     staging_dir=str(not_a_folder), record=False)
    assert verified["passed"] is False and "File exists" in verified["backups"][0]["problems"][0]
