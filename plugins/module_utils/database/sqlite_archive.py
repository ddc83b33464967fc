# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SQLite: a consistent copy through the online backup API while the application keeps writing."""

from __future__ import annotations

import hashlib
import os
import sqlite3

from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError
from ansible_collections.bim.wall_system.plugins.module_utils.database.schema import DIGEST_TABLES

BATCH_ROWS = 5000


def online_copy(source_path, target_path, timeout=30):
    """Copy ``source_path`` to ``target_path`` with SQLite's online backup API in one step.

    One step (pages=-1) reads every page under one read transaction, so the copy is one
    consistent state of the database; in WAL mode writers keep working meanwhile. Returns the
    page size. The target is created 0600.
    """
    if not os.path.isfile(source_path):
        raise DatabaseError("SQLite database %s does not exist" % source_path)
    fd = os.open(target_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    try:
        src = sqlite3.connect(source_path, timeout=timeout)
        try:
            dst = sqlite3.connect(target_path)
            try:
                src.backup(dst, pages=-1)
                page_size = dst.execute("PRAGMA page_size").fetchone()[0]
                # The copy keeps the source's journal mode in its header; make it a plain file.
                dst.execute("PRAGMA journal_mode=DELETE")
            finally:
                dst.close()
        finally:
            src.close()
    except sqlite3.Error as exc:
        raise DatabaseError("online backup of %s failed: %s" % (source_path, exc))
    return page_size


class SqliteArchiveMixin:
    """Archive methods of the SQLite engine."""

    def table_digests_batched(self, tables=DIGEST_TABLES):
        """``table_digests()`` (the same canonical digest, byte for byte), computed faster.

        The engine hashes each row as ``json(row) + "\\n"``. Here a whole batch is encoded by one
        call of the same C JSON encoder as ``[row,row,...]``; when the batch text holds exactly
        one ``],[`` per row boundary (no value contains that text), the boundaries become newlines
        and the bytes equal the engine's; otherwise that batch falls back to one row at a time.
        """
        from ansible_collections.bim.wall_system.plugins.module_utils.database.sqlite_core import _ROW_ENCODER
        present = set(self._all_tables())
        wanted = [t for t in tables if t in present]
        done = {}
        self._execute("BEGIN")
        try:
            for table in wanted:
                query = "SELECT * FROM %s ORDER BY %s" % (self._quote_identifier(table), self._order_by(table))
                digest = hashlib.sha256()
                rows = 0
                try:
                    cur = self.conn.execute(query)
                    while True:
                        batch = cur.fetchmany(BATCH_ROWS)
                        if not batch:
                            break
                        text = _ROW_ENCODER.encode(batch)
                        if text.count("],[") == len(batch) - 1:
                            text = text[1:-1].replace("],[", "]\n[") + "\n"
                        else:
                            text = "".join(_ROW_ENCODER.encode(row) + "\n" for row in batch)
                        digest.update(text.encode("utf-8"))
                        rows += len(batch)
                except sqlite3.Error as exc:
                    raise DatabaseError("digest of %s in sqlite %s failed: %s" % (table, self.params.sqlite_path, exc))
                done[table] = {"rows": rows, "digest": digest.hexdigest()}
        finally:
            self._execute("ROLLBACK")
        return done

    def online_copy(self, target_path, timeout=30):
        """Consistent copy of this engine's database into ``target_path``; returns the page size."""
        return online_copy(self.params.sqlite_path, target_path, timeout=timeout)
