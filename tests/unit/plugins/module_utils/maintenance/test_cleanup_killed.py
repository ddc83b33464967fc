# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A maintenance run killed with SIGKILL in the middle of its batched cleanup of a real PostgreSQL
database, as a cancelled AWX job or an OOM kill would end it, while its third batch waits on a row
lock. Its server session polls its client (``client_connection_check_interval``), so it ends while
the lock is still held, its batch rolled back and the maintenance lock released; without the poll
it would wait for the lock, finish the batch and hold the maintenance lock meanwhile. The batches
it committed stay deleted, no recent row is touched, and the next run finishes the job."""

from __future__ import annotations

import dataclasses
import datetime
import json
import signal
import subprocess
import sys
import textwrap

from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine
from ansible_collections.bim.wall_system.plugins.module_utils.maintenance.operations import run_maintenance

BATCH = 10
CHILD = textwrap.dedent("""
    import json, sys
    from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import ConnectionParams
    from ansible_collections.bim.wall_system.plugins.module_utils.maintenance.operations import run_maintenance
    run_maintenance(ConnectionParams(**json.loads(sys.argv[1])), ["cleanup_logs"],
                    dict(state_dir=sys.argv[2], batch_size=int(sys.argv[3]), lock_timeout_ms=600000))
""")


def test_cleanup_killed_mid_batch_ends_its_session_and_the_next_run_finishes(mt_pg, mt_sql, state_dir,
                                                                             collection_env, wait_until):
    now = datetime.datetime.now(datetime.timezone.utc)
    clearly_old, clearly_recent = now - datetime.timedelta(days=31), now - datetime.timedelta(days=29)
    old_before = mt_sql.scalar("SELECT count(*) FROM logs WHERE created_at < %s", [clearly_old])
    assert old_before > 3 * BATCH, "the generated data needs more than three batches of old log rows"
    recent_sql = "SELECT count(*), md5(string_agg(l::text, '|' ORDER BY id)) FROM logs l WHERE created_at >= %s"
    with mt_sql.connect() as conn:
        recent_before = conn.execute(recent_sql, [clearly_recent]).fetchone()
    # Batches delete in key order: lock a row of the third, so the first two commit and it waits.
    victim = mt_sql.scalar("SELECT id FROM logs WHERE created_at < %s ORDER BY id OFFSET %s LIMIT 1",
                           [clearly_old, 2 * BATCH + 1])
    holder = mt_sql.connect()
    holder.autocommit = False
    holder.execute("SELECT id FROM logs WHERE id = %s FOR UPDATE", [victim])
    child = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(dataclasses.asdict(mt_pg)), state_dir,
                              str(BATCH)], env=collection_env)
    try:
        orphan = wait_until("the run's third batch to wait on the row lock", lambda: mt_sql.scalar(
            "SELECT max(pid) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'",
            [mt_pg.db_name]))
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
        # The row lock is still held: only the client check can end the waiting session.
        wait_until("the killed run's session to end", lambda: not mt_sql.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [orphan]))
        assert mt_sql.scalar("SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
                             " WHERE l.locktype = 'advisory' AND l.granted AND d.datname = %s", [mt_pg.db_name]) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        holder.rollback()
        holder.close()
    assert mt_sql.scalar("SELECT count(*) FROM logs WHERE created_at < %s", [clearly_old]) == old_before - 2 * BATCH
    assert mt_sql.scalar("SELECT count(*) FROM logs WHERE id = %s", [victim]) == 1
    with mt_sql.connect() as conn:
        assert conn.execute(recent_sql, [clearly_recent]).fetchone() == recent_before

    result = run_maintenance(mt_pg, ["cleanup_logs"], dict(state_dir=state_dir, batch_size=BATCH))
    cleanup = result["results"][0]
    assert not result["lock_busy"] and cleanup["success"] and cleanup["changed"], result
    cutoff = datetime.datetime.fromisoformat(cleanup["details"]["cutoff"])
    assert mt_sql.scalar("SELECT count(*) FROM logs WHERE created_at < %s", [cutoff]) == 0
    with mt_sql.connect() as conn:
        assert conn.execute(recent_sql, [clearly_recent]).fetchone() == recent_before


def test_the_client_check_is_set_and_a_refused_one_leaves_the_session_as_it_was(mt_pg):
    engine = open_engine(mt_pg)
    engine.maint_open(2000)
    try:
        def interval():
            return engine.conn.execute("SHOW client_connection_check_interval").fetchone()[0]

        assert interval() == "1s"
        # A server that refuses the setting (PostgreSQL 13, Windows, a managed service) is met here
        # with a value every server refuses: the run goes on, on the session as it was.
        assert engine.maint_set_client_check(-1) is False
        assert interval() == "1s"
        assert engine.maint_try_lock()[0]
    finally:
        engine.maint_close()
