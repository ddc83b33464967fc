# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL: maintenance operations (the engine half; the procedure is in module_utils/maintenance).

Every method runs on the engine's autocommit connection (``pg_core``), so each statement is
its own transaction: a cleanup batch commits on its own and VACUUM may run at all. Identifiers
are composed with ``psycopg.sql.Identifier``; table names come from ``schema.py``, every other
name (time and key columns, spatial indexes) from the discovered schema (``engine.schema()``).
"""

from __future__ import annotations

import math
import re
import time

try:
    import psycopg
    from psycopg import sql
except ImportError:  # pragma: no cover - pg_core reports the missing library
    psycopg = None
    sql = None

from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError, LockTimeout

# pg_try_advisory_lock(int4, int4) key pair: "BIM" and "MNT" as integers, stable across releases.
MAINTENANCE_LOCK_KEY = (0x42494D, 0x4D4E54)
# VACUUM VERBOSE reports "tuples: 12 removed, 3400 remain, ..." (PostgreSQL 14+) and
# VACUUM FULL "found 12 removable, 3400 nonremovable row versions".
_REMOVED = re.compile(r"tuples: (\d+) removed")
_FULL_REMOVED = re.compile(r"found (\d+) removable")


class PostgresMaintenanceMixin:
    """Maintenance methods of the PostgreSQL engine."""

    # ---- lock ---------------------------------------------------------------------------
    def maint_try_lock(self):
        """Take the session-level maintenance advisory lock; ``(True, None)`` or ``(False, holder_pid)``."""
        got = self._fetchone("SELECT pg_try_advisory_lock(%s, %s)", list(MAINTENANCE_LOCK_KEY))[0]
        if got:
            return True, None
        row = self._fetchone(
            "SELECT l.pid FROM pg_locks l WHERE l.locktype = 'advisory' AND l.granted"
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND l.classid = %s AND l.objid = %s AND l.objsubid = 2 LIMIT 1",
            list(MAINTENANCE_LOCK_KEY))
        return False, (row[0] if row else None)

    def maint_unlock(self):
        self._fetchone("SELECT pg_advisory_unlock(%s, %s)", list(MAINTENANCE_LOCK_KEY))

    def maint_identity(self):
        """A stable key for this database's history file: cluster system id + database name."""
        try:
            sysid = self._fetchone("SELECT system_identifier FROM pg_control_system()")[0]
        except DatabaseError:
            sysid = "%s:%s" % (self.params.db_socket_dir or self.params.db_host, self.params.db_port)
        return "postgresql-%s-%s" % (sysid, self.params.db_name)

    # ---- cleanup --------------------------------------------------------------------------
    def _cleanup_columns(self, table):
        """(table, time column, key column) identifiers of a cleanup table (``schema()``)."""
        return tuple(sql.Identifier(name) for name in self._cleanup_names(table))

    def maint_count_older(self, table, cutoff):
        """Rows of ``table`` whose time column is strictly older than ``cutoff`` (aware datetime)."""
        ident, ts, _key = self._cleanup_columns(table)
        return self._fetchone(sql.SQL("SELECT count(*) FROM {} WHERE {} < %s").format(ident, ts), [cutoff])[0]

    def maint_set_lock_timeout(self, lock_timeout_ms):
        self._execute("SELECT set_config('lock_timeout', %s, false)", ["%dms" % int(lock_timeout_ms)])

    def maint_set_client_check(self, interval_ms):
        """Have the server poll this session's client every ``interval_ms``; True when it took.

        The poll is an extra safeguard, so a server that refuses it goes on without it (False):
        PostgreSQL 13 and older do not know the setting, a server that cannot poll its sockets
        (Windows) accepts only 0, and some managed services keep it fixed."""
        try:
            self._execute("SELECT set_config('client_connection_check_interval', %s, false)",
                          ["%dms" % int(interval_ms)])
        except DatabaseError:
            return False
        return True

    def maint_delete_batch(self, table, cutoff, batch_size, after_id=None):
        """Delete up to ``batch_size`` rows older than ``cutoff`` in one short transaction.

        Rows go in primary-key order after ``after_id`` (keyset: later batches never rescan the
        dead index entries of earlier ones; None: from the start). Returns ``(deleted, last_id)``.
        A lock wait longer than ``lock_timeout`` raises ``LockTimeout``.
        """
        ident, ts, key = self._cleanup_columns(table)
        after = sql.SQL(" AND {k} > %(after)s").format(k=key) if after_id is not None else sql.SQL("")
        # The batch is the key range (after_id, n-th eligible key]: one range scan of the primary
        # key, where "key IN (subquery)" would be planned as a hash semi join over the whole table.
        query = sql.SQL(
            "WITH d AS (DELETE FROM {t} WHERE {ts} < %(cutoff)s{after} AND {k} <= ("
            "SELECT max(b.k) FROM (SELECT {k} AS k FROM {t} WHERE {ts} < %(cutoff)s{after}"
            " ORDER BY {k} LIMIT %(n)s) AS b) RETURNING {k}) SELECT count(*), max({k}) FROM d").format(
                t=ident, ts=ts, k=key, after=after)
        params = dict(after=after_id, cutoff=cutoff, n=batch_size)
        try:
            with self.conn.cursor() as cur:
                cur.execute(query, params)
                count, last = cur.fetchone()
        except psycopg.errors.LockNotAvailable:
            raise LockTimeout("lock_timeout reached while deleting from %s" % table) from None
        except psycopg.Error as exc:
            raise DatabaseError("cleanup of %s failed: %s" % (table, str(exc).strip())) from None
        return count, (last if last is not None else after_id)

    # ---- statistics -----------------------------------------------------------------------
    def maint_flush_stats(self):
        """Make this session's pending statistics visible (PostgreSQL 15+), then drop the snapshot."""
        try:
            self._execute("SELECT pg_stat_force_next_flush()")
        except DatabaseError:
            pass
        self._execute("SELECT pg_stat_clear_snapshot()")

    def maint_table_stats(self, tables):
        """``{table: {live, dead, mod_since_analyze, table_bytes, total_bytes, last_vacuum, ...}}``."""
        self._execute("SELECT pg_stat_clear_snapshot()")
        rows = self._fetchall(
            "SELECT s.relname, s.n_live_tup, s.n_dead_tup, s.n_mod_since_analyze,"
            " pg_table_size(s.relid), pg_total_relation_size(s.relid), pg_indexes_size(s.relid),"
            " s.last_vacuum, s.last_autovacuum, s.last_analyze, s.last_autoanalyze"
            " FROM pg_stat_user_tables s WHERE s.schemaname = current_schema() AND s.relname = ANY(%s)",
            [list(tables)])
        out = {}
        for r in rows:
            out[r[0]] = dict(live=r[1], dead=r[2], mod_since_analyze=r[3], table_bytes=r[4],
                             total_bytes=r[5], index_bytes=r[6],
                             last_vacuum=_iso(r[7] or r[8]), last_analyze=_iso(r[9] or r[10]))
        return out

    def maint_relation_sizes(self):
        """Bytes of every table and index of the current schema: ``{name: {kind, bytes, table}}``."""
        rows = self._fetchall(
            "SELECT c.relname, c.relkind, pg_relation_size(c.oid), COALESCE(t.relname, c.relname)"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " LEFT JOIN pg_index i ON i.indexrelid = c.oid LEFT JOIN pg_class t ON t.oid = i.indrelid"
            " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'i', 'p')")
        return {r[0]: dict(kind="index" if r[1] == "i" else "table", bytes=r[2], table=r[3]) for r in rows}

    # ---- vacuum / analyze -----------------------------------------------------------------
    def maint_vacuum(self, table, full=False, analyze=False):
        opts = []
        if full:
            opts.append(sql.SQL("FULL"))
        if analyze:
            opts.append(sql.SQL("ANALYZE"))
        query = sql.SQL("VACUUM ")
        if opts:
            query += sql.SQL("(") + sql.SQL(", ").join(opts) + sql.SQL(") ")
        self._execute(query + sql.Identifier(table))

    def maint_vacuum_verbose(self, table, full=False):
        """VACUUM (VERBOSE) ``table``; return the dead row versions it removed (from its report)."""
        removed = []

        def on_notice(diag):
            text = diag.message_primary or ""
            removed.extend(int(n) for n in _REMOVED.findall(text))
            for n in _FULL_REMOVED.findall(text):
                removed.append(int(n))

        self.conn.add_notice_handler(on_notice)
        try:
            opts = [sql.SQL("VERBOSE")]
            if full:
                opts.insert(0, sql.SQL("FULL"))
            self._execute(sql.SQL("VACUUM (") + sql.SQL(", ").join(opts) + sql.SQL(") ") + sql.Identifier(table))
        finally:
            self.conn.remove_notice_handler(on_notice)
        return sum(removed)

    def maint_analyze(self, table):
        self._execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))

    # ---- spatial indexes ------------------------------------------------------------------
    def maint_index_state(self):
        """The spatial indexes as the catalog has them now (the schema is read again).

        ``{"indexes": [{table, column, index, declared, present, valid, bytes}],
        "leftovers": [{name, table, valid, reason}]}``: every expected GiST index (declared in
        bim_schema or found), and every index maintenance drops: ``*_ccnew*``/``*_ccold*``
        (interrupted REINDEX CONCURRENTLY) and invalid duplicates beside the index of the same
        column (interrupted CREATE INDEX CONCURRENTLY). See pg_schema.py for the rules.
        """
        schema = self.schema(refresh=True)
        present = [i.name for i in schema.spatial_indexes if i.present]
        # exact sizes for the deadline estimate (this session has maintenance's lock_timeout)
        sizes = dict(self._fetchall(
            "SELECT c.relname, pg_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = current_schema() AND c.relkind = 'i' AND c.relname = ANY(%s)", [present])) if present else {}
        return {
            "indexes": [dict(table=i.table, column=i.column, index=i.name, declared=i.declared, present=i.present,
                             valid=i.valid, bytes=sizes.get(i.name, i.bytes)) for i in schema.spatial_indexes],
            "leftovers": [dict(name=left.name, table=left.table, valid=left.valid, reason=left.reason)
                          for left in schema.leftovers],
        }

    def maint_drop_index_concurrently(self, name):
        self._execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(name)))

    def maint_reindex_concurrently(self, name):
        self._execute(sql.SQL("REINDEX INDEX CONCURRENTLY {}").format(sql.Identifier(name)))

    def maint_create_spatial_index(self, table, index, column):
        self._execute(sql.SQL("CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON {} USING gist ({})").format(
            sql.Identifier(index), sql.Identifier(table), sql.Identifier(column)))

    # ---- bloat ----------------------------------------------------------------------------
    def _has_pgstattuple(self):
        return bool(self._fetchone("SELECT count(*) FROM pg_extension WHERE extname = 'pgstattuple'")[0])

    def maint_bloat(self, tables):
        """Estimated wasted bytes per table and per index of ``tables``.

        With the pgstattuple extension installed: table waste = dead tuple bytes + free space
        (``pgstattuple``), B-tree index waste from ``pgstatindex`` (free + deleted leaf space);
        other indexes, and everything without the extension, are estimated from
        pg_stat_user_tables: size x dead / (live + dead). ``method`` says which was used.
        """
        exact = self._has_pgstattuple()
        stats = self.maint_table_stats(tables)
        out = []
        for table in tables:
            if table not in stats:
                continue
            st = stats[table]
            total_tup = (st["live"] or 0) + (st["dead"] or 0)
            dead_ratio = float(st["dead"] or 0) / total_tup if total_tup else 0.0
            if exact:
                row = self._fetchone("SELECT table_len, dead_tuple_len, free_space FROM pgstattuple(%s::regclass)",
                                     [sql.Identifier(table).as_string(self.conn)])
                size, wasted, method = row[0], row[1] + row[2], "pgstattuple"
            else:
                size = st["table_bytes"]
                wasted, method = int(size * dead_ratio), "dead_tuple_ratio"
            out.append(dict(name=table, kind="table", table=table, bytes=size, wasted_bytes=int(wasted),
                            method=method))
            for name, amname, isize in self._fetchall(
                    "SELECT c.relname, am.amname, pg_relation_size(c.oid) FROM pg_index i"
                    " JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam"
                    " WHERE i.indrelid = %s::regclass AND i.indisvalid ORDER BY c.relname",
                    [sql.Identifier(table).as_string(self.conn)]):
                if exact and amname == "btree" and isize > 0:
                    leaf = self._fetchone(
                        "SELECT leaf_pages, empty_pages, deleted_pages, avg_leaf_density"
                        " FROM pgstatindex(%s::regclass)", [sql.Identifier(name).as_string(self.conn)])
                    leaf_pages, empty, deleted, density = leaf
                    density = 0.0 if math.isnan(density) else float(density)  # NaN on an empty index
                    block = 8192
                    iw = int((empty + deleted) * block + leaf_pages * block * max(0.0, 90.0 - density) / 100.0)
                    imethod = "pgstatindex"
                else:
                    iw, imethod = int(isize * dead_ratio), "dead_tuple_ratio"
                out.append(dict(name=name, kind="index", table=table, bytes=isize, wasted_bytes=max(0, iw),
                                method=imethod))
        return out

    # ---- performance analysis -------------------------------------------------------------
    def maint_slowest_statements(self, limit=10):
        """Slowest statements by mean time from pg_stat_statements, or None without the extension."""
        if not self._fetchone("SELECT count(*) FROM pg_extension WHERE extname = 'pg_stat_statements'")[0]:
            return None
        try:
            rows = self._fetchall(
                "SELECT left(query, 300), calls, total_exec_time, mean_exec_time, rows"
                " FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
                " ORDER BY mean_exec_time DESC LIMIT %s", [int(limit)])
        except DatabaseError as exc:
            # e.g. not in shared_preload_libraries: the view exists but cannot be read
            return dict(error=str(exc))
        return [dict(query=r[0], calls=r[1], total_ms=round(r[2], 3), mean_ms=round(r[3], 3), rows=r[4])
                for r in rows]

    def maint_database_bytes(self):
        return self._fetchone("SELECT pg_database_size(current_database())")[0]


def _iso(value):
    return value.isoformat() if value is not None else None


def monotonic_ms(started):
    return int((time.monotonic() - started) * 1000)
