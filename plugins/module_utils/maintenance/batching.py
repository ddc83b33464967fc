# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Batched deletes: many short transactions instead of one long one.

Each batch is its own transaction, so no lock is held longer than one batch (bounded by
``lock_timeout`` on PostgreSQL, ``busy_timeout`` on SQLite) and the application keeps
writing. The loop stops early, cleanly, when the deadline would be overrun; the rows already
deleted stay deleted (each batch committed) and the rest is reported.
"""

from __future__ import annotations

import time

from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import LockTimeout

LOCK_RETRIES = 5


def delete_in_batches(engine, table, cutoff, batch_size, deadline=None, pause_s=0.0, clock=time.monotonic,
                      wall=time.time):
    """Delete every row of ``table`` older than ``cutoff``; return a details dict.

    ``{deleted, batches, lock_timeouts, max_batch_ms, stopped_at_deadline, complete}``.
    A batch starts only while ``deadline`` (epoch seconds) leaves room for twice the slowest
    batch so far. A lock timeout is retried ``LOCK_RETRIES`` times with a growing pause,
    then raised.
    """
    deleted = batches = lock_timeouts = 0
    max_batch = 0.0
    after_id = None
    stopped = False
    retries = 0
    final_pass = False
    while True:
        if deadline is not None and wall() + 2 * max(max_batch, 0.05) > deadline:
            stopped = True
            break
        started = clock()
        try:
            count, last_id = engine.maint_delete_batch(table, cutoff, batch_size, None if final_pass else after_id)
        except LockTimeout:
            lock_timeouts += 1
            retries += 1
            if retries > LOCK_RETRIES:
                raise
            time.sleep(min(2.0, 0.1 * 2 ** retries))
            continue
        retries = 0
        elapsed = clock() - started
        max_batch = max(max_batch, elapsed)
        batches += 1
        deleted += count
        if final_pass:
            if count == 0:
                break
        elif count < batch_size:
            # the keyset scan is exhausted; unbounded passes until one deletes nothing catch
            # rows committed late with an id below the keyset position
            final_pass = True
        else:
            after_id = last_id
        if pause_s:
            time.sleep(pause_s)
    return dict(deleted=deleted, batches=batches, lock_timeouts=lock_timeouts,
                max_batch_ms=round(max_batch * 1000.0, 1), stopped_at_deadline=stopped, complete=not stopped)
