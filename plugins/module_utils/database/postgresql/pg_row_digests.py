# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL ``copy-rows`` digests: the multiset of a table's COPY text rows, as pg_dump prints
them (``row_digest``), taken by a backup from the dump's own data (``pg_dump_digest``) and by a
verification from a plain ``COPY table TO STDOUT`` of the restored copy.

Both reads must print every value the same way, so both sessions fix the settings that shape
COPY text: pg_dump itself sets DateStyle ISO, IntervalStyle postgres, extra_float_digits 3 and an
empty search_path (so reg* values print schema-qualified); the backup also gives pg_dump
TimeZone UTC and bytea_output hex (``PGOPTIONS``, harmless to a restore: timestamps carry their
offset, pg_restore reads either bytea form); a verification sets all of them. The encoding of the
text is the archive's (its ENCODING entry, recorded per table as ``digest_encoding``).

A verification reads the restored copy in its physical order, which for a fresh restore is the
dump's order (pg_restore loads each table with one COPY; synchronize_seqscans is off, so the scan
starts at the first page). The backup also records ``ordered_digest``, the SHA-256 of the rows in
the dump's order, so the verification first hashes the copy's COPY stream as one stream (the
per-row work skipped, SHA-256 on large blocks): equal bytes in equal order prove the same
multiset. Only when that differs (another order, or other rows) is the copy read again for the
order-independent digest, which decides. Only
``money`` prints according to a setting no session fixes (lc_monetary, which also decides how a
restore reads it back): a table with such a column keeps the ``copy-binary``/``copy-text``
digest of a second read (``stream_tables``).
"""

from __future__ import annotations

import re

DIGEST_FORM_ROWS = "copy-rows"
DIGEST_FORM_ORDERED = "copy-ordered"
DIGEST_FORM_FRAMED = "dump-framed"
# The settings a copy-rows read runs with (the verification's; pg_dump sets its own to the same).
ROW_SETTINGS = (("DateStyle", "ISO"), ("IntervalStyle", "postgres"), ("extra_float_digits", "3"),
                ("TimeZone", "UTC"), ("bytea_output", "hex"), ("search_path", ""), ("synchronize_seqscans", "off"))
# What the backup adds to pg_dump's session: the two settings pg_dump leaves to the server.
DUMP_OPTIONS = "-c TimeZone=UTC -c bytea_output=hex"
_ENCODING_NAME = re.compile(r"^[A-Za-z0-9_]{1,40}$")


def framed_entry(rows, framed, encoding):
    """The manifest entry of a table whose data block the stream hashed as pg_dump framed it
    (``pg_dump_digest.FramedChunks``); ``rows`` is its count in the dump's snapshot."""
    return {"rows": rows, "digest": framed, "digest_form": DIGEST_FORM_FRAMED, "digest_encoding": encoding}


def dump_environment(env):
    """pg_dump's libpq ``env`` with ``DUMP_OPTIONS`` added to any ``PGOPTIONS`` already there."""
    env = dict(env)
    env["PGOPTIONS"] = (env.get("PGOPTIONS", "") + " " + DUMP_OPTIONS).strip()
    return env


def row_encoding(recorded, default):
    """The client encoding to read a copy-rows digest in: the manifest's ``recorded`` one (a
    name, checked: it comes from a file) or ``default``."""
    if recorded is None:
        return default
    if not isinstance(recorded, str) or not _ENCODING_NAME.match(recorded):
        from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError
        raise DatabaseError("the manifest records an invalid digest encoding")
    return recorded


def copy_rows_command(conn, schema, table):
    """psql's ``\\copy schema.table TO pstdout``: every column pg_dump dumps, in table order."""
    from psycopg import sql
    return sql.SQL("\\copy {}.{} TO pstdout").format(sql.Identifier(schema), sql.Identifier(table)).as_string(conn)


# Tables with a column (a domain counts as its base type, an array as its element) of type money.
_MONEY_TABLES = (
    "SELECT DISTINCT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
    " JOIN pg_type d ON d.oid = a.atttypid"
    " JOIN pg_type b ON b.oid = CASE WHEN d.typtype = 'd' THEN d.typbasetype ELSE d.oid END"
    " WHERE n.nspname = current_schema() AND c.relname::text = ANY(%s)"
    " AND 'money'::regtype IN (b.oid, b.typelem)")


def stream_tables(fetchall, tables):
    """The tables of ``tables`` whose digest can come from the dump's rows (no money column)."""
    money = {r[0] for r in fetchall(_MONEY_TABLES, [list(tables)])}
    return [t for t in tables if t not in money]


def rows_digest(copy_digest, psql, env, snapshot, query, recorded=None):
    """(rows, digest) of a copy-rows read (``query``; ``copy_digest`` runs it): first as one
    stream against the ``recorded`` manifest entry's ``ordered_digest``, then, when that does not
    match, row by row."""
    if recorded and recorded.get("ordered_digest"):
        rows, ordered = copy_digest(psql, env, snapshot, ROW_SETTINGS, query)
        if ordered == recorded["ordered_digest"] and rows == recorded.get("rows"):
            return rows, recorded.get("digest")
    return copy_digest(psql, env, snapshot, ROW_SETTINGS, query, rows=True)


def ordered_digest(copy_digest, psql, env, snapshot, query, recorded, table, backup_rows=None):
    """(rows, digest) of a ``copy-ordered`` read of ``table`` (``query``; ``copy_digest`` runs
    it) against the ``recorded`` manifest entry: the copy's rows as one stream, in its physical
    order. When that differs and ``backup_rows`` (a callable: (rows, multiset, ordered) of the
    table in the backup's own archive) is given, the multisets of the copy's rows and of the
    archive's decide: equal, the recorded digest is returned; else the copy's multiset digest,
    which differs. Raises DatabaseError when the archive does not hold what the entry records."""
    from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError
    rows, ordered = copy_digest(psql, env, snapshot, ROW_SETTINGS, query)
    if (rows, ordered) == (recorded.get("rows"), recorded.get("digest")) or backup_rows is None:
        return rows, ordered
    try:
        kept_rows, kept_multiset, kept_ordered = backup_rows()
    except DatabaseError as exc:
        raise DatabaseError("table %s: %s" % (table, exc)) from None
    if (kept_rows, kept_ordered) != (recorded.get("rows"), recorded.get("digest")):
        raise DatabaseError("table %s: the backup's archive does not hold the rows its manifest records" % table)
    rows, multiset = copy_digest(psql, env, snapshot, ROW_SETTINGS, query, rows=True)
    if (rows, multiset) == (kept_rows, kept_multiset):
        return rows, recorded.get("digest")
    return rows, multiset


def framed_digest(dumped, recorded, table, copy_rows, backup=None):
    """(rows, digest) of a ``dump-framed`` read of ``table`` against the ``recorded`` manifest
    entry: ``dumped()`` is the copy's table dumped by pg_dump now (its framed SHA-256, in the
    copy's physical order). Equal to the recorded digest, the copy's rows are the dumped rows
    byte for byte, so their count is the recorded one: nothing is counted. Otherwise the copy's
    rows are read (``copy_rows()``: (rows, multiset)) and, when ``backup`` is given (two
    callables reading the table in the backup's own archive: its framed digest, and its (rows,
    multiset, ordered)), the multisets of copy and archive decide: equal, the recorded digest is
    returned; else the copy's multiset digest, which differs. Raises DatabaseError when the
    archive does not hold what the entry records."""
    from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError
    framed = dumped()
    if framed == recorded.get("digest"):
        return recorded.get("rows"), framed
    if backup is None:
        return copy_rows()[0], framed
    backup_framed, backup_rows = backup
    try:
        if backup_framed() != recorded.get("digest"):
            raise DatabaseError("the backup's archive does not hold the rows its manifest records")
        kept_rows, kept_multiset, _ordered = backup_rows()
    except DatabaseError as exc:
        raise DatabaseError("table %s: %s" % (table, exc)) from None
    if kept_rows != recorded.get("rows"):
        raise DatabaseError("table %s: the backup's archive does not hold the rows its manifest records" % table)
    rows, multiset = copy_rows()
    if (rows, multiset) == (kept_rows, kept_multiset):
        return rows, recorded.get("digest")
    return rows, multiset
