# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a continuous archive holds and how it keeps up: the read-only side of ``archives.py``.

``open_archive_status(params, archive_dir)`` returns ``PostgresArchiveStatus`` (pgBackRest) or
``SqliteArchiveStatus`` (Litestream), whose ``info()`` gives the physical backups, the recoverable
window and the archive's health. ``archives.PostgresArchive`` and ``SqliteArchive`` extend them
with the restore side. The health check reads only this file, so its AnsiballZ payload carries
none of the restore code (Ansible packs every module a module imports).
"""

from __future__ import annotations

import os
import re

from ansible_collections.bim.wall_system.plugins.module_utils.archiving.common import (
    ArchiveError, Service, load_descriptor, utc_now)
from ansible_collections.bim.wall_system.plugins.module_utils.archiving.litestream import Litestream, replica_url
from ansible_collections.bim.wall_system.plugins.module_utils.archiving.pgbackrest import PgBackRest
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError
from ansible_collections.bim.wall_system.plugins.module_utils.database.probe_engines import open_probe_engine

# WAL written after the last archived segment that is still "nothing": the server's own bookkeeping.
UNARCHIVED_SLACK_BYTES = 4096
# The engine each archiving tool keeps an archive for.
TOOL_ENGINES = {"pgbackrest": "postgresql", "litestream": "sqlite"}


def _seconds(value):
    """A duration as PostgreSQL ('1min', '60s', '60') or Litestream ('1s', '500ms', '1m') write it, in seconds."""
    if value is None:
        return None
    match = re.match(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|min|h|d)?\s*$", str(value))
    if not match:
        return None
    factor = {"ms": 0.001, "s": 1, None: 1, "m": 60, "min": 60, "h": 3600, "d": 86400}[match.group(2)]
    return float(match.group(1)) * factor


def checked_descriptor(params, archive_dir):
    """The descriptor ``archive_dir`` holds, refused when its archive is not for ``params.engine``."""
    descriptor = load_descriptor(archive_dir)
    engine = TOOL_ENGINES[descriptor["tool"]]
    if params.engine != engine:
        raise ArchiveError("the archive in %s is kept by %s for %s, not for a %s database" % (
            archive_dir, descriptor["tool"], engine, params.engine))
    return descriptor


class ArchiveStatus:
    """The database (``ConnectionParams``), its archive's descriptor and folder."""

    def __init__(self, params, descriptor, archive_dir):
        self.params = params
        self.descriptor = descriptor
        self.archive_dir = archive_dir


# --------------------------------------------------------------------------------------------
class PostgresArchiveStatus(ArchiveStatus):
    """pgBackRest's archive of a PostgreSQL cluster, as read without changing anything."""

    engine_name = "postgresql"

    def __init__(self, params, descriptor, archive_dir):
        super().__init__(params, descriptor, archive_dir)
        self.data_dir = descriptor["data_dir"]
        self.os_user = descriptor.get("os_user") or "postgres"
        self.tool = PgBackRest(descriptor["config"], descriptor["stanza"], os_user=self.os_user,
                               password=params.db_password, binary=descriptor.get("binary") or "pgbackrest",
                               remote_backups=descriptor.get("remote_backups"))

    def live_location(self):
        return self.data_dir

    def grain_s(self):
        """Seconds before a moment whose transactions a restore to it may lack (0: exact)."""
        return 0.0

    def archiver_stats(self):
        """``pg_stat_archiver`` of the live server, or None when it does not answer."""
        try:
            with open_probe_engine(self.params) as eng:
                return eng.archiver_stats()
        except DatabaseError:
            return None

    def timeline(self):
        """The timeline to recover along: the live cluster's when it answers, else the one whose
        archived WAL reaches furthest."""
        try:
            with open_probe_engine(self.params) as eng:
                return eng.current_timeline()
        except DatabaseError:
            return self.tool.newest_timeline()

    def info(self):
        info = self.tool.info()
        stats = self.archiver_stats()
        last_time = stats.get("last_archived_time") if stats else None
        segment, arrived = self.tool.newest_archived(info)
        return {
            "tool": "pgbackrest",
            "stanza": self.tool.stanza,
            "physical_backups": self.tool.backups(info),
            "recoverable_window": self.tool.recoverable_window(info, last_archived_time=last_time),
            "archive_health": dict(self._health(stats, segment, arrived), tool="pgbackrest", stanza=self.tool.stanza,
                                   status=((info or {}).get("status") or {}).get("message") or "missing stanza"),
        }

    def _health(self, stats, segment, arrived):
        """Last archived WAL and its age, failures, and how long WAL has waited for the archive:
        ``archive_delay_s`` is the age of the last archive while WAL written after it waits
        (unarchived bytes or ``.ready`` segments), 0 when nothing waits (an idle server switches no
        segment, so an old last archive alone is no problem)."""
        now = utc_now()
        last = (stats or {}).get("last_archived_time") or arrived
        health = {
            "last_archived_wal": (stats or {}).get("last_archived_wal") or segment,
            "last_archived_time": last.isoformat() if last else None,
            "last_archived_age_s": round((now - last).total_seconds(), 1) if last else None,
            "server_answered": stats is not None,
        }
        if stats is None:
            return health
        timeout = _seconds(stats.get("archive_timeout")) or 0
        failed_at = stats.get("last_failed_time")
        ready_ages = self._ready_segment_ages(now)
        unarchived = 0
        if stats.get("last_archived_wal") and len(stats["last_archived_wal"]) == 24 and stats.get("wal_segment_size"):
            size = int(stats["wal_segment_size"])
            name = stats["last_archived_wal"]
            position = (int(name[8:16], 16) * (0x100000000 // size) + int(name[16:24], 16) + 1) * size
            unarchived = max(0, int(stats["current_lsn_bytes"]) - position)
        waiting = unarchived > UNARCHIVED_SLACK_BYTES or bool(ready_ages)
        delay = max([health["last_archived_age_s"] or 0.0] + ready_ages) if waiting else 0.0
        health.update(
            failed_count=stats.get("failed_count"),
            last_failed_wal=stats.get("last_failed_wal"),
            last_failed_time=failed_at.isoformat() if failed_at else None,
            archive_failing=bool(failed_at and (last is None or failed_at > last)),
            archive_mode=stats.get("archive_mode"),
            archive_timeout_s=timeout,
            ready_segments=len(ready_ages),
            unarchived_bytes=unarchived,
            archive_delay_s=round(delay, 1),
            archive_delay_ratio=round(delay / timeout, 2) if timeout else None,
        )
        return health

    def _ready_segment_ages(self, now):
        """Ages (s) of the segments PostgreSQL has handed to archive_command and not yet seen archived."""
        folder = os.path.join(self.data_dir, "pg_wal", "archive_status")
        ages = []
        try:
            for name in os.listdir(folder):
                if name.endswith(".ready"):
                    ages.append(round(now.timestamp() - os.stat(os.path.join(folder, name)).st_mtime, 1))
        except OSError:
            pass
        return ages


# --------------------------------------------------------------------------------------------
class SqliteArchiveStatus(ArchiveStatus):
    """Litestream's replicas of a SQLite file, as read without changing anything."""

    engine_name = "sqlite"

    def __init__(self, params, descriptor, archive_dir):
        super().__init__(params, descriptor, archive_dir)
        # One Litestream process per replica (older descriptors name only the one); the first is read first.
        processes = descriptor.get("replicas") or [{"config": descriptor["config"], "socket": descriptor.get("socket"),
                                                    "replica": descriptor.get("replica") or {}}]
        self.tools = [Litestream(p["config"], descriptor["db_path"], binary=descriptor.get("binary") or "litestream",
                                 socket_path=p.get("socket"), replica=p.get("replica")) for p in processes]
        self.tool = self.tools[0]
        self.service = Service.from_descriptor(descriptor)

    def live_location(self):
        return os.path.abspath(self.params.sqlite_path)

    def grain_s(self):
        """Litestream ships what was committed by each sync: a restore to T holds what the sync at or
        before T shipped, so up to one sync interval (plus the second its timestamps are cut to) may
        be missing."""
        return (_seconds(self.descriptor.get("sync_interval")) or 1.0) + 1.0

    @staticmethod
    def _replica_health(tool):
        """A replica is read over its transport (SFTP): when that fails it is reported unreachable,
        not the check broken (the database itself keeps going)."""
        try:
            files, error = tool.ltx_files(), None
        except ArchiveError as exc:
            files, error = None, str(exc)
        health = dict(tool.health(files or []), replica_reachable=error is None, replica=replica_url(tool.replica))
        if error:
            health.update(replica_error=error[-1000:], replica_txid=None, replica_time=None, lag_s=None)
        return health, files

    def info(self):
        """The first replica's health, every replica's under ``replicas`` (the worst of them is what
        the archiving check reports), and the window of the first replica that can be read (the
        one a restore reads)."""
        replicas = [self._replica_health(tool) for tool in self.tools]
        readable = [(h, files) for h, files in replicas if h["replica_reachable"]]
        health = dict(replicas[0][0], tool="litestream", replicas=[h for h, _files in replicas],
                      window_replica=readable[0][0]["replica"] if readable else None)
        return {
            "tool": "litestream",
            "replica": health["replica"],
            "physical_backups": [],
            "recoverable_window": self.tool.recoverable_window(readable[0][1] if readable else []),
            "archive_health": health,
        }


STATUS_CLASSES = {"pgbackrest": PostgresArchiveStatus, "litestream": SqliteArchiveStatus}


def open_archive_status(params, archive_dir):
    """The read-only view of the archive of the database ``params`` names."""
    descriptor = checked_descriptor(params, archive_dir)
    return STATUS_CLASSES[descriptor["tool"]](params, descriptor, archive_dir)
