# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL restore target: a copy restored beside the live database on its server, checked,
and swapped in by renames (``restore/targets.Target`` is the interface).

Swap (restored copy ``I`` beside live ``L``; restore point ``R``)::

    journal; ALTER DATABASE L ALLOW_CONNECTIONS false; pg_terminate_backend(sessions of L)
    journal; ALTER DATABASE L RENAME TO R          <- commit point
    journal; ALTER DATABASE I RENAME TO L
    journal; ALTER DATABASE L ALLOW_CONNECTIONS true; journal removed

  recovery: L and I exist -> before the commit point: L re-opened, I dropped (live untouched);
  I exists, L does not -> between the renames: I (verified before the swap began) renamed to L;
  L exists, I does not -> done: L re-opened. Each step is atomic in PostgreSQL.

An archive restored with several jobs (or a subset of tables) is staged in a file first:
``pg_restore -j`` needs one it can seek in (``pg_custom_archive`` fills in its data offsets).
"""

from __future__ import annotations

import concurrent.futures
import glob
import os
import re
import tempfile

from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError
from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_custom_archive import DataOffsetFinder
from ansible_collections.bim.wall_system.plugins.module_utils.restore.errors import RestoreError
from ansible_collections.bim.wall_system.plugins.module_utils.restore.space import (
    MEMORY_STAGING_DIR, memory_staging_dir)
from ansible_collections.bim.wall_system.plugins.module_utils.restore.targets import (
    SCRATCH_KINDS, STAMP_RE, Target, _spatial_problems, utc_stamp)
from ansible_collections.bim.wall_system.plugins.module_utils.restore.verifier import CopyVerifier

# A restored PostgreSQL database is larger than its -Z0 custom-format archive: the archive holds
# the rows (COPY text) while the database also holds indexes, page overhead and TOAST. Measured on
# the BIM schema the ratio is about 1.3-1.5; the plan asks for 1.6x plus a fixed reserve.
SIZE_FACTOR = 1.6


class _RestoreProgress:
    """Turns pg_restore's item reports into what a ``CopyVerifier`` needs: which tables are
    complete (a finished ``CONSTRAINT <table> <name>`` item: pg_restore runs a table's post-data
    items after its data) and how many of its ``jobs`` workers are busy."""

    def __init__(self, verifier, jobs):
        self.verifier = verifier
        self.jobs = jobs
        self.running = 0

    def __call__(self, event, kind, tag):
        self.running += 1 if event == "launching" else -1
        if event == "finished" and kind == "CONSTRAINT" and " " in tag:
            self.verifier.table_ready(tag.split(" ", 1)[0])
        self.verifier.restore_load(self.running, self.jobs)


class PostgresTarget(Target):
    engine_name = "postgresql"
    # pg_restore re-creates the database logically on this server: never byte-identical.
    restores_identical_image = False

    def describe_key(self):
        p = self.params
        return "postgresql-%s-%s-%s" % (p.db_socket_dir or p.db_host, p.db_port, p.db_name)

    @property
    def live(self):
        return self.params.db_name

    def exists(self, name):
        return self.engine.database_exists(name)

    def live_exists(self):
        return self.exists(self.live)

    def scratch_name(self, kind):
        # A random tail: a CREATE DATABASE of a killed run can still complete on the server.
        name = "%s__%s_%s_%s" % (self.live, kind, utc_stamp(), os.urandom(2).hex())
        return self._unique(name)

    def _unique(self, name):
        base, n = name, 1
        while self.exists(name):
            n += 1
            name = "%s_%d" % (base, n)
        if len(name) > 63:
            raise RestoreError("database name %s is too long for a restore copy beside it (63 characters at most)" % name)
        return name

    def restore_points(self):
        pattern = re.compile(re.escape(self.live) + r"__rp_" + STAMP_RE + r"$")
        return [n for n in self.engine.databases_like(self.live + "__rp_") if pattern.match(n)]

    def new_restore_point_name(self):
        return self._unique("%s__rp_%s" % (self.live, utc_stamp()))

    def data_directory(self):
        if self.data_dir:
            return self.data_dir
        try:
            eng = self.engine.engine_for_database("postgres")
            with eng:
                return eng.data_directory()
        except (DatabaseError, NotImplementedError, TypeError, AttributeError):
            return None

    def space_needs(self, stream_size, mode, jobs, tables, target=None):
        needs = [("restored database", self.data_directory(), int(stream_size * SIZE_FACTOR))]
        if jobs > 1 or tables:
            needs.append(("archive staging file", self.staging_directory(stream_size), stream_size))
        return needs

    def staging_directory(self, size):
        """Where an archive of ``size`` bytes is staged: ``staging_dir`` when set, else memory
        when it fits there comfortably (``space.memory_staging_dir``), else the system temp folder."""
        return self.staging_dir or memory_staging_dir(size) or tempfile.gettempdir()

    # -- restore and checks ----------------------------------------------------------------
    def restore_into(self, name, stream, jobs=1, tables=None, verifier=None):
        """Create database ``name`` and pg_restore the archive read from ``stream`` into it.

        A parallel pg_restore tells ``verifier`` (a ``CopyVerifier``) which tables are complete
        and when its workers fall idle, so checks can start early."""
        if self.exists(name):
            raise RestoreError("database %s already exists; choose another target name" % name)
        owner = self.engine.database_owner(self.live) if self.live_exists() else None
        staging = None
        listfile = None
        created = False
        try:
            # The server creates the database while the archive is staged (that leaves a core idle).
            with concurrent.futures.ThreadPoolExecutor(1, "bim-createdb") as pool:
                creating = pool.submit(self.engine.create_database, name, owner=owner)
                try:
                    if jobs > 1 or tables:
                        staging = self._stage_archive(stream)
                finally:
                    failure = creating.exception()
                    created = failure is None
            if failure is not None:
                raise failure
            if staging is None:
                self.engine.restore_archive(name, stream=stream)
                return
            if tables:
                listfile = staging + ".list"
                with open(listfile, "w") as handle:
                    handle.write("\n".join(self._subset_toc(self.engine.archive_toc(staging), tables)) + "\n")
            self.engine.restore_archive(name, archive_path=staging, jobs=jobs, use_list=listfile,
                                        on_progress=_RestoreProgress(verifier, jobs) if verifier else None)
            if verifier is not None and verifier.keep_staged(staging):
                staging = None  # the verifier reads it if a table's order differs, then removes it
        except BaseException:
            if created:
                try:
                    self.engine.drop_database(name)
                except DatabaseError:
                    pass
            raise
        finally:
            for path in (staging, listfile):
                if path and os.path.exists(path):
                    os.unlink(path)

    def _staged_prefix(self):
        # "+" never occurs in a target key (safe_key), so the prefix names this target's files only.
        return ".bim-restore-%s+" % self.key

    def _remove_staged_leftovers(self):
        """Staged archives (and their list files) a killed run of this target left, in every
        place a run may stage; called under the target's lock, so no live run owns them."""
        removed = []
        pattern = glob.escape(self._staged_prefix()) + "*.dump*"
        for folder in sorted({self.staging_dir, MEMORY_STAGING_DIR, tempfile.gettempdir()} - {None}):
            for path in glob.glob(os.path.join(glob.escape(folder), pattern)):
                try:
                    os.unlink(path)
                    removed.append("left-over staged archive %s removed" % path)
                except FileNotFoundError:
                    pass
        return removed

    def _stage_archive(self, stream):
        """Write the archive read from ``stream`` to a file in the staging directory (pg_restore
        -j needs one it can seek in) and return its path. The stream was written by pg_dump on a
        pipe: the data offsets pg_restore -j needs are found while the file is written."""
        folder = self.staging_directory(stream.size)
        if not os.path.isdir(folder):
            os.makedirs(folder, mode=0o700)
        # Unique per run, named by the target so that recover() finds what a killed run left.
        fd, path = tempfile.mkstemp(prefix=self._staged_prefix(), suffix=".dump", dir=folder)
        try:
            offsets = DataOffsetFinder()
            with os.fdopen(fd, "wb") as out:
                while True:
                    block = stream.read(4 * 1024 * 1024)
                    if not block:
                        break
                    out.write(block)
                    offsets.feed(block)
                out.flush()
                offsets.fill_in(out.fileno())
        except BaseException:
            os.unlink(path)
            raise
        return path

    @staticmethod
    def _subset_toc(lines, tables):
        """Keep the whole schema, the data of ``tables`` only, and no foreign keys."""
        keep = []
        for line in lines:
            if not line.strip() or line.startswith(";"):
                keep.append(line)
                continue
            fields = line.split()
            if " FK CONSTRAINT " in line:
                continue
            if " TABLE DATA " in line:
                # "ID; OID OID TABLE DATA schema table owner"
                idx = fields.index("DATA")
                if len(fields) > idx + 2 and fields[idx + 2] not in tables:
                    continue
            keep.append(line)
        return keep

    def copy_verifier(self, name, expected, tables=None, archive=None):
        """A ``CopyVerifier`` of copy ``name``: rows and digests against the manifest, amcheck of
        btree indexes, GiST validity, no invalid index; ``archive`` opens the backup's stream
        again (a ``copy-ordered`` table whose rows came in another order is decided by it)."""
        names = list(tables) if tables else sorted(expected)

        def checks():
            with self.engine.engine_for_database(name) as eng:
                found = _spatial_problems(eng, names)
            found += self.engine.check_btree_indexes(name)
            return found + ["index %s is invalid" % i for i in self.engine.invalid_indexes(name)]

        return CopyVerifier(self.engine.engine_for_database(name).params, expected, names, checks, archive=archive)

    def drop(self, name):
        self.engine.drop_database(name)

    def size_of(self, name):
        return self.engine.database_size(name)

    # -- swap ------------------------------------------------------------------------------
    def swap_in(self, incoming, incoming_is_restore_point=False, session_timeout=30.0, stream_info=None,
                restore_point=None):
        """Make ``incoming`` the live database; the old live one becomes a restore point.

        Returns the restore point's name (None when there was no live database). ``stream_info``
        (the manifest's database stream) says nothing a PostgreSQL swap needs.
        """
        live = self.live
        live_existed = self.live_exists()
        rp = (restore_point or self.new_restore_point_name()) if live_existed else None
        # A database an interrupted DROP left invalid accepts no connection and no ALTER but a
        # rename: it is moved aside as the restore point without blocking/ending sessions.
        invalid = live_existed and self.engine.database_invalid(live)
        if live_existed and not invalid and not incoming_is_restore_point:
            # Privileges, settings, connection limit: not in the dump; a restore point keeps its own.
            self.engine.copy_database_properties(live, incoming)
        self.journal.begin(op="swap", engine="postgresql", live=live, incoming=incoming, restore_point=rp,
                           live_existed=live_existed, incoming_is_restore_point=incoming_is_restore_point)
        try:
            if live_existed and invalid:
                self.journal.step("rename_live")
                self.engine.rename_database(live, rp)
            elif live_existed:
                self.journal.step("block_connections")
                self.engine.set_allow_connections(live, False)
                self.journal.step("terminate_sessions")
                self.engine.terminate_sessions(live, timeout=session_timeout)
                self.journal.step("rename_live")
                self.engine.rename_database(live, rp)
            self.journal.step("rename_incoming")
            self.engine.rename_database(incoming, live)
            self.journal.step("allow_connections")
            self.engine.set_allow_connections(live, True)
            self.journal.step("done")
        except BaseException:
            self._recover_swap()
            raise
        self.journal.clear()
        return rp

    def _recover_swap(self):
        """Finish or undo a swap a killed run left; drop scratch copies it left. Returns actions."""
        actions = []
        # Statements of a killed run may still be running on the server: end them first.
        self.engine.end_sessions_of_dead_runs()
        j = self.journal.read()
        if j:
            live, incoming, rp = j["live"], j["incoming"], j.get("restore_point")
            e_live, e_in = self.exists(live), self.exists(incoming)
            if e_live and e_in:
                if not self.engine.database_invalid(live):
                    self.engine.set_allow_connections(live, True)
                if not j.get("incoming_is_restore_point"):
                    self.engine.drop_database(incoming)
                actions.append("an interrupted swap (step %s) was undone: database %s was never replaced"
                               % (j.get("step"), live))
            elif e_in and not e_live:
                self.engine.rename_database(incoming, live)
                self.engine.set_allow_connections(live, True)
                actions.append("an interrupted swap (step %s) was completed: the verified copy %s is now %s"
                               % (j.get("step"), incoming, live))
            elif e_live:
                self.engine.set_allow_connections(live, True)
                actions.append("an interrupted swap (step %s) had completed; connections to %s allowed"
                               % (j.get("step"), live))
            elif rp and self.exists(rp):
                self.engine.rename_database(rp, live)
                self.engine.set_allow_connections(live, True)
                actions.append("neither %s nor %s existed: restore point %s put back" % (live, incoming, rp))
            else:
                raise RestoreError("the swap journal %s names databases %s and %s, and neither exists; "
                                   "inspect the server by hand" % (self.journal.path, live, incoming))
            self.journal.clear()
        for kind in SCRATCH_KINDS:
            pattern = re.compile(re.escape(self.live) + "__" + kind + "_" + STAMP_RE + "$")
            for name in self.engine.databases_like("%s__%s_" % (self.live, kind)):
                if pattern.match(name):
                    self.engine.drop_database(name)
                    actions.append("left-over scratch database %s dropped" % name)
        return actions + self._remove_staged_leftovers()

    def check_restore_point(self, name):
        return []
