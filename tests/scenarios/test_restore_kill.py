# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kill -9 of a restore at random moments and at every swap step, on real PostgreSQL+PostGIS
(127.0.0.1:5432, databases bimtest_rs_*) and SQLite.

Invariant after each kill, once the next run has read the journal (``recover()``, which every
run does first): the live database's digest equals its value before the restore or the backup's,
never anything else; then a rerun completes and the live data equals the backup.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import ConnectionParams
from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine
from ansible_collections.bim.wall_system.plugins.module_utils.repository.backup import run_backup
from ansible_collections.bim.wall_system.plugins.module_utils.restore import runner, space
from ansible_collections.bim.wall_system.plugins.module_utils.restore.runner import RestoreOptions
from ansible_collections.bim.wall_system.plugins.module_utils.restore.journal import CRASH_ENV
from ansible_collections.bim.wall_system.plugins.module_utils.restore.targets import make_target
from conftest import DEFAULT_COLLECTIONS_PATH

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "fleet"))
import generate  # noqa: E402

RANDOM_TRIALS = int(os.environ.get("BIM_RESTORE_KILL_TRIALS", "20"))
WALLS = 120
PG_HOST = os.environ.get("BIM_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("BIM_TEST_PG_PORT", "5432"))
STEPS = {
    "postgresql": ["begin", "block_connections", "terminate_sessions", "rename_live", "rename_incoming",
                   "allow_connections", "done"],
    "sqlite": ["begin", "checkpoint_live", "link_restore_point", "unlink_side_files", "replace", "done"],
}

CHILD = r"""
import json, sys, time
t0 = time.monotonic()
from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import ConnectionParams
from ansible_collections.bim.wall_system.plugins.module_utils.restore.runner import RestoreOptions, run_restore
cfg = json.loads(sys.argv[1])
def progress(stage, name):
    print(json.dumps({"stage": stage, "t": time.monotonic() - t0}), flush=True)
run_restore(ConnectionParams(**cfg["params"]), cfg["repo"], RestoreOptions("latest", state_dir=cfg["state"], jobs=cfg["jobs"],
                                                                           keep_restore_points=1, progress=progress))
print(json.dumps({"stage": "done", "t": time.monotonic() - t0}), flush=True)
"""


def _admin():
    import psycopg
    return psycopg.connect(host=PG_HOST, port=PG_PORT, user="postgres", dbname="postgres", autocommit=True)


@pytest.fixture(params=["postgresql", "sqlite"])
def live(request, tmp_path):
    if request.param == "sqlite":
        path = str(tmp_path / "data" / "bim.db")
        os.makedirs(os.path.dirname(path))
        generate.populate_sqlite(path, WALLS, seed=3)
        yield ConnectionParams(engine="sqlite", sqlite_path=path, connect_timeout=5)
        return
    pytest.importorskip("psycopg")
    name = "bimtest_rs_kill_%s" % uuid.uuid4().hex[:8]
    with _admin() as admin:
        admin.execute('CREATE DATABASE "%s"' % name)
    try:
        generate.populate_postgresql("host=%s port=%d user=postgres dbname=%s" % (PG_HOST, PG_PORT, name), WALLS, seed=3)
        yield ConnectionParams(engine="postgresql", db_host=PG_HOST, db_port=PG_PORT, db_user="postgres",
                               db_name=name, connect_timeout=5)
    finally:
        with _admin() as admin:
            for (db,) in admin.execute("SELECT datname FROM pg_database WHERE datname = %s OR left(datname, %s) = %s",
                                       (name, len(name) + 2, name + "__")).fetchall():
                admin.execute('ALTER DATABASE "%s" ALLOW_CONNECTIONS true' % db)
                admin.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % db)


def digests(params):
    target = make_target(params, state_dir="/nonexistent-unused")
    if not target.live_exists():
        return None
    with open_engine(params) as eng:
        return eng.table_digests()


def change_live(params, trial):
    """Make the live data differ from the backup, differently in every trial."""
    sql = "UPDATE walls SET name = 'trial %d' WHERE id = %d" % (trial, 1 + trial % WALLS)
    if params.engine == "sqlite":
        import sqlite3
        conn = sqlite3.connect(params.sqlite_path)
        with conn:
            conn.execute(sql)
        conn.close()
    else:
        import psycopg
        with psycopg.connect(host=params.db_host, port=params.db_port, user="postgres", dbname=params.db_name,
                             autocommit=True) as conn:
            conn.execute(sql)


def start_child(params, repo, state, env_extra=None):
    cfg = {"params": dataclasses.asdict(params), "repo": repo, "state": state, "jobs": 2}
    env = dict(os.environ)
    env.setdefault("PYTHONPATH", DEFAULT_COLLECTIONS_PATH.split(os.pathsep)[0])
    env.update(env_extra or {})
    return subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(cfg)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)


def check_invariant(params, state, before, backup, label):
    target = make_target(params, state_dir=state)
    with target.lock():
        target.recover()  # what the next run does first
    assert target.pending_journal() is None
    after = digests(params)
    assert after in (before, backup), "%s: live digest is neither the pre-restore nor the backup's" % label
    # A rerun completes and the live data is the backup's.
    runner.run_restore(params, os.path.dirname(state) + "/repo", RestoreOptions("latest", state_dir=state, keep_restore_points=1))
    assert digests(params) == backup, label
    assert len(target.restore_points()) <= 1
    if params.engine == "postgresql":
        left = [n for n in target.engine.databases_like(params.db_name + "__") if "__rp_" not in n]
        assert left == [], label
        # Nor an archive a killed run staged (in memory by default).
        staged = [n for folder in (space.MEMORY_STAGING_DIR, tempfile.gettempdir()) for n in os.listdir(folder)
                  if n.startswith(target._staged_prefix())]
        assert staged == [], label
    else:
        folder = os.path.dirname(params.sqlite_path)
        assert [n for n in os.listdir(folder) if ".restore-" in n] == [], label
    return after == before


def test_kill_restore_at_random_moments_and_every_swap_step(live, tmp_path):
    repo = str(tmp_path / "repo")
    state = str(tmp_path / "state")
    os.makedirs(state)
    run_backup(live, repo, {"type": "full"})
    backup = digests(live)
    rng = random.Random(int(os.environ.get("BIM_RESTORE_KILL_SEED", "4242")))

    # Calibrate: how long a whole restore takes, and when its swap starts.
    change_live(live, 0)
    child = start_child(live, repo, state)
    out, err = child.communicate(timeout=300)
    assert child.returncode == 0, err
    events = {e["stage"]: e["t"] for e in map(json.loads, out.splitlines())}
    total, swap_at = events["done"], events.get("swapping", events["done"])

    outcomes = {"before": 0, "backup": 0}
    for trial in range(1, RANDOM_TRIALS + 1):
        change_live(live, trial)
        before = digests(live)
        assert before != backup
        # Half the kills anywhere in the run, half around the swap.
        delay = rng.uniform(0, total) if trial % 2 else rng.uniform(max(swap_at - 0.05, 0), total + 0.02)
        child = start_child(live, repo, state)
        time.sleep(delay)
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        child.communicate(timeout=60)
        kept = check_invariant(live, state, before, backup, "random trial %d (kill after %.3fs)" % (trial, delay))
        outcomes["before" if kept else "backup"] += 1

    # Deterministic: die right after each journal record of the swap.
    for step in STEPS[live.engine]:
        change_live(live, 1000 + len(step))
        before = digests(live)
        child = start_child(live, repo, state, {CRASH_ENV: step})
        child.communicate(timeout=300)
        assert child.returncode == -signal.SIGKILL, "the crash hook did not fire at step %s" % step
        check_invariant(live, state, before, backup, "crash at swap step %s" % step)
    print("%s: %d random kills: live kept %d times, restored %d times" % (
        live.engine, RANDOM_TRIALS, outcomes["before"], outcomes["backup"]))
