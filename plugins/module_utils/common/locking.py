# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one ``flock`` helper: an exclusive lock on a lock file, released when the block ends.

The kernel drops an ``flock`` when its holder dies, so a killed run never leaves a lock that
needs clearing by hand; the lock file itself stays (empty, or with what its owner wrote).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time


class LockBusy(Exception):
    """The lock is held by another process (non-blocking attempt, or ``timeout`` passed)."""


@contextlib.contextmanager
def file_lock(path, blocking=True, timeout=None, mode=0o600):
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the ``with`` block.

    ``blocking=False`` raises LockBusy at once when another process holds it; ``timeout``
    (seconds) waits at most that long, then raises LockBusy. Yields the open descriptor.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, mode)  # a lock is never reached through a link
    try:
        acquire(fd, blocking=blocking, timeout=timeout)
        yield fd
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def acquire(fd, blocking=True, timeout=None):
    """Take an exclusive ``flock`` on the open descriptor ``fd``; LockBusy as file_lock says."""
    if blocking and timeout is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    deadline = time.monotonic() + (timeout or 0)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
        if not blocking or time.monotonic() >= deadline:
            raise LockBusy("lock held by another process")
        time.sleep(0.05)


def release(fd):
    """Drop the ``flock`` on ``fd`` and keep the descriptor open."""
    fcntl.flock(fd, fcntl.LOCK_UN)
