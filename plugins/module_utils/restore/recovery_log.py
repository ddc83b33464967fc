# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The disaster recovery's log on the host: one JSON line per step (docs/restore.md).

``{"time", "host", "step", "status", "detail"}``, appended. The restore role writes the steps it
runs as tasks (``roles/restore/tasks/log.yml``); the ``restore`` module writes the steps it runs
itself (``start`` and ``preflight`` in its preflight run; ``app_stop``, ``restore``, ``app_start``
in its restore run), so those cost no task of their own. Each record written is also returned
with its epoch seconds (``at``) and, for a step the module timed itself (the application's commands,
the restore), its seconds (``took_s``); the role's closing summary turns them into seconds per step.
"""

from __future__ import annotations

import datetime
import json
import os

TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class RecoveryLog:
    """Appends step records to ``path`` (folder created 0700 when missing, file 0600).

    ``path`` None: nothing is written nor recorded. ``check_mode``: nothing is written (check mode
    changes nothing, the log included), the steps are still recorded for the plan's summary."""

    def __init__(self, path, host, check_mode=False):
        self.path = path
        self.host = host
        self.check_mode = check_mode
        self.records = []

    @classmethod
    def from_option(cls, option, check_mode):
        """From the module's ``recovery_log`` option (``{path, host, start}``, or None)."""
        option = option or {}
        return cls(option.get("path"), option.get("host") or "", check_mode=check_mode)

    @property
    def active(self):
        return bool(self.path)

    def write(self, step, status="ok", detail=None, took_s=None):
        """Append one record; returns it (None when the log is not active). ``took_s``: the step's own
        seconds when the module timed it (else the summary counts from the previous record)."""
        if not self.active:
            return None
        now = datetime.datetime.now(datetime.timezone.utc)
        entry = {"time": now.strftime(TIME_FORMAT), "host": self.host, "step": step, "status": status,
                 "detail": detail or {}}
        record = {"step": step, "status": status, "at": round(now.timestamp(), 3)}
        if took_s is not None:
            record["took_s"] = took_s
        self.records.append(record)
        if self.check_mode:
            return entry
        folder = os.path.dirname(self.path)
        if folder and not os.path.isdir(folder):
            os.makedirs(folder, mode=0o700, exist_ok=True)  # an existing folder keeps its mode
        line = (json.dumps(entry, default=str) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        return entry

    @property
    def written(self):
        """Whether this run appended to the file (a change)."""
        return bool(self.records) and not self.check_mode


def preflight_detail(result):
    """The ``preflight`` record's detail, from the preflight's result."""
    plan = result.get("plan") or {}
    checksums = result.get("checksums") or {}
    return {"repository": result.get("repository_used"), "secondary_used": bool(result.get("secondary")),
            "backup_id": result.get("backup_id"), "bytes_to_read": plan.get("bytes_to_read"),
            "space": plan.get("space"), "chunks_verified": checksums.get("chunks") if checksums.get("passed") else None,
            # "restore": in one run the restore's reads verify the chunks (its record says how many)
            "checksums_by": checksums.get("checked_by", "preflight") if checksums else None}


def restore_detail(result):
    """The ``restore`` record's detail, from the restore's result."""
    return {"backup_id": result.get("backup_id"), "restore_point": result.get("restore_point"),
            "duration_s": result.get("duration_s"), "rto_s": result.get("rto_s"), "rpo_s": result.get("rpo_s"),
            "target_time": result.get("target_time"), "verification": result.get("verification"),
            "files": (result.get("files") or {}).get("written") or [],
            "chunks_verified": (result.get("checksums") or {}).get("chunks")}
