# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL: connection, bounded probes and table digests (psycopg 3).

Other PostgreSQL mixins run their SQL through ``_fetchall`` / ``_fetchone`` / ``_execute``,
which accept a string or a ``psycopg.sql`` object and turn driver errors into ``DatabaseError``.
Identifiers are always composed with ``psycopg.sql.Identifier``.
"""

from __future__ import annotations

import re
import time

try:
    import psycopg
    from psycopg import sql
    HAS_PSYCOPG = True
    PSYCOPG_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - depends on the host
    psycopg = None
    sql = None
    HAS_PSYCOPG = False
    PSYCOPG_IMPORT_ERROR = str(exc)

from ansible_collections.bim.wall_system.plugins.module_utils.database.interface import ProbingEngine
from ansible_collections.bim.wall_system.plugins.module_utils.database.pg_tools import find_pg_tool, libpq_environment
from ansible_collections.bim.wall_system.plugins.module_utils.database.pg_copy_digest import copy_digest
from ansible_collections.bim.wall_system.plugins.module_utils.database.pg_row_digests import (
    DIGEST_FORM_ORDERED, DIGEST_FORM_ROWS, copy_rows_command, ordered_digest, row_encoding, rows_digest,
)
from ansible_collections.bim.wall_system.plugins.module_utils.database.pg_dump_digest import archive_table_rows
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import (
    DatabaseError,
    MissingLibraryError,
)
from ansible_collections.bim.wall_system.plugins.module_utils.database import pg_schema
from ansible_collections.bim.wall_system.plugins.module_utils.database.discovered import INVALID_INDEX_PROBLEM
from ansible_collections.bim.wall_system.plugins.module_utils.database.schema import (
    BIM_TABLES,
    DIGEST_TABLES,
)

APPLICATION_NAME = "bim.wall_system"
# Upper bound of every probe query; a probe that needs longer reports an error instead of hanging.
PROBE_TIMEOUT_MS = 5000
# Half-size (in map units, metres for EPSG:3857) added around a wall's box for the window probe.
WINDOW_MARGIN = 250.0
WINDOW_LIMIT = 100
# psql processes reading tables for digests at once (each keeps one server backend busy).
DIGEST_PROCESSES = 2
# Session settings that change how values print; digests fix them so any session agrees.
DIGEST_SETTINGS = (("TimeZone", "UTC"), ("DateStyle", "ISO, YMD"), ("extra_float_digits", "1"),
                   ("IntervalStyle", "postgres"), ("bytea_output", "hex"))
# The forms a table's digest is taken in, recorded per table as ``digest_form`` (a manifest
# written before binary digests records none: text). See _digest_query.
DIGEST_FORM_TEXT = "copy-text"
DIGEST_FORM_BINARY = "copy-binary"
DIGEST_FORMS = (DIGEST_FORM_TEXT, DIGEST_FORM_BINARY, DIGEST_FORM_ROWS, DIGEST_FORM_ORDERED)

# Known causes of a failed connection, matched against the driver's text; the message shown is
# always rebuilt from these phrases, so nothing the driver echoes (conninfo) can leak.
_CONNECT_REASONS = (
    (r"password authentication failed", "password authentication failed"),
    (r"no password supplied|fe_sendauth", "a password is required"),
    (r'database "[^"]*" does not exist', "database does not exist (it is never created)"),
    (r'role "[^"]*" does not exist', "role does not exist"),
    (r"no pg_hba\.conf entry", "rejected by pg_hba.conf"),
    (r"Connection refused", "connection refused (is the server running?)"),
    (r"No such file or directory", "no server socket in that folder (is the server running?)"),
    (r"timeout expired|timed out", "connection timed out"),
    (r"could not translate host name|Name or service not known", "unknown host name"),
    (r"too many (clients|connections)|remaining connection slots", "too many connections"),
    (r"the database system is (starting up|shutting down|in recovery mode)", "the server is not accepting connections"),
    (r"permission denied for database", "permission denied for the database"),
    (r"SSL", "SSL negotiation failed"),
)


def _connect_reason(text, password):
    for pattern, reason in _CONNECT_REASONS:
        if re.search(pattern, text, re.IGNORECASE):
            return reason
    first = text.strip().splitlines()[-1] if text.strip() else "unknown error"
    first = re.sub(r"(?i)password\s*=\s*\S+", "password=********", first)
    if password:
        first = first.replace(password, "********")
    return first[:200]


class PostgresCoreMixin(ProbingEngine):
    """Connection, probes and digests of the PostgreSQL engine."""

    # ---- connection -------------------------------------------------------------------
    def _where(self):
        p = self.params
        where = p.db_socket_dir or "%s:%s" % (p.db_host, p.db_port)
        return "%s/%s as %s" % (where, p.db_name, p.db_user)

    def connect(self):
        if not HAS_PSYCOPG:
            raise MissingLibraryError("psycopg", PSYCOPG_IMPORT_ERROR)
        p = self.params
        kwargs = dict(
            host=p.db_socket_dir or p.db_host,
            port=p.db_port,
            dbname=p.db_name,
            user=p.db_user,
            connect_timeout=p.connect_timeout,
            application_name=APPLICATION_NAME,
            autocommit=True,
        )
        if p.db_password is not None:
            kwargs["password"] = p.db_password
        if self.read_only:
            kwargs["options"] = "-c default_transaction_read_only=on"
        started = time.perf_counter()
        try:
            self.conn = psycopg.connect(**kwargs)
        except psycopg.Error as exc:
            raise DatabaseError("cannot connect to postgresql %s: %s"
                                % (self._where(), _connect_reason(str(exc), p.db_password))) from None
        return time.perf_counter() - started

    # ---- small query helpers for every PostgreSQL mixin ----------------------------------
    def _run(self, query, params, fetch):
        if self.conn is None:
            raise DatabaseError("not connected to postgresql %s" % self._where())
        try:
            with self.conn.cursor() as cur:
                cur.execute(query, params)
                if fetch == "all":
                    return cur.fetchall()
                if fetch == "one":
                    return cur.fetchone()
                return cur.rowcount
        except psycopg.errors.QueryCanceled:
            raise DatabaseError("query on %s cancelled by statement_timeout" % self._where()) from None
        except psycopg.Error as exc:
            raise DatabaseError("query on %s failed: %s" % (self._where(), str(exc).strip())) from None

    # ---- client programs, for every PostgreSQL mixin (digests, dumps, restores) ----------
    def pg_tool(self, tool):
        """Path of a PostgreSQL client program, preferring the server's major version (looked
        up once per engine and program)."""
        found = getattr(self, "_tool_paths", {}).get(tool)
        if found is None:
            found = find_pg_tool(tool, self._server_major())
            self._tool_paths = dict(getattr(self, "_tool_paths", {}), **{tool: found})
        return found

    def _server_major(self):
        """The server's major version: from this engine's connection, else through the
        restore mixin's administrative connection; None when neither answers."""
        conn = getattr(self, "conn", None)
        if conn is not None and not conn.closed:
            return conn.info.server_version // 10000
        try:
            return self.server_major_version()
        except DatabaseError:
            return None

    # ---- probes ---------------------------------------------------------------------------
    def existing_tables(self):
        rows = self._fetchall(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema() AND c.relname = ANY(%s)",
            [list(BIM_TABLES)])
        found = {r[0] for r in rows}
        return [t for t in BIM_TABLES if t in found]

    def _discover_schema(self):
        return pg_schema.discover(self._fetchall, self.params.schema)

    def query_latency(self):
        """Key lookup by primary key plus a GiST window query, each bounded by an index.

        The key is the walls key halfway between its min and max (both read from the primary
        key index; a key that is not a number: the first one); the window is the box of that
        wall plus ``WINDOW_MARGIN``, so no probe ever scans the table, whatever its size.
        ``statement_timeout`` bounds each query. Columns and index come from ``schema()``:
        without a valid spatial index on walls' geometry column the window probe is skipped
        (``spatial_window_skipped`` says why) rather than scanning.
        """
        schema = self.schema()
        if "walls" not in schema.tables:
            raise DatabaseError("table walls is missing in %s" % self._where())
        key = schema.key_column("walls")
        if key is None:
            raise DatabaseError("table walls has no single-column primary key in %s" % self._where())
        geom = schema.geometry_column("walls")
        index = schema.probe_index("walls")
        k = sql.Identifier(key)
        box_sql = sql.SQL(", NULL, NULL, NULL, NULL, NULL")
        if geom:
            box_sql = sql.SQL(", ST_XMin({g}), ST_YMin({g}), ST_XMax({g}), ST_YMax({g}), ST_SRID({g})").format(
                g=sql.Identifier(geom))
        result = {}
        try:
            with self.conn.transaction():
                self._execute("SELECT set_config('statement_timeout', %s, true)", [str(PROBE_TIMEOUT_MS)])
                start = self._probe_start(schema, key)
                started = time.perf_counter()
                where = sql.SQL(" WHERE {k} >= %s").format(k=k) if start is not None else sql.SQL("")
                row = self._fetchone(sql.SQL("SELECT {k}{box} FROM walls{where} ORDER BY {k} LIMIT 1").format(
                    k=k, box=box_sql, where=where), [start] if start is not None else None)
                result["key_lookup_ms"] = round((time.perf_counter() - started) * 1000.0, 3)
                if index is None:
                    result["spatial_window_skipped"] = (
                        "walls has no valid spatial index%s" % (" on %s" % geom if geom else " (no geometry column)"))
                    return result
                if row is None or None in row[1:5]:  # no walls, or an empty geometry
                    box, srid = (0.0, 0.0, 1.0, 1.0), self._walls_srid(geom)
                else:
                    box, srid = row[1:5], row[5]
                started = time.perf_counter()
                hits = self._fetchall(sql.SQL(
                    "SELECT {k} FROM walls WHERE {g} && ST_MakeEnvelope(%s, %s, %s, %s, %s) LIMIT %s").format(
                        k=k, g=sql.Identifier(geom)),
                    [box[0] - WINDOW_MARGIN, box[1] - WINDOW_MARGIN, box[2] + WINDOW_MARGIN,
                     box[3] + WINDOW_MARGIN, srid, WINDOW_LIMIT])
                result["spatial_window_ms"] = round((time.perf_counter() - started) * 1000.0, 3)
                result["spatial_window_rows"] = len(hits)
        except psycopg.Error as exc:
            raise DatabaseError("latency probe on %s failed: %s" % (self._where(), str(exc).strip())) from None
        return result

    def _probe_start(self, schema, key):
        """An integer key: the one halfway between walls' smallest and largest (read from the
        primary key index); any other key type: None (the probe reads the smallest key)."""
        types = dict(schema.columns.get("walls", []))
        if types.get(key) not in ("bigint", "integer", "smallint"):
            return None
        low, high = self._fetchone(sql.SQL("SELECT min({k}), max({k}) FROM walls").format(k=sql.Identifier(key)))
        return None if low is None else low + (high - low) // 2

    def _walls_srid(self, geom):
        row = self._fetchone(
            "SELECT srid FROM geometry_columns WHERE f_table_schema = current_schema()"
            " AND f_table_name = 'walls' AND f_geometry_column = %s", [geom])
        return row[0] if row else 0

    def connection_usage(self):
        """Client sessions of the whole server (the limit is server-wide) and max_connections."""
        active, idle, idle_tx, total = self._fetchone(
            "SELECT count(*) FILTER (WHERE state = 'active'), count(*) FILTER (WHERE state = 'idle'),"
            " count(*) FILTER (WHERE state LIKE 'idle in transaction%'), count(*)"
            " FROM pg_stat_activity WHERE backend_type = 'client backend'")
        limit = int(self._fetchone("SHOW max_connections")[0])
        return {"active": active, "idle": idle, "idle_in_transaction": idle_tx, "total": total,
                "max_connections": limit}

    def data_directory(self):
        """``SHOW data_directory`` (superuser or pg_read_all_settings), else None."""
        try:
            row = self._fetchone("SHOW data_directory")
        except DatabaseError:
            return None
        return row[0] if row else None

    def spatial_indexes(self):
        """One entry per expected GiST index (``schema()``), plus one per leftover, invalid
        duplicate or other invalid index of a spatial table.

        An index a failed ``CREATE INDEX CONCURRENTLY`` left behind has ``indisvalid`` false;
        ``REINDEX CONCURRENTLY`` interrupted leaves ``<name>_ccnew*`` (and ``_ccold*``) indexes.
        """
        schema = self.schema()
        result = [i.as_dict() for i in schema.spatial_indexes]
        result += [left.as_dict() for left in schema.leftovers]
        result += [dict(other, expected=False, declared=False, present=True, valid=False,
                        problem=INVALID_INDEX_PROBLEM) for other in schema.other_invalid]
        return result

    def index_advice(self, index):
        name, table, column = index.get("name"), index.get("table"), index.get("column")
        problem = index.get("problem") or ""
        if not index.get("present") and not column:
            return ("database: spatial index %s (declared in bim_schema) is missing and the geometry column of %s "
                    "is unknown; set bim_schema.%s.geometry_column" % (name, table, table))
        if not index.get("present"):
            return ("database: spatial index %s is missing; recreate it: CREATE INDEX CONCURRENTLY %s ON %s "
                    "USING gist (%s) (db_maintenance reindex does)" % (name, name, table, column))
        if "leftover" in problem:
            return "database: index %s is %s; run DROP INDEX CONCURRENTLY %s" % (name, problem, name)
        return "database: index %s on %s is %s; run REINDEX INDEX CONCURRENTLY %s" % (name, table, problem, name)

    def create_index_hint(self, table):
        column = self.schema().geometry_column(table)
        if not column:
            return ""
        return " (CREATE INDEX CONCURRENTLY ON %s USING gist (%s))" % (table, column)

    # ---- counts and digests ----------------------------------------------------------------
    def row_counts(self, tables=DIGEST_TABLES):
        present = set(self._all_tables())
        return {t: self._fetchone(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t)))[0]
                for t in tables if t in present}

    def _primary_key(self, table):
        rows = self._fetchall(
            "SELECT a.attname FROM pg_index i"
            " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
            " WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)",
            [sql.Identifier(table).as_string(self.conn)])
        return [r[0] for r in rows]

    def _binary_safe_tables(self, tables):
        """The tables of ``tables`` whose binary COPY is the same in every database that holds
        the same rows. Binary COPY sends the type OID of array elements and composite fields, and
        reg* values as OIDs; an extension's or enum's types get new OIDs in every restored
        database, so only these column types are admitted (a domain counts as its base type):
        built-in base, range and multirange types other than reg*, enums (sent as their label),
        and PostGIS geometry and geography (sent as EWKB). Anything else keeps its table on the
        text form."""
        rows = self._fetchall(
            "SELECT c.relname, bool_and(b.typsend <> 0 AND ("
            " (b.oid < 16384 AND b.typtype IN ('b', 'r', 'm') AND b.typname !~ '^_?reg')"
            " OR b.typtype = 'e'"
            " OR (b.typtype = 'b' AND b.typelem = 0 AND p.proname IN ('geometry_send', 'geography_send'))))"
            " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
            " JOIN pg_type d ON d.oid = a.atttypid"
            " JOIN pg_type b ON b.oid = CASE WHEN d.typtype = 'd' THEN d.typbasetype ELSE d.oid END"
            " LEFT JOIN pg_proc p ON p.oid = b.typsend"
            " WHERE n.nspname = current_schema() AND c.relname::text = ANY(%s)"
            " GROUP BY c.relname", [list(tables)])
        return {r[0] for r in rows if r[1]}

    def _digest_forms(self, tables, forms):
        """{table: form} to digest ``tables`` in: ``forms`` names them (a table it leaves out, or
        names None, was recorded before binary digests: text), else each table's own choice."""
        if forms is None:
            binary = self._binary_safe_tables(tables)
            return {t: DIGEST_FORM_BINARY if t in binary else DIGEST_FORM_TEXT for t in tables}
        chosen = {t: forms.get(t) or DIGEST_FORM_TEXT for t in tables}
        unknown = sorted("%s (%s)" % (t, f) for t, f in chosen.items() if f not in DIGEST_FORMS)
        if unknown:
            raise DatabaseError("unknown digest form of table %s; this collection knows %s"
                                % (", ".join(unknown), ", ".join(DIGEST_FORMS)))
        return chosen

    def _digest_query(self, table, form):
        """The psql ``\\copy`` whose output is ``table``'s canonical form; defined here, in one place.

        ``copy-text`` and ``copy-binary`` hash the bytes of ``COPY (SELECT t.* FROM table AS t
        ORDER BY <primary key>) TO STDOUT``, a table without a primary key ordered by its row
        text; the server formats the rows with the same functions as pg_dump's COPY.
        ``copy-text``: one line per row, the columns in table order separated by tabs, NULL as
        ``\\N``, COPY's backslash escapes, geometry as hex EWKB; the session settings that shape
        the text are fixed by ``DIGEST_SETTINGS`` and the client encoding is this connection's.
        ``copy-binary`` (``FORMAT binary``, for tables ``_binary_safe_tables`` admits): COPY's
        binary header, rows and trailer, values in their types' send form; about a fifth less
        server and hashing work than text. ``copy-rows`` (``pg_row_digests``): the multiset of
        the rows of a plain ``COPY table TO STDOUT``, as pg_dump prints them; no ORDER BY.
        ``copy-ordered``: the SHA-256 of that same COPY's rows in their order.
        """
        if form in (DIGEST_FORM_ROWS, DIGEST_FORM_ORDERED):
            return copy_rows_command(self.conn, self._schema_name(), table)
        pk = self._primary_key(table)
        order = sql.SQL(", ").join(sql.SQL("t.") + sql.Identifier(c) for c in pk) if pk else sql.SQL("t::text")
        options = sql.SQL(" (FORMAT binary)") if form == DIGEST_FORM_BINARY else sql.SQL("")
        return sql.SQL("\\copy (SELECT t.* FROM {} AS t ORDER BY {}) TO pstdout{}").format(
            sql.Identifier(table), order, options).as_string(self.conn)

    def _schema_name(self):
        return self._fetchone("SELECT current_schema()")[0]

    def _digest_snapshot(self, tables, snapshot=None, forms=None, recorded=None, archive=None):
        """{table: (rows, digest, form)} of ``tables``, all read in one REPEATABLE READ
        snapshot: the exported ``snapshot`` (the backup's, so the digests describe exactly what
        pg_dump reads) or one exported here. Each table is read by a psql of its own
        (``pg_copy_digest``), ``DIGEST_PROCESSES`` at a time; ``forms`` as in ``_digest_forms``;
        ``recorded`` ({table: manifest entry}) gives a ``copy-rows`` read its encoding and
        ordered digest (``pg_row_digests.rows_digest``); ``archive`` opens the backup's archive
        again for a ``copy-ordered`` table whose order differs (``pg_row_digests.ordered_digest``)."""
        import concurrent.futures
        try:
            self.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                if snapshot:
                    self._execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
                else:
                    snapshot = self._fetchone("SELECT pg_export_snapshot()")[0]
                chosen = self._digest_forms(tables, forms)
                jobs = {t: self._digest_job(t, chosen[t], (recorded or {}).get(t) or {}, snapshot, archive)
                        for t in tables}
                with concurrent.futures.ThreadPoolExecutor(max(1, min(DIGEST_PROCESSES, len(tables)))) as pool:
                    futures = {t: pool.submit(*job) for t, job in jobs.items()}
                    return {t: f.result() + (chosen[t],) for t, f in futures.items()}
            finally:
                self.conn.execute("ROLLBACK")
        except psycopg.Error as exc:
            raise DatabaseError("digest on %s failed: %s" % (self._where(), str(exc).strip())) from None
        except DatabaseError as exc:
            raise DatabaseError("digest on %s failed: %s" % (self._where(), exc)) from None

    def _digest_job(self, table, form, recorded, snapshot, archive=None):
        """(function, arguments...) that digests one table (run on a pool thread)."""
        env = libpq_environment(self.params)
        own = self.conn.info.parameter_status("client_encoding") or "UTF8"
        psql = self.pg_tool("psql")
        query = self._digest_query(table, form)
        if form in (DIGEST_FORM_ROWS, DIGEST_FORM_ORDERED):
            env["PGCLIENTENCODING"] = row_encoding(recorded.get("digest_encoding"), own)
        if form == DIGEST_FORM_ROWS:
            return rows_digest, copy_digest, psql, env, snapshot, query, recorded
        if form == DIGEST_FORM_ORDERED:
            schema = self._schema_name()
            kept = (lambda: archive_table_rows(archive, schema, table)) if archive else None
            return ordered_digest, copy_digest, psql, env, snapshot, query, recorded, table, kept
        env["PGCLIENTENCODING"] = own
        return copy_digest, psql, env, snapshot, DIGEST_SETTINGS, query

    def table_digest(self, table):
        if table not in self._all_tables():
            raise DatabaseError("table %s does not exist in %s" % (table, self._where()))
        return self._digest_snapshot([table])[table][1]

    def table_digests(self, tables=DIGEST_TABLES, forms=None, recorded=None, archive=None, snapshot=None):
        """{table: {rows, digest, digest_form}} of the tables present, all in one snapshot: a new
        REPEATABLE READ one, or ``snapshot`` (an id from ``pg_export_snapshot()``, as the backup
        uses so that the digests describe exactly what pg_dump reads). ``forms``: {table: form}
        of the digests to compare with (a manifest's ``digest_form``s), else each table's own;
        ``recorded``: {table: the manifest's entry} (a ``copy-rows`` entry's encoding and
        ordered digest); ``archive``: opens the backup's archive again (``_digest_snapshot``)."""
        present = set(self._all_tables())
        done = self._digest_snapshot([t for t in tables if t in present], snapshot=snapshot, forms=forms,
                                     recorded=recorded, archive=archive)
        return {t: {"rows": r, "digest": d, "digest_form": f} for t, (r, d, f) in done.items()}

    def _all_tables(self):
        rows = self._fetchall(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema()")
        return [r[0] for r in rows]
