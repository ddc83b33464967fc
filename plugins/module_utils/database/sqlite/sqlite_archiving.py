# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SQLite side of continuous archiving: the journal mode Litestream needs and the recovery
marker table (the collection's own table; see ``pg_archiving.py``). Times are ISO-8601 UTC text
to the microsecond, so they sort as text."""

from __future__ import annotations

import datetime

MARKER_TABLE = "bim_recovery_markers"


class SqliteArchivingMixin:
    """Journal mode and markers (needs the core mixin's helpers)."""

    def journal_mode(self):
        return str(self._fetchone("PRAGMA journal_mode")[0]).lower()

    def set_wal_mode(self):
        self._fetchone("PRAGMA journal_mode=WAL")

    def _has_marker_table(self):
        return bool(self._fetchone("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (MARKER_TABLE,)))

    def ensure_marker_table(self):
        if self._has_marker_table():
            return False
        # A constant name of the collection's own, never user input.
        self._execute("CREATE TABLE IF NOT EXISTS \"%s\" (id INTEGER PRIMARY KEY, written_at TEXT NOT NULL, "
                      "run TEXT NOT NULL DEFAULT '')" % MARKER_TABLE)
        return True

    def write_marker(self, run=""):
        moment = datetime.datetime.now(datetime.timezone.utc)
        self._execute("INSERT INTO \"%s\" (written_at, run) VALUES (?, ?)" % MARKER_TABLE,
                      (moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), run))  # autocommit: durable on return
        return moment

    def marker_times(self, run=None):
        if not self._has_marker_table():
            return []
        query = "SELECT written_at FROM \"%s\"" % MARKER_TABLE
        rows = self._fetchall(query + (" WHERE run = ? ORDER BY written_at" if run is not None else " ORDER BY written_at"),
                              (run,) if run is not None else ())
        return [datetime.datetime.strptime(r[0], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
                for r in rows]
