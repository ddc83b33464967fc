# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL: row counts and byte-exact table digests, for backups and restore verification.

Apart from the connection and probes (pg_core.py) so that the health check, which never takes a
digest, does not carry this code and its helpers in its AnsiballZ payload.
"""

from __future__ import annotations

import concurrent.futures

from ansible_collections.bim.wall_system.plugins.module_utils.database.api_digests import Digests
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError
from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_archive import dumped_table_digest
from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_copy_digest import copy_digest
# None when psycopg is missing: pg_core's connect() says so before any digest runs.
from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_core import psycopg, sql
from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_row_digests import (
    DIGEST_FORM_FRAMED, DIGEST_FORM_ORDERED, DIGEST_FORM_ROWS, ROW_SETTINGS, copy_rows_command, framed_digest,
    ordered_digest, row_encoding, rows_digest,
)
from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_dump_digest import FramedChunks, archive_table_rows
from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_tools import libpq_environment
from ansible_collections.bim.wall_system.plugins.module_utils.database.schema import DIGEST_TABLES

# psql processes reading tables for digests at once (each keeps one server backend busy).
DIGEST_PROCESSES = 2
# Session settings that change how values print; digests fix them so any session agrees.
DIGEST_SETTINGS = (("TimeZone", "UTC"), ("DateStyle", "ISO, YMD"), ("extra_float_digits", "1"),
                   ("IntervalStyle", "postgres"), ("bytea_output", "hex"))
# The forms a table's digest is taken in, recorded per table as ``digest_form`` (a manifest
# written before binary digests records none: text). See _digest_query.
DIGEST_FORM_TEXT = "copy-text"
DIGEST_FORM_BINARY = "copy-binary"
DIGEST_FORMS = (DIGEST_FORM_TEXT, DIGEST_FORM_BINARY, DIGEST_FORM_ROWS, DIGEST_FORM_ORDERED, DIGEST_FORM_FRAMED)
# The forms whose rows are read as plain COPY text of the whole table (no ORDER BY).
_ROW_FORMS = (DIGEST_FORM_ROWS, DIGEST_FORM_ORDERED, DIGEST_FORM_FRAMED)


class PostgresDigestsMixin(Digests):
    """Row counts and digests of the PostgreSQL engine (on pg_core's connection)."""

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
        ``copy-ordered``: the SHA-256 of that same COPY's rows in their order. ``dump-framed``
        is read by pg_dump (``_framed_job``); this query is its per-row fallback.
        """
        if form in _ROW_FORMS:
            return copy_rows_command(self.conn, self._schema_name(), table)
        pk = self._primary_key(table)
        order = sql.SQL(", ").join(sql.SQL("t.") + sql.Identifier(c) for c in pk) if pk else sql.SQL("t::text")
        options = sql.SQL(" (FORMAT binary)") if form == DIGEST_FORM_BINARY else sql.SQL("")
        # Qualified: psql's session has the user's own search_path, not db_namespace's.
        return sql.SQL("\\copy (SELECT t.* FROM {} AS t ORDER BY {}) TO pstdout{}").format(
            sql.Identifier(self._schema_name(), table), order, options).as_string(self.conn)

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
        if form in _ROW_FORMS:
            env["PGCLIENTENCODING"] = row_encoding(recorded.get("digest_encoding"), own)
        if form == DIGEST_FORM_FRAMED:
            return self._framed_job(table, recorded, snapshot, archive, (psql, env, snapshot, ROW_SETTINGS, query))
        if form == DIGEST_FORM_ROWS:
            return rows_digest, copy_digest, psql, env, snapshot, query, recorded
        if form == DIGEST_FORM_ORDERED:
            schema = self._schema_name()
            kept = (lambda: archive_table_rows(archive, schema, table)) if archive else None
            return ordered_digest, copy_digest, psql, env, snapshot, query, recorded, table, kept
        env["PGCLIENTENCODING"] = own
        return copy_digest, psql, env, snapshot, DIGEST_SETTINGS, query

    def _framed_job(self, table, recorded, snapshot, archive, copy_arguments):
        """(function, arguments...) that digests a ``dump-framed`` table: pg_dump of the table in
        the snapshot; ``copy_arguments`` run the per-row read (which also counts the rows), and
        ``archive`` the backup's own rows, when the digest differs."""
        schema = self._schema_name()
        encoding = copy_arguments[1]["PGCLIENTENCODING"]
        argv, env = self.table_dump_command(schema, table, snapshot, encoding)
        kept = None
        if archive:
            kept = (lambda: archive_table_rows(archive, schema, table, sink=FramedChunks)[2],
                    lambda: archive_table_rows(archive, schema, table))
        return (framed_digest, lambda: dumped_table_digest(argv, env, schema, table), recorded, table,
                lambda: copy_digest(*copy_arguments, rows=True), kept)

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
