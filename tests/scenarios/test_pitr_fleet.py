# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Point-in-time recovery on the fleet, as an operator lives it: archiving set up by the
continuous_archiving role on pg2 (pgBackRest) and lite1 (Litestream to storage1 over SFTP), then
restores to a moment and to the latest, verified, swapped and rolled back.

One archived fleet serves the whole module (the role runs once); the teardown stops Litestream so
later scenarios that remove or swap lite1's file meet no replicating daemon."""

from __future__ import annotations

import glob
import json
import os
import random
import shutil
import signal
import time

import pytest

import pitr_helpers as ph
import restore_helpers as rh

# Marker runs of this session: a fleet kept between sessions keeps the markers of earlier ones.
RUN = "t%d-" % int(time.time())


@pytest.fixture(scope="module")
def archived(fleet, tmp_path_factory):
    ph.setup_archiving(fleet, tmp_path_factory.mktemp("archiving"))
    yield fleet
    fleet.unit_stop(ph.LITE_HOST, ph.unit_file(fleet, ph.LITE_HOST))
    for path in glob.glob(fleet.hdir(ph.PG_HOST, "data.rp-*")):
        shutil.rmtree(path, ignore_errors=True)
    for path in glob.glob(fleet.hosts[ph.LITE_HOST]["sqlite_path"] + ".rp-*"):
        os.unlink(path)


def test_archiving_role_is_idempotent_and_its_tools_agree(archived, run_playbook):
    fleet = archived
    again = run_playbook("bim.wall_system.continuous_archiving", extra_vars=ph.archiving_vars(fleet), limit=ph.HOSTS)
    assert again.rc == 0, again
    assert {h: r["changed"] for h, r in ph.recap(again).items()} == {"pg2": 0, "lite1": 0}, again.stdout[-3000:]
    planned = run_playbook("bim.wall_system.continuous_archiving", extra_vars=ph.archiving_vars(fleet),
                           limit=ph.HOSTS, check=True)
    assert planned.rc == 0 and {h: r["changed"] for h, r in ph.recap(planned).items()} == {"pg2": 0, "lite1": 0}

    # pgBackRest's own check: the configuration is sound and a WAL switch reaches the repository.
    check = ph.pgbackrest(fleet, ph.PG_HOST, "check")
    assert check.returncode == 0, check.stderr
    # Litestream replicates lite1 to storage1: LTX files, a snapshot among them.
    files = ph.litestream_ltx(fleet, ph.LITE_HOST)
    assert any(int(f["level"]) == 9 for f in files), files
    assert fleet.unit_pid(ph.LITE_HOST, ph.unit_file(fleet, ph.LITE_HOST))


_restore = ph.restore


def test_restore_to_a_moment_holds_every_marker_up_to_it_and_none_after(archived, run_ansible):
    fleet = archived
    before, after, target = {}, {}, None
    for host in (ph.PG_HOST, ph.LITE_HOST):
        before[host] = ph.write_markers(fleet, host, 8, run=RUN + "moment")
    time.sleep(2.5)  # a quiet gap: Litestream has shipped every marker above before the target
    target = ph.utc(time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z")
    time.sleep(1.5)
    for host in (ph.PG_HOST, ph.LITE_HOST):
        after[host] = ph.write_markers(fleet, host, 8, run=RUN + "moment")
    ph.wait_archived_past(fleet, ph.PG_HOST, after[ph.PG_HOST][-1])
    ph.wait_archived_past(fleet, ph.LITE_HOST, after[ph.LITE_HOST][-1])

    for host in (ph.PG_HOST, ph.LITE_HOST):
        live_before = ph.marker_times(fleet, host, RUN + "moment")
        result, out = _restore(run_ansible, fleet, host, target_time=target.isoformat(), marker_run=RUN + "moment")
        assert result.hosts.get(host) == "changed", str(result)
        assert out["verified"] is True and out["restore_point"], out
        restored = ph.marker_times(fleet, host, RUN + "moment")
        assert all(m in restored for m in before[host]), (host, restored, before[host])
        assert [m for m in restored if m > target] == [], (host, target)
        assert set(after[host]) & set(restored) == set()
        assert restored == [m for m in live_before if m <= target]

        # The rollback puts the database of before the restore back, markers after the moment included.
        result, out = _restore(run_ansible, fleet, host, rollback_to=out["restore_point"])
        assert result.hosts.get(host) == "changed", str(result)
        assert ph.marker_times(fleet, host, RUN + "moment") == live_before


def test_host_destroyed_under_marker_load_comes_back_within_its_rpo(archived, run_playbook):
    """The issue's done-when: a marker a second on pg2 and lite1, both hosts destroyed (PostgreSQL killed
    and its data directory removed; the SQLite file removed), disaster_recovery brings each back to the
    latest archived moment; RPO from the markers <= 60 s (PostgreSQL) and <= 5 s (SQLite), shown in the
    recovery summary."""
    fleet = archived
    run = "done-when-%d" % os.getpid()
    writers = {}
    for host in (ph.PG_HOST, ph.LITE_HOST):
        writers[host] = ph.MarkerLoad(fleet, host, run, duration=40)
        writers[host].start()
    time.sleep(20)
    ph.destroy_host_database(fleet, ph.PG_HOST)
    ph.destroy_host_database(fleet, ph.LITE_HOST)
    assert rh.live_digests(fleet, ph.LITE_HOST) is None

    result = run_playbook("bim.wall_system.disaster_recovery", extra_vars=ph.archiving_vars(
        fleet, bim_restore_hosts=ph.HOSTS, bim_restore_target_time="latest", bim_restore_marker_run=run,
        bim_restore_state_dir=fleet.state_dir + "/{{ inventory_hostname }}/restore-state",
        bim_restore_log=fleet.state_dir + "/{{ inventory_hostname }}/recovery/recovery.log",
        bim_restore_health_retries=5, bim_restore_health_delay=1))
    for writer in writers.values():
        writer.join()
    assert result.rc == 0, str(result)
    with open(os.path.join(result.cwd, "bim-reports", "recovery-summary.json")) as handle:
        summary = json.load(handle)
    limits = {ph.PG_HOST: 60.0, ph.LITE_HOST: 5.0}
    for host, limit in limits.items():
        entry = summary["hosts"][host]
        assert entry["status"] == "ok" and entry["source"] == "archive", entry
        rpo = float(entry["rpo_s"])
        assert 0 <= rpo <= limit, (host, entry)
        # The newest marker the summary names is in the recovered database, and no newer than the newest
        # the database had committed before it was destroyed (the writer's journal).
        assert ph.utc(entry["newest_marker_restored"]) in ph.marker_times(fleet, host, run), entry
        assert ph.utc(entry["newest_marker_live"]) >= ph.utc(entry["newest_marker_restored"]), entry
        assert writers[host].committed_before_destruction(), (host, writers[host].result)
    check = ph.pgbackrest(fleet, ph.PG_HOST, "check")
    assert check.returncode == 0, check.stderr


def test_archive_drill_measures_rpo_from_markers_and_checks_a_moment(archived, run_playbook):
    fleet = archived
    result = run_playbook("bim.wall_system.recovery_drill", limit=ph.HOSTS, extra_vars=ph.archiving_vars(
        fleet, bim_recovery_drill_source="archive", bim_recovery_drill_max_rpo=60,
        bim_recovery_drill_marker_seconds=16, bim_recovery_drill_marker_settle=8,
        bim_recovery_drill_state_dir=fleet.state_dir + "/{{ inventory_hostname }}/restore-state"))
    assert result.rc == 0, str(result)
    with open(os.path.join(result.cwd, "bim-reports", "drill-summary.json")) as handle:
        report = json.load(handle)
    for host, limit in ((ph.PG_HOST, 60.0), (ph.LITE_HOST, 5.0)):
        entry = report["hosts"][host]
        assert entry["status"] == "passed" and entry["source"] == "archive", entry
        assert 0 <= float(entry["rpo_s"]) <= limit and float(entry["rto_s"]) > 0, entry
        assert entry["moment_verified"] in (True, "True") and entry["moment"], entry
        # No copy of the drill is left: neither a cluster beside pg2's nor a file beside lite1's.
    assert glob.glob(fleet.hdir(ph.PG_HOST, "data.drill-*")) == []
    assert [n for n in os.listdir(os.path.dirname(fleet.hosts[ph.LITE_HOST]["sqlite_path"])) if ".drill-" in n] == []


# ---- faults, for real ------------------------------------------------------------------------------
_health, _archiving = ph.health, ph.archiving_check


def test_archive_destination_unreachable_alerts_and_catches_up_without_a_gap(archived, run_playbook, run_ansible):
    """pg2's repository becomes unreachable (pgBackRest's user can no longer enter it) and storage1, lite1's
    SFTP replica host, is cut off: both databases keep taking writes, the archiving check and its alert rules
    fire; once healed the archives catch up and a restore of the latest moment holds every marker written
    during the outage."""
    fleet = archived
    repo = os.path.join(ph.archive_dir(fleet, ph.PG_HOST), "repo")
    os.chmod(repo, 0o000)
    fleet.stop_sshd("storage1")
    try:
        during = {h: ph.write_markers(fleet, h, 12, run=RUN + "outage") for h in (ph.PG_HOST, ph.LITE_HOST)}
        time.sleep(2 * ph.ARCHIVE_TIMEOUT + 2)
        during = {h: during[h] + ph.write_markers(fleet, h, 3, run=RUN + "outage") for h in during}
        ph.wait_archive_failing(fleet, ph.PG_HOST)
        report, firing = _health(run_playbook, fleet, ph.HOSTS)
    finally:
        os.chmod(repo, 0o700)
        fleet.start_sshd("storage1")
    pg_check, lite_check = _archiving(report[ph.PG_HOST]), _archiving(report[ph.LITE_HOST])
    assert pg_check["status"] == "error" and pg_check["metrics"]["archive_failing"] is True, pg_check
    assert lite_check["status"] == "error" and lite_check["metrics"]["replica_reachable"] is False, lite_check
    assert {"WAL Archiving Failing", "SQLite Replica Lagging"} <= firing, firing
    # While pgBackRest cannot read its repository it knows no window: the report says so, not a guess.
    assert report[ph.PG_HOST]["recoverable_window"] == {"earliest": None, "latest": None}

    for host in (ph.PG_HOST, ph.LITE_HOST):
        ph.wait_archived_past(fleet, host, during[host][-1])
        _result, out = _restore(run_ansible, fleet, host, target_time="latest", mode="new", keep_target=False,
                                marker_run=RUN + "outage")
        assert out["verified"] is True, out
        assert out["markers_restored"] == len(during[host]), (host, out)
    check = ph.pgbackrest(fleet, ph.PG_HOST, "check")
    assert check.returncode == 0, check.stderr
    report, firing = _health(run_playbook, fleet, ph.HOSTS)
    assert _archiving(report[ph.PG_HOST])["status"] == "healthy", _archiving(report[ph.PG_HOST])
    assert _archiving(report[ph.LITE_HOST])["status"] == "healthy", _archiving(report[ph.LITE_HOST])
    for host in (ph.PG_HOST, ph.LITE_HOST):
        window = report[host]["recoverable_window"]
        assert ph.utc(window["earliest"]) < during[host][0] < during[host][-1] <= ph.utc(window["latest"]), window


def test_kill_9_of_archive_push_at_random_moments_loses_no_wal(archived, run_ansible):
    """pgBackRest's archive-push processes of pg2 (found by pg2's own configuration file on their command
    line) are killed with SIGKILL at random moments while markers are written: PostgreSQL retries, the
    archive catches up, and the latest restore holds every marker."""
    fleet = archived
    config = ph.descriptor(fleet, ph.PG_HOST)["config"]
    load = ph.MarkerLoad(fleet, ph.PG_HOST, RUN + "kill-push", duration=2.5 * ph.ARCHIVE_TIMEOUT, interval=0.5)
    load.start()
    rng = random.Random(15)
    killed = 0
    deadline = time.monotonic() + 2.5 * ph.ARCHIVE_TIMEOUT
    while time.monotonic() < deadline:
        for pid in ph.pids_with_cmdline(["archive-push", "--config=" + config]):
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except OSError:
                pass
        time.sleep(rng.uniform(0.05, 0.6))
    load.join()
    assert killed > 0 and load.result["failures"] == 0, (killed, load.result)
    written = ph.marker_times(fleet, ph.PG_HOST, RUN + "kill-push")
    ph.wait_archived_past(fleet, ph.PG_HOST, written[-1])
    _result, out = _restore(run_ansible, fleet, ph.PG_HOST, target_time="latest", mode="new", keep_target=False,
                            marker_run=RUN + "kill-push")
    assert out["verified"] is True and out["markers_restored"] == len(written), out
    assert ph.pgbackrest(fleet, ph.PG_HOST, "check").returncode == 0


def test_litestream_killed_and_restarted_resumes_without_loss(archived, run_ansible):
    """lite1's Litestream processes (one per replica, found by lite1's archive folder on their command
    line) are killed with SIGKILL between markers; the unit ends with them, markers are written while
    nothing replicates, the unit is started again (what systemd's Restart= does on a real host), and the
    latest restore holds every marker, those written while Litestream was down included."""
    fleet = archived
    run = RUN + "kill-litestream"
    unit = ph.unit_file(fleet, ph.LITE_HOST)
    ph.write_markers(fleet, ph.LITE_HOST, 5, run=run)
    processes = ph.pids_with_cmdline(["replicate", ph.archive_dir(fleet, ph.LITE_HOST)])
    assert processes, "no Litestream process of lite1 to kill"
    for pid in processes:
        os.kill(pid, signal.SIGKILL)
    assert ph.wait_for(lambda: fleet.unit_pid(ph.LITE_HOST, unit) is None, timeout=30), "the unit outlived Litestream"
    ph.write_markers(fleet, ph.LITE_HOST, 5, run=run)
    fleet.unit_start(ph.LITE_HOST, unit)
    ph.write_markers(fleet, ph.LITE_HOST, 5, run=run)
    written = ph.marker_times(fleet, ph.LITE_HOST, run)
    assert len(written) == 15, written
    # The window's end has whole seconds: a write in a later second shows the last marker is shipped.
    time.sleep(1.1)
    ph.write_markers(fleet, ph.LITE_HOST, 1, run=run + "-later")
    ph.wait_archived_past(fleet, ph.LITE_HOST, written[-1])
    _result, out = _restore(run_ansible, fleet, ph.LITE_HOST, target_time="latest", mode="new", keep_target=False,
                            marker_run=run)
    assert out["verified"] is True and out["markers_restored"] == len(written), out
    assert fleet.unit_pid(ph.LITE_HOST, unit)


def test_a_damaged_wal_segment_stops_the_restore_and_nothing_is_swapped(archived, run_ansible):
    fleet = archived
    ph.write_markers(fleet, ph.PG_HOST, 5, run=RUN + "damaged")
    time.sleep(ph.ARCHIVE_TIMEOUT + 1)
    written = ph.write_markers(fleet, ph.PG_HOST, 5, run=RUN + "damaged")
    ph.wait_archived_past(fleet, ph.PG_HOST, written[-1])
    time.sleep(ph.ARCHIVE_TIMEOUT + 1)
    ph.write_markers(fleet, ph.PG_HOST, 2, run=RUN + "damaged")
    segment_file = ph.second_newest_segment_file(fleet, ph.PG_HOST)
    with open(segment_file, "rb") as handle:
        original = handle.read()
    before = ph.marker_times(fleet, ph.PG_HOST)
    points = glob.glob(fleet.hdir(ph.PG_HOST, "data.rp-*"))
    try:
        with open(segment_file, "r+b") as handle:  # in place: the file keeps its owner and mode
            handle.seek(len(original) // 2)
            handle.write(os.urandom(64))
        result, out = _restore(run_ansible, fleet, ph.PG_HOST, target_time="latest")
    finally:
        with open(segment_file, "r+b") as handle:
            handle.write(original)
    assert result.hosts.get(ph.PG_HOST) == "failed", str(result)
    name = os.path.basename(segment_file)[:24]
    assert "damaged or missing" in out["msg"] and "nothing was swapped" in out["msg"], out["msg"]
    assert name in out["msg"], (name, out["msg"])
    assert ph.marker_times(fleet, ph.PG_HOST) == before
    assert glob.glob(fleet.hdir(ph.PG_HOST, "data.rp-*")) == points
    assert glob.glob(fleet.hdir(ph.PG_HOST, "data.restore-*")) == []


@pytest.mark.parametrize("step", ["stop_live", "rename_incoming", "start_live"])  # undone, completed, completed
def test_kill_9_of_a_cluster_swap_at_every_step_is_finished_or_undone(archived, run_ansible, step):
    """The point-in-time swap of pg2 dies (SIGKILL, right after writing each journal step); the next run
    finishes or undoes it: the cluster runs, on the old data or the restored data, never half of each."""
    fleet = archived
    before = ph.marker_times(fleet, ph.PG_HOST)
    child = ph.pitr_child(fleet, ph.PG_HOST, {"BIM_RESTORE_CRASH_AFTER_STEP": step})
    _out, err = child.communicate(timeout=600)
    assert child.returncode == -signal.SIGKILL, (step, child.returncode, err[-2000:])
    # The next run repairs first, then restores a copy beside live (and drops it).
    result, out = _restore(run_ansible, fleet, ph.PG_HOST, target_time="latest", mode="new", keep_target=False)
    assert out["verified"] is True, out
    assert "interrupted cluster swap" in result.stdout + result.stderr, str(result)
    after = ph.marker_times(fleet, ph.PG_HOST)
    assert after[:len(before)] == before, step  # the old data, or the restored (latest) data: the same markers
    assert glob.glob(fleet.hdir(ph.PG_HOST, "data.restore-*")) == []
    assert os.path.exists(fleet.hdir(ph.PG_HOST, "data", "PG_VERSION"))


def test_a_failed_health_gate_rolls_the_whole_cluster_back(archived, run_playbook):
    """disaster_recovery to the latest moment on a live pg2 whose application stays unhealthy: the health
    gate fails, the cluster restore point (the data directory the swap kept) is swapped back."""
    fleet = archived
    log = fleet.hdir(ph.PG_HOST, "recovery", "recovery.log")
    if os.path.exists(log):
        os.unlink(log)
    ph.write_markers(fleet, ph.PG_HOST, 3, run=RUN + "gate")
    before = ph.marker_times(fleet, ph.PG_HOST)
    fleet.set_app_health(ph.PG_HOST, False)
    try:
        result = run_playbook("bim.wall_system.disaster_recovery", extra_vars=ph.archiving_vars(
            fleet, bim_restore_hosts=ph.PG_HOST, bim_restore_target_time="latest",
            bim_restore_state_dir=fleet.state_dir + "/{{ inventory_hostname }}/restore-state",
            bim_restore_log=fleet.state_dir + "/{{ inventory_hostname }}/recovery/recovery.log",
            bim_restore_health_retries=1, bim_restore_health_delay=1))
    finally:
        fleet.reset(ph.PG_HOST)
    assert result.rc != 0, str(result)
    assert "Rolled back to " + fleet.hdir(ph.PG_HOST, "data.rp-") in result.stdout.replace("\n", " "), str(result)
    assert ph.marker_times(fleet, ph.PG_HOST) == before  # the cluster of before, every marker in it
    steps = {(e["step"], e["status"]) for e in rh.recovery_log(log)}
    assert ("health_gate", "failed") in steps and ("rollback", "ok") in steps, steps
