# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Disaster recovery on the fleet, as an operator lives it: a host loses its database (or its
repository, or the restored copy makes the application sick) and one playbook brings it back."""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import time

import pytest

import restore_helpers as rh
from damage import flip_chunk_byte


PLAYBOOK = "bim.wall_system.disaster_recovery"


def dr_vars(fleet, **extra):
    base = fleet.state_dir + "/{{ inventory_hostname }}"
    values = {
        "bim_restore_state_dir": base + "/restore-state",
        "bim_restore_log": base + "/recovery/recovery.log",
        "bim_restore_secondary_staging": base + "/secondary-staging",
        "bim_restore_health_retries": 3,
        "bim_restore_health_delay": 1,
    }
    values.update(extra)
    return values


def state_dir(fleet, name):
    return os.path.join(fleet.state_dir, name, "restore-state")


def log_path(fleet, name):
    return os.path.join(fleet.state_dir, name, "recovery", "recovery.log")


@pytest.fixture
def clean_host(fleet):
    """Reset the named host afterwards and remove the restore points the test left."""
    used = []

    def use(name):
        used.append(name)
        if os.path.exists(log_path(fleet, name)):
            os.unlink(log_path(fleet, name))
        return name

    yield use
    for name in used:
        os.chmod(fleet.hdir(name), 0o755)  # postgres must reach its cluster folder whatever a test did
        fleet.reset(name)
        try:
            rh.drop_restore_points(fleet, name, state_dir(fleet, name))
        except Exception:  # a broken host must not hide the test's own failure
            pass


@pytest.mark.parametrize("name", ["lite1", "lite2"])  # lite2: the "site" schema (rtree_walls, no intersections R*Tree)
def test_missing_sqlite_file_and_config_are_brought_back(fleet, run_playbook, tmp_path, clean_host, name):
    host = clean_host(name)
    conf_dir = fleet.hdir(host, "conf")
    os.makedirs(conf_dir, exist_ok=True)
    conf = os.path.join(conf_dir, "bim-app.conf")
    with open(conf, "w") as handle:
        handle.write("listen = 8080\ncache = redis://127.0.0.1:6379/3\n")
    backup = rh.take_backup(fleet, run_playbook, tmp_path, host, extra={"backup_include_paths": [conf_dir]})

    # The host loses its database file and its configuration.
    os.unlink(fleet.hosts[host]["sqlite_path"])
    os.unlink(conf)
    assert rh.live_digests(fleet, host) is None

    log_dir = tmp_path / "task-log"
    env = {"ANSIBLE_CALLBACKS_ENABLED": "bim.wall_system.jsonl_log", "BIM_JSONL_LOG_FOLDER": str(log_dir)}
    result = run_playbook(PLAYBOOK, env=env,
                          extra_vars=dr_vars(fleet, bim_restore_hosts=host, bim_restore_backup_id=backup["id"]))
    assert result.rc == 0, str(result)
    assert rh.live_digests(fleet, host, like=backup) == rh.manifest_digests(backup)
    # One run of the restore module: the preflight, then the restore with the application's commands around its
    # swap and the health gate after them; backup_verify and health_check no longer run on their own.
    modules = [r["action"] for r in _task_results(log_dir)
               if r["host"] == host and r["action"].startswith("bim.wall_system.") and r["status"] != "skipped"]
    assert modules == ["bim.wall_system.restore"], modules
    with open(conf) as handle:
        assert "listen = 8080" in handle.read()
    assert rh.app_pid_running(fleet, host)
    steps = [(e["step"], e["status"]) for e in rh.recovery_log(log_path(fleet, host))]
    assert steps[0] == ("start", "ok")
    assert steps == [(step, "ok") for step in ("start", "preflight", "app_stop", "restore", "app_start",
                                               "health_gate", "done")], steps
    restore = [e for e in rh.recovery_log(log_path(fleet, host)) if e["step"] == "restore"][-1]
    assert restore["detail"]["verification"] == "full"  # checksum-verified only: every check ran
    shutil.rmtree(conf_dir, ignore_errors=True)


def test_dropped_postgresql_database_is_recreated(fleet, run_playbook, tmp_path, clean_host):
    host = clean_host("pg2")  # the "site" schema: walls.outline with walls_outline_gist, logs.logged_at
    backup = rh.take_backup(fleet, run_playbook, tmp_path, host)
    rh.drop_pg_database(fleet, host)
    assert rh.live_digests(fleet, host) is None

    result = run_playbook(PLAYBOOK, extra_vars=dr_vars(fleet, bim_restore_hosts=host, bim_restore_backup_id=backup["id"]))
    assert result.rc == 0, str(result)
    assert rh.live_digests(fleet, host, like=backup) == rh.manifest_digests(backup)
    assert rh.restore_points(fleet, host, state_dir(fleet, host)) == []


def test_health_gate_failure_rolls_back(fleet, run_playbook, tmp_path, clean_host):
    host = clean_host("pg2")
    conf_dir = fleet.hdir(host, "conf")
    os.makedirs(conf_dir, exist_ok=True)
    kept, created = os.path.join(conf_dir, "bim-app.conf"), os.path.join(conf_dir, "extra.conf")
    for path in (kept, created):
        with open(path, "w") as handle:
            handle.write("from the backup\n")
    backup = rh.take_backup(fleet, run_playbook, tmp_path, host, extra={"backup_include_paths": [conf_dir]})
    # After the backup the configuration moves on too: one file edited, one removed.
    with open(kept, "w") as handle:
        handle.write("edited after the backup\n")
    os.unlink(created)
    # Live data moves on after the backup, then the application starts reporting errors.
    import psycopg
    params = rh.params_of(fleet, host)
    with psycopg.connect(host=params.db_socket_dir, user="postgres", password=fleet.password,
                         dbname="bim_walls", autocommit=True) as conn:
        conn.execute("UPDATE walls SET name = name || ' (edited)' WHERE id <= 10")
    before = rh.live_digests(fleet, host)
    assert rh.live_digests(fleet, host, like=backup) != rh.manifest_digests(backup)
    fleet.set_app_health(host, False)

    log_dir = tmp_path / "task-log"
    env = {"ANSIBLE_CALLBACKS_ENABLED": "bim.wall_system.jsonl_log", "BIM_JSONL_LOG_FOLDER": str(log_dir)}
    result = run_playbook(PLAYBOOK, env=env,
                          extra_vars=dr_vars(fleet, bim_restore_hosts=host, bim_restore_backup_id=backup["id"]))
    assert result.rc != 0
    assert "health gate failed" in result.stdout and "Rolled back to" in result.stdout, str(result)
    # The gate ran in the restore's own run (the preflight's too), right after the start command (no
    # health_check task), and failed it: the rollback is the second restore run, and the application runs
    # again, on the data of before.
    ran = [r for r in _task_results(log_dir) if r["host"] == host and r["status"] != "skipped"]
    assert [r["action"] for r in ran if r["action"].startswith("bim.wall_system.")] == ["bim.wall_system.restore"] * 2
    gate = [r["result"]["health_gate"] for r in ran if "health_gate" in (r.get("result") or {})]
    assert gate and gate[0]["passed"] is False and gate[0]["overall_status"] == "unhealthy", gate
    assert gate[0]["attempts"] == 4  # bim_restore_health_retries 3: the checks ran 4 times before it failed
    assert rh.live_digests(fleet, host) == before
    assert rh.app_pid_running(fleet, host)
    steps = [(e["step"], e["status"]) for e in rh.recovery_log(log_path(fleet, host))]
    assert steps == [("start", "ok"), ("preflight", "ok"), ("app_stop", "ok"), ("restore", "ok"), ("app_start", "ok"),
                     ("health_gate", "failed"), ("app_stop", "ok"), ("rollback", "ok"), ("app_start", "ok")], steps
    # The rollback put the configuration back as it was before the restore.
    with open(kept) as handle:
        assert handle.read() == "edited after the backup\n"
    assert not os.path.exists(created)
    rollback = [e for e in rh.recovery_log(log_path(fleet, host)) if e["step"] == "rollback"][-1]
    assert rollback["detail"]["files_put_back"] == [kept] and rollback["detail"]["files_removed"] == [created]
    shutil.rmtree(conf_dir, ignore_errors=True)


def _processes_of(python):
    """PIDs of the processes running ``python``: a fleet host's own virtualenv, so only the modules this
    test's play started on that host."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as handle:
                argv0 = handle.read().split(b"\0")[0].decode("utf-8", "replace")
        except (OSError, ValueError):
            continue
        if entry.isdigit() and argv0 == python:
            found.append(int(entry))
    return found


def test_a_restore_run_killed_in_its_health_gate_is_rolled_back(fleet, run_playbook, clean_host, tmp_path):
    """kill -9 of the restore run after its swap, while its health gate waits for a sick application: the
    play finds the swap in the recovery log and rolls it back as after a failed gate; nothing is left half-done."""
    host = clean_host("pg2")
    backup = rh.take_backup(fleet, run_playbook, tmp_path, host)
    import psycopg
    params = rh.params_of(fleet, host)
    with psycopg.connect(host=params.db_socket_dir, user="postgres", password=fleet.password,
                         dbname="bim_walls", autocommit=True) as conn:
        conn.execute("UPDATE walls SET name = name || ' (edited)' WHERE id <= 10")
    before = rh.live_digests(fleet, host)
    fleet.set_app_health(host, False)  # the gate retries: time to kill the run in it
    killed = []

    def kill_in_the_gate(proc):
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if ("app_start", "ok") in [(e["step"], e["status"]) for e in rh.recovery_log(log_path(fleet, host))]:
                for pid in _processes_of(os.path.join(fleet.venv(host), "bin", "python")):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                return
            time.sleep(0.05)

    result = run_playbook(PLAYBOOK, while_running=kill_in_the_gate,
                          extra_vars=dr_vars(fleet, bim_restore_hosts=host, bim_restore_backup_id=backup["id"],
                                             bim_restore_health_retries=30))
    assert killed, str(result)
    assert result.rc != 0
    assert "the restore run ended without its result" in result.stdout and "Rolled back to" in result.stdout, str(result)
    assert rh.live_digests(fleet, host) == before
    assert rh.app_pid_running(fleet, host)
    steps = [(e["step"], e["status"]) for e in rh.recovery_log(log_path(fleet, host))]
    assert steps[-3:] == [("app_stop", "ok"), ("rollback", "ok"), ("app_start", "ok")], steps
    assert ("health_gate", "ok") not in steps and ("done", "ok") not in steps
    assert glob.glob(os.path.join(state_dir(fleet, host), "*.swap.json")) == []  # no swap left half-done


@pytest.fixture
def primary_cut_off(fleet, run_playbook, tmp_path, clean_host):
    """lite1 with a backup copied to storage1 (the secondary), then its primary repository cut
    off and its database file gone. Yields ``(host, backup, secondary)``; puts the primary back."""
    host = clean_host("lite1")
    storage = fleet.hosts["storage1"]
    secondary = {"url": "sftp://root@%s%s/%s" % (storage["address"], storage["backups_dir"], host),
                 "key_file": fleet.client_key,
                 # this fleet's trust, not the machine-wide default (a fleet built anew has new host keys)
                 "known_hosts_file": os.path.join(fleet.state_dir, host, "known_hosts")}
    backup = rh.take_backup(fleet, run_playbook, tmp_path, host, extra={"backup_copy_to": [secondary]})
    repo = fleet.hosts[host]["backup_repository"]
    cut = repo + ".cut-off"
    staging = os.path.join(fleet.state_dir, host, "secondary-staging")
    shutil.rmtree(staging, ignore_errors=True)
    database = fleet.hosts[host]["sqlite_path"]
    os.rename(repo, cut)
    os.rename(database, database + ".gone")
    try:
        yield host, backup, secondary
    finally:
        if os.path.exists(repo):
            shutil.rmtree(repo)
        os.rename(cut, repo)
        shutil.rmtree(staging, ignore_errors=True)
        # A run that changed nothing (check mode) leaves the host without its database: put it back.
        if os.path.exists(database):
            os.unlink(database + ".gone")
        else:
            os.rename(database + ".gone", database)


def test_primary_repository_cut_off_uses_secondary(fleet, run_playbook, primary_cut_off):
    host, backup, secondary = primary_cut_off
    result = run_playbook(PLAYBOOK, extra_vars=dr_vars(fleet, bim_restore_hosts=host, bim_restore_backup_id=backup["id"],
                                                       bim_restore_secondary_repository=secondary))
    assert result.rc == 0, str(result)
    assert rh.live_digests(fleet, host, like=backup) == rh.manifest_digests(backup)
    preflight = [e for e in rh.recovery_log(log_path(fleet, host)) if e["step"] == "preflight"]
    assert preflight and preflight[-1]["detail"]["secondary_used"] in (True, "True", "true")
    assert preflight[-1]["detail"]["backup_id"] == backup["id"]


def test_check_mode_plans_from_the_secondary_and_changes_nothing(fleet, run_playbook, tmp_path, primary_cut_off):
    """The first thing an operator runs for a dead host: --check, with the primary repository and
    the database gone. The plan comes from the secondary; nothing is fetched, logged or restored."""
    host, backup, secondary = primary_cut_off
    log_dir = tmp_path / "task-log"
    env = {"ANSIBLE_CALLBACKS_ENABLED": "bim.wall_system.jsonl_log", "BIM_JSONL_LOG_FOLDER": str(log_dir)}
    result = run_playbook(PLAYBOOK, check=True, env=env,
                          extra_vars=dr_vars(fleet, bim_restore_hosts=host, bim_restore_secondary_repository=secondary))
    assert result.rc == 0, str(result)
    lines = [json.loads(line) for f in sorted(log_dir.iterdir()) for line in f.read_text().splitlines()]
    # Task names carry the role's name in front ("<role> : <task>").
    results = {line["task"].split(" : ")[-1]: line["result"] for line in lines if line["event"] == "task_result"}
    # The module chose the secondary and planned from it; that plan stands for the restore.
    planned = results["Preflight (repository, fetch from the secondary when the primary is not usable, checksums, plan)"]
    assert planned["backup_id"] == backup["id"] and planned["plan"]["fits"] is True
    assert planned["checksums"] is None  # nothing fetched: the chunks are hash-checked when a real run fetches them
    assert planned["secondary"]["would_fetch"] is True and planned["secondary"]["fetch_chunks"] > 0
    assert planned["plan"]["bytes_to_read"] == planned["secondary"]["fetch_bytes"] > 0
    statuses = {line["task"].split(" : ")[-1]: line["status"] for line in lines if line["event"] == "task_result"}
    assert statuses["Restore the verified backup with a restore point"] == "skipped"
    taken = results["Take the preflight's plan as the restore's (check mode, backup from the secondary repository)"]
    assert taken["ansible_facts"]["__bim_restore_result"]["backup_id"] == backup["id"]
    assert "Health gate of the restored host" not in results
    assert not os.path.exists(os.path.join(fleet.state_dir, host, "secondary-staging"))
    assert not os.path.exists(fleet.hosts[host]["sqlite_path"])
    assert not os.path.exists(log_path(fleet, host))


def _task_results(log_dir):
    return [json.loads(line) for f in sorted(log_dir.iterdir()) for line in f.read_text().splitlines()
            if json.loads(line)["event"] == "task_result"]


@pytest.mark.parametrize("stream", ["database", "files"])
def test_a_damaged_backup_stops_in_the_one_preflight_run_before_the_application_stops(fleet, run_playbook, tmp_path,
                                                                                      clean_host, stream):
    """The backup is checked before the application stops: a flipped byte in one of its chunks (of the
    database or of the configuration files) fails the one module run as its preflight - found by the
    restore's own reads of the backup, before the stop command and the swap - and the application keeps
    running on its live data; the failed verification is recorded, as the separate preflight recorded it."""
    host = clean_host("lite1")
    conf_dir = fleet.hdir(host, "conf")
    os.makedirs(conf_dir, exist_ok=True)
    with open(os.path.join(conf_dir, "bim-app.conf"), "w") as handle:
        handle.write("listen = 8080\n")
    backup = rh.take_backup(fleet, run_playbook, tmp_path, host, extra={"backup_include_paths": [conf_dir]})
    repo = fleet.hosts[host]["backup_repository"]
    chunk_id = backup["streams"][stream]["chunks"][0][0]
    before = rh.live_digests(fleet, host)
    log_dir = tmp_path / "task-log"
    env = {"ANSIBLE_CALLBACKS_ENABLED": "bim.wall_system.jsonl_log", "BIM_JSONL_LOG_FOLDER": str(log_dir)}
    flip_chunk_byte(repo, chunk_id)
    try:
        result = run_playbook(PLAYBOOK, env=env,
                              extra_vars=dr_vars(fleet, bim_restore_hosts=host, bim_restore_backup_id=backup["id"]))
    finally:
        flip_chunk_byte(repo, chunk_id)  # the byte back: chunks are shared with other backups
    assert result.rc != 0
    assert "failed checksum verification" in result.stdout and "nothing was changed" in result.stdout, str(result)
    assert "stopped in the preflight" in result.stdout and chunk_id in result.stdout
    assert rh.live_digests(fleet, host) == before and rh.app_pid_running(fleet, host)
    assert rh.restore_points(fleet, host, state_dir(fleet, host)) == []
    verifications = os.path.join(repo, "verifications", backup["id"] + ".json")
    with open(verifications) as handle:
        records = json.load(handle)["records"]
    os.remove(verifications)  # the byte is back: the record would misdescribe the shared chunk to later tests
    assert [(r["level"], r["passed"]) for r in records] == [("checksums", False)], records
    assert chunk_id in records[0]["problems"][0]
    # The preflight (repository, plan) passed; the restore's reads found the damage and logged it.
    steps = [(e["step"], e["status"]) for e in rh.recovery_log(log_path(fleet, host))]
    assert steps == [("start", "ok"), ("preflight", "ok"), ("restore", "failed")], steps
    ran = [(r["action"], r["status"]) for r in _task_results(log_dir) if r["host"] == host]
    modules = [action for action, status in ran if action.startswith("bim.wall_system.")]
    assert modules == ["bim.wall_system.restore"], ran  # one preflight run; no restore, no app command
    assert not [action for action, status in ran if action in ("ansible.builtin.command", "ansible.builtin.service")
                and status != "skipped"], ran


def test_a_stop_command_that_fails_in_the_one_run_swaps_nothing(fleet, run_playbook, tmp_path, clean_host):
    """The preflight passed, then in the same run the application's stop command fails: the failure is the
    restore's (not the preflight's), nothing was swapped, and the application runs on its live data."""
    host = clean_host("lite1")
    backup = rh.take_backup(fleet, run_playbook, tmp_path, host)
    before = rh.live_digests(fleet, host)
    result = run_playbook(PLAYBOOK, extra_vars=dr_vars(fleet, bim_restore_hosts=host, bim_restore_backup_id=backup["id"],
                                                       bim_app_stop_command="/bin/false"))
    assert result.rc != 0
    assert "the restore failed, live data untouched" in result.stdout and "nothing was swapped" in result.stdout, str(
        result)
    assert "stopped in the preflight" not in result.stdout
    assert rh.live_digests(fleet, host) == before and rh.app_pid_running(fleet, host)
    steps = [(e["step"], e["status"]) for e in rh.recovery_log(log_path(fleet, host))]
    assert steps == [("start", "ok"), ("preflight", "ok"), ("app_stop", "failed"), ("restore", "failed"),
                     ("app_start", "ok")], steps
    assert rh.restore_points(fleet, host, state_dir(fleet, host)) == []


def test_primary_cut_off_without_secondary_fails_clearly(fleet, run_playbook, tmp_path, clean_host):
    host = clean_host("lite1")
    repo = fleet.hosts[host]["backup_repository"]
    cut = repo + ".cut-off"
    os.rename(repo, cut)
    try:
        before = rh.live_digests(fleet, host)
        result = run_playbook(PLAYBOOK, extra_vars=dr_vars(fleet, bim_restore_hosts=host))
        assert result.rc != 0
        assert "missing or unreadable" in result.stdout and "nothing was changed" in result.stdout, str(result)
        assert rh.live_digests(fleet, host) == before
    finally:
        os.rename(cut, repo)


def test_too_little_free_space_is_refused_by_preflight(fleet, run_playbook, tmp_path, clean_host):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    host = clean_host("pg2")
    rh.take_backups(run_playbook, tmp_path, hosts=host)
    small = str(tmp_path / "small-data")
    if not rh.mount_tmpfs(small, "4m"):
        pytest.skip("cannot mount a tmpfs")
    try:
        before = rh.live_digests(fleet, host)
        result = run_playbook(PLAYBOOK, extra_vars=dr_vars(fleet, bim_restore_hosts=host, bim_data_dir=small))
        assert result.rc != 0
        assert "not enough free space" in result.stdout and "bytes" in result.stdout, str(result)
        assert "nothing was changed" in result.stdout
        assert rh.live_digests(fleet, host) == before
        assert rh.restore_points(fleet, host, state_dir(fleet, host)) == []
        steps = [(e["step"], e["status"]) for e in rh.recovery_log(log_path(fleet, host))]
        assert ("preflight", "failed") in steps and ("app_stop", "ok") not in steps
        assert rh.app_pid_running(fleet, host)
    finally:
        rh.umount(small)


def test_disaster_recovery_refuses_without_named_hosts(fleet, run_playbook):
    result = run_playbook(PLAYBOOK)
    assert result.rc != 0
    assert "name the hosts" in result.stdout
