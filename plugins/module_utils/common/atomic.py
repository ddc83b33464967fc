# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Crash-safe file replacement: a reader sees the old content or the new, never a mix.

The one durable-write helper of the collection (reports, state files, repository manifests and
chunks, known_hosts).
"""

from __future__ import annotations

import contextlib
import os
import uuid


def fsync_directory(path):
    """Make a rename or a new entry in ``path`` durable (POSIX needs the folder fsynced too)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path, data, mode=0o600, tmp_dir=None, fsync=True):
    """Write ``data`` (bytes or str) to ``path``: temp file, fsync, rename, fsync of the folder.

    The temp file is created (exclusively, with ``mode``) in ``tmp_dir`` when given (a folder on
    the same file system whose leftovers its owner cleans, as a repository's ``tmp/``), else in
    the destination folder, so the rename never crosses file systems. ``fsync=False`` leaves
    durability to a later ``syncfs`` (a backup's chunks) and keeps the atomic rename.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    folder = os.path.dirname(os.path.abspath(path))
    name = "%s.%s.tmp" % (os.path.basename(path), uuid.uuid4().hex[:12])
    tmp = os.path.join(tmp_dir, name) if tmp_dir else os.path.join(folder, "." + name)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            os.fchmod(fd, mode)  # whatever the umask
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if fsync:
        fsync_directory(folder)
