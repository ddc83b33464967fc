# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SQLite ``sqlite-pages`` digests: each table's digest is taken from the pages of its b-tree in
the database image, hashed as the backup reads the image to store it (no second read of the rows).

A SQLite backup stores the image of an online copy byte for byte, and a restore writes that image
back byte for byte; so a restored table is right exactly when its pages are the stored ones. Each
page is hashed (SHA-256) as the stored stream goes by; SQLite's ``dbstat`` table then names the
pages of each table's b-tree (interior, leaf and overflow pages), and the table's digest is the
SHA-256 of its pages' numbers and digests in page order. The row count is SQLite's
``count(*)``. A verification hashes the restored file's pages the same way (a few hundred
milliseconds for 400 MB, against seconds for formatting every row). The digest describes the
image, not the rows alone: the same rows in another file (after a VACUUM, say) digest
differently; that is why only a restore's verification, which compares an image with itself,
uses it, and the row-formatting digest (``sqlite_digests._digest_rows``) stays for the rest.
"""

from __future__ import annotations

import hashlib
import os

from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError

DIGEST_FORM_PAGES = "sqlite-pages"
_DIGEST_SIZE = 32
READ_BLOCK = 1024 * 1024


class PageDigests:
    """SHA-256 of every page of an image fed from its start (``feed``, any block sizes)."""

    def __init__(self, page_size):
        self.page_size = page_size
        self._digests = bytearray()
        self._partial = b""

    def feed(self, block):
        data = self._partial + block if self._partial else block
        size = self.page_size
        whole = len(data) - len(data) % size
        view = memoryview(data)
        sha256 = hashlib.sha256
        self._digests += b"".join(sha256(view[at:at + size]).digest() for at in range(0, whole, size))
        self._partial = bytes(view[whole:])

    @property
    def pages(self):
        return len(self._digests) // _DIGEST_SIZE

    def table_digest(self, page_numbers):
        """SHA-256 hex of the (page number, page digest) of ``page_numbers`` (ascending)."""
        digest = hashlib.sha256()
        for number in page_numbers:
            if not 1 <= number <= self.pages:
                raise DatabaseError("page %d of a table lies beyond the image's %d pages" % (number, self.pages))
            at = (number - 1) * _DIGEST_SIZE
            digest.update(number.to_bytes(4, "big") + bytes(self._digests[at:at + _DIGEST_SIZE]))
        return digest.hexdigest()


def has_dbstat(conn):
    """Whether this SQLite library has the ``dbstat`` table (a compile-time option)."""
    import sqlite3
    try:
        conn.execute("SELECT 1 FROM dbstat LIMIT 0").fetchall()
    except sqlite3.Error:
        return False
    return True


def page_table_digests(conn, quote, tables, pages):
    """{table: (rows, digest)} of ``tables`` from ``pages`` (``PageDigests`` of the image ``conn``
    has open); ``quote`` quotes a table name for SQL."""
    if not has_dbstat(conn):
        raise DatabaseError("this SQLite library has no dbstat table, which sqlite-pages digests need")
    found = {}
    for table in tables:
        numbers = [r[0] for r in conn.execute("SELECT pageno FROM dbstat WHERE name = ? ORDER BY pageno", [table])]
        rows = conn.execute("SELECT count(*) FROM %s" % quote(table)).fetchone()[0]
        found[table] = (rows, pages.table_digest(numbers))
    return found


def file_pages(path, page_size):
    """``PageDigests`` of the database file ``path`` as it is on disk."""
    wal = path + "-wal"
    if os.path.exists(wal) and os.path.getsize(wal) > 0:
        raise DatabaseError("%s has a write-ahead log with pages not in the file; its page digests would not "
                            "describe it" % path)
    pages = PageDigests(page_size)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(READ_BLOCK), b""):
            pages.feed(block)
    return pages
