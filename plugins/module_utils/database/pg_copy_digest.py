# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SHA-256 and line count of a ``COPY ... TO STDOUT`` run by ``psql`` inside an exported snapshot.

psql writes COPY's data exactly as the server sends it, so the bytes are the ones a driver
would receive; reading them from a pipe in large blocks keeps Python out of the per-row work
(through a driver, Python handles every row and its GIL serialises digests of several tables).
Text-format COPY ends every row with one newline (newlines inside values are escaped), so the
row count is the number of newlines.
"""

from __future__ import annotations

import hashlib
import subprocess

from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError

READ_BLOCK = 1024 * 1024


def copy_digest(psql, env, snapshot, settings, copy_query):
    """Run ``copy_query`` (a ``COPY ... TO STDOUT``) in a READ ONLY REPEATABLE READ transaction
    that imports ``snapshot``, after ``SET LOCAL`` of each (name, value) in ``settings``.

    ``psql``: path of the program; ``env``: its libpq environment (host, port, user, database,
    password). Returns ``(rows, sha256 hex)``; raises DatabaseError with psql's message.
    """
    commands = ["BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
                "SET TRANSACTION SNAPSHOT '%s'" % snapshot.replace("'", "''")]
    commands += ["SET LOCAL %s TO '%s'" % (name, value.replace("'", "''")) for name, value in settings]
    commands += [copy_query, "ROLLBACK"]
    argv = [psql, "--no-psqlrc", "--quiet", "--no-password", "--set", "ON_ERROR_STOP=1"]
    for command in commands:
        argv += ["--command", command]
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env, close_fds=True)
    except OSError as exc:
        raise DatabaseError("cannot start %s: %s" % (psql, exc))
    digest = hashlib.sha256()
    rows = 0
    try:
        while True:
            block = proc.stdout.read(READ_BLOCK)
            if not block:
                break
            digest.update(block)
            rows += block.count(b"\n")
        error = proc.stderr.read()
        rc = proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        proc.stdout.close()
        proc.stderr.close()
    if rc != 0:
        raise DatabaseError("digest query failed (psql rc=%d): %s" % (rc, error.decode("utf-8", "replace").strip()[-1000:]))
    return rows, digest.hexdigest()
