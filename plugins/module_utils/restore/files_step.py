# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The configuration-files step of a restore, placed so that the swap is the last step that can fail.

Order of a swap restore with ``restore_files``:

1. ``stage``: the files stream is read into ``<state_dir>/files-staging/<target key>/`` and every
   member checked (``files_stage.py``), and every destination below ``files_root`` is checked
   (no link, no other kind in the way). A failure here drops the restored copy: nothing changed;
2. ``begin``: the files journal ``<state_dir>/<target key>.files.json`` names the restore point
   the swap is about to make (step ``begin``);
3. the database swap (``targets.py``, its own journal);
4. ``install`` (step ``install``): each staged file written below ``files_root`` (``files.py``),
   what it replaces kept with the restore point;
5. the journal removed, the staging folder removed; only now are older restore points pruned.

When step 4 fails, ``undo`` puts the kept files back and swaps the restore point back in; the
error names it. A killed run is repaired by the next run's ``recover`` (called by
``Target.recover``): a swap that did not commit (the restore point does not exist) only discards
the staging folder; a committed one is undone like a failure. Either way the target ends as it was
before the restore, and a rerun starts afresh.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat

from ansible_collections.bim.wall_system.plugins.module_utils.restore.errors import RestoreError
from ansible_collections.bim.wall_system.plugins.module_utils.restore.files import (
    DIR_FLAGS, DIR_MODE_MASK, FILE_MODE_MASK, FilesRoot, Keeper, apply_owner_mode, files_point_dir, open_regular,
    owner_ids, put_back_files, refuse, same_content, split_rel, write_at)
from ansible_collections.bim.wall_system.plugins.module_utils.restore.files_stage import stage_files
from ansible_collections.bim.wall_system.plugins.module_utils.restore.journal import Journal

# Folders above the include paths that a backup without a record of them needs created.
DEFAULT_PARENT_MODE = 0o755


def _journal(target):
    return Journal(os.path.join(target.state_dir, "%s.files.json" % target.key))


def staging_dir(target):
    return os.path.join(target.state_dir, "files-staging", target.key)


def stage(target, repo, manifest, files_root):
    """Stage and check the files of ``manifest`` for ``target`` (step 1). Returns the plan."""
    try:
        with FilesRoot(files_root) as root:
            plan = stage_files(repo, manifest, staging_dir(target))
            for item in plan["items"]:
                root.check(item["path"], item["kind"])
    except BaseException:
        shutil.rmtree(staging_dir(target), ignore_errors=True)
        raise
    return plan


def pending(target):
    """Whether a killed run left this step's journal (``recover`` would repair it)."""
    return _journal(target).read() is not None


def discard(target):
    shutil.rmtree(staging_dir(target), ignore_errors=True)
    _journal(target).clear()


def begin(target, plan, files_root, restore_point):
    """Step 2: the journal, written before the swap."""
    journal = _journal(target)
    keep = files_point_dir(target.state_dir, restore_point) if restore_point else None
    journal.begin(op="files", restore_point=restore_point, staging=plan["dir"], root=files_root, keep=keep)
    return journal


def _ids(meta, old_st=None):
    uid, gid = owner_ids(meta)
    if uid is None and old_st is not None:
        # A backup without a record: the file keeps the owner it has; a new one gets the restoring user.
        uid, gid = old_st.st_uid, old_st.st_gid
    return uid, gid


def _install_dir(root, keeper, dir_fd, rel, name, meta):
    mode = int(meta["mode"]) & DIR_MODE_MASK if meta.get("mode") is not None else None
    uid, gid = _ids(meta)
    try:
        fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        os.mkdir(name, 0o700, dir_fd=dir_fd)
        keeper.created_dir(rel)
        fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
        apply_owner_mode(fd, mode if mode is not None else DEFAULT_PARENT_MODE, uid, gid)
        os.close(fd)
        return
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            refuse(root.show(rel), "it is a symlink or not a folder")
        raise
    try:
        st = os.fstat(fd)
        wrong_mode = mode is not None and stat.S_IMODE(st.st_mode) != mode
        wrong_owner = uid is not None and os.geteuid() == 0 and (st.st_uid, st.st_gid) != (uid, gid)
        if wrong_mode or wrong_owner:
            keeper.dir_meta(rel, st)
            apply_owner_mode(fd, mode, uid if wrong_owner else None, gid)
    finally:
        os.close(fd)


def _install_file(root, keeper, plan, dir_fd, rel, name, item, out):
    meta = item["meta"]
    mode = int(meta["mode"]) & FILE_MODE_MASK
    src = os.open(os.path.join(plan["dir"], item["staged"]), os.O_RDONLY | os.O_CLOEXEC)
    old = None
    try:
        old = open_regular(dir_fd, name, root.show(rel))
        old_st = os.fstat(old) if old is not None else None
        uid, gid = _ids(meta, old_st)
        if old is not None and same_content(old, src) and stat.S_IMODE(old_st.st_mode) == mode and (
                uid is None or os.geteuid() != 0 or (old_st.st_uid, old_st.st_gid) == (uid, gid)):
            out["unchanged"].append(root.show(rel))
            return
        keeper.file(rel, old)
        os.lseek(src, 0, os.SEEK_SET)
        write_at(dir_fd, name, src, mode, uid, gid)
        out["written"].append(root.show(rel))
    finally:
        os.close(src)
        if old is not None:
            os.close(old)


def install(plan, files_root, keep_dir=None, journal=None):
    """Step 4: write the staged files below ``files_root``; what they replace is kept in
    ``keep_dir`` when given. Returns ``{"written", "unchanged", "skipped"}``."""
    if journal is not None:
        journal.step("install")
    out = {"written": [], "unchanged": [], "skipped": list(plan["skipped"])}
    with FilesRoot(files_root) as root:
        keeper = Keeper(keep_dir, root.root)

        def create(rel):
            # A folder above the include paths: as recorded at backup time.
            meta = plan["parents"].get(rel) or {}
            keeper.created_dir(rel)
            mode = int(meta["mode"]) & DIR_MODE_MASK if meta.get("mode") is not None else DEFAULT_PARENT_MODE
            uid, gid = owner_ids(meta)
            return mode, uid, gid

        for item in plan["items"]:
            parent, name = split_rel(item["path"])
            dir_fd = root.open_dir(parent, create=create)
            try:
                if item["kind"] == "dir":
                    _install_dir(root, keeper, dir_fd, item["path"], name, item["meta"])
                else:
                    _install_file(root, keeper, plan, dir_fd, item["path"], name, item, out)
            finally:
                os.close(dir_fd)
    return out


def undo(target, data):
    """Swap the restore point ``data`` names back in, then put the kept files back (the data
    first: it matters most). Returns the restore point now holding the restored copy (None when
    there was nothing to swap). Each part is repeatable, so a killed undo is finished by the next
    run (the restore point no longer existing means its swap back is done)."""
    rp = data.get("restore_point")
    kept = None
    if rp and target.exists(rp):
        kept = target.swap_in(rp, incoming_is_restore_point=True)
    if data.get("keep"):
        put_back_files(data["keep"])
    discard(target)
    return kept


def recover(target):
    """Repair what a killed run left of the files step (see the module docstring)."""
    journal = _journal(target)
    data = journal.read()
    if data is None:
        if os.path.isdir(staging_dir(target)):
            shutil.rmtree(staging_dir(target), ignore_errors=True)
            return ["left-over staged configuration files %s removed" % staging_dir(target)]
        return []
    rp = data.get("restore_point")
    committed = target.exists(rp) if rp else target.live_exists()
    if data.get("step") == "begin" and not committed:
        discard(target)
        return ["an interrupted restore stopped before its swap: configuration files untouched"]
    if not rp:
        discard(target)
        return ["an interrupted restore onto a host without a database left configuration files partly "
                "written; rerun the restore"]
    kept = undo(target, data)
    return ["an interrupted restore (step %s) was undone: configuration files put back, restore point %s "
            "swapped back in (the restored copy is kept as %s)" % (data.get("step"), rp, kept)]


def install_after_swap(target, plan, files_root, restore_point, journal):
    """Step 4 with its undo: on failure the target is put back and RestoreError names the
    restore point."""
    keep = files_point_dir(target.state_dir, restore_point) if restore_point else None
    try:
        out = install(plan, files_root, keep, journal)
    except (OSError, RestoreError) as exc:
        data = dict(journal.data or {})
        try:
            kept = undo(target, data)
        except Exception as undo_exc:  # the journal stays: the next run repairs it
            raise RestoreError("writing the configuration files after the swap failed (%s), and so did the "
                               "rollback to restore point %s (%s); the next run repairs it from the journal"
                               % (exc, restore_point, undo_exc), restore_point=restore_point)
        raise RestoreError("writing the configuration files after the swap failed, the restore was rolled back: "
                           "%s. Restore point %s is live again with the files it had; the restored copy is kept as "
                           "restore point %s" % (exc, restore_point, kept), restore_point=restore_point,
                           rolled_back_to=restore_point, rollback_restore_point=kept)
    discard(target)
    return out
