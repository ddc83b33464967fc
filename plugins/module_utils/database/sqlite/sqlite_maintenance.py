# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SQLite: maintenance operations (the engine half; the procedure is in module_utils/maintenance).

Maintenance uses its own connection (``maint_begin``) in autocommit mode with a busy timeout,
so each cleanup batch is one short ``BEGIN IMMEDIATE ... COMMIT`` and the application's
writers wait at most one batch. The file must exist: it is opened with ``mode=rw``, never created.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
import tempfile

from ansible_collections.bim.wall_system.plugins.module_utils.common.locking import LockBusy, acquire, release
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError, LockTimeout
from ansible_collections.bim.wall_system.plugins.module_utils.database.sqlite.sqlite_core import file_uri
from ansible_collections.bim.wall_system.plugins.module_utils.database.sqlite.sqlite_core import quote as _quote

LOCK_SUFFIX = "-maintenance.lock"
PROBLEM_LIMIT = 50


class SqliteMaintenanceMixin:
    """Maintenance methods of the SQLite engine."""

    _mdb = None
    _mlock = None

    # ---- connection and lock ----------------------------------------------------------------
    def maint_begin(self, busy_timeout_ms=5000):
        path = self.params.sqlite_path
        if not path or not os.path.isfile(path):
            raise DatabaseError("SQLite database %s does not exist (it is never created)" % path)
        try:
            self._mdb = sqlite3.connect(file_uri(path, "rw"), uri=True, isolation_level=None,
                                        timeout=busy_timeout_ms / 1000.0)
            self._mdb.execute("PRAGMA busy_timeout = %d" % int(busy_timeout_ms))
        except sqlite3.Error as exc:
            raise DatabaseError("cannot open SQLite database %s: %s" % (path, exc)) from None

    def maint_end(self):
        self._schema = None
        if self._mdb is not None:
            self._mdb.close()
            self._mdb = None
        self.maint_unlock()

    def _q(self, query, params=(), what="query"):
        try:
            return self._mdb.execute(query, params).fetchall()
        except sqlite3.Error as exc:
            raise DatabaseError("%s on %s failed: %s" % (what, self.params.sqlite_path, exc)) from None

    def maint_lock_path(self):
        return self.params.sqlite_path + LOCK_SUFFIX

    def maint_try_lock(self):
        """flock on ``<file>-maintenance.lock`` next to the database; released by the kernel on crash."""
        path = self.maint_lock_path()
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            acquire(fd, blocking=False)
        except (LockBusy, OSError):
            try:
                holder = os.read(fd, 32).decode("ascii", "replace").strip() or None
            finally:
                os.close(fd)
            return False, holder
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode("ascii"))
        self._mlock = fd
        return True, None

    def maint_unlock(self):
        if self._mlock is not None:
            try:
                os.ftruncate(self._mlock, 0)
                release(self._mlock)
            finally:
                os.close(self._mlock)
                self._mlock = None

    def maint_identity(self):
        real = os.path.realpath(self.params.sqlite_path)
        return "sqlite-%s-%s" % (os.path.basename(real), hashlib.sha256(real.encode("utf-8")).hexdigest()[:16])

    # ---- cleanup ------------------------------------------------------------------------------
    def _cleanup_columns(self, table):
        """(table, time column, key column), quoted, of a cleanup table (``schema()``)."""
        return tuple(_quote(name) for name in self._cleanup_names(table))

    @staticmethod
    def _text_time(cutoff):
        # The application stores UTC text 'YYYY-MM-DD HH:MM:SS' (schema_sqlite.sql).
        return cutoff.strftime("%Y-%m-%d %H:%M:%S")

    def maint_count_older(self, table, cutoff):
        ident, ts, _key = self._cleanup_columns(table)
        return self._q("SELECT count(*) FROM %s WHERE %s < ?" % (ident, ts), (self._text_time(cutoff),))[0][0]

    def maint_delete_batch(self, table, cutoff, batch_size, after_id=None):
        """Delete up to ``batch_size`` rows older than ``cutoff``; return ``(deleted, last_id)``.

        The batch's key range is found first, outside the write lock (a WAL read); then only the
        range delete runs inside ``BEGIN IMMEDIATE ... COMMIT``. ``+<time>`` keeps SQLite on the
        key order: through the time column's index it would sort every eligible row per batch.
        """
        ident, ts, key = self._cleanup_columns(table)
        when = self._text_time(cutoff)
        after = "" if after_id is None else " AND %s > ?" % key
        args = () if after_id is None else (after_id,)
        try:
            row = self._mdb.execute(
                "SELECT max(k) FROM (SELECT %s AS k FROM %s WHERE +%s < ?%s ORDER BY %s LIMIT ?)" % (key, ident, ts, after, key),
                (when,) + args + (int(batch_size),)).fetchone()
            bound = row[0] if row else None
            if bound is None:
                return 0, after_id
            self._mdb.execute("BEGIN IMMEDIATE")
            try:
                deleted = self._mdb.execute(
                    "DELETE FROM %s WHERE %s <= ? AND %s < ?%s" % (ident, key, ts, after), (bound, when) + args).rowcount
                self._mdb.execute("COMMIT")
            except BaseException:
                self._mdb.execute("ROLLBACK")
                raise
            # copy the batch out of the WAL here, so the application's next commit does not run
            # the automatic checkpoint of our pages (PASSIVE: never waits for anyone)
            self._mdb.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise LockTimeout("busy_timeout reached while deleting from %s" % table) from None
            raise DatabaseError("cleanup of %s failed: %s" % (table, exc)) from None
        return deleted, bound

    # ---- statistics -----------------------------------------------------------------------------
    def maint_pages(self):
        page_size = self._q("PRAGMA page_size")[0][0]
        page_count = self._q("PRAGMA page_count")[0][0]
        freelist = self._q("PRAGMA freelist_count")[0][0]
        return dict(page_size=page_size, page_count=page_count, freelist_count=freelist,
                    bytes=page_size * page_count, free_bytes=page_size * freelist)

    def maint_database_bytes(self):
        return self.maint_pages()["bytes"]

    def _dbstat(self):
        try:
            rows = self._q("SELECT name, sum(pgsize), sum(unused) FROM dbstat GROUP BY name")
            return {r[0]: r[1] for r in rows}, {r[0]: r[2] for r in rows}
        except DatabaseError:
            return None, None

    def maint_relation_sizes(self):
        sizes, _unused = self._dbstat()
        kinds = {r[0]: (r[1], r[2]) for r in self._q("SELECT name, type, tbl_name FROM sqlite_master")}
        if sizes is None:
            return {}
        return {name: dict(kind="index" if kinds.get(name, ("table",))[0] == "index" else "table",
                           bytes=size, table=kinds.get(name, (None, name))[1])
                for name, size in sizes.items() if name in kinds}

    def maint_table_stats(self, tables):
        """Which of ``tables`` exist (from sqlite_master only: no page scan for a cleanup).

        Sizes come from ``maint_relation_sizes`` / ``maint_bloat`` (the dbstat table reads every page).
        """
        present = {r[0] for r in self._q("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return {t: dict(live=None, dead=0, table_bytes=None, total_bytes=None) for t in tables if t in present}

    def maint_stat1(self):
        try:
            return sorted(self._q("SELECT tbl, idx, stat FROM sqlite_stat1"))
        except DatabaseError:
            return []

    # ---- operations -------------------------------------------------------------------------------
    def maint_analyze(self, table=None):
        self._q("ANALYZE" if table is None else "ANALYZE %s" % _quote(table), what="ANALYZE")

    def maint_optimize(self):
        return self._q("PRAGMA optimize", what="PRAGMA optimize")

    def maint_vacuum_room(self):
        """(needed, available, folder): VACUUM writes a full copy (temp folder) and journals it."""
        needed = self.maint_pages()["bytes"]
        folders = {os.path.dirname(os.path.realpath(self.params.sqlite_path)), tempfile.gettempdir()}
        worst = None
        for folder in folders:
            free = shutil.disk_usage(folder).free
            if worst is None or free < worst[1]:
                worst = (folder, free)
        return needed, worst[1], worst[0]

    def maint_vacuum(self):
        self._q("VACUUM", what="VACUUM")
        try:
            self._q("PRAGMA wal_checkpoint(TRUNCATE)")
        except DatabaseError:
            pass

    def maint_check(self, pragma):
        """Run integrity_check / quick_check / foreign_key_check; return the problems (empty = ok)."""
        if pragma not in ("integrity_check", "quick_check", "foreign_key_check"):
            raise DatabaseError("unknown check %r" % pragma)
        try:
            rows = self._mdb.execute("PRAGMA %s" % pragma).fetchall()
        except sqlite3.DatabaseError as exc:
            # a damaged header or root page can make the check itself fail: that is a finding
            return ["%s could not complete: %s" % (pragma, exc)]
        if pragma == "foreign_key_check":
            return ["table %s rowid %s references missing row in %s (constraint %s)" % r for r in rows][:PROBLEM_LIMIT]
        problems = [r[0] for r in rows if r[0] != "ok"]
        return problems[:PROBLEM_LIMIT]

    def maint_rtree_check(self):
        """``rtreecheck()`` of each expected R*Tree (``schema()``); ``{rtree: problem text or None}``."""
        out = {}
        for index in self.schema(refresh=True).spatial_indexes:
            if not index.present or index.problem:
                out[index.name] = index.problem or "missing"
                continue
            try:
                res = self._mdb.execute("SELECT rtreecheck(?)", (index.name,)).fetchone()[0]
            except sqlite3.Error as exc:
                res = "rtreecheck failed: %s" % exc
            out[index.name] = None if res == "ok" else res
        return out

    def maint_reindex(self, table):
        self._q("REINDEX %s" % _quote(table), what="REINDEX")

    def maint_bloat(self, tables):
        """Unused bytes per table/index from the dbstat table (when compiled in), plus the free list."""
        sizes, unused = self._dbstat()
        pages = self.maint_pages()
        out = [dict(name="(free pages)", kind="freelist", table=None, bytes=pages["bytes"],
                    wasted_bytes=pages["free_bytes"], method="freelist_count")]
        if sizes is None:
            return out
        for name, tbl, kind in self._q("SELECT name, tbl_name, type FROM sqlite_master WHERE type IN ('table', 'index')"):
            if tbl in tables and name in sizes:
                out.append(dict(name=name, kind=kind, table=tbl, bytes=sizes[name],
                                wasted_bytes=int(unused.get(name) or 0), method="dbstat"))
        return out
