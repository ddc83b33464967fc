# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Configuration files written below ``files_root`` without ever following a link, with a
restore point of their own.

Every path is walked from a descriptor of ``files_root`` one component at a time with
``O_NOFOLLOW`` (``openat``-style): a symlink (or anything but a folder) where a folder is needed,
or anything but a regular file where a file goes, is refused, so no write can be redirected out of
``files_root``. A file is written as a temp file beside it (created ``O_EXCL | O_NOFOLLOW``),
given its mode and owner through its descriptor, fsynced and renamed over the old one.

A swap keeps what it replaces in ``<state_dir>/files/<restore point>/`` (0700): each replaced
file's content, mode and owner, the folders whose mode or owner changed, and what did not exist
before, listed in ``index.json`` (rewritten atomically after every entry, so a killed restore
leaves a usable list). A rollback to that restore point puts them back and removes the folder;
pruning a restore point prunes its folder.
"""

from __future__ import annotations

import errno
import grp
import json
import os
import pwd
import shutil
import stat

from ansible_collections.bim.wall_system.plugins.module_utils.common.atomic import atomic_write
from ansible_collections.bim.wall_system.plugins.module_utils.restore.errors import RestoreError
from ansible_collections.bim.wall_system.plugins.module_utils.restore.journal import safe_key

INDEX = "index.json"
BLOCK = 1024 * 1024
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# Never setuid or setgid (nor sticky on files): a restored configuration file grants nothing.
FILE_MODE_MASK = 0o777
DIR_MODE_MASK = 0o1777


def files_point_dir(state_dir, restore_point):
    """The folder keeping the files replaced by the restore that made ``restore_point``."""
    return os.path.join(state_dir, "files", safe_key(os.path.basename(restore_point)))


def owner_ids(meta):
    """``(uid, gid)`` to give a restored entry from its recorded ``meta``: the recorded user and
    group names when this host knows them (numbers differ between hosts), else the recorded
    numbers; ``(None, None)`` when nothing was recorded."""
    if not meta or meta.get("uid") is None:
        return None, None
    uid, gid = int(meta["uid"]), int(meta["gid"])
    try:
        uid = pwd.getpwnam(meta["user"]).pw_uid if meta.get("user") else uid
    except KeyError:
        pass
    try:
        gid = grp.getgrnam(meta["group"]).gr_gid if meta.get("group") else gid
    except KeyError:
        pass
    return uid, gid


def apply_owner_mode(fd, mode, uid, gid):
    """Owner first (a chown clears set-id bits), then the mode, both through ``fd``."""
    if uid is not None and os.geteuid() == 0:
        os.fchown(fd, uid, gid)
    if mode is not None:
        os.fchmod(fd, mode)


def refuse(rel, what):
    raise RestoreError("refusing to restore %s: %s (restored files never follow links)" % (rel, what))


class FilesRoot:
    """``files_root`` as a folder descriptor; paths below it are walked without following links."""

    def __init__(self, root):
        self.root = os.path.realpath(root)
        try:
            self.fd = os.open(self.root, DIR_FLAGS)
        except OSError as exc:
            raise RestoreError("files_root %s cannot be opened as a folder: %s" % (root, exc.strerror))

    def close(self):
        os.close(self.fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def show(self, rel):
        return os.path.join(self.root, rel)

    def open_dir(self, rel, create=None):
        """A descriptor of folder ``rel`` (``a/b/c``; empty: the root). Missing folders are
        created when ``create(rel_so_far)`` is given (it returns ``(mode, uid, gid)`` and is told
        of the creation); else FileNotFoundError."""
        fd = os.dup(self.fd)
        done = []
        try:
            for part in [p for p in rel.split("/") if p]:
                done.append(part)
                try:
                    nxt = os.open(part, DIR_FLAGS, dir_fd=fd)
                except FileNotFoundError:
                    if create is None:
                        raise
                    mode, uid, gid = create("/".join(done))
                    os.mkdir(part, 0o700, dir_fd=fd)
                    nxt = os.open(part, DIR_FLAGS, dir_fd=fd)
                    apply_owner_mode(nxt, mode, uid, gid)
                    os.fsync(fd)
                except OSError as exc:
                    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                        refuse(self.show("/".join(done)), "it is a symlink or not a folder")
                    raise
                os.close(fd)
                fd = nxt
        except BaseException:
            os.close(fd)
            raise
        return fd

    def check(self, rel, kind):
        """Refuse when something already at ``rel`` (or a folder above it) is of another kind than
        ``kind`` (``file`` or ``dir``) or is a link. Reads only."""
        parent, name = split_rel(rel)
        try:
            fd = self.open_dir(parent)
        except FileNotFoundError:
            return
        try:
            st = os.lstat(name, dir_fd=fd)
        except FileNotFoundError:
            return
        finally:
            os.close(fd)
        if stat.S_ISLNK(st.st_mode):
            refuse(self.show(rel), "a symlink is in its place")
        if (kind == "dir") != stat.S_ISDIR(st.st_mode) or (kind == "file" and not stat.S_ISREG(st.st_mode)):
            refuse(self.show(rel), "something other than a %s is in its place" % ("folder" if kind == "dir" else "file"))


def split_rel(rel):
    parent, _sep, name = rel.rpartition("/")
    return parent, name


def open_regular(dir_fd, name, rel):
    """A read descriptor of regular file ``name`` in ``dir_fd`` or None when it is absent."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            refuse(rel, "a symlink is in its place")
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        refuse(rel, "something other than a file is in its place")
    return fd


def _copy(src_fd, dst_fd):
    while True:
        block = os.read(src_fd, BLOCK)
        if not block:
            return
        view = memoryview(block)
        while view:
            view = view[os.write(dst_fd, view):]


def same_content(fd_a, fd_b):
    """Whether two descriptors (at offset 0) hold the same bytes; reads block by block."""
    if os.fstat(fd_a).st_size != os.fstat(fd_b).st_size:
        return False
    while True:
        a, b = os.read(fd_a, BLOCK), os.read(fd_b, BLOCK)
        if a != b:
            return False
        if not a:
            return True


def write_at(dir_fd, name, src_fd, mode, uid, gid):
    """Replace ``name`` in ``dir_fd`` with the bytes of ``src_fd``: temp file beside it
    (``O_EXCL | O_NOFOLLOW``), owner and mode through its descriptor, fsync, rename, fsync."""
    tmp = (".%s" % name)[:200] + ".bim-restore.tmp"
    try:
        os.unlink(tmp, dir_fd=dir_fd)
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    try:
        try:
            _copy(src_fd, fd)
            apply_owner_mode(fd, mode, uid, gid)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=dir_fd)
        except OSError:
            pass
        raise
    os.fsync(dir_fd)


class Keeper:
    """Keeps what a restore replaces in ``folder`` (None: keeps nothing), for ``put_back_files``."""

    def __init__(self, folder, root):
        self.folder = folder
        self.root = root
        self.entries = []
        if folder is not None:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            try:
                with open(os.path.join(folder, INDEX), "rb") as handle:
                    self.entries = json.loads(handle.read().decode("utf-8"))["files"]
            except (OSError, ValueError, KeyError):
                self.entries = []

    def _save(self, entry):
        self.entries.append(entry)
        atomic_write(os.path.join(self.folder, INDEX), json.dumps({"files": self.entries}, indent=1))

    def created_dir(self, rel):
        if self.folder is not None:
            self._save({"root": self.root, "path": rel, "kind": "dir", "existed": False})

    def dir_meta(self, rel, st):
        if self.folder is not None:
            self._save({"root": self.root, "path": rel, "kind": "dir", "existed": True,
                        "mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid})

    def file(self, rel, old_fd):
        """Record file ``rel`` before it is replaced (``old_fd``: its content, None: absent)."""
        if self.folder is None:
            return
        entry = {"root": self.root, "path": rel, "kind": "file", "existed": old_fd is not None}
        if old_fd is not None:
            st = os.fstat(old_fd)
            entry.update(mode=stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid, copy="%d" % len(self.entries))
            copy = os.path.join(self.folder, entry["copy"])
            fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                os.lseek(old_fd, 0, os.SEEK_SET)
                _copy(old_fd, fd)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.lseek(old_fd, 0, os.SEEK_SET)
        self._save(entry)


def _entry_location(entry):
    """``(root, rel)`` of an index entry; indexes before this release held absolute paths."""
    if "root" in entry:
        return entry["root"], entry["path"]
    return "/", entry["path"].lstrip("/")


def _already(dir_fd, name, src, entry):
    """Whether ``name`` already holds the kept copy ``src`` with its mode and owner (a write
    that failed, or a put-back repeated after a kill, changed nothing)."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        return (stat.S_ISREG(st.st_mode) and (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (
            entry["mode"], entry["uid"], entry["gid"]) and same_content(fd, src))
    finally:
        os.close(fd)


def _put_back(entry, folder, out):
    root, rel = _entry_location(entry)
    parent, name = split_rel(rel)
    with FilesRoot(root) as where:
        try:
            dir_fd = where.open_dir(parent)
        except FileNotFoundError:
            return
        try:
            if entry.get("kind") == "dir":
                if not entry["existed"]:
                    try:
                        os.rmdir(name, dir_fd=dir_fd)
                        out["removed"].append(where.show(rel))
                    except OSError:
                        pass  # not empty: something else lives there now
                    return
                fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
                try:
                    apply_owner_mode(fd, entry["mode"], entry["uid"], entry["gid"])
                finally:
                    os.close(fd)
                return
            if entry["existed"]:
                src = os.open(os.path.join(folder, entry["copy"]), os.O_RDONLY | os.O_CLOEXEC)
                try:
                    if not _already(dir_fd, name, src, entry):
                        os.lseek(src, 0, os.SEEK_SET)
                        write_at(dir_fd, name, src, entry["mode"], entry["uid"], entry["gid"])
                finally:
                    os.close(src)
                out["restored"].append(where.show(rel))
                return
            try:
                if stat.S_ISREG(os.lstat(name, dir_fd=dir_fd).st_mode):
                    os.unlink(name, dir_fd=dir_fd)
                    out["removed"].append(where.show(rel))
            except FileNotFoundError:
                pass
        finally:
            os.close(dir_fd)


def put_back_files(folder):
    """Undo the file changes kept in ``folder`` (latest first) and remove it.

    Returns ``{"restored": [...], "removed": [...]}``; an empty result when nothing was kept.
    """
    out = {"restored": [], "removed": []}
    try:
        with open(os.path.join(folder, INDEX), "rb") as handle:
            entries = json.loads(handle.read().decode("utf-8"))["files"]
    except (OSError, ValueError, KeyError):
        shutil.rmtree(folder, ignore_errors=True)
        return out
    for entry in reversed(entries):
        _put_back(entry, folder, out)
    shutil.rmtree(folder, ignore_errors=True)
    return out


def prune_file_points(state_dir, restore_points):
    """Remove the kept files of restore points that no longer exist."""
    for point in restore_points or []:
        shutil.rmtree(files_point_dir(state_dir, point), ignore_errors=True)
