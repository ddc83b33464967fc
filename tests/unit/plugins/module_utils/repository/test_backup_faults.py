# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Faults for real: kill -9 of the backup at random moments, a full disk, a concurrent run."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.repository.backup import run_backup
from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import (
    LockedError, Repository, RepositoryError)

TRIALS = 20

ENTRY = """
import json, sys
from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import ConnectionParams
from ansible_collections.bim.wall_system.plugins.module_utils.repository.backup import run_backup
params = ConnectionParams(**json.loads(sys.argv[1]))
print(json.dumps(run_backup(params, sys.argv[2], json.loads(sys.argv[3]))["backup_id"]))
"""


def start_backup(params, repo_path, options, env):
    """A backup in a child process (``env``: the ``collection_env`` fixture), to be killed."""
    return subprocess.Popen([sys.executable, "-c", ENTRY, json.dumps(dataclasses.asdict(params)), repo_path,
                             json.dumps(options)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def change_sqlite(path, rng):
    with sqlite3.connect(path) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM walls")]
        for wall_id in rng.sample(ids, 3):
            conn.execute("UPDATE walls SET thickness_mm = thickness_mm + 0.001 WHERE id = ?", (wall_id,))


def change_postgresql(params, rng):
    import psycopg
    with psycopg.connect(host=params.db_host, port=params.db_port, user=params.db_user, dbname=params.db_name,
                         autocommit=True) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM walls")]
        for wall_id in rng.sample(ids, 3):
            conn.execute("UPDATE walls SET thickness_mm = thickness_mm + 0.001 WHERE id = %s", (wall_id,))


def kill_trials(params, repo_path, change, repository_sound, env):
    rng = random.Random(int(os.environ.get("BIM_TEST_SEED", "20261127")))
    # one clean run tells how long a backup takes here
    started = time.monotonic()
    proc = start_backup(params, repo_path, {"type": "full"}, env)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    duration = time.monotonic() - started
    killed = 0
    for trial in range(TRIALS):
        change(rng)
        proc = start_backup(params, repo_path, {"type": rng.choice(["full", "incremental", "differential"]),
                                                "retention": {"keep_last": rng.choice([0, 3])}}, env)
        time.sleep(rng.uniform(0, duration * 1.1))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.communicate(timeout=120)
        # the invariant: every listed backup is whole; nothing damaged or half-written is listed
        repo = Repository(repo_path)
        assert repo.damaged_manifests() == {}
        repository_sound(repo_path)
    assert killed >= TRIALS // 2, "the kills came too late to test anything (%d of %d)" % (killed, TRIALS)
    # the next backup works (stale lock from the killed pid cleared, leftovers removed)
    proc = start_backup(params, repo_path, {"type": "incremental"}, env)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    backup_id = json.loads(out)
    repo = Repository(repo_path)
    assert repo.resolve("latest")["id"] == backup_id
    assert os.listdir(repo.tmp_dir) == []
    assert not os.path.exists(repo.lock_path)
    repository_sound(repo_path)
    return repo


def test_kill_9_sqlite(sqlite_conn_params, repo_path, repository_sound, collection_env):
    kill_trials(sqlite_conn_params, repo_path, lambda rng: change_sqlite(sqlite_conn_params.sqlite_path, rng),
                repository_sound, collection_env)


def test_kill_9_postgresql(pg_conn_params, repo_path, repository_sound, collection_env):
    kill_trials(pg_conn_params, repo_path, lambda rng: change_postgresql(pg_conn_params, rng), repository_sound,
                collection_env)


def test_second_backup_waits_or_fails_clearly(sqlite_conn_params, repo_path, repository_sound, collection_env):
    first = run_backup(sqlite_conn_params, repo_path, {"type": "full"})
    repo = Repository(repo_path)
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys, time\n"
                               "from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import Repository\n"
                               "with Repository(sys.argv[1]).lock('backup'):\n"
                               "    print('held', flush=True)\n"
                               "    time.sleep(float(sys.argv[2]))\n", repo_path, "2"],
                              stdout=subprocess.PIPE, env=collection_env)
    try:
        assert holder.stdout.readline().strip() == b"held"
        with pytest.raises(LockedError) as info:
            run_backup(sqlite_conn_params, repo_path, {"lock_timeout": 0})
        assert "locked by pid %d" % holder.pid in str(info.value)
        # waiting long enough succeeds once the holder is done
        second = run_backup(sqlite_conn_params, repo_path, {"lock_timeout": 60})
    finally:
        holder.kill()
        holder.wait()
    assert [m["id"] for m in repo.list_backups()] == [first["backup_id"], second["backup_id"]]
    repository_sound(repo_path)


def test_stale_lock_cleared_by_next_backup(sqlite_conn_params, repo_path):
    run_backup(sqlite_conn_params, repo_path, {"type": "full"})
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket
    with open(os.path.join(repo_path, "lock"), "w") as handle:
        json.dump({"pid": dead.pid, "host": socket.gethostname(), "time": "2026-01-01T00:00:00+00:00",
                   "purpose": "backup"}, handle)
    result = run_backup(sqlite_conn_params, repo_path, {})
    assert result["type"] == "incremental"


@pytest.fixture
def small_fs():
    """A 2 MiB tmpfs (needs root); skipped where mount is not allowed."""
    base = tempfile.mkdtemp(prefix="bimtest_bk_fs_")
    rc = subprocess.call(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "tmpfs", base],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if rc != 0:
        os.rmdir(base)
        pytest.skip("cannot mount a tmpfs here (not root?)")
    try:
        yield base
    finally:
        subprocess.call(["umount", base])
        os.rmdir(base)


def _grow(params, megabytes):
    """Add incompressible rows so the next backup needs more room than the small file system has."""
    if params.engine == "sqlite":
        with sqlite3.connect(params.sqlite_path) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS filler (b BLOB)")
            conn.executemany("INSERT INTO filler VALUES (?)", [(os.urandom(4096),) for _i in range(megabytes * 256)])
    else:
        import psycopg
        with psycopg.connect(host=params.db_host, port=params.db_port, user=params.db_user, dbname=params.db_name,
                             autocommit=True) as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS filler (b bytea)")
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO filler VALUES (%s)", [(os.urandom(4096),) for _i in range(megabytes * 256)])


def _shrink(params):
    if params.engine == "sqlite":
        with sqlite3.connect(params.sqlite_path) as conn:
            conn.execute("DROP TABLE filler")
        with sqlite3.connect(params.sqlite_path) as conn:
            conn.execute("VACUUM")
    else:
        import psycopg
        with psycopg.connect(host=params.db_host, port=params.db_port, user=params.db_user, dbname=params.db_name,
                             autocommit=True) as conn:
            conn.execute("DROP TABLE filler")


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_full_disk(engine, request, small_fs, repository_sound):
    params = request.getfixturevalue("sqlite_conn_params" if engine == "sqlite" else "pg_conn_params")
    repo_path = os.path.join(small_fs, "repo")
    first = run_backup(params, repo_path, {"type": "full"})
    _grow(params, 3)
    with pytest.raises(RepositoryError) as info:
        run_backup(params, repo_path, {"type": "full"})
    assert "no space left on device" in str(info.value)
    repo = Repository(repo_path)
    assert [m["id"] for m in repo.list_backups()] == [first["backup_id"]]
    assert repo.damaged_manifests() == {}
    repository_sound(repo_path)
    assert not os.path.exists(repo.lock_path)
    # once the database is small again, the next run works and leaves the repository sound
    _shrink(params)
    second = run_backup(params, repo_path, {"type": "incremental"})
    assert [m["id"] for m in repo.list_backups()] == [first["backup_id"], second["backup_id"]]
    assert os.listdir(repo.tmp_dir) == []
    repository_sound(repo_path)
