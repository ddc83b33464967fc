# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SQLite: a consistent copy through the online backup API while the application keeps writing."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time

from ansible_collections.bim.wall_system.plugins.module_utils.database.api_dump import (
    DigestTee, DigestsAlongside, Dumps, ScratchError,
)
from ansible_collections.bim.wall_system.plugins.module_utils.database.sqlite.sqlite_pages import PageDigests, has_dbstat
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError


def online_copy(source_path, target_path, timeout=30):
    """Copy ``source_path`` to ``target_path`` with SQLite's online backup API in one step.

    One step (pages=-1) reads every page under one read transaction, so the copy is one
    consistent state of the database; in WAL mode writers keep working meanwhile. Returns
    ``(page_size, journal_mode)``, the journal mode being the source's (the copy is made a plain
    file; a restore gives the restored file the source's mode back). The target is created 0600.
    """
    if not os.path.isfile(source_path):
        raise DatabaseError("SQLite database %s does not exist" % source_path)
    fd = os.open(target_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    try:
        src = sqlite3.connect(source_path, timeout=timeout)
        try:
            journal_mode = src.execute("PRAGMA journal_mode").fetchone()[0]
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
    return page_size, journal_mode


class SqliteArchiveMixin(Dumps):
    """Archive methods of the SQLite engine."""

    def online_copy(self, target_path, timeout=30):
        """Consistent copy of this engine's database into ``target_path``; returns
        ``(page_size, source journal mode)``."""
        return online_copy(self.params.sqlite_path, target_path, timeout=timeout)

    def dump_database(self, store, scratch_dir, name, with_digests=True, timings=None):
        """An online copy into ``scratch_dir``, stored in page-sized chunks; the table digests
        are ``sqlite-pages`` digests of the pages as they are stored (``sqlite_pages``), or, with
        a SQLite library without ``dbstat``, the row digests of the copy read alongside. The copy
        is removed afterwards."""
        timings = {} if timings is None else timings
        copy_path = os.path.join(scratch_dir, "%s.sqlite" % name)
        try:
            page_size, journal_mode = self._scratch_copy(copy_path, scratch_dir, timings)
            with self.engine_for_path(copy_path) as engine:
                by_pages = with_digests and has_dbstat(engine.conn)
            pages = PageDigests(page_size)
            with DigestsAlongside(lambda: self._copy_digests(copy_path), timings, with_digests and not by_pages) as rows:
                with open(copy_path, "rb") as handle:
                    tee = DigestTee(handle, pages.feed) if by_pages else contextlib.nullcontext(handle)
                    with tee as reader:
                        chunks, size, chunker = store(reader, page_size=page_size)
            found = self._page_digests(copy_path, pages, tee, timings) if by_pages else rows.digests()
        finally:
            for suffix in ("", "-journal", "-wal", "-shm"):
                try:
                    os.unlink(copy_path + suffix)
                except FileNotFoundError:
                    pass
        from ansible_collections.bim.wall_system.plugins.module_utils.repository.files_stream import owner_record
        # journal_mode: the source's (the stored image is a plain file); a restore puts it back
        # owner: the source file's mode and owner, which a restore onto a host without the file gives it
        return {"kind": "sqlite_database", "size": size, "chunks": chunks, "chunker": chunker, "page_size": page_size,
                "journal_mode": journal_mode, "owner": owner_record(os.stat(self.params.sqlite_path))}, found

    def _copy_digests(self, copy_path):
        with self.engine_for_path(copy_path) as engine:
            return engine.table_digests()

    def _page_digests(self, copy_path, pages, tee, timings):
        """The sqlite-pages digests of the stored copy, from the page digests its store took."""
        if tee.error is not None:
            raise tee.error
        begun = time.monotonic()
        with self.engine_for_path(copy_path) as engine:
            found = engine.page_digests(pages)
        timings["digests_s"] = round(tee.seconds + time.monotonic() - begun, 3)
        return found

    def _scratch_copy(self, copy_path, scratch_dir, timings):
        begun = time.monotonic()
        action = "copying the SQLite database into %s" % scratch_dir
        try:
            page_size, journal_mode = self.online_copy(copy_path)
        except OSError as exc:
            raise ScratchError(action, exc) from None
        except DatabaseError as exc:
            if "full" in str(exc):
                raise ScratchError(action) from None
            raise
        timings["sqlite_copy_s"] = round(time.monotonic() - begun, 3)
        return page_size, journal_mode
