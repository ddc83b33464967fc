# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Verification of a restored copy: row counts and content digests per table against the
backup's manifest, plus the engine's integrity checks.

PostgreSQL's parallel ``pg_restore`` reports which tables are complete (``table_ready``: data and
primary key done) and how many of its workers are busy (``restore_load``). Once a worker has
stayed idle for ``IDLE_HOLD_S`` — its last steps, the foreign keys, run one at a time — the
complete tables are digested in one background thread on the idle core; before that, a digest
would only slow the restore down. ``finish()`` digests the rest side by side with the integrity
checks and compares. Every digest runs on a connection of its own; nobody writes to the copy,
so per-table snapshots are as good as one.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading

from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine

# In finish() this many of the largest tables (by the manifest's rows) get a thread of their own;
# the rest share one.
OWN_THREAD_TABLES = 2
# How long a restore worker must stay idle before early digests start: longer than the moment
# between one item finishing and the next being launched.
IDLE_HOLD_S = 0.1


def compare_tables(expected, actual, tables=None):
    """Compare restored ``actual`` {table: {rows, digest}} with the manifest's ``expected``.

    Returns ``(problems, result)``; ``result[table]`` holds both figures and ``matches``.
    """
    problems = []
    result = {}
    names = list(tables) if tables else sorted(expected)
    for table in names:
        exp = expected.get(table)
        act = actual.get(table)
        if exp is None:
            problems.append("table %s: not recorded in the backup's manifest" % table)
            continue
        if act is None:
            problems.append("table %s: missing in the restored copy" % table)
            result[table] = {"expected_rows": exp.get("rows"), "rows": None, "digest": None, "matches": False}
            continue
        matches = act.get("rows") == exp.get("rows") and act.get("digest") == exp.get("digest")
        result[table] = {"rows": act.get("rows"), "expected_rows": exp.get("rows"),
                         "digest": act.get("digest"), "matches": matches}
        if act.get("rows") != exp.get("rows"):
            problems.append("table %s: %s rows restored, the manifest records %s" % (table, act.get("rows"), exp.get("rows")))
        elif act.get("digest") != exp.get("digest"):
            problems.append("table %s: content digest differs from the manifest's" % table)
    return problems, result


def _digest_group(params, tables, expected, archive=None):
    """Digests of ``tables`` in the forms the manifest ``expected`` records, on a connection of
    its own (the rows are formatted by the database server or the SQLite library, which release
    the GIL, so threads use the machine's cores); ``archive`` reads the backup again."""
    recorded = {t: expected.get(t) or {} for t in tables}
    forms = {t: entry.get("digest_form") for t, entry in recorded.items()}
    with open_engine(params) as eng:
        return eng.table_digests(tuple(tables), forms=forms, recorded=recorded, archive=archive)


def _largest_first(names, expected):
    """``names`` ordered by the rows the manifest records, largest first."""
    return sorted(names, key=lambda t: (expected.get(t) or {}).get("rows") or 0, reverse=True)


def _groups(names, expected):
    ordered = _largest_first(names, expected)
    rest = ordered[OWN_THREAD_TABLES:]
    return [[t] for t in ordered[:OWN_THREAD_TABLES]] + ([rest] if rest else [])


class CopyVerifier:
    """Checks one restored copy. ``params``: connection parameters of the copy; ``expected``: the
    manifest's tables; ``names``: the tables to compare; ``checks``: a callable returning the
    integrity problems (strings), run in ``finish()``; ``after``: called once every connection to
    the copy is closed (SQLite folds a WAL the readers may have left back into the file);
    ``archive``: opens the backup's database stream again (a context manager with ``read``), for
    a digest form whose cheap check does not decide (``keep_staged`` offers a staged file instead)."""

    def __init__(self, params, expected, names, checks, after=None, archive=None):
        self.params = params
        self.expected = expected
        self.names = list(names)
        self.checks = checks
        self.after = after
        self._archive = archive
        self._staged = None  # a staged copy of the archive the restore left to this verifier
        self._lock = threading.Lock()
        self._early = {}  # table -> the early digest its report queued (which takes the largest ready table)
        self._early_pool = None
        self._closed = False
        self._idle = threading.Event()  # set once a restore worker has stayed idle
        self._idle_timer = None
        self._launched = False
        self._ready = []  # complete tables no early digest has taken yet
        self._taken = []  # tables an early digest took

    def table_ready(self, table):
        """The restore reports ``table`` complete: queue its digest (thread-safe)."""
        with self._lock:
            if self._closed or table not in self.names or table in self._early:
                return
            if self._early_pool is None:
                # One thread: the restore itself still uses the other cores.
                self._early_pool = concurrent.futures.ThreadPoolExecutor(1, "bim-verify-early")
            self._ready.append(table)
            self._early[table] = self._early_pool.submit(self._early_digest)

    def keep_staged(self, path):
        """The restore staged the archive in file ``path``: read it instead of the repository,
        and remove it when done. Returns False when this verifier has no use for it."""
        with self._lock:
            if self._closed or self._archive is None:
                return False
            self._staged = path
            return True

    def _open_archive(self):
        staged = self._staged
        return open(staged, "rb") if staged else self._archive()

    def _archive_opener(self):
        return self._open_archive if self._archive is not None else None

    def restore_load(self, running, jobs):
        """The restore runs ``running`` items on ``jobs`` workers (thread-safe)."""
        with self._lock:
            self._launched = self._launched or running > 0
            if self._idle.is_set() or not self._launched:
                return
            if running < jobs and self._idle_timer is None:
                self._idle_timer = threading.Timer(IDLE_HOLD_S, self._idle.set)
                self._idle_timer.daemon = True
                self._idle_timer.start()
            elif running >= jobs and self._idle_timer is not None:
                self._idle_timer.cancel()
                self._idle_timer = None

    def _early_digest(self):
        """Digest the largest complete table not taken yet (the biggest job first, so what is
        left for finish() is small)."""
        self._idle.wait()
        with self._lock:
            if not self._ready:
                return {}
            table = _largest_first(self._ready, self.expected)[0]
            self._ready.remove(table)
            self._taken.append(table)
        return _digest_group(self.params, [table], self.expected, self._archive_opener())

    def finish(self):
        """Digest what is left beside the integrity checks; returns ``(problems, tables)``.
        Raises DatabaseError when the copy cannot be read at all."""
        with self._lock:
            self._closed = True
            # Early digests not started are dropped; started ones are awaited (one may still be
            # waiting for an idle worker: released below), the rest is digested here.
            early = [f for f in self._early.values() if not f.cancel()]
            self._ready = []  # so a digest released below takes nothing new
            taken = list(self._taken)
        self._release()
        rest = [n for n in self.names if n not in taken]
        groups = _groups(rest, self.expected)
        actual = {}
        try:
            with concurrent.futures.ThreadPoolExecutor(len(groups) + 1, "bim-verify") as threads:
                check_future = threads.submit(self.checks)
                futures = early + [threads.submit(_digest_group, self.params, g, self.expected, self._archive_opener())
                                   for g in groups]
                for future in futures:
                    actual.update(future.result())
                check_problems = check_future.result()
        finally:
            self._shutdown()
        if self.after is not None:
            self.after()
        problems, result = compare_tables(self.expected, actual, self.names)
        return problems + check_problems, result

    def cancel(self):
        """The restore failed: stop taking tables and wait for digests already running."""
        with self._lock:
            self._closed = True
            self._ready = []
        self._release()
        self._shutdown()

    def _release(self):
        """No more waiting for idle workers (the restore is over)."""
        if self._idle_timer is not None:
            self._idle_timer.cancel()
        self._idle.set()

    def _shutdown(self):
        if self._early_pool is not None:
            for future in self._early.values():
                future.cancel()
            self._early_pool.shutdown(wait=True)
        staged, self._staged = self._staged, None
        if staged and os.path.exists(staged):
            os.unlink(staged)
