# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SHA-256 and row count of a ``\\copy ... TO pstdout`` run by ``psql`` inside an exported snapshot.

psql writes COPY's data exactly as the server sends it, so the bytes are the ones a driver
would receive; reading them from a pipe in large blocks keeps Python out of the per-row work
(through a driver, Python handles every row and its GIL serialises digests of several tables).
The row count is the server's own, from the ``COPY n`` status psql prints for ``\\copy``: it
goes to psql's query output (``--output``, a pipe of its own here) while the data goes to stdout,
and it serves text and binary COPY alike (binary rows have no separator to count).
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess

from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError
from ansible_collections.bim.wall_system.plugins.module_utils.database.row_digest import LineBuffer, RowMultiset
from ansible_collections.bim.wall_system.plugins.module_utils.common.process import failure_text

READ_BLOCK = 1024 * 1024
# The status line psql prints once the \copy has finished (command tag and row count).
_COPY_STATUS = re.compile(rb"^COPY (\d+)$", re.MULTILINE)


def copy_digest(psql, env, snapshot, settings, copy_command, rows=False):
    """Run ``copy_command`` (a one-line psql ``\\copy (...) TO pstdout ...``) in a READ ONLY
    REPEATABLE READ transaction that imports ``snapshot``, after ``SET LOCAL`` of each
    (name, value) in ``settings``.

    ``psql``: path of the program; ``env``: its libpq environment (host, port, user, database,
    password). Returns ``(rows, sha256 hex)`` of the output, or with ``rows`` the
    ``row_digest`` multiset digest of its lines; raises DatabaseError with psql's message.
    """
    commands = ["BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                "SET TRANSACTION SNAPSHOT '%s'" % snapshot.replace("'", "''")]
    commands += ["SET LOCAL %s TO '%s'" % (name, value.replace("'", "''")) for name, value in settings]
    commands += [copy_command, "ROLLBACK"]
    proc, status = _start(psql, commands, env)
    multiset = RowMultiset() if rows else None
    digest = LineBuffer(multiset) if rows else hashlib.sha256()
    try:
        while True:
            block = proc.stdout.read(READ_BLOCK)
            if not block:
                break
            (digest.feed if rows else digest.update)(block)
        statuses = status.read()
        error = proc.stderr.read()
        rc = proc.wait()
    except BaseException as exc:
        proc.kill()
        proc.wait()
        if isinstance(exc, ValueError):  # rows that are not COPY text
            raise DatabaseError("digest query: %s" % exc) from None
        raise
    finally:
        proc.stdout.close()
        proc.stderr.close()
        status.close()
    if rc != 0:
        raise DatabaseError(failure_text("digest query (psql)", rc, error.decode("utf-8", "replace").strip()[-1000:]))
    counts = _COPY_STATUS.findall(statuses)
    if not counts:
        raise DatabaseError("digest query: psql reported no COPY row count")
    if rows:
        return _rows_result(int(counts[-1]), digest, multiset)
    return int(counts[-1]), digest.hexdigest()


def _rows_result(count, lines, multiset):
    """(rows, digest) of a copy-rows read whose server reported ``count`` rows."""
    try:
        lines.close()
    except ValueError as exc:
        raise DatabaseError("digest query: %s" % exc) from None
    if multiset.rows != count:
        raise DatabaseError("digest query: %d rows read where the server sent %d" % (multiset.rows, count))
    return count, multiset.hexdigest()


def _start(psql, commands, env):
    """Start psql running ``commands``; returns the process (data on its stdout, errors on its
    stderr) and a file reading its status lines, which go to a pipe of their own (not --quiet:
    that would silence the COPY status too)."""
    status_read, status_write = os.pipe()
    argv = [psql, "--no-psqlrc", "--no-password", "--set", "ON_ERROR_STOP=1", "--output", "/dev/fd/%d" % status_write]
    for command in commands:
        argv += ["--command", command]
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env, close_fds=True, pass_fds=(status_write,))
    except OSError as exc:
        os.close(status_read)
        raise DatabaseError("cannot start %s: %s" % (psql, exc))
    finally:
        os.close(status_write)
    return proc, os.fdopen(status_read, "rb")
