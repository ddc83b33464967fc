# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A spatial REINDEX CONCURRENTLY stopped half-way, for real: the application holds an old snapshot,
so the rebuild waits after creating its ``_ccnew`` index. Stopped by the run's own lock_timeout
(its drop of the leftover then times out on the same reader), or with its server process
terminated (no connection left to look again), the run fails naming the leftover or the lost
connection, and the next run repairs it. The spatial index in use stays valid throughout."""

from __future__ import annotations

import threading
import time

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.maintenance.operations import run_maintenance

INDEX = "idx_walls_geometry"


def _reindex(params, state_dir, lock_timeout_ms, out):
    out["result"] = run_maintenance(params, ["reindex", "analyze"],
                                    dict(state_dir=state_dir, lock_timeout_ms=lock_timeout_ms))


def _waiting_reindex_pid(mt_sql, timeout=30.0):
    """The server pid of a REINDEX waiting for a lock in ``mt_sql``'s database, once it waits."""
    dbname = mt_sql.params.db_name
    deadline = time.monotonic() + timeout
    with mt_sql.connect() as conn:
        while time.monotonic() < deadline:
            row = conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND query ILIKE 'REINDEX%%' "
                               "AND wait_event_type = 'Lock'", (dbname,)).fetchone()
            if row:
                return row[0]
            time.sleep(0.02)
    raise AssertionError("no REINDEX waited in %s within %.0f s" % (dbname, timeout))


def _leftovers(mt_sql):
    return mt_sql.scalar("SELECT count(*) FROM pg_class WHERE relname LIKE %s", (INDEX + "_ccnew%",))


@pytest.mark.parametrize("stopped_by", ["lock_timeout", "terminate"])
def test_a_rebuild_stopped_half_way_keeps_the_index_in_use_and_is_repaired(mt_pg, mt_sql, state_dir, stopped_by):
    reader = mt_sql.connect()  # the application's long read: an old snapshot the rebuild must wait for
    out = {}
    try:
        reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        reader.execute("SELECT count(*) FROM walls")
        lock_timeout_ms = 500 if stopped_by == "lock_timeout" else 60000
        run = threading.Thread(target=_reindex, args=(mt_pg, state_dir, lock_timeout_ms, out))
        run.start()
        if stopped_by == "terminate":
            pid = _waiting_reindex_pid(mt_sql)
            assert _leftovers(mt_sql) == 1  # half-way: the new index exists beside the one in use
            with mt_sql.connect() as conn:
                assert conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
        run.join(120)
        assert not run.is_alive()
    finally:
        reader.execute("ROLLBACK")
        reader.close()

    reindex = out["result"]["results"][0]
    assert reindex["operation"] == "reindex" and not reindex["success"], reindex
    details = reindex["details"]
    errors = " ".join(details["errors"])
    assert errors.startswith("reindex %s: " % INDEX) and "Traceback" not in errors, errors
    if stopped_by == "lock_timeout":
        # Its drop of the leftover waits for the same reader and times out too: the result names it.
        assert "canceling statement due to lock timeout" in errors, errors
        assert INDEX + "_ccnew" in details["leftovers_after"], details
        assert out["result"]["results"][1]["success"]  # its session lives on: the next operation runs
    else:
        assert "terminating connection due to administrator command" in errors, errors
        assert details["not_attempted"] == ["idx_intersections_point"] and "_ccnew" in details["note"], details
        # Without its session the run holds no lock: it runs nothing more.
        analyze = out["result"]["results"][1]
        assert analyze["skipped"] and "connection to the database was lost during reindex" in analyze["details"]["reason"]
    assert _leftovers(mt_sql) == 1
    assert mt_sql.scalar("SELECT indisvalid FROM pg_index WHERE indexrelid = %s::regclass", (INDEX,))

    again = run_maintenance(mt_pg, ["reindex"], dict(state_dir=state_dir, reindex_mode="repair"))["results"][0]
    assert again["success"], again
    assert _leftovers(mt_sql) == 0
    assert mt_sql.scalar("SELECT bool_and(indisvalid) FROM pg_index WHERE indrelid = 'walls'::regclass")
