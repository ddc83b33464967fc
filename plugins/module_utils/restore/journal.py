# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The swap journal and the per-target lock.

Before each step of a swap the intended step is written to a small JSON file (atomically:
temp file, fsync, rename, fsync of the folder). After a crash (kill -9, power loss) the next
run reads it and finishes or undoes the swap (see ``targets.py``). The lock is an ``flock()``
on a file beside the journal: the kernel releases it when the holder dies, so a dead run
never blocks the next one.
"""

from __future__ import annotations

import json
import os
import re
import signal
import time

from ansible_collections.bim.wall_system.plugins.module_utils.common.atomic import atomic_write, fsync_directory
from ansible_collections.bim.wall_system.plugins.module_utils.common.locking import LockBusy, acquire, release
from ansible_collections.bim.wall_system.plugins.module_utils.restore.errors import RestoreError

DEFAULT_STATE_DIR = "/var/lib/bim-wall-system/restore"
CRASH_ENV = "BIM_RESTORE_CRASH_AFTER_STEP"


def safe_key(text):
    """A file-name-safe form of a target description."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:150]


def ensure_dir(path):
    if not os.path.isdir(path):
        os.makedirs(path, mode=0o700, exist_ok=True)
    return path


class Journal:
    """One JSON document at ``path``; absent when no swap is in progress."""

    def __init__(self, path):
        self.path = path
        self.data = None

    def read(self):
        try:
            with open(self.path, "rb") as handle:
                raw = handle.read()
        except FileNotFoundError:
            return None
        try:
            data = json.loads(raw.decode("utf-8"))
        except ValueError:
            raise RestoreError("the swap journal %s is not valid JSON; inspect it and the databases by hand" % self.path)
        if not isinstance(data, dict) or "op" not in data:
            raise RestoreError("the swap journal %s is not a journal of this collection" % self.path)
        return data

    def begin(self, **data):
        self.data = dict(data)
        self.data.setdefault("started", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        self.data["pid"] = os.getpid()
        self.step("begin")

    def step(self, name, **extra):
        """Record that ``name`` is about to be done (written durably before the step)."""
        self.data.update(extra)
        self.data["step"] = name
        self.data.setdefault("steps", []).append(name)
        ensure_dir(os.path.dirname(self.path))
        atomic_write(self.path, json.dumps(self.data, sort_keys=True, indent=1), mode=0o600)
        # Fault injection for the crash tests: die like kill -9 right after this step's record.
        if os.environ.get(CRASH_ENV) == name:
            os.kill(os.getpid(), signal.SIGKILL)

    def clear(self):
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            return
        fsync_directory(os.path.dirname(self.path))
        self.data = None


class TargetLock:
    """Exclusive ``flock()`` of ``path`` for the duration of a restore on one target."""

    def __init__(self, path, wait=60.0):
        self.path = path
        self.wait = wait
        self.fd = None

    def __enter__(self):
        ensure_dir(os.path.dirname(self.path))
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            acquire(self.fd, timeout=self.wait)
        except LockBusy:
            holder = ""
            try:
                with open(self.path) as handle:
                    holder = handle.read().strip()
            except OSError:
                pass
            os.close(self.fd)
            self.fd = None
            raise RestoreError("another restore on this target is running (lock %s held by pid %s)"
                               % (self.path, holder or "unknown"))
        os.ftruncate(self.fd, 0)
        os.write(self.fd, str(os.getpid()).encode())
        return self

    def __exit__(self, *exc_info):
        if self.fd is not None:
            release(self.fd)
            os.close(self.fd)
            self.fd = None
