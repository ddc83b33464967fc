# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The continuous archive of one BIM database, behind one small interface per engine.

``open_archive(params, archive_dir)`` reads the descriptor the ``continuous_archiving`` module
wrote and returns ``PostgresArchive`` (pgBackRest, whole-cluster restores) or ``SqliteArchive``
(Litestream, file restores), each its engine's read-only status class (``archive_status.py``: the
tools, ``info()``; all the health check reads) with the restore side added. Callers (the
point-in-time restore, backup, backup_info) only use the interface:

    info()                      physical backups, recoverable window, archive health
    physical_backup(kind)       PostgreSQL only (pgBackRest full / diff / incr)
    restore_copy(target, kind)  a restored copy beside live, recovered to the target (None = latest)
    copy_engine(copy)           an engine (not connected) of the copy, for checks and markers
    verify_copy(copy)           integrity problems of the copy ([] when sound)
    swap_in(copy)               the copy becomes live; returns the restore point (or None)
    drop_copy(copy) / keep_copy(copy)
    recover()                   finish or undo a swap a killed run left, remove its scratch copies
    restore_points() / rollback(point)
"""

from __future__ import annotations

import contextlib
import dataclasses
import glob
import os
import re
import shutil

from ansible_collections.bim.wall_system.plugins.module_utils.archiving.common import (
    ArchiveError, Background, load_descriptor)
from ansible_collections.bim.wall_system.plugins.module_utils.archiving.archive_status import (
    PostgresArchiveStatus, SqliteArchiveStatus, checked_descriptor)
from ansible_collections.bim.wall_system.plugins.module_utils.archiving.litestream import replica_url
from ansible_collections.bim.wall_system.plugins.module_utils.archiving.pg_cluster import Cluster
from ansible_collections.bim.wall_system.plugins.module_utils.common.paths import unused_path
from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError
from ansible_collections.bim.wall_system.plugins.module_utils.database.schema import BIM_TABLES, SPATIAL_TABLES
from ansible_collections.bim.wall_system.plugins.module_utils.restore.journal import (
    DEFAULT_STATE_DIR, Journal, TargetLock, safe_key)
from ansible_collections.bim.wall_system.plugins.module_utils.restore.targets import (
    STAMP_RE, _spatial_problems, utc_stamp)
from ansible_collections.bim.wall_system.plugins.module_utils.database.sqlite.sqlite_target import SqliteTarget

# Copies a run removes when a killed run left them; "copy" (mode new) is kept for the operator.
SCRATCH_KINDS = ("restore", "drill")


@dataclasses.dataclass
class Copy:
    """A restored copy: where it is and how to reach it."""

    location: str          # data directory (PostgreSQL) or file (SQLite)
    params: object         # ConnectionParams of the copy
    kind: str              # restore | drill | copy
    summary: dict = dataclasses.field(default_factory=dict)


def _newest(times):
    return max(times) if times else None


class Archive:
    """The restore side both engines' archives share; each engine's class puts it before its
    read-only status class (``archive_status.py``), which holds the tools and ``info()``."""

    def __init__(self, params, descriptor, archive_dir, state_dir=None):
        super().__init__(params, descriptor, archive_dir)
        self.state_dir = state_dir or DEFAULT_STATE_DIR
        self.key = safe_key("pitr-%s" % self.live_location())
        self.journal = Journal(os.path.join(self.state_dir, "%s.swap.json" % self.key))

    def lock(self, wait=60.0):
        return TargetLock(os.path.join(self.state_dir, "%s.lock" % self.key), wait=wait)

    def marker_times(self, params, run=None):
        """Marker times of the database ``params`` names (None when it cannot be read)."""
        try:
            with open_engine(params) as eng:
                return eng.marker_times(run)
        except DatabaseError:
            return None

    def copy_engine(self, copy):
        return open_engine(copy.params)

    def _table_checks(self, eng):
        """Problems common to both engines: every BIM table readable, spatial indexes valid."""
        problems = []
        present = set(eng.existing_tables())
        missing = [t for t in BIM_TABLES if t not in present]
        if missing:
            problems.append("tables missing in the restored copy: %s" % ", ".join(missing))
        counts = eng.row_counts([t for t in BIM_TABLES if t in present])
        problems += _spatial_problems(eng, [t for t in SPATIAL_TABLES if t in present])
        return problems, counts

    def physical_backup(self, kind):
        raise ArchiveError("physical backups are taken of PostgreSQL only (SQLite's replica is continuous)")

    @contextlib.contextmanager
    def paused(self):
        """Around a swap of the live database by any restore: the archiver's daemon stopped when it
        holds the live file open (Litestream), started again afterwards."""
        yield


# --------------------------------------------------------------------------------------------
class PostgresArchive(Archive, PostgresArchiveStatus):
    def __init__(self, params, descriptor, archive_dir, state_dir=None):
        super().__init__(params, descriptor, archive_dir, state_dir)
        # The live cluster is stopped and started only by a restore, so the status side (which the
        # health check carries) does not hold it.
        cluster = descriptor.get("cluster") or {}
        self.live = Cluster(self.data_dir, self.os_user, start_command=cluster.get("start_command"),
                            stop_command=cluster.get("stop_command"), log_file=cluster.get("log_file"),
                            pg_ctl=cluster.get("pg_ctl"))

    def start_live(self):
        """Start the live cluster and wake its checkpointer, so archive_timeout holds at once (see
        ``wake_checkpointer``)."""
        self.live.start()
        try:
            with open_engine(self.params) as eng:
                eng.wake_checkpointer()
        except DatabaseError:
            pass  # a server started by the inventory's command may take longer to accept connections

    def physical_backup(self, kind):
        return self.tool.backup(kind, repos=len(self.descriptor.get("repositories") or [None]))

    # -- copies ----------------------------------------------------------------------------------
    def _copy_dir(self, kind):
        return unused_path("%s.%s-%s" % (self.data_dir.rstrip("/"), kind, utc_stamp()))

    def copy_socket_dir(self):
        return os.path.join(self.archive_dir, "copy-socket")

    def copy_port(self):
        return int(self.params.db_port) + 1

    def _copy_params(self, location):
        return dataclasses.replace(self.params, db_socket_dir=self.copy_socket_dir(), db_port=self.copy_port())

    def restore_copy(self, target_time=None, kind="restore", info=None):
        """``info``: the archive read meanwhile (``common.Background``); its listing is what the archive
        held when the restore began."""
        location = self._copy_dir(kind)
        os.makedirs(location, mode=0o700)
        parent_owner = self.os_user
        shutil.chown(location, parent_owner, None)
        socket_dir = self.copy_socket_dir()
        os.makedirs(socket_dir, mode=0o700, exist_ok=True)
        shutil.chown(socket_dir, parent_owner, None)
        copy = Copy(location, self._copy_params(location), kind,
                    {"target": "latest" if target_time is None else "time", "archive_read": info})
        cluster = Cluster(location, self.os_user, log_file=os.path.join(self.archive_dir, "log", "restored-copy.log"))
        if os.path.exists(cluster.log_file):
            os.unlink(cluster.log_file)  # this copy's log only: its errors name what stopped it
        self._clear_archive_get_queue()
        try:
            self.tool.restore(location, target_time, timeline=self.timeline())
            cluster.configure_copy(self.copy_port(), socket_dir)
            cluster.start(use_commands=False)
            cluster.wait_promoted(lambda: open_engine(copy.params))
        except ArchiveError as exc:
            self.drop_copy(copy)
            reason = self._target_not_reached(cluster.log_file, info)
            if reason:
                raise ArchiveError(reason + "; nothing was swapped", **exc.details) from None
            raise
        except BaseException:
            self.drop_copy(copy)
            raise
        return copy

    def recovery_end_problems(self, copy):
        """A restore to the latest moment must replay the archive to its end. PostgreSQL ends recovery
        quietly at the first WAL segment it cannot fetch or read (a damaged or missing segment looks
        like the end of the archive), so where it ended is compared with what the archive holds: a
        whole segment of the same timeline beyond that point, archived when the restore began, means the
        restore stopped short (segments archived while it ran are no shortfall)."""
        histories = sorted(n for n in os.listdir(os.path.join(copy.location, "pg_wal")) if n.endswith(".history"))
        if not histories:
            return []
        with open(os.path.join(copy.location, "pg_wal", histories[-1]), encoding="ascii") as handle:
            rows = [line.split() for line in handle if line.strip() and not line.startswith("#")]
        parent, switchpoint = int(rows[-1][0]), rows[-1][1]
        high, low = switchpoint.split("/")
        lsn = (int(high, 16) << 32) + int(low, 16)
        size = 16 * 1024 * 1024
        stopped = "%08X%08X%08X" % (parent, lsn // size // 0x100, (lsn // size) % 0x100)
        # What the archive held when the restore began (listed by the info() read meanwhile).
        reader = copy.summary.get("archive_read")
        if reader is not None:
            reader.result()
        held = self.tool.archived_segments(listing=self.tool.last_listing)
        later = [s for s in held if s[:8] == stopped[:8] and s > stopped]
        if not later:
            return []
        tool_error = _tool_errors(os.path.join(self.archive_dir, "log", "restored-copy.log"))
        return ["recovery stopped at %s in WAL segment %s, but the archive holds segments of that timeline up to %s: "
                "segment %s or one after it is damaged or missing; the restored copy is incomplete%s" % (
                    switchpoint, stopped, later[-1], later[0], tool_error)]

    def _target_not_reached(self, log_file, reader):
        """Why a copy recovering to a moment shut down, when its log says the archived WAL ended before
        the moment: a segment pgBackRest could not read, or one missing before segments the archive
        holds (named), or simply no transaction after the moment archived yet; "" for any other
        failure."""
        try:
            with open(log_file, encoding="utf-8", errors="replace") as handle:
                text = handle.read()
        except OSError:
            return ""
        if TARGET_NOT_REACHED not in text:
            return ""
        restored = re.findall(r'restored log file "([0-9A-F]{24})" from archive', text)
        tool_error = _tool_errors(log_file)
        try:
            if reader is not None:
                reader.result()
        except (ArchiveError, DatabaseError):
            pass  # the archive could not be read: judged by pgBackRest's error alone
        held = self.tool.archived_segments(listing=self.tool.last_listing or {})
        last = restored[-1] if restored else None
        later = [s for s in held if last and s[:8] == last[:8] and s > last]
        if last and (tool_error or later):
            return ("the copy's recovery ended before target_time: it replayed WAL up to segment %s and could not read "
                    "the next one, %s, which is damaged or missing in the archive; the restored copy is incomplete%s"
                    % (last, _next_segment(last), tool_error))
        return ("the copy's recovery reached the end of the archived WAL (%s) before target_time: no transaction "
                "after that moment has been archived yet; choose an earlier moment, or wait until a later one is "
                "archived%s" % ("segment " + last if last else "no segment replayed", tool_error))

    def _clear_archive_get_queue(self):
        """pgBackRest's asynchronous archive-get keeps the segments it fetched ahead, and the errors it
        met, in the spool's ``in`` queue; an error stays there after the repository was repaired and
        would stop this restore at the same segment. The queue is only a cache: it starts empty."""
        queue = os.path.join(self.archive_dir, "spool", "archive", self.tool.stanza, "in")
        if os.path.isdir(queue):
            for name in os.listdir(queue):
                path = os.path.join(queue, name)
                if os.path.isfile(path):
                    os.unlink(path)

    def verify_copy(self, copy):
        """amcheck runs on a connection of its own while the tables are counted on another: the
        copy is idle but for these checks, so each gets a core."""
        problems = []
        if copy.summary.get("target") == "latest":
            problems += self.recovery_end_problems(copy)
        eng = open_engine(copy.params)
        btree = Background(lambda: eng.check_btree_indexes(copy.params.db_name))
        try:
            with open_engine(copy.params) as counting:
                found, counts = self._table_checks(counting)
                problems += found
        finally:
            problems += btree.result()
        problems += ["index %s is invalid" % i for i in eng.invalid_indexes(copy.params.db_name)]
        return problems, counts

    def drop_copy(self, copy):
        """A copy that is thrown away is stopped at once (no shutdown checkpoint writing out the
        pages its recovery dirtied), then removed."""
        cluster = Cluster(copy.location, self.os_user)
        try:
            cluster.stop(use_commands=False, mode="immediate")
        except ArchiveError:
            pass
        shutil.rmtree(copy.location, ignore_errors=True)

    def keep_copy(self, copy):
        """Mode new: the copy stays up on its own socket for inspection."""
        return {"data_dir": copy.location, "socket_dir": self.copy_socket_dir(), "port": self.copy_port()}

    # -- swap ------------------------------------------------------------------------------------
    def restore_points(self):
        pattern = re.compile(re.escape(os.path.basename(self.data_dir.rstrip("/"))) + r"\.rp-" + STAMP_RE + "$")
        return sorted(p for p in glob.glob(glob.escape(self.data_dir.rstrip("/")) + ".rp-*")
                      if pattern.match(os.path.basename(p)))

    def swap_in(self, copy, incoming_is_restore_point=False):
        """Stop the copy and the live cluster, move live aside as a restore point, move the copy
        into place, start it. Every step is journaled first; a killed run is completed or undone."""
        live = self.data_dir.rstrip("/")
        live_existed = os.path.exists(live)
        rp = "%s.rp-%s" % (live, utc_stamp()) if live_existed else None
        while rp and os.path.exists(rp):
            rp += "_1"
        self.journal.begin(op="cluster-swap", live=live, incoming=copy.location, restore_point=rp,
                           live_existed=live_existed, incoming_is_restore_point=incoming_is_restore_point)
        try:
            self.journal.step("stop_incoming")
            Cluster(copy.location, self.os_user).stop(use_commands=False)
            if not incoming_is_restore_point:
                Cluster(copy.location, self.os_user).make_live_ready()
            if live_existed:
                self.journal.step("stop_live")
                self.live.stop()
                self.journal.step("rename_live")
                os.rename(live, rp)
            self.journal.step("rename_incoming")
            os.rename(copy.location, live)
            self.journal.step("start_live")
            self.start_live()
            self.journal.step("done")
        except BaseException:
            self.recover()
            raise
        self.journal.clear()
        return rp

    def recover(self):
        actions = []
        j = self.journal.read()
        if j:
            live, incoming, rp = j["live"], j["incoming"], j.get("restore_point")
            if os.path.exists(incoming) and os.path.exists(live):
                if not j.get("incoming_is_restore_point"):
                    self.drop_copy(Copy(incoming, None, "restore"))
                self.start_live()
                actions.append("an interrupted cluster swap (step %s) was undone: %s was never replaced"
                               % (j.get("step"), live))
            elif os.path.exists(incoming):
                if not j.get("incoming_is_restore_point"):
                    Cluster(incoming, self.os_user).make_live_ready()
                os.rename(incoming, live)
                self.start_live()
                actions.append("an interrupted cluster swap (step %s) was completed: the verified copy is now %s"
                               % (j.get("step"), live))
            elif os.path.exists(live):
                self.start_live()
                actions.append("an interrupted cluster swap (step %s) had completed; %s started" % (j.get("step"), live))
            elif rp and os.path.exists(rp):
                os.rename(rp, live)
                self.start_live()
                actions.append("neither %s nor the copy existed: restore point %s put back" % (live, rp))
            else:
                raise ArchiveError("the swap journal %s names %s and %s and neither exists; inspect the host by hand"
                                   % (self.journal.path, live, incoming))
            self.journal.clear()
        base = self.data_dir.rstrip("/")
        for kind in SCRATCH_KINDS:
            pattern = re.compile(re.escape(os.path.basename(base)) + r"\." + kind + "-" + STAMP_RE + "$")
            for path in glob.glob(glob.escape(base) + ".%s-*" % kind):
                if pattern.match(os.path.basename(path)):
                    self.drop_copy(Copy(path, None, kind))
                    actions.append("left-over restored copy %s removed" % path)
        return actions

    def rollback(self, point):
        """Swap restore point ``point`` (a data directory) back in; the replaced cluster becomes a
        restore point itself."""
        if point not in self.restore_points():
            raise ArchiveError("restore point %s not found; restore points: %s" % (
                point, ", ".join(self.restore_points()) or "none"))
        return self.swap_in(Copy(point, None, "rollback"), incoming_is_restore_point=True)

    def prune(self, keep):
        points = self.restore_points()
        drop = points[:-keep] if keep > 0 else points
        for path in drop:
            shutil.rmtree(path, ignore_errors=True)
        return drop


def _tool_errors(log_file):
    """pgBackRest's last ERROR (archive-get of a damaged segment: the line and its indented
    continuation, which names the repository file and the fault) in a restored copy's log, for the
    message."""
    try:
        with open(log_file, encoding="utf-8", errors="replace") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return ""
    errors = []
    for line in lines:
        if line.startswith("ERROR: ["):
            errors.append([line.strip()])
        elif errors and line.startswith((" ", "\t")) and len(errors[-1]) < 4:
            errors[-1].append(line.strip())
    return " (pgBackRest: %s)" % " ".join(errors[-1])[-600:] if errors else ""


TARGET_NOT_REACHED = "recovery ended before configured recovery target was reached"


def _next_segment(name):
    """The WAL segment after ``name`` on its timeline (16 MB segments, as recovery_end_problems)."""
    number = int(name[8:16], 16) * 0x100 + int(name[16:24], 16) + 1
    return "%s%08X%08X" % (name[:8], number // 0x100, number % 0x100)


class SqliteArchive(Archive, SqliteArchiveStatus):
    def __init__(self, params, descriptor, archive_dir, state_dir=None):
        super().__init__(params, descriptor, archive_dir, state_dir)
        self.target = SqliteTarget(params, state_dir=self.state_dir)

    def restore_copy(self, target_time=None, kind="restore", info=None):
        location = self.target.scratch_name(kind)
        copy = Copy(location, dataclasses.replace(self.params, sqlite_path=location), kind)
        try:
            copy.summary = self._restore_from_a_replica(location, target_time)
            self.target.engine.make_self_contained(location)
            like = self.live_location() if os.path.exists(self.live_location()) else None
            if like:
                stat = os.stat(like)
                os.chown(location, stat.st_uid, stat.st_gid)
                os.chmod(location, stat.st_mode & 0o7777)
        except BaseException:
            self.drop_copy(copy)
            raise
        return copy

    def _restore_from_a_replica(self, location, target_time):
        """Litestream's restore from the first replica that answers; the others are tried in turn
        when it fails (e.g. the storage host is gone with the data center)."""
        failures = []
        for tool in self.tools:
            try:
                return dict(tool.restore(location, target_time) or {}, replica=replica_url(tool.replica))
            except ArchiveError as exc:
                failures.append("%s: %s" % (replica_url(tool.replica), exc))
                if os.path.exists(location):
                    os.unlink(location)
        raise ArchiveError("no Litestream replica could be restored: %s" % "; ".join(failures))

    def verify_copy(self, copy):
        problems = list(self.target.engine.check_database_file(copy.location))
        counts = {}
        if not any(p.startswith("cannot open") for p in problems):
            with open_engine(copy.params) as eng:
                found, counts = self._table_checks(eng)
                problems += found
        return problems, counts

    def drop_copy(self, copy):
        self.target.drop(copy.location)

    def keep_copy(self, copy):
        return {"path": copy.location}

    def restore_points(self):
        return self.target.restore_points()

    @contextlib.contextmanager
    def paused(self):
        """Litestream holds the live file open: it is stopped for a swap and started again on the new
        file, where it finds the database behind its replica and takes a new snapshot."""
        stopped = self.service.stop() if self.service.configured else False
        try:
            yield
        finally:
            if stopped:
                self.service.start()

    def swap_in(self, copy, incoming_is_restore_point=False):
        with self.paused():
            return self.target.swap_in(copy.location, incoming_is_restore_point=incoming_is_restore_point)

    def recover(self):
        return self.target.recover()

    def rollback(self, point):
        if point not in self.restore_points():
            raise ArchiveError("restore point %s not found; restore points: %s" % (
                point, ", ".join(self.restore_points()) or "none"))
        return self.swap_in(Copy(point, None, "rollback"), incoming_is_restore_point=True)

    def prune(self, keep):
        return self.target.prune(keep)


ARCHIVE_CLASSES = {"pgbackrest": PostgresArchive, "litestream": SqliteArchive}


def archive_if_set_up(params, archive_dir, state_dir=None):
    """The archive when ``archive_dir`` holds a descriptor for this engine, else None."""
    descriptor = load_descriptor(archive_dir, required=False)
    if descriptor is None or descriptor.get("engine") != params.engine:
        return None
    return open_archive(params, archive_dir, state_dir)


def open_archive(params, archive_dir, state_dir=None):
    """The archive of the database ``params`` names, as ``archive_dir``'s descriptor sets it up."""
    descriptor = checked_descriptor(params, archive_dir)
    return ARCHIVE_CLASSES[descriptor["tool"]](params, descriptor, archive_dir, state_dir)
