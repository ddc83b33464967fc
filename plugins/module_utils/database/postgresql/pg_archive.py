# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL: the dump stream a backup reads (``pg_dump -Fc -Z0`` on a pipe, never a file)."""

from __future__ import annotations

import contextlib
import io
import subprocess
import threading
import time

from ansible_collections.bim.wall_system.plugins.module_utils.database.api_dump import DigestTee, DigestsAlongside, Dumps
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError
from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_dump_digest import (
    READ_BLOCK, ArchiveRowDigests, FramedChunks,
)
from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_row_digests import (
    dump_environment, framed_entry, stream_tables,
)
from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_tools import libpq_environment
from ansible_collections.bim.wall_system.plugins.module_utils.database.schema import DIGEST_TABLES
from ansible_collections.bim.wall_system.plugins.module_utils.common.process import failure_text

# F_SETPIPE_SZ (Linux): pg_dump writes its archive 4 KiB at a time; on the default 64 KiB pipe the
# backup woke up for about 20,000 reads of 18 KiB on average per 353 MiB dump, on a 1 MiB pipe
# for about 1,400 (docs/benchmarks.md, issue 14 profile). Best effort: elsewhere the default stays.
F_SETPIPE_SZ = 1031
PIPE_BYTES = 1024 * 1024
# Blocks the digest thread may lag behind: a read from the wide pipe holds up to PIPE_BYTES, so
# 16 keep that lag under 16 MiB (64, the default, let an incremental backup's peak RSS grow by 37 MiB).
TEE_DEPTH = 16
# What a verification's pg_dump of one table's rows need not read from the catalogs.
_DATA_ONLY_SKIPS = ("--no-comments", "--no-security-labels", "--no-publications", "--no-subscriptions",
                    "--no-privileges", "--no-owner", "--no-tablespaces")


def _widen_pipe(pipe):
    """Ask for a ``PIPE_BYTES`` pipe buffer (fewer, larger reads); keep the default if refused
    (not Linux, or above /proc/sys/fs/pipe-max-size for an unprivileged user)."""
    try:
        import fcntl
        fcntl.fcntl(pipe.fileno(), F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, OSError, ValueError):
        pass


class DumpProcess:
    """A running ``pg_dump``; ``stdout`` is the archive stream. ``finish()`` raises on failure."""

    def __init__(self, argv, env):
        self.cmd = list(argv)
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, env=env, bufsize=0, close_fds=True)
        except OSError as exc:
            raise DatabaseError("cannot start %s: %s" % (argv[0], exc))
        self.stdout = self.proc.stdout
        _widen_pipe(self.stdout)
        self._stderr = []
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self):
        for line in self.proc.stderr:
            if len(self._stderr) < 200:
                self._stderr.append(line.decode("utf-8", "replace"))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._thread.join(5)

    def finish(self):
        """Wait for the end; raise DatabaseError with rc, stderr and cmd when pg_dump failed."""
        rest = self.stdout.read()
        rc = self.proc.wait()
        self._thread.join(5)
        if rc != 0 or rest:
            error = DatabaseError(failure_text("pg_dump", rc, "".join(self._stderr).strip()[-2000:]))
            error.rc = rc
            error.stderr = "".join(self._stderr)
            error.cmd = self.cmd
            raise error
        return rc

    @property
    def stderr(self):
        return "".join(self._stderr)


class PostgresArchiveMixin(Dumps):
    """Archive methods of the PostgreSQL engine.

    A backup exports a snapshot from a second connection and runs ``pg_dump --snapshot`` in it.
    The table digests are the ``dump-framed`` digests of the dump's own data blocks, hashed as
    the stream goes by (``pg_dump_digest``): no second read of the rows; their counts are read
    in the same snapshot (``count(*)``, no formatting). A table that form cannot describe (a
    money column, see ``pg_row_digests``) is digested alongside by a second read in the same
    snapshot (``table_digests(snapshot=...)``), and so is any table the stream did not yield
    (an archive this collection cannot parse): the digests always describe exactly the dump.
    """

    _snapshot_conn = None

    def export_snapshot(self):
        """Open a REPEATABLE READ transaction on a second connection; return its snapshot id."""
        import psycopg
        p = self.params
        kwargs = dict(host=p.db_socket_dir or p.db_host, port=p.db_port, dbname=p.db_name, user=p.db_user,
                      connect_timeout=p.connect_timeout, application_name="bim.wall_system backup",
                      autocommit=True)
        if p.db_password is not None:
            kwargs["password"] = p.db_password
        try:
            conn = psycopg.connect(**kwargs)
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
        except psycopg.Error as exc:
            raise DatabaseError("cannot export a snapshot from %s: %s" % (p.describe(), str(exc).strip())) from None
        self._snapshot_conn = conn
        return snapshot

    def release_snapshot(self):
        conn, self._snapshot_conn = self._snapshot_conn, None
        if conn is not None:
            try:
                conn.execute("ROLLBACK")
            except Exception:
                pass
            conn.close()

    def dump_command(self, snapshot=None, pg_dump=None):
        """argv and env of the dump: custom format, pg_dump's compression off (we compress chunks)."""
        argv = [pg_dump or self.pg_tool("pg_dump"), "--format=custom", "--compress=0", "--no-password"]
        if snapshot:
            argv.append("--snapshot=%s" % snapshot)
        return argv, dump_environment(libpq_environment(self.params))

    def table_dump_command(self, schema, table, snapshot, encoding):
        """argv and env of a pg_dump of ``schema.table``'s rows alone, in ``snapshot`` and the
        client ``encoding``, framed as a backup's dump frames them (a ``dump-framed``
        verification). The scan starts at the table's first page (no synchronized scan), so a
        fresh restore reads back in the dump's order. What the data block does not need is not
        collected (comments, labels, privileges: about a quarter of pg_dump's start-up on a
        PostGIS database)."""
        argv, env = self.dump_command(snapshot=snapshot)
        pattern = '"%s"."%s"' % (schema.replace('"', '""'), table.replace('"', '""'))
        argv += ["--data-only", "--encoding=%s" % encoding, "--table=%s" % pattern] + list(_DATA_ONLY_SKIPS)
        env["PGOPTIONS"] += " -c synchronize_seqscans=off"
        return argv, env

    def open_dump_stream(self, snapshot=None, pg_dump=None):
        """Start pg_dump and return a ``DumpProcess`` whose ``stdout`` is the archive."""
        argv, env = self.dump_command(snapshot=snapshot, pg_dump=pg_dump)
        return DumpProcess(argv, env)

    def dump_database(self, store, scratch_dir, name, with_digests=True, timings=None):
        """pg_dump streams into ``store`` (content-defined chunks) and its rows are hashed on the
        way (``_stream_digests``); no scratch copy."""
        timings = {} if timings is None else timings
        with self:
            snapshot = self.export_snapshot() if with_digests else None
            try:
                schema, hashed, others = self._digest_plan(snapshot) if with_digests else (None, [], [])
                rows = ArchiveRowDigests(lambda namespace, table: namespace == schema and table in hashed,
                                         sink=FramedChunks)
                dump = self.open_dump_stream(snapshot=snapshot)
                try:
                    with DigestsAlongside(lambda: self.table_digests(others, snapshot=snapshot), timings,
                                          bool(others)) as alongside:
                        tee = (DigestTee(dump.stdout, rows.feed, depth=TEE_DEPTH) if with_digests
                               else contextlib.nullcontext(dump.stdout))
                        with tee as reader:
                            chunks, size, chunker = store(reader)
                        dump.finish()
                except BaseException:
                    dump.kill()
                    raise
                digests = self._stream_digests(rows, tee, schema, hashed, snapshot, timings) if with_digests else {}
                digests.update(alongside.digests())
            finally:
                if snapshot:
                    self.release_snapshot()
        return {"kind": "pg_dump_custom", "size": size, "chunks": chunks, "chunker": chunker}, digests

    def _digest_plan(self, snapshot):
        """(schema, tables hashed from the stream, tables read a second time), read in ``snapshot``."""
        try:
            self.conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                from psycopg import sql
                self._execute(sql.SQL("SET TRANSACTION SNAPSHOT {}").format(sql.Literal(snapshot)))
                present = set(self._all_tables())
                tables = [t for t in DIGEST_TABLES if t in present]
                hashed = stream_tables(self._fetchall, tables)
                return self._schema_name(), hashed, [t for t in tables if t not in hashed]
            finally:
                self.conn.execute("ROLLBACK")
        except Exception as exc:
            raise DatabaseError("digest plan on %s failed: %s" % (self._where(), str(exc).strip())) from None

    def _stream_digests(self, rows, tee, schema, hashed, snapshot, timings):
        """The dump-framed digests the stream gave, with each table's row count in the snapshot;
        a table it did not give is read again in the snapshot (``digest_fallback`` in the
        timings says why)."""
        rows.close()
        found = rows.digests() if tee.error is None else {}
        timings["digests_s"] = round(tee.seconds, 3)
        done = [t for t in hashed if (schema, t) in found and rows.encoding]
        counts = self._snapshot_counts(schema, done)
        digests = {t: framed_entry(counts[t], found[(schema, t)][2], rows.encoding) for t in done}
        missing = [t for t in hashed if t not in digests]
        if missing:
            timings["digest_fallback"] = str(tee.error or rows.unsupported or "no encoding entry")
            begun = time.monotonic()
            digests.update(self.table_digests(missing, snapshot=snapshot))
            timings["digest_fallback_s"] = round(time.monotonic() - begun, 3)
        return digests

    def _snapshot_counts(self, schema, tables):
        """{table: row count} of ``tables`` in the backup's exported snapshot, in one statement."""
        if not tables:
            return {}
        from psycopg import sql
        counts = sql.SQL(", ").join(sql.SQL("(SELECT count(*) FROM {}.{})").format(sql.Identifier(schema), sql.Identifier(t))
                                    for t in tables)
        try:
            found = self._snapshot_conn.execute(sql.SQL("SELECT ") + counts).fetchone()
        except Exception as exc:
            raise DatabaseError("row counts on %s failed: %s" % (self._where(), str(exc).strip())) from None
        return dict(zip(tables, found))


def dumped_table_digest(argv, env, schema, table):
    """The ``dump-framed`` digest of ``schema.table`` as the pg_dump of ``argv`` and ``env``
    (``table_dump_command``) writes it now. Raises DatabaseError when pg_dump fails or its
    archive holds no complete data of that table."""
    digests = ArchiveRowDigests(lambda namespace, name: (namespace, name) == (schema, table), sink=FramedChunks,
                                last_block_only=True)
    dump = DumpProcess(argv, env)
    # Whole blocks: the raw pipe returns what pg_dump's last few writes left in it, and each
    # short block would cost the reader a copy and a search.
    stream = io.BufferedReader(dump.stdout, READ_BLOCK)
    try:
        while True:
            block = stream.read(READ_BLOCK)
            if not block:
                break
            digests.feed(block)
        dump.finish()
    except BaseException:
        dump.kill()
        raise
    digests.close()
    found = digests.digests().get((schema, table))
    if found is None:
        raise DatabaseError("pg_dump of table %s.%s gave no complete data (%s)"
                            % (schema, table, digests.unsupported or "no such table data"))
    return found[2]
