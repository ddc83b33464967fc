# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SQLite: connection and bounded probes (standard library sqlite3); the table digests are in
sqlite_digests.py.

Other SQLite mixins run their SQL through ``_fetchall`` / ``_fetchone`` / ``_execute`` and
quote every identifier with ``_quote_identifier``, which only accepts names that exist in
``sqlite_master`` (SQLite has no driver-side identifier quoting).
"""

from __future__ import annotations

import os
import sqlite3
import time
import urllib.parse

from ansible_collections.bim.wall_system.plugins.module_utils.database.probing import ProbingEngine
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError
from ansible_collections.bim.wall_system.plugins.module_utils.database.sqlite import sqlite_schema
from ansible_collections.bim.wall_system.plugins.module_utils.database.schema import BIM_TABLES

# Upper bound of every probe; a probe that needs longer is interrupted and reported as an error.
PROBE_TIMEOUT_MS = 5000
WINDOW_MARGIN = 250.0
WINDOW_LIMIT = 100


def quote(name):
    """``name`` as a double-quoted SQLite identifier (for names read from the catalog)."""
    return '"%s"' % name.replace('"', '""')


def file_uri(path, mode):
    """The ``file:`` URI of ``path`` opened in ``mode`` (ro/rw): the path percent-quoted, so a
    ``?``, ``#`` or ``%`` in a file name is part of the name, not of the URI."""
    return "file:%s?mode=%s" % (urllib.parse.quote(path), mode)


class SqliteCoreMixin(ProbingEngine):
    """Connection and probes of the SQLite engine."""

    # ---- connection -------------------------------------------------------------------
    def _path(self):
        if not self.params.sqlite_path:
            raise DatabaseError("sqlite_path is required for the sqlite engine")
        return os.path.abspath(self.params.sqlite_path)

    def connect(self):
        """Open the existing file (``mode=rw``, or ``mode=ro`` when read-only); never create one."""
        path = self._path()
        if not os.path.isfile(path):
            raise DatabaseError("sqlite database file %s does not exist (it is never created)" % path)
        uri = file_uri(path, "ro" if self.read_only else "rw")
        started = time.perf_counter()
        try:
            conn = sqlite3.connect(uri, uri=True, timeout=self.params.connect_timeout,
                                   isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise self._open_failure(path, exc) from None
        try:
            conn.execute("PRAGMA busy_timeout = %d" % (int(self.params.connect_timeout) * 1000))
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as exc:
            conn.close()
            raise self._open_failure(path, exc) from None
        self.conn = conn
        return time.perf_counter() - started

    def _open_failure(self, path, exc):
        """The DatabaseError of a failed open. A read-only open of a file with a hot journal (a
        writer stopped mid-transaction, rollback-journal modes) fails with SQLite's bare "attempt to
        write a readonly database": say what it is and what rolls it back, since a check that
        promises not to write must not do it itself."""
        journal = path + "-journal"
        if self.read_only and "readonly" in str(exc) and os.path.isfile(journal) and os.path.getsize(journal):
            return DatabaseError(
                "sqlite database %s has a hot journal (%s): a write was interrupted mid-transaction (the "
                "application stopped or crashed) and is not rolled back yet; a read-only check cannot do it. "
                "The application's next start rolls it back, as does any read-write open (db_maintenance, "
                "backup)" % (path, journal))
        return DatabaseError("cannot open sqlite database %s: %s" % (path, exc))

    # ---- small query helpers for every SQLite mixin --------------------------------------
    def _run(self, query, params, fetch):
        if self.conn is None:
            raise DatabaseError("not connected to sqlite %s" % self._path())
        try:
            cur = self.conn.execute(query, params or ())
            if fetch == "all":
                return cur.fetchall()
            if fetch == "one":
                return cur.fetchone()
            return cur.rowcount
        except sqlite3.Error as exc:
            raise DatabaseError("query on sqlite %s failed: %s" % (self._path(), exc)) from None

    def _quote_identifier(self, name):
        """Return ``name`` double-quoted for SQL, only if it names an object in sqlite_master."""
        row = self._fetchone("SELECT 1 FROM sqlite_master WHERE name = ?", [name])
        if row is None:
            raise DatabaseError("no table or index named %r in sqlite %s" % (name, self._path()))
        return '"%s"' % name.replace('"', '""')

    def _all_tables(self):
        rows = self._fetchall("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        return [r[0] for r in rows]

    # ---- probes ---------------------------------------------------------------------------
    def existing_tables(self):
        found = set(self._all_tables())
        return [t for t in BIM_TABLES if t in found]

    def _deadline_handler(self, timeout_ms):
        deadline = time.monotonic() + timeout_ms / 1000.0
        return lambda: 1 if time.monotonic() > deadline else 0

    def _discover_schema(self):
        # maintenance works on its own connection (sqlite_maintenance.maint_begin)
        conn = self.conn if self.conn is not None else getattr(self, "_mdb", None)
        if conn is None:
            raise DatabaseError("not connected to sqlite %s" % self._path())

        def fetchall(query, params):
            try:
                return conn.execute(query, params).fetchall()
            except sqlite3.Error as exc:
                raise DatabaseError("reading the schema of sqlite %s failed: %s" % (self._path(), exc)) from None

        return sqlite_schema.discover(fetchall, self.params.schema)

    def query_latency(self):
        """Key lookup by rowid plus an R*Tree window query joined to walls, both index-bound.

        The key is halfway between the smallest and largest rowid (each read from the rowid
        b-tree); the window is that wall's R*Tree box plus ``WINDOW_MARGIN``. The R*Tree and
        its columns come from ``schema()``; without one on walls the window probe is skipped
        (``spatial_window_skipped`` says why). A progress handler interrupts any probe running
        past ``PROBE_TIMEOUT_MS``.
        """
        schema = self.schema()
        if "walls" not in schema.tables:
            raise DatabaseError("table walls is missing in sqlite %s" % self._path())
        key = schema.row_keys.get("walls")
        if key is None:
            raise DatabaseError("table walls has no rowid or single-column key in sqlite %s" % self._path())
        k = quote(key)
        index = schema.probe_index("walls")
        result = {}
        self.conn.set_progress_handler(self._deadline_handler(PROBE_TIMEOUT_MS), 1000)
        try:
            low, high = self._fetchone("SELECT min(%s), max(%s) FROM walls" % (k, k))
            start = low + (high - low) // 2 if isinstance(low, int) and isinstance(high, int) else low
            started = time.perf_counter()
            row = self._fetchone("SELECT %s, * FROM walls WHERE %s >= ? ORDER BY %s LIMIT 1" % (k, k, k), [start])
            result["key_lookup_ms"] = round((time.perf_counter() - started) * 1000.0, 3)
            if index is None:
                result["spatial_window_skipped"] = "walls has no valid R*Tree"
                return result
            rtree = quote(index.name)
            r_id = quote(index.id_column)
            min_x, max_x, min_y, max_y = (quote(c) for c in index.box)
            box = None
            if row is not None:
                box = self._fetchone("SELECT %s, %s, %s, %s FROM %s WHERE %s = ?"
                                     % (min_x, max_x, min_y, max_y, rtree, r_id), [row[0]])
            box = box or (0.0, 1.0, 0.0, 1.0)
            started = time.perf_counter()
            hits = self._fetchall(
                "SELECT w.%s FROM %s AS r JOIN walls AS w ON w.%s = r.%s"
                " WHERE r.%s <= ? AND r.%s >= ? AND r.%s <= ? AND r.%s >= ? LIMIT ?"
                % (k, rtree, k, r_id, min_x, max_x, min_y, max_y),
                [box[1] + WINDOW_MARGIN, box[0] - WINDOW_MARGIN, box[3] + WINDOW_MARGIN,
                 box[2] - WINDOW_MARGIN, WINDOW_LIMIT])
            result["spatial_window_ms"] = round((time.perf_counter() - started) * 1000.0, 3)
            result["spatial_window_rows"] = len(hits)
        finally:
            self.conn.set_progress_handler(None, 1000)
        return result

    def connection_usage(self):
        """SQLite is embedded: the only connection is this one and there is no server limit."""
        return {"active": 1, "idle": 0, "max_connections": None}

    def data_directory(self):
        return os.path.dirname(self._path())

    def spatial_indexes(self):
        """Per expected R*Tree (``schema()``): present, ``rtreecheck()`` says ok, and as many
        rows as its table."""
        result = []
        for index in self.schema().spatial_indexes:
            entry = index.as_dict()
            result.append(entry)
            if not index.present or index.problem:
                entry["valid"] = False
                continue
            entry["valid"] = False
            check = self._fetchone("SELECT rtreecheck(?)", [index.name])[0]
            if check != "ok":
                entry["problem"] = "rtreecheck failed: %s" % check.splitlines()[0]
                continue
            indexed = self._fetchone("SELECT count(*) FROM %s" % quote(index.name))[0]
            rows = self._fetchone("SELECT count(*) FROM %s" % quote(index.table))[0]
            if indexed != rows:
                entry["problem"] = "R*Tree holds %d rows but %s has %d" % (indexed, index.table, rows)
                continue
            entry["valid"] = True
        return result

    def missing_database(self):
        # checked before connecting too, so that a missing file can never be created by a driver default
        path = self.params.sqlite_path
        if path and os.path.isfile(path):
            return None
        return ("SQLite database file %s does not exist" % path,
                "database: check sqlite_path (bim_sqlite_path); a health check never creates a database")

    def index_advice(self, index):
        name, table = index.get("name"), index.get("table")
        return ("database: spatial index %s on %s is %s; rebuild the R*Tree from %s (db_maintenance "
                "reindex) and run PRAGMA integrity_check" % (name, table, index.get("problem") or "not valid", table))

    def create_index_hint(self, table):
        unmapped = self.schema().unmapped
        if unmapped:
            # an R*Tree is there but its name names no table: likely this table's
            return " (an R*Tree of its bounding boxes; R*Tree(s) %s belong to no BIM table by name)" % (
                ", ".join(unmapped))
        return " (an R*Tree of its bounding boxes)"
