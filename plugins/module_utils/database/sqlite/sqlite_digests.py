# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SQLite: row counts and byte-exact table digests (rows, or pages), for backups and restore
verification.

Apart from the connection and probes (sqlite_core.py) so that the health check, which never
takes a digest, does not carry this code in its AnsiballZ payload.
"""

from __future__ import annotations

import hashlib
import sqlite3

from ansible_collections.bim.wall_system.plugins.module_utils.database.api_digests import Digests
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError
from ansible_collections.bim.wall_system.plugins.module_utils.database.sqlite.sqlite_pages import (
    DIGEST_FORM_PAGES, file_pages, page_table_digests,
)
from ansible_collections.bim.wall_system.plugins.module_utils.database.schema import DIGEST_TABLES

# Rows per digest batch: one query formats and joins them in SQLite, Python hashes the text.
DIGEST_BATCH_ROWS = 20000


def _row_json(column):
    """SQL of one value inside the row's ``json_array``: a blob becomes {"blob": "<HEX>"}."""
    return "CASE typeof({c}) WHEN 'blob' THEN json_object('blob', hex({c})) ELSE {c} END".format(c=column)


class SqliteDigestsMixin(Digests):
    """Row counts and digests of the SQLite engine (on sqlite_core's connection)."""

    # ---- counts and digests ----------------------------------------------------------------
    def row_counts(self, tables=DIGEST_TABLES):
        present = set(self._all_tables())
        return {t: self._fetchone("SELECT count(*) FROM %s" % self._quote_identifier(t))[0]
                for t in tables if t in present}

    def _digest_plan(self, table):
        """(row SQL, keyset) of ``table``: keyset is True when rows can be read in rowid batches
        (the primary key is the rowid alias), else the ORDER BY of one ordered scan: the primary
        key, or for a table without one all its columns (rowids of such tables may change on
        VACUUM, so they are not part of the data)."""
        cols = self._fetchall("SELECT name, pk, type FROM pragma_table_info(?) ORDER BY cid", [table])
        quoted = ['"%s"' % name.replace('"', '""') for name, _pk, _type in cols]
        row = "json_array(%s)" % ", ".join(_row_json(c) for c in quoted)
        keys = sorted((pk, '"%s"' % name.replace('"', '""'), (ctype or "").upper())
                      for name, pk, ctype in cols if pk > 0)
        without_rowid = self._fetchone("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", [table])
        without_rowid = bool(without_rowid and without_rowid[0] and "WITHOUT ROWID" in without_rowid[0].upper())
        if len(keys) == 1 and keys[0][2] == "INTEGER" and not without_rowid:
            return row, True
        return row, ", ".join(k for _pk, k, _t in keys) or ", ".join(quoted)

    def _digest_rows(self, table):
        """(rows, sha256 hex) of ``table``; the canonical form is defined here, in one place.

        Each row is SQLite's ``json_array()`` of its values in column order (JSON keeps 1, 1.0,
        "1" and null apart; a blob is {"blob": "<upper-case hex>"}; a REAL prints with SQLite's
        15 significant digits), rows in primary-key order, each followed by a newline. SQLite
        formats and joins a batch of rows in one query (keyset on the rowid); Python hashes it.
        """
        row, plan = self._digest_plan(table)
        name = self._quote_identifier(table)
        digest = hashlib.sha256()
        rows = 0
        try:
            if plan is True:
                # group_concat keeps the order of its ordered, LIMITed subquery (never flattened).
                query = ("SELECT group_concat(r, char(10)), count(*), max(k) FROM"
                         " (SELECT %s AS r, rowid AS k FROM %s %%s ORDER BY rowid LIMIT %d)"
                         % (row, name, DIGEST_BATCH_ROWS))
                first, following = query % "", query % "WHERE rowid > ?"
                last = None
                while True:
                    text, count, last = (self.conn.execute(first) if last is None
                                         else self.conn.execute(following, [last])).fetchone()
                    if not count:
                        break
                    digest.update(text.encode("utf-8"))
                    digest.update(b"\n")
                    rows += count
            else:
                cur = self.conn.execute("SELECT %s FROM %s ORDER BY %s" % (row, name, plan))
                while True:
                    batch = cur.fetchmany(DIGEST_BATCH_ROWS)
                    if not batch:
                        break
                    digest.update(("\n".join([r[0] for r in batch]) + "\n").encode("utf-8"))
                    rows += len(batch)
        except sqlite3.Error as exc:
            raise DatabaseError("digest of %s in sqlite %s failed: %s" % (table, self._path(), exc)) from None
        return rows, digest.hexdigest()

    def _digest_snapshot(self, tables):
        """Digest several tables inside one read transaction (one consistent snapshot)."""
        self._execute("BEGIN")
        try:
            return {t: self._digest_rows(t) for t in tables}
        finally:
            self._execute("ROLLBACK")

    def table_digest(self, table):
        return self._digest_snapshot([table])[table][1]

    def table_digests(self, tables=DIGEST_TABLES, forms=None, recorded=None, archive=None):
        """The row digests (``_digest_rows``, recorded with no form), or where ``forms`` names
        ``sqlite-pages`` for every table, the page digests of this database's file
        (``sqlite_pages``; the form is then in each entry). Another form is refused; no form
        here needs the backup's ``archive``."""
        named = {t: f for t, f in (forms or {}).items() if f}
        unknown = sorted(t for t, f in named.items() if f != DIGEST_FORM_PAGES)
        if unknown:
            raise DatabaseError("unknown digest form of table %s on sqlite (%s or none)"
                                % (", ".join(unknown), DIGEST_FORM_PAGES))
        present = set(self._all_tables())
        wanted = [t for t in tables if t in present]
        if named and set(named) >= set(wanted):
            return self.page_digests(file_pages(self._path(), self._fetchone("PRAGMA page_size")[0]), wanted)
        if named:
            raise DatabaseError("a manifest mixes sqlite-pages digests with row digests")
        done = self._digest_snapshot(wanted)
        return {t: {"rows": r, "digest": d} for t, (r, d) in done.items()}

    def page_digests(self, pages, tables=DIGEST_TABLES):
        """{table: {rows, digest, digest_form}} of the tables present, from ``pages``
        (``sqlite_pages.PageDigests`` of this database's image), in one read transaction."""
        present = set(self._all_tables())
        self._execute("BEGIN")
        try:
            found = page_table_digests(self.conn, self._quote_identifier, [t for t in tables if t in present], pages)
        except sqlite3.Error as exc:
            raise DatabaseError("page digests of sqlite %s failed: %s" % (self._path(), exc)) from None
        finally:
            self._execute("ROLLBACK")
        return {t: {"rows": r, "digest": d, "digest_form": DIGEST_FORM_PAGES} for t, (r, d) in found.items()}
