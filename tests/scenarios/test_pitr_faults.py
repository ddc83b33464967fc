# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Faults of PostgreSQL's point-in-time recovery, for real, on pg2 (pgBackRest 2.45, PostgreSQL 15):
the WAL archive's disk full, and a point-in-time restore killed (-9) while pgBackRest restores, while
the copy recovers, and while it is verified.

A damaged WAL segment in the repository and an unreachable repository are in test_pitr_fleet.py."""

from __future__ import annotations

import datetime
import glob
import os
import random
import signal
import time

import pytest

import pitr_helpers as ph
import restore_helpers as rh

RUN = "f%d-" % int(time.time())


@pytest.fixture(scope="module")
def archived(fleet, tmp_path_factory):
    ph.setup_archiving(fleet, tmp_path_factory.mktemp("archiving"), hosts=ph.PG_HOST)
    yield fleet
    for path in glob.glob(fleet.hdir(ph.PG_HOST, "data.rp-*")):
        import shutil
        shutil.rmtree(path, ignore_errors=True)


def _restore(run_ansible, fleet, **args):
    return ph.restore(run_ansible, fleet, ph.PG_HOST, **args)


def _health(run_playbook, fleet):
    """pg2's archiving check and the firing alert rules."""
    report, firing = ph.health(run_playbook, fleet, ph.PG_HOST)
    return ph.archiving_check(report[ph.PG_HOST]), firing


def test_a_full_archive_disk_alerts_and_the_archive_catches_up_without_a_gap(archived, run_playbook, run_ansible):
    """pg2's WAL archive on a tmpfs filled to the last byte (archive-push meets ENOSPC): PostgreSQL keeps
    taking writes, the archiving check fails and its alert fires; once space is freed the archive catches
    up, ``pgbackrest check`` passes, and a restore to a moment inside the outage holds every marker up to
    it and none after."""
    fleet = archived
    run = RUN + "full"
    full = ph.FullArchive(fleet, ph.PG_HOST)
    try:
        first = ph.write_markers(fleet, ph.PG_HOST, 10, run=run)
        time.sleep(2 * ph.ARCHIVE_TIMEOUT + 2)
        second = ph.write_markers(fleet, ph.PG_HOST, 10, run=run)
        check, firing = _health(run_playbook, fleet)
        assert check["status"] == "error" and check["metrics"]["archive_failing"] is True, check
        assert "WAL Archiving Failing" in firing, firing
        assert ph.marker_times(fleet, ph.PG_HOST, run) == first + second  # the database kept every write
        full.heal()
        ph.wait_archived_past(fleet, ph.PG_HOST, second[-1])
        assert ph.pgbackrest(fleet, ph.PG_HOST, "check").returncode == 0
        # A moment inside the outage: between the two batches, whose WAL reached the archive only after the heal.
        target = first[-1] + (second[0] - first[-1]) / 2
        _result, out = _restore(run_ansible, fleet, target_time=target.isoformat(), mode="new", keep_target=False,
                                marker_run=run)
        assert out["verified"] is True and out["markers_restored"] == len(first), out
        check, firing = _health(run_playbook, fleet)
        assert check["status"] == "healthy", check
        assert "WAL Archiving Failing" not in firing, firing
    finally:
        full.close()
    assert ph.pgbackrest(fleet, ph.PG_HOST, "check").returncode == 0, "the archive moved back onto the host's disk"


def _live_postmaster(fleet):
    with open(fleet.hdir(ph.PG_HOST, "data", "postmaster.pid"), encoding="ascii") as handle:
        return int(handle.readline())


def _copy_status(fleet):
    """The status line of a restored copy's postmaster.pid ("starting" or "standby" while it recovers,
    "ready" once promoted), "" before the postmaster wrote it, None while no copy's postmaster runs."""
    for copy in ph.restore_copies(fleet, ph.PG_HOST):
        try:
            with open(os.path.join(copy, "postmaster.pid"), encoding="ascii") as handle:
                lines = handle.read().splitlines()
        except OSError:
            continue
        return lines[7].strip() if len(lines) >= 8 else ""
    return None


def _pgbackrest_restore_of(fleet, child):
    """``pgbackrest restore`` run by the child's restore (its session), into a copy beside pg2's data."""
    pids = ph.pids_with_cmdline(["restore", "--pg1-path=" + fleet.hdir(ph.PG_HOST, "data.restore-")])
    return [p for p in pids if _session(p) == child.pid]


def _session(pid):
    try:
        return os.getsid(pid)
    except OSError:
        return None


# Each phase: what shows the child's restore is in it; the kill follows after a random pause.
PHASES = {
    "pgbackrest-restore": (_pgbackrest_restore_of, 0.3),
    "recovery": (lambda fleet, child: _copy_status(fleet) in ("", "starting", "standby"), 0.2),
    "verification": (lambda fleet, child: _copy_status(fleet) == "ready", 0.05),
}


@pytest.mark.parametrize("phase", sorted(PHASES))
def test_kill_9_of_a_point_in_time_restore_leaves_live_untouched_and_the_next_restore_succeeds(
        archived, run_ansible, phase):
    """A point-in-time restore of pg2 (latest, swap) in a session of its own is killed (SIGKILL to its
    whole session: the library and the pgBackRest processes it runs) at random moments of ``phase``,
    twice: the live cluster was never stopped (same postmaster) and holds the same markers; the next
    restore removes what the dead one left (the copy, still running when it was started) and succeeds."""
    fleet = archived
    ph.write_markers(fleet, ph.PG_HOST, 3, run=RUN + "kill-" + phase)
    ph.wait_archived_past(fleet, ph.PG_HOST, ph.marker_times(fleet, ph.PG_HOST)[-1])
    rng = random.Random("%s-%d" % (phase, os.getpid()))
    seen, pause = PHASES[phase]
    for _trial in range(2):
        before, postmaster = ph.marker_times(fleet, ph.PG_HOST), _live_postmaster(fleet)
        digests = rh.live_digests(fleet, ph.PG_HOST)
        child = ph.pitr_child(fleet, ph.PG_HOST)
        try:
            reached = ph.wait_for(lambda: seen(fleet, child) or child.poll() is not None, timeout=300)
            assert reached and child.poll() is None, (phase, child.poll(), child.stderr.read()[-2000:])
            time.sleep(rng.uniform(0, pause))
        finally:
            try:
                os.killpg(child.pid, signal.SIGKILL)  # the session the test started: the child and its tools
            except ProcessLookupError:
                pass  # it ended on its own: the assertion above says so
            child.communicate(timeout=60)
        assert glob.glob(fleet.hdir(ph.PG_HOST, "restore-state", "*.swap.json")) == [], "killed in the swap"
        assert _live_postmaster(fleet) == postmaster
        assert ph.marker_times(fleet, ph.PG_HOST) == before and rh.live_digests(fleet, ph.PG_HOST) == digests
        left = ph.restore_copies(fleet, ph.PG_HOST)
        assert len(left) == 1, left  # the dead restore's copy (its cluster still running after "recovery")
        result, out = _restore(run_ansible, fleet, target_time="latest", mode="new", keep_target=False)
        assert out.get("verified") is True, out
        assert "left-over restored copy %s removed" % left[0] in result.stdout + result.stderr, str(result)
        assert ph.restore_copies(fleet, ph.PG_HOST) == [] and ph.restore_copies(fleet, ph.PG_HOST, "drill") == []
        assert _live_postmaster(fleet) == postmaster and ph.marker_times(fleet, ph.PG_HOST) == before
    # After the kills, a restore that swaps: the live cluster replaced by the latest moment, the same markers.
    _result, out = _restore(run_ansible, fleet, target_time="latest")
    assert out["verified"] is True and out["restore_point"], out
    assert ph.marker_times(fleet, ph.PG_HOST) == before
    assert rh.live_digests(fleet, ph.PG_HOST) is not None


def test_a_damaged_wal_segment_stops_a_restore_to_a_moment_past_it_and_nothing_is_swapped(archived, run_ansible):
    """The restore to a moment (not the latest) whose WAL crosses a damaged segment of the repository: the
    copy's recovery cannot reach the moment; the restore fails naming the segment and swaps nothing."""
    fleet = archived
    run = RUN + "damaged-moment"
    ph.write_markers(fleet, ph.PG_HOST, 5, run=run)
    time.sleep(ph.ARCHIVE_TIMEOUT + 1)
    ph.write_markers(fleet, ph.PG_HOST, 5, run=run)
    time.sleep(ph.ARCHIVE_TIMEOUT + 1)
    last = ph.write_markers(fleet, ph.PG_HOST, 2, run=run)
    # Half a second after the last marker (a marker's time is its transaction's start, its commit a little
    # later); a transaction after the moment is archived too, or no recovery could tell it reached it.
    moment = (last[-1] + datetime.timedelta(seconds=0.5)).isoformat()
    time.sleep(1)
    after = ph.write_markers(fleet, ph.PG_HOST, 1, run=run + "-after")
    ph.wait_archived_past(fleet, ph.PG_HOST, after[-1])
    segment_file = ph.second_newest_segment_file(fleet, ph.PG_HOST)
    with open(segment_file, "rb") as handle:
        original = handle.read()
    before, postmaster = ph.marker_times(fleet, ph.PG_HOST), _live_postmaster(fleet)
    points = glob.glob(fleet.hdir(ph.PG_HOST, "data.rp-*"))
    try:
        with open(segment_file, "r+b") as handle:  # in place: the file keeps its owner and mode
            handle.seek(len(original) // 2)
            handle.write(os.urandom(64))
        result, out = _restore(run_ansible, fleet, target_time=moment, marker_run=run)
    finally:
        with open(segment_file, "r+b") as handle:
            handle.write(original)
    assert result.hosts.get(ph.PG_HOST) == "failed", str(result)
    assert os.path.basename(segment_file)[:24] in out["msg"] and "live data untouched" in out["msg"], out["msg"]
    assert _live_postmaster(fleet) == postmaster and ph.marker_times(fleet, ph.PG_HOST) == before
    assert glob.glob(fleet.hdir(ph.PG_HOST, "data.rp-*")) == points
    assert ph.restore_copies(fleet, ph.PG_HOST) == []
    # The segment repaired, the same restore succeeds (nothing the failed one left stands in its way).
    _result, out = _restore(run_ansible, fleet, target_time=moment, mode="new", keep_target=False, marker_run=run)
    assert out.get("verified") is True and out["markers_restored"] == 12, out.get("msg", out)
