# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The alert state file on the controller: cooldowns and a bounded history that hold across runs.

Shape (version 1)::

    {"version": 1,
     "rules": {"High Memory Usage": {"firing": true, "hosts": ["pg1"], "first_fired": 1700000000.0,
                                     "last_fired": 1700000300.0, "last_sent": 1700000000.0}},
     "history": [{"time": 1700000000.0, "rule": "...", "severity": "critical", "event": "sent",
                  "hosts": ["pg1"], "channels": {"email": "sent", "sms": "failed"}}]}

Concurrency: ``locked_state()`` takes an exclusive ``flock`` (common/locking.py) on ``<state>.lock`` (a file that
is never replaced, so the lock is stable) for the whole read-evaluate-send-write cycle; a second,
overlapping run waits and then sees the first run's cooldowns. The state itself is replaced
atomically (temp file, fsync, rename, fsync of the folder), readable by its owner only.
"""

from __future__ import annotations

import contextlib
import json
import os

from ansible_collections.bim.wall_system.plugins.module_utils.common.atomic import atomic_write
from ansible_collections.bim.wall_system.plugins.module_utils.common.locking import LockBusy, file_lock

STATE_VERSION = 1


class StateError(Exception):
    """The state file cannot be locked, read or written; the message is safe to show."""


def empty_state():
    return {"version": STATE_VERSION, "rules": {}, "history": []}


def read_state(path):
    """Read the state; a missing file is an empty state. A corrupt file raises ``StateError``."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        return empty_state()
    except OSError as exc:
        raise StateError("cannot read alert state %s: %s" % (path, exc.strerror or exc))
    if not raw.strip():
        return empty_state()
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError as exc:
        raise StateError("alert state %s is not valid JSON (%s); move it aside to start afresh" % (path, exc))
    if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
        raise StateError("alert state %s has an unknown format (expected version %d)" % (path, STATE_VERSION))
    data.setdefault("rules", {})
    data.setdefault("history", [])
    return data


def write_state(path, state, history_limit=500):
    if history_limit is not None and history_limit >= 0:
        state["history"] = state["history"][-history_limit:] if history_limit else []
    atomic_write(path, json.dumps(state, indent=2, sort_keys=True) + "\n", mode=0o600)


def ensure_folder(path):
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        os.makedirs(folder, mode=0o700, exist_ok=True)
    return folder


@contextlib.contextmanager
def unlocked_state(path):
    """Yield the current state without locking or creating anything (check mode writes nothing)."""
    yield read_state(path)


@contextlib.contextmanager
def locked_state(path, timeout=60.0):
    """Hold the state lock; yield the current state. Raises ``StateError`` after ``timeout`` s."""
    ensure_folder(path)
    lock_path = path + ".lock"
    held = contextlib.ExitStack()
    try:
        held.enter_context(file_lock(lock_path, timeout=timeout))
    except LockBusy:
        raise StateError("alert state %s is locked by another run (waited %ss)" % (path, timeout))
    except OSError as exc:
        raise StateError("cannot lock %s: %s" % (lock_path, exc.strerror or exc))
    with held:  # closing the descriptor releases the flock
        yield read_state(path)
