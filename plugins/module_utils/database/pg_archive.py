# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL: the dump stream a backup reads (``pg_dump -Fc -Z0`` on a pipe, never a file)."""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import subprocess
import threading

from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError
from ansible_collections.bim.wall_system.plugins.module_utils.database.schema import DIGEST_TABLES


def find_pg_binary(name):
    """Path of a PostgreSQL client program: PATH first, then the newest /usr/lib/postgresql/*/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = []
    for path in glob.glob("/usr/lib/postgresql/*/bin/%s" % name) + glob.glob("/usr/pgsql-*/bin/%s" % name):
        version = path.split("/")[-3].replace("pgsql-", "")
        try:
            candidates.append((float(version), path))
        except ValueError:
            candidates.append((0.0, path))
    if not candidates:
        raise DatabaseError("%s not found on PATH nor in /usr/lib/postgresql/*/bin" % name)
    return sorted(candidates)[-1][1]


def libpq_environment(params):
    """Environment for libpq programs: the password travels in PGPASSWORD, never on the command line."""
    env = dict(os.environ)
    env["PGHOST"] = params.db_socket_dir or params.db_host
    env["PGPORT"] = str(params.db_port)
    env["PGUSER"] = params.db_user
    env["PGDATABASE"] = params.db_name
    env["PGCONNECT_TIMEOUT"] = str(params.connect_timeout)
    if params.db_password:
        env["PGPASSWORD"] = params.db_password
    else:
        env.pop("PGPASSWORD", None)
    return env


_COPY_ESCAPES = {b"\\": b"\\", b"b": b"\b", b"f": b"\f", b"n": b"\n", b"r": b"\r", b"t": b"\t", b"v": b"\v"}
_COPY_ESCAPE_RE = re.compile(rb"\\(.)", re.S)


class _CopyTextHasher:
    """SHA-256 and row count of COPY text output of one text column, escapes undone."""

    def __init__(self):
        self.digest = hashlib.sha256()
        self.rows = 0
        self.carry = b""

    def update(self, block):
        if self.carry:
            block = self.carry + block
            self.carry = b""
        if b"\\" in block:
            # An escape cut by the block boundary waits for the next block.
            tail = len(block) - len(block.rstrip(b"\\"))
            if tail % 2:
                self.carry = block[-1:]
                block = block[:-1]
            # Row separators are the only raw newlines (a newline in a value arrives as "\\n").
            self.rows += block.count(b"\n")
            block = _COPY_ESCAPE_RE.sub(lambda m: _COPY_ESCAPES.get(m.group(1), m.group(1)), block)
        else:
            self.rows += block.count(b"\n")
        self.digest.update(block)

    def result(self):
        return self.rows, self.digest.hexdigest()


def _quote_literal(text):
    if not all(c.isalnum() or c in "-_" for c in text):
        raise DatabaseError("unexpected snapshot id %r" % (text,))
    return "'%s'" % text


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
        self._stderr = []
        import threading
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
            error = DatabaseError("pg_dump failed with exit code %s: %s" % (rc, "".join(self._stderr).strip()[-2000:]))
            error.rc = rc
            error.stderr = "".join(self._stderr)
            error.cmd = self.cmd
            raise error
        return rc

    @property
    def stderr(self):
        return "".join(self._stderr)


class PostgresArchiveMixin:
    """Archive methods of the PostgreSQL engine.

    A backup exports a snapshot from a second connection, runs ``pg_dump --snapshot`` in it and
    takes the table digests inside the same snapshot, so the digests describe exactly the dump.
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

    def table_digests_at(self, snapshot=None, tables=DIGEST_TABLES, psql=None):
        """``table_digests()`` (the same canonical digest), optionally inside an exported snapshot.

        Each table's rows are streamed by ``psql`` with ``COPY (SELECT t::text ... ORDER BY pk)
        TO STDOUT`` through a pipe and hashed in large blocks (no Python work per row, and the
        server does the text conversion while pg_dump streams). COPY's text escapes, present only
        when a row holds a backslash or a control character, are undone so the bytes hashed are
        exactly ``row text + newline`` per row, as the engine's ``table_digest`` hashes them.
        """
        from psycopg import sql
        present = set(self._all_tables())
        wanted = [t for t in tables if t in present]
        psql = psql or find_pg_binary("psql")
        env = libpq_environment(self.params)
        done = {}
        for table in wanted:
            pk = self._primary_key(table)
            order = sql.SQL(", ").join(sql.SQL("t.") + sql.Identifier(c) for c in pk) if pk else sql.SQL("t::text")
            copy = sql.SQL("COPY (SELECT t::text FROM {} AS t ORDER BY {}) TO STDOUT").format(
                sql.Identifier(table), order).as_string(self.conn)
            script = ["BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;"]
            if snapshot:
                script.append("SET TRANSACTION SNAPSHOT %s;" % _quote_literal(snapshot))
            script += ["SET LOCAL TimeZone = 'UTC';", "SET LOCAL DateStyle = 'ISO, YMD';",
                       "SET LOCAL extra_float_digits = 1;", "SET LOCAL IntervalStyle = 'postgres';",
                       copy + ";", "COMMIT;", ""]
            argv = [psql, "--no-psqlrc", "--quiet", "--no-password", "-v", "ON_ERROR_STOP=1", "-f", "-"]
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        env=env, close_fds=True)
            except OSError as exc:
                raise DatabaseError("cannot start %s: %s" % (psql, exc))
            errors = []
            drain = threading.Thread(target=lambda: errors.append(proc.stderr.read()), daemon=True)
            drain.start()
            proc.stdin.write("\n".join(script).encode("utf-8"))
            proc.stdin.close()
            hasher = _CopyTextHasher()
            while True:
                block = proc.stdout.read(1 << 20)
                if not block:
                    break
                hasher.update(block)
            rc = proc.wait()
            drain.join(10)
            if rc != 0:
                error = DatabaseError("digest of table %s on %s failed (psql exit code %s): %s"
                                      % (table, self.params.describe(), rc, (errors[0] if errors else b"").decode(
                                          "utf-8", "replace").strip()[-2000:]))
                error.rc, error.cmd = rc, argv
                raise error
            done[table] = hasher.result()
        return {t: {"rows": r, "digest": d} for t, (r, d) in done.items()}

    def dump_command(self, snapshot=None, pg_dump=None):
        """argv and env of the dump: custom format, pg_dump's compression off (we compress chunks)."""
        argv = [pg_dump or find_pg_binary("pg_dump"), "--format=custom", "--compress=0", "--no-password"]
        if snapshot:
            argv.append("--snapshot=%s" % snapshot)
        return argv, libpq_environment(self.params)

    def open_dump_stream(self, snapshot=None, pg_dump=None):
        """Start pg_dump and return a ``DumpProcess`` whose ``stdout`` is the archive."""
        argv, env = self.dump_command(snapshot=snapshot, pg_dump=pg_dump)
        return DumpProcess(argv, env)
