# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Configuration files of a backup: written back on a restore, with a restore point of their own.

A swap keeps the replaced database as a restore point; the configuration files a restore
replaces are kept beside it, in ``<state_dir>/files/<restore point>/`` (0700): each replaced
file's content, mode and owner, and the files that did not exist before, listed in
``index.json`` (rewritten atomically after every file, so a killed restore leaves a usable
list). A rollback to that restore point puts them back and removes the folder; pruning a
restore point prunes its folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile

from ansible_collections.bim.wall_system.plugins.module_utils.common.atomic import atomic_write
from ansible_collections.bim.wall_system.plugins.module_utils.restore.journal import safe_key

INDEX = "index.json"


def files_point_dir(state_dir, restore_point):
    """The folder keeping the files replaced by the restore that made ``restore_point``."""
    return os.path.join(state_dir, "files", safe_key(os.path.basename(restore_point)))


def _set_owner(path, uid, gid):
    if os.geteuid() == 0:
        try:
            os.chown(path, uid, gid)
        except OSError:
            pass


class _Keeper:
    """Keeps what a restore replaces in ``folder`` (None: keeps nothing)."""

    def __init__(self, folder):
        self.folder = folder
        self.entries = []

    def keep(self, dest):
        if self.folder is None:
            return
        os.makedirs(self.folder, mode=0o700, exist_ok=True)
        entry = {"path": dest, "existed": os.path.isfile(dest)}
        if entry["existed"]:
            st = os.stat(dest)
            entry.update(mode=st.st_mode & 0o7777, uid=st.st_uid, gid=st.st_gid, copy="%d" % len(self.entries))
            with open(dest, "rb") as handle:
                atomic_write(os.path.join(self.folder, entry["copy"]), handle.read())
        self.entries.append(entry)
        atomic_write(os.path.join(self.folder, INDEX), json.dumps({"files": self.entries}, indent=1))


def restore_files_stream(repo, manifest, root="/", keep_dir=None):
    """Write the files of the backup's ``files`` stream (tar) below ``root``, each atomically;
    what they replace is kept in ``keep_dir`` when given.

    Only regular files and folders are restored; names with ``..`` or links are refused. Files
    whose content is already equal are left alone (``unchanged``).
    """
    streams = manifest.get("streams") or {}
    out = {"written": [], "unchanged": [], "skipped": []}
    if "files" not in streams:
        return out
    keeper = _Keeper(keep_dir)
    with repo.open_stream(manifest, "files") as stream:
        with tarfile.open(fileobj=stream, mode="r|") as tar:
            for member in tar:
                name = member.name.lstrip("/")
                parts = name.split("/")
                if ".." in parts or not name:
                    out["skipped"].append(member.name)
                    continue
                dest = os.path.join(root, name)
                if member.isdir():
                    os.makedirs(dest, mode=0o700, exist_ok=True)
                    continue
                if not member.isfile():
                    out["skipped"].append(member.name)
                    continue
                data = tar.extractfile(member).read()
                try:
                    with open(dest, "rb") as handle:
                        if handle.read() == data:
                            out["unchanged"].append(dest)
                            continue
                except OSError:
                    pass
                os.makedirs(os.path.dirname(dest), mode=0o700, exist_ok=True)
                keeper.keep(dest)
                atomic_write(dest, data, mode=member.mode & 0o7777 or 0o600)
                _set_owner(dest, member.uid, member.gid)
                out["written"].append(dest)
    return out


def put_back_files(folder):
    """Undo the file changes kept in ``folder`` (latest first) and remove it.

    Returns ``{"restored": [...], "removed": [...]}``; an empty result when nothing was kept.
    """
    out = {"restored": [], "removed": []}
    try:
        with open(os.path.join(folder, INDEX), "rb") as handle:
            entries = json.loads(handle.read().decode("utf-8"))["files"]
    except (OSError, ValueError, KeyError):
        return out
    for entry in reversed(entries):
        dest = entry["path"]
        if entry["existed"]:
            with open(os.path.join(folder, entry["copy"]), "rb") as handle:
                atomic_write(dest, handle.read(), mode=entry["mode"])
            _set_owner(dest, entry["uid"], entry["gid"])
            out["restored"].append(dest)
        elif os.path.lexists(dest):
            os.unlink(dest)
            out["removed"].append(dest)
    shutil.rmtree(folder, ignore_errors=True)
    return out


def prune_file_points(state_dir, restore_points):
    """Remove the kept files of restore points that no longer exist."""
    for point in restore_points or []:
        shutil.rmtree(files_point_dir(state_dir, point), ignore_errors=True)
