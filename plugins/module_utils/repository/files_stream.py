# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``files`` stream of a backup: a tar of the include_paths, and the record of what it holds.

The record goes into the manifest (``streams.files.entries`` and ``parents``): per entry its
relative name, type, mode, owner (numbers and names), and for a regular file its size and
SHA-256. A restore takes mode and owner from this record, never from the tar, and accepts a tar
member only when the record names it and its bytes match (docs/repository-format.md, "The files
stream record"). Each file is opened once: the tar header, the bytes and the digest all come from
that one descriptor, so a file replaced meanwhile cannot mix two versions.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import stat
import tarfile
import threading

RECORD_VERSION = 1
BLOCK = 1024 * 1024


def _names(st):
    try:
        user = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        user = None
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = None
    return user, group


def owner_record(st):
    """Mode and owner (numbers and names) of a ``stat`` result, as manifests record them."""
    user, group = _names(st)
    return {"mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid, "user": user, "group": group}


class _HashingReader:
    """Reads at most ``size`` bytes of ``handle`` and hashes what it hands out."""

    def __init__(self, handle, size):
        self.handle = handle
        self.left = size
        self.digest = hashlib.sha256()

    def read(self, n=-1):
        n = self.left if n is None or n < 0 else min(n, self.left)
        data = self.handle.read(n)
        self.left -= len(data)
        self.digest.update(data)
        return data


def _walk(path):
    """``path`` and, when it is a real folder, everything below it (no symlink followed)."""
    yield path
    if os.path.isdir(path) and not os.path.islink(path):
        for root, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(dirs + files):
                yield os.path.join(root, name)


def parents_record(include_paths):
    """Mode and owner of the folders above each include path (a restore on a fresh host creates
    missing ones like this)."""
    seen = {}
    for path in include_paths:
        parts = os.path.abspath(path).strip("/").split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            rel = "/".join(parts[:depth])
            if rel in seen:
                continue
            try:
                st = os.lstat("/" + rel)
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode):
                seen[rel] = dict(owner_record(st), path=rel)
    return [seen[k] for k in sorted(seen)]


def write_tar(out, include_paths):
    """Write the tar of ``include_paths`` to ``out``; return the record of its entries."""
    entries = []
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for top in include_paths:
            for path in _walk(os.path.abspath(top)):
                arcname = path.lstrip("/")
                st = os.lstat(path)
                entry = dict(owner_record(st), path=arcname)
                if stat.S_ISREG(st.st_mode):
                    with open(path, "rb", buffering=0) as handle:
                        st = os.fstat(handle.fileno())
                        info = tar.gettarinfo(arcname=arcname, fileobj=handle)
                        reader = _HashingReader(handle, info.size)
                        tar.addfile(info, reader)
                    entry.update(owner_record(st), type="file", size=info.size, sha256=reader.digest.hexdigest())
                elif stat.S_ISDIR(st.st_mode):
                    tar.addfile(tar.gettarinfo(path, arcname=arcname))
                    entry["type"] = "dir"
                elif stat.S_ISLNK(st.st_mode):
                    tar.addfile(tar.gettarinfo(path, arcname=arcname))
                    entry.update(type="symlink", target=os.readlink(path))
                else:
                    continue  # sockets, fifos, devices: not configuration
                entries.append(entry)
    return entries


def tar_stream(include_paths):
    """A readable pipe end carrying the tar of ``include_paths``, the writer thread, a list that
    receives the writer's error, and a dict that receives the record (``entries``)."""
    read_fd, write_fd = os.pipe()
    errors = []
    record = {}

    def produce():
        try:
            with os.fdopen(write_fd, "wb") as out:
                record["entries"] = write_tar(out, include_paths)
        except BrokenPipeError:
            pass
        except Exception as exc:  # reported by the reader
            errors.append(exc)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    return os.fdopen(read_fd, "rb"), thread, errors, record
