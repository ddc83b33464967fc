# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Maintenance operations: the interface an engine implements for ``maintenance/operations.py``.

The procedure (lock, deadline, history, cleanup, reports) is the same on every engine; what
vacuum, analyze and reindex mean differs, so each engine runs those three itself, given the
procedure's ``Runner`` (``check``, ``opts``, ``guard()``, ``record()``, ``present_tables()``,
``result()``). The single statements are the engine's ``maint_*`` methods
(``pg_maintenance.py``, ``sqlite_maintenance.py``); the three operations are in
``pg_maintenance_ops.py`` and ``sqlite_maintenance_ops.py``.
"""

from __future__ import annotations

import abc


class Maintains(abc.ABC):
    """Maintenance domain of an engine."""

    # Rows per cleanup batch when the operator sets none, and the pause between batches (ms).
    maint_batch_size = 5000
    maint_batch_pause_ms = 0

    @abc.abstractmethod
    def maint_open(self, lock_timeout_ms):
        """Open the maintenance connection; lock waits end after ``lock_timeout_ms``."""

    @abc.abstractmethod
    def maint_close(self):
        """Release the maintenance lock and close the connection; never raises ``DatabaseError``."""

    def maint_session_lost(self):
        """True once the maintenance connection has ended under the run (its server process
        terminated or restarted): the lock went with it. A file database never loses it."""
        return False

    def maint_unsupported(self, operation):
        """Why ``operation`` does not apply to this engine (the result's skip reason), or None."""
        return None

    def maint_report_extras(self, opts):
        """Engine-specific additions to the performance report (``opts``: the run's options)."""
        return {}

    # ---- the statements the procedure runs on every engine ---------------------------------
    @abc.abstractmethod
    def maint_try_lock(self):
        """Take the maintenance lock without waiting: ``(acquired, holder pid or None)``."""

    @abc.abstractmethod
    def maint_identity(self):
        """A stable text naming this database, for the run history's file name."""

    @abc.abstractmethod
    def maint_table_stats(self, tables):
        """``{table: figures}`` of the existing ``tables`` (engines add what their operations use)."""

    @abc.abstractmethod
    def maint_count_older(self, table, cutoff):
        """Rows of ``table`` (logs, temp_geometry) older than ``cutoff``."""

    @abc.abstractmethod
    def maint_delete_batch(self, table, cutoff, batch_size, after_id=None):
        """Delete up to ``batch_size`` rows older than ``cutoff``: ``(deleted, last key)``;
        ``LockTimeout`` when a lock wait ran out."""

    @abc.abstractmethod
    def maint_database_bytes(self):
        """Size of the database in bytes."""

    @abc.abstractmethod
    def maint_relation_sizes(self):
        """``{name: {"kind", "bytes", ...}}`` of tables and indexes (the performance report)."""

    @abc.abstractmethod
    def maint_bloat(self, tables):
        """``[{"name", "kind", "bytes", "wasted_bytes", ...}]`` of ``tables`` and their indexes."""

    # ---- checks an engine may lack: ``maint_unsupported`` names those, so they are never called --
    def maint_stat1(self):
        """The planner statistics, compared before and after analyze/optimize."""
        raise NotImplementedError

    def maint_optimize(self):
        """Let the engine refresh the statistics it judges stale."""
        raise NotImplementedError

    def maint_check(self, pragma):
        """Problems found by integrity_check / quick_check / foreign_key_check."""
        raise NotImplementedError

    def maint_rtree_check(self):
        """``{spatial index: problem or None}``."""
        raise NotImplementedError

    # ---- the operations whose meaning is the engine's ---------------------------------------
    @abc.abstractmethod
    def maint_vacuum_operation(self, run, operation, started):
        """Run ``vacuum`` or ``vacuum_full``; returns the operation's result (``run.result``)."""

    @abc.abstractmethod
    def maint_analyze_operation(self, run, operation, started):
        """Run ``analyze``; returns the operation's result."""

    @abc.abstractmethod
    def maint_reindex_operation(self, run, operation, started):
        """Run ``reindex`` (spatial indexes); returns the operation's result."""
