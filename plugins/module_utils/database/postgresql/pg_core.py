# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL: connection and bounded probes (psycopg 3); the table digests are in pg_digests.py.

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

from ansible_collections.bim.wall_system.plugins.module_utils.database.probing import ProbingEngine
from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_tools import find_pg_tool
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import (
    DatabaseError,
    MissingLibraryError,
)
from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql import pg_schema
from ansible_collections.bim.wall_system.plugins.module_utils.database.discovered import INVALID_INDEX_PROBLEM
from ansible_collections.bim.wall_system.plugins.module_utils.database.schema import BIM_TABLES

APPLICATION_NAME = "bim.wall_system"
# Upper bound of every probe query; a probe that needs longer reports an error instead of hanging.
PROBE_TIMEOUT_MS = 5000
# Half-size (in map units, metres for EPSG:3857) added around a wall's box for the window probe.
WINDOW_MARGIN = 250.0
WINDOW_LIMIT = 100

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
    """Connection and probes of the PostgreSQL engine."""

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
        if p.db_namespace:
            self._enter_namespace(p.db_namespace)
        return time.perf_counter() - started

    def _enter_namespace(self, namespace):
        """Put ``namespace`` first in this session's search_path, the rest kept (PostGIS stays
        found wherever it lives). Every query of the engine names the BIM tables unqualified or
        by ``current_schema()``, so this one setting points them all at that schema."""
        self._execute("SELECT set_config('search_path', quote_ident(%s) || ', ' || current_setting('search_path'), "
                      "false)", (namespace,))
        # current_schema() skips a schema that does not exist or that the user may not use.
        if self._fetchone("SELECT current_schema()")[0] != namespace:
            self.close()
            raise DatabaseError("schema %s (db_namespace) does not exist in postgresql %s or %s may not use it"
                                % (namespace, self._where(), self.params.db_user))

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

    def elsewhere_advice(self):
        rows = self._fetchall(
            "SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('r', 'p') AND c.relname = ANY(%s) AND n.nspname <> current_schema()"
            " GROUP BY n.nspname HAVING count(DISTINCT c.relname) = %s ORDER BY n.nspname",
            [list(BIM_TABLES), len(BIM_TABLES)])
        if not rows:
            return None
        names = ", ".join('"%s"' % r[0] for r in rows)
        return ("database: schema %s %s all the BIM tables: set bim_db_namespace (option db_namespace) to the "
                "one the application uses" % (names, "holds" if len(rows) == 1 else "each hold"))

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
