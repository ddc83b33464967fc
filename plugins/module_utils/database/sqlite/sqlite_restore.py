# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SQLite: restore, swap and rollback primitives.

A SQLite restore writes the backed-up database file to a temporary file in the live file's
folder (so the final swap is a rename on one file system), checks it, and makes it
self-contained (no -wal or -shm). The crash-safe swap with its journal lives in
``module_utils/restore/``; here are the file-level steps.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3

from ansible_collections.bim.wall_system.plugins.module_utils.common.atomic import fsync_directory
from ansible_collections.bim.wall_system.plugins.module_utils.database.api_restore import Restores
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError
from ansible_collections.bim.wall_system.plugins.module_utils.database.sqlite.sqlite_core import file_uri, quote
from ansible_collections.bim.wall_system.plugins.module_utils.database.sqlite.sqlite_schema import rtree_arguments

SIDE_FILES = ("-wal", "-shm", "-journal")
# What PRAGMA journal_mode accepts (and a manifest may record); nothing else is formatted into SQL.
JOURNAL_MODES = ("delete", "truncate", "persist", "memory", "wal", "off")


def side_files(path):
    """The -wal, -shm and -journal companions of a database file path."""
    return [path + suffix for suffix in SIDE_FILES]


def remove_database_file(path):
    """Remove a database file and its companions; missing files are fine."""
    for name in [path] + side_files(path):
        try:
            os.unlink(name)
        except FileNotFoundError:
            pass


class SqliteRestoreMixin(Restores):
    """Restore methods of the SQLite engine."""

    def restore_target(self, **options):
        # imported here: the target builds on restore/, which imports this engine
        from ansible_collections.bim.wall_system.plugins.module_utils.database.sqlite.sqlite_target import SqliteTarget
        return SqliteTarget(self.params, **options)

    def engine_for_path(self, path):
        """A new (not yet connected) engine for another database file."""
        return type(self)(dataclasses.replace(self.params, sqlite_path=path))

    @staticmethod
    def write_database_file(stream, path, like=None, block=1024 * 1024):
        """Copy ``stream`` (file-like) into new file ``path`` and fsync it; return bytes written.

        ``like``: an existing file whose mode and owner the new file takes (else 0600).
        """
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
        fd = os.open(path, flags, 0o600)
        written = 0
        try:
            with os.fdopen(fd, "wb") as out:
                while True:
                    data = stream.read(block)
                    if not data:
                        break
                    out.write(data)
                    written += len(data)
                out.flush()
                os.fsync(out.fileno())
            if like and os.path.exists(like):
                st = os.stat(like)
                os.chmod(path, st.st_mode & 0o7777)
                if os.geteuid() == 0:
                    os.chown(path, st.st_uid, st.st_gid)
        except BaseException:
            remove_database_file(path)
            raise
        fsync_directory(os.path.dirname(os.path.abspath(path)))
        return written

    @staticmethod
    def check_database_file(path):
        """``PRAGMA integrity_check``, ``foreign_key_check`` and ``rtreecheck`` of every R*Tree
        of a file (whatever table it indexes: a copy is sound only if all of them are).

        Returns a list of problems (strings); empty when the file is sound.
        """
        problems = []
        try:
            conn = sqlite3.connect(file_uri(path, "rw"), uri=True, isolation_level=None)
        except sqlite3.Error as exc:
            return ["cannot open %s: %s" % (path, exc)]
        try:
            try:
                rows = conn.execute("PRAGMA integrity_check").fetchall()
            except sqlite3.DatabaseError as exc:
                return ["integrity_check: %s" % exc]
            bad = [r[0] for r in rows if r[0] != "ok"]
            problems.extend("integrity_check: %s" % line for line in bad[:20])
            for table, rowid, parent, _fkid in conn.execute("PRAGMA foreign_key_check").fetchall()[:20]:
                problems.append("foreign_key_check: %s row %s refers to a missing %s row" % (table, rowid, parent))
            rtrees = [name for name, create in conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
                      if rtree_arguments(create) is not None]
            for table in sorted(rtrees):
                try:
                    result = conn.execute("SELECT rtreecheck(?)", (table,)).fetchone()[0]
                except sqlite3.Error as exc:
                    result = str(exc)
                if result != "ok":
                    problems.append("rtreecheck %s: %s" % (table, result))
        finally:
            conn.close()
        return problems

    @staticmethod
    def check_image(path, expected_size):
        """Problems of a restored file image: its size is the backup stream's, and it opens as
        a SQLite database whose page count and page size account for exactly that size and
        whose schema reads. Cheap (reads the header and the schema pages only)."""
        try:
            size = os.path.getsize(path)
        except OSError as exc:
            return ["cannot read %s: %s" % (path, exc)]
        if size != expected_size:
            return ["%s holds %d bytes, the backup's stream %d" % (path, size, expected_size)]
        try:
            conn = sqlite3.connect(file_uri(path, "ro"), uri=True, isolation_level=None)
            try:
                pages = conn.execute("PRAGMA page_count").fetchone()[0]
                page_size = conn.execute("PRAGMA page_size").fetchone()[0]
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            finally:
                conn.close()
        except sqlite3.Error as exc:
            return ["cannot open %s as a SQLite database: %s" % (path, exc)]
        if pages * page_size != size:
            return ["%s: %d pages of %d bytes do not make its %d bytes" % (path, pages, page_size, size)]
        return []

    @staticmethod
    def file_journal_mode(path):
        """The journal mode recorded in the file ``path`` (``wal``, ``delete``, ...)."""
        try:
            conn = sqlite3.connect(file_uri(path, "ro"), uri=True, isolation_level=None)
            try:
                return conn.execute("PRAGMA journal_mode").fetchone()[0]
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise DatabaseError("cannot read the journal mode of %s: %s" % (path, exc)) from None

    @staticmethod
    def set_file_journal_mode(path, mode):
        """Give file ``path`` (not yet live: no one else has it open) the journal ``mode``."""
        if mode not in JOURNAL_MODES:
            raise DatabaseError("unknown SQLite journal mode %r" % (mode,))
        try:
            conn = sqlite3.connect(path, isolation_level=None, timeout=10)
            try:
                found = conn.execute("PRAGMA journal_mode=%s" % mode).fetchone()[0]
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise DatabaseError("cannot set the journal mode of %s to %s: %s" % (path, mode, exc)) from None
        if found != mode:
            raise DatabaseError("the journal mode of %s stayed %s instead of %s" % (path, found, mode))

    @staticmethod
    def make_self_contained(path):
        """Checkpoint ``path``'s WAL into the file and close, so no -wal/-shm is left behind.

        Returns the journal mode the file is in. Raises DatabaseError when the WAL cannot
        be folded in (another process holds the database).
        """
        if not os.path.exists(path):
            raise DatabaseError("database file %s does not exist" % path)
        try:
            conn = sqlite3.connect(path, isolation_level=None, timeout=10)
            try:
                mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
                if mode == "wal":
                    busy, _log, _ckpt = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                    if busy:
                        raise DatabaseError("cannot checkpoint %s: another process is using it" % path)
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise DatabaseError("cannot checkpoint %s: %s" % (path, exc))
        for name in (path + "-wal", path + "-shm"):
            if os.path.exists(name) and os.path.getsize(name) == 0:
                try:
                    os.unlink(name)
                except FileNotFoundError:
                    pass
        if os.path.exists(path + "-wal"):
            raise DatabaseError("%s-wal is still present after a checkpoint: another process is using it" % path)
        return mode

    def delete_rows_except(self, path, keep_tables, tables):
        """Empty every table of ``tables`` not in ``keep_tables``, and its R*Trees (as the
        schema of the file at ``path`` and ``params.schema`` map them), for subset restores."""
        with self.engine_for_path(path) as copy:
            rtrees = {}
            for index in copy.schema().spatial_indexes:
                if index.present and not index.problem:
                    rtrees.setdefault(index.table, []).append(index.name)
            present = set(copy.schema().tables)
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("PRAGMA foreign_keys = OFF")
            conn.execute("BEGIN")
            for table in tables:
                if table in keep_tables or table not in present:
                    continue
                for name in [table] + rtrees.get(table, []):
                    conn.execute("DELETE FROM %s" % quote(name))
            conn.execute("COMMIT")
        finally:
            conn.close()

    @staticmethod
    def processes_holding(path):
        """PIDs of processes that hold ``path`` open (Linux /proc scan; empty elsewhere)."""
        try:
            target = os.stat(path)
        except FileNotFoundError:
            return []
        pids = []
        me = os.getpid()
        try:
            entries = os.listdir("/proc")
        except OSError:
            return []
        for entry in entries:
            if not entry.isdigit() or int(entry) == me:
                continue
            fd_dir = "/proc/%s/fd" % entry
            try:
                for fd in os.listdir(fd_dir):
                    try:
                        st = os.stat(os.path.join(fd_dir, fd))
                    except OSError:
                        continue
                    if st.st_ino == target.st_ino and st.st_dev == target.st_dev:
                        pids.append(int(entry))
                        break
            except OSError:
                continue
        return sorted(pids)
