# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore targets: where a backup is restored, how the copy is checked, and the crash-safe swap.

A target is the live database of one installation (a PostgreSQL database on a server, or a
SQLite file). Every operation on it runs under its ``TargetLock`` and starts with ``recover()``,
which reads the swap journal a killed run may have left and brings the target back to a
consistent state:

PostgreSQL swap (restored copy ``I`` beside live ``L``; restore point ``R``)::

    journal; ALTER DATABASE L ALLOW_CONNECTIONS false; pg_terminate_backend(sessions of L)
    journal; ALTER DATABASE L RENAME TO R          <- commit point
    journal; ALTER DATABASE I RENAME TO L
    journal; ALTER DATABASE L ALLOW_CONNECTIONS true; journal removed

  recovery: L and I exist -> before the commit point: L re-opened, I dropped (live untouched);
  I exists, L does not -> between the renames: I (verified before the swap began) renamed to L;
  L exists, I does not -> done: L re-opened. Each step is atomic in PostgreSQL.

SQLite swap (restored, verified, self-contained file ``I`` in L's folder)::

    journal; checkpoint L (its WAL folded into the file)
    journal; link L -> R, and L-wal / L-journal -> R-wal / R-journal when present
    journal; unlink L-wal, L-shm, L-journal (the new file must not meet a stale WAL)
    journal; rename I -> L  (os.replace: atomic)   <- commit point; journal removed

  recovery: I still exists -> before the commit point: side files linked back from R, the
  links R* removed, I removed (live untouched); I gone -> done.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import glob
import os
import re
import tempfile

from ansible_collections.bim.wall_system.plugins.module_utils.common.atomic import fsync_directory
from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError
from ansible_collections.bim.wall_system.plugins.module_utils.database.pg_custom_archive import DataOffsetFinder
from ansible_collections.bim.wall_system.plugins.module_utils.database.schema import DIGEST_TABLES
from ansible_collections.bim.wall_system.plugins.module_utils.restore.errors import RestoreError
from ansible_collections.bim.wall_system.plugins.module_utils.restore.files import FILE_MODE_MASK, owner_ids
from ansible_collections.bim.wall_system.plugins.module_utils.restore.journal import (
    DEFAULT_STATE_DIR, Journal, TargetLock, safe_key)
from ansible_collections.bim.wall_system.plugins.module_utils.restore.space import (
    MEMORY_STAGING_DIR, PG_SIZE_FACTOR, memory_staging_dir)
from ansible_collections.bim.wall_system.plugins.module_utils.restore.verifier import CopyVerifier

# Kinds of scratch copies this collection names itself and may remove when a run left them.
SCRATCH_KINDS = ("restore", "verify", "drill")
STAMP_RE = r"\d{14}(?:_\d+)?(?:_[0-9a-f]{4})?"


def utc_stamp():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d%H%M%S")


def _spatial_problems(engine, tables):
    problems = []
    try:
        indexes = engine.spatial_indexes()
    except (DatabaseError, NotImplementedError, AttributeError, TypeError) as exc:
        return ["spatial indexes could not be checked: %s" % exc]
    for idx in indexes or []:
        if tables and idx.get("table") not in tables:
            continue
        if not idx.get("present", True) or not idx.get("valid", True):
            problems.append("spatial index %s on %s: %s" % (
                idx.get("name"), idx.get("table"), idx.get("problem") or "missing or invalid"))
    return problems


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


class Target:
    """What both engines' targets share: lock, journal, naming, the restore flow's pieces."""

    engine_name = ""

    def __init__(self, params, state_dir=None, data_dir=None, staging_dir=None, scratch_dir=None):
        self.params = params
        self.state_dir = state_dir or DEFAULT_STATE_DIR
        self.data_dir = data_dir
        self.staging_dir = staging_dir
        self.scratch_dir = scratch_dir
        self.engine = open_engine(params)
        self.key = safe_key(self.describe_key())
        self.journal = Journal(os.path.join(self.state_dir, "%s.swap.json" % self.key))

    def describe_key(self):
        raise NotImplementedError

    def lock(self, wait=60.0):
        return TargetLock(os.path.join(self.state_dir, "%s.lock" % self.key), wait=wait)

    def pending_journal(self):
        return self.journal.read()

    def recover(self):
        """Repair what a killed run left: the swap (``_recover_swap`` of the engine), then the
        configuration-files step around it (``files_step.recover``). Returns what was done."""
        from ansible_collections.bim.wall_system.plugins.module_utils.restore import files_step
        return self._recover_swap() + files_step.recover(self)

    def live_digests(self, tables=DIGEST_TABLES):
        """Digests of the live database, or None when it does not exist."""
        if not self.live_exists():
            return None
        with open_engine(self.params) as eng:
            return eng.table_digests(tables)


# --------------------------------------------------------------------------------------------
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

    def space_needs(self, stream_size, mode, jobs, tables):
        needs = [("restored database", self.data_directory(), int(stream_size * PG_SIZE_FACTOR))]
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

    def copy_verifier(self, name, expected, tables=None):
        """A ``CopyVerifier`` of copy ``name``: rows and digests against the manifest, amcheck of
        btree indexes, GiST validity, no invalid index."""
        names = list(tables) if tables else sorted(expected)

        def checks():
            with self.engine.engine_for_database(name) as eng:
                found = _spatial_problems(eng, names)
            found += self.engine.check_btree_indexes(name)
            return found + ["index %s is invalid" % i for i in self.engine.invalid_indexes(name)]

        return CopyVerifier(self.engine.engine_for_database(name).params, expected, names, checks)

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

    def prune(self, keep):
        points = self.restore_points()
        drop = points[:-keep] if keep > 0 else points
        for name in drop:
            self.engine.drop_database(name)
        return drop

    def check_restore_point(self, name):
        return []


# --------------------------------------------------------------------------------------------
class SqliteTarget(Target):
    engine_name = "sqlite"
    # The file written is the stored image itself (every chunk hash-checked on the way in).
    restores_identical_image = True

    def __init__(self, params, **kwargs):
        if not params.sqlite_path:
            raise RestoreError("sqlite_path is required for a SQLite restore")
        super().__init__(params, **kwargs)

    def describe_key(self):
        return "sqlite-%s" % os.path.abspath(self.params.sqlite_path)

    @property
    def live(self):
        return os.path.abspath(self.params.sqlite_path)

    @property
    def folder(self):
        return os.path.dirname(self.live)

    def exists(self, path):
        return os.path.exists(path)

    def live_exists(self):
        return os.path.exists(self.live)

    def scratch_name(self, kind):
        folder = self.folder if kind == "restore" else (self.scratch_dir or self.folder)
        base = os.path.join(folder, ".%s.%s-%s" % (os.path.basename(self.live), kind, utc_stamp()))
        return self._unique(base)

    @staticmethod
    def _unique(path):
        base, n = path, 1
        while os.path.exists(path):
            n += 1
            path = "%s_%d" % (base, n)
        return path

    def restore_points(self):
        pattern = re.compile(re.escape(os.path.basename(self.live)) + r"\.rp-" + STAMP_RE + "$")
        found = [p for p in glob.glob(glob.escape(self.live) + ".rp-*") if pattern.match(os.path.basename(p))]
        return sorted(found)

    def new_restore_point_name(self):
        return self._unique("%s.rp-%s" % (self.live, utc_stamp()))

    def data_directory(self):
        return self.data_dir or self.folder

    def space_needs(self, stream_size, mode, jobs, tables, target=None):
        where = os.path.dirname(os.path.abspath(target)) if target else (
            self.folder if mode == "swap" else (self.scratch_dir or self.folder))
        return [("restored database file", where, stream_size)]

    # -- restore and checks ----------------------------------------------------------------
    def restore_into(self, path, stream, jobs=1, tables=None, verifier=None):
        """Write the file image read from ``stream`` to new file ``path`` (``verifier`` is not
        told anything: the copy is only readable once complete)."""
        if os.path.exists(path):
            raise RestoreError("%s already exists; choose another target path" % path)
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise RestoreError("the folder %s of the restore target does not exist" % folder)
        like = self.live if self.live_exists() else (self.restore_points() or [None])[-1]
        try:
            self.engine.write_database_file(stream, path, like=like)
            self.engine.make_self_contained(path)
            if tables:
                self.engine.delete_rows_except(path, set(tables), DIGEST_TABLES)
                self.engine.make_self_contained(path)
        except BaseException:
            self.drop(path)
            raise

    def copy_verifier(self, path, expected, tables=None):
        """A ``CopyVerifier`` of file ``path``: rows and digests against the manifest,
        integrity_check, foreign_key_check, rtreecheck and the spatial index probes."""
        names = list(tables) if tables else sorted(expected)

        def checks():
            found = self.engine.check_database_file(path)
            if not any(p.startswith("cannot open") for p in found):
                with self.engine.engine_for_path(path) as eng:
                    found += _spatial_problems(eng, names)
            return found

        return CopyVerifier(self.engine.engine_for_path(path).params, expected, names, checks,
                            after=lambda: self.engine.make_self_contained(path))

    def verify_identity(self, path, manifest):
        """Checks of a copy that is byte for byte the image a passed restore-level verification
        of the same backup checked in full: every chunk was hash-checked on the way in and the
        manifest's checksum covers the chunk list, so integrity checks and digests would only
        repeat that verification. What is left to prove is that the file on disk is whole and
        opens as that database. Returns ``(problems, tables)``; the tables carry the manifest's
        figures, proven by the identity."""
        expected = manifest.get("tables") or {}
        problems = self.engine.check_image(path, int(manifest["streams"]["database"]["size"]))
        result = {t: {"rows": v.get("rows"), "expected_rows": v.get("rows"), "digest": v.get("digest"),
                      "matches": not problems} for t, v in sorted(expected.items())}
        return problems, result

    def drop(self, path):
        from ansible_collections.bim.wall_system.plugins.module_utils.database.sqlite_restore import remove_database_file
        remove_database_file(path)

    def size_of(self, path):
        return os.path.getsize(path)

    # -- swap ------------------------------------------------------------------------------
    def swap_in(self, incoming, incoming_is_restore_point=False, session_timeout=30.0, stream_info=None,
                restore_point=None):
        """Make file ``incoming`` the live database (see the module docstring); ``stream_info``:
        the manifest's database stream, whose ``journal_mode`` (the backed-up file's; the stored
        image is a plain file) the incoming file is given before the swap. A backup that records
        none takes the live file's mode. Returns the restore point's path (None without one)."""
        live = self.live
        live_existed = self.live_exists()
        rp = (restore_point or self.new_restore_point_name()) if live_existed else None
        if not incoming_is_restore_point:
            mode = (stream_info or {}).get("journal_mode") or (
                self.engine.file_journal_mode(live) if live_existed else None)
            if mode:
                self.engine.set_file_journal_mode(incoming, mode)
            if not live_existed:
                self._give_recorded_owner(incoming, (stream_info or {}).get("owner"))
        self.engine.make_self_contained(incoming)
        self.journal.begin(op="swap", engine="sqlite", live=live, incoming=incoming, restore_point=rp,
                           live_existed=live_existed, incoming_is_restore_point=incoming_is_restore_point)
        try:
            if live_existed:
                self.journal.step("checkpoint_live")
                try:
                    self.engine.make_self_contained(live)
                except DatabaseError:
                    pass  # its WAL then moves with it into the restore point
                self.journal.step("link_restore_point")
                os.link(live, rp)
                for suffix in ("-wal", "-journal"):
                    if os.path.exists(live + suffix):
                        os.link(live + suffix, rp + suffix)
                fsync_directory(self.folder)
                self.journal.step("unlink_side_files")
                for suffix in ("-wal", "-shm", "-journal"):
                    try:
                        os.unlink(live + suffix)
                    except FileNotFoundError:
                        pass
            self.journal.step("replace")
            os.replace(incoming, live)
            fsync_directory(self.folder)
            for suffix in ("-wal", "-shm", "-journal"):
                if os.path.exists(incoming + suffix):
                    os.unlink(incoming + suffix)
            self.journal.step("done")
        except BaseException:
            self._recover_swap()
            raise
        self.journal.clear()
        return rp

    @staticmethod
    def _give_recorded_owner(path, record):
        """A host without the live file: the restored one gets the source file's recorded mode and
        owner (not the restoring user's 0600), never set-id bits."""
        if not record:
            return
        uid, gid = owner_ids(record)
        if uid is not None and os.geteuid() == 0:
            os.chown(path, uid, gid)
        os.chmod(path, int(record["mode"]) & FILE_MODE_MASK)

    def _recover_swap(self):
        actions = []
        j = self.journal.read()
        if j:
            live, incoming, rp = j["live"], j["incoming"], j.get("restore_point")
            if os.path.exists(incoming):
                if rp and os.path.exists(rp) and os.path.exists(live) and os.path.samefile(live, rp):
                    for suffix in ("-wal", "-journal"):
                        if os.path.exists(rp + suffix) and not os.path.exists(live + suffix):
                            os.link(rp + suffix, live + suffix)
                    for name in (rp, rp + "-wal", rp + "-journal", rp + "-shm"):
                        if os.path.exists(name):
                            os.unlink(name)
                elif rp and os.path.exists(rp) and not os.path.exists(live):
                    os.link(rp, live)
                if not j.get("incoming_is_restore_point"):
                    self.drop(incoming)
                fsync_directory(os.path.dirname(live))
                actions.append("an interrupted swap (step %s) was undone: %s was never replaced" % (j.get("step"), live))
            else:
                for suffix in ("-wal", "-shm", "-journal"):
                    if os.path.exists(incoming + suffix):
                        os.unlink(incoming + suffix)
                if not os.path.exists(live) and rp and os.path.exists(rp):
                    os.link(rp, live)
                    actions.append("%s was missing: restore point %s put back" % (live, rp))
                else:
                    actions.append("an interrupted swap (step %s) had completed" % j.get("step"))
            self.journal.clear()
        base = os.path.basename(self.live)
        folders = {self.folder}
        if self.scratch_dir:
            folders.add(self.scratch_dir)
        for folder in folders:
            for kind in SCRATCH_KINDS:
                pattern = re.compile(r"\." + re.escape(base) + r"\." + kind + "-" + STAMP_RE + "$")
                for path in glob.glob(os.path.join(glob.escape(folder), ".%s.%s-*" % (glob.escape(base), kind))):
                    if pattern.match(os.path.basename(path)):
                        self.drop(path)
                        actions.append("left-over scratch file %s removed" % path)
        return actions

    def prune(self, keep):
        points = self.restore_points()
        drop = points[:-keep] if keep > 0 else points
        for path in drop:
            self.drop(path)
        return drop

    def check_restore_point(self, path):
        return self.engine.check_database_file(path)


def make_target(params, **kwargs):
    if params.engine == "postgresql":
        return PostgresTarget(params, **kwargs)
    if params.engine == "sqlite":
        return SqliteTarget(params, **kwargs)
    raise RestoreError("unknown database engine %r" % params.engine)
