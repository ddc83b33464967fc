# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SQLite restore target: the stored file image written beside the live file, checked, and
swapped in by links and one rename (``restore/targets.Target`` is the interface).

Swap (restored, verified, self-contained file ``I`` in L's folder)::

    journal; checkpoint L (its WAL folded into the file)
    journal; link L -> R, and L-wal / L-journal -> R-wal / R-journal when present
    journal; unlink L-wal, L-shm, L-journal (the new file must not meet a stale WAL)
    journal; rename I -> L  (os.replace: atomic)   <- commit point; journal removed

  recovery: I still exists -> before the commit point: side files linked back from R, the
  links R* removed, I removed (live untouched); I gone -> done.
"""

from __future__ import annotations

import glob
import os
import re

from ansible_collections.bim.wall_system.plugins.module_utils.common.atomic import fsync_directory
from ansible_collections.bim.wall_system.plugins.module_utils.common.paths import unused_path
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError
from ansible_collections.bim.wall_system.plugins.module_utils.database.schema import DIGEST_TABLES
from ansible_collections.bim.wall_system.plugins.module_utils.database.sqlite.sqlite_restore import remove_database_file
from ansible_collections.bim.wall_system.plugins.module_utils.restore.errors import RestoreError
from ansible_collections.bim.wall_system.plugins.module_utils.restore.files import FILE_MODE_MASK, owner_ids
from ansible_collections.bim.wall_system.plugins.module_utils.restore.targets import (
    SCRATCH_KINDS, STAMP_RE, Target, _spatial_problems, utc_stamp)
from ansible_collections.bim.wall_system.plugins.module_utils.restore.verifier import CopyVerifier


class SqliteTarget(Target):
    engine_name = "sqlite"
    # The file written is the stored image itself (every chunk hash-checked on the way in).
    restores_identical_image = True

    def __init__(self, params, **kwargs):
        if not params.sqlite_path:
            raise RestoreError("sqlite_path is required for a SQLite restore")
        super().__init__(params, **kwargs)

    def describe_key(self):
        return "sqlite-%s" % os.path.abspath(self.params.sqlite_path)

    @property
    def live(self):
        return os.path.abspath(self.params.sqlite_path)

    @property
    def folder(self):
        return os.path.dirname(self.live)

    def exists(self, name):
        return os.path.exists(name)

    def live_exists(self):
        return os.path.exists(self.live)

    def scratch_name(self, kind):
        folder = self.folder if kind == "restore" else (self.scratch_dir or self.folder)
        base = os.path.join(folder, ".%s.%s-%s" % (os.path.basename(self.live), kind, utc_stamp()))
        return unused_path(base)

    def restore_points(self):
        pattern = re.compile(re.escape(os.path.basename(self.live)) + r"\.rp-" + STAMP_RE + "$")
        found = [p for p in glob.glob(glob.escape(self.live) + ".rp-*") if pattern.match(os.path.basename(p))]
        return sorted(found)

    def new_restore_point_name(self):
        return unused_path("%s.rp-%s" % (self.live, utc_stamp()))

    def data_directory(self):
        return self.data_dir or self.folder

    def space_needs(self, stream_size, mode, jobs, tables, target=None):
        where = os.path.dirname(os.path.abspath(target)) if target else (
            self.folder if mode == "swap" else (self.scratch_dir or self.folder))
        return [("restored database file", where, stream_size)]

    def swap_warnings(self):
        """A swap replaces the file under an application that still holds it open: it would keep
        writing to the restore point."""
        holders = self.engine.processes_holding(self.live) if self.live_exists() else []
        if not holders:
            return []
        return ["processes %s hold %s open; stop the application before a swap or it keeps "
                "writing to the restore point" % (", ".join(map(str, holders)), self.live)]

    # -- restore and checks ----------------------------------------------------------------
    def restore_into(self, name, stream, jobs=1, tables=None, verifier=None):
        """Write the file image read from ``stream`` to new file ``name`` (a path; ``verifier`` is not
        told anything: the copy is only readable once complete)."""
        if os.path.exists(name):
            raise RestoreError("%s already exists; choose another target path" % name)
        folder = os.path.dirname(os.path.abspath(name))
        if not os.path.isdir(folder):
            raise RestoreError("the folder %s of the restore target does not exist" % folder)
        like = self.live if self.live_exists() else (self.restore_points() or [None])[-1]
        try:
            self.engine.write_database_file(stream, name, like=like)
            self.engine.make_self_contained(name)
            if tables:
                self.engine.delete_rows_except(name, set(tables), DIGEST_TABLES)
                self.engine.make_self_contained(name)
        except BaseException:
            self.drop(name)
            raise

    def copy_verifier(self, name, expected, tables=None, archive=None):
        """A ``CopyVerifier`` of file ``name``: rows and digests against the manifest,
        integrity_check, foreign_key_check, rtreecheck and the spatial index probes (no SQLite
        digest form reads the backup's ``archive`` again)."""
        names = list(tables) if tables else sorted(expected)

        def checks():
            found = self.engine.check_database_file(name)
            if not any(p.startswith("cannot open") for p in found):
                with self.engine.engine_for_path(name) as eng:
                    found += _spatial_problems(eng, names)
            return found

        return CopyVerifier(self.engine.engine_for_path(name).params, expected, names, checks,
                            after=lambda: self.engine.make_self_contained(name))

    def verify_identity(self, name, manifest):
        """Checks of a copy that is byte for byte the image a passed restore-level verification
        of the same backup checked in full: every chunk was hash-checked on the way in and the
        manifest's checksum covers the chunk list, so integrity checks and digests would only
        repeat that verification. What is left to prove is that the file on disk is whole and
        opens as that database. Returns ``(problems, tables)``; the tables carry the manifest's
        figures, proven by the identity."""
        expected = manifest.get("tables") or {}
        problems = self.engine.check_image(name, int(manifest["streams"]["database"]["size"]))
        result = {t: {"rows": v.get("rows"), "expected_rows": v.get("rows"), "digest": v.get("digest"),
                      "matches": not problems} for t, v in sorted(expected.items())}
        return problems, result

    def drop(self, name):
        remove_database_file(name)

    def size_of(self, name):
        return os.path.getsize(name)

    # -- swap ------------------------------------------------------------------------------
    def swap_in(self, incoming, incoming_is_restore_point=False, session_timeout=30.0, stream_info=None,
                restore_point=None):
        """Make file ``incoming`` the live database (see the module docstring); ``stream_info``:
        the manifest's database stream, whose ``journal_mode`` (the backed-up file's; the stored
        image is a plain file) the incoming file is given before the swap. A backup that records
        none takes the live file's mode. Returns the restore point's path (None without one)."""
        live = self.live
        live_existed = self.live_exists()
        rp = (restore_point or self.new_restore_point_name()) if live_existed else None
        if not incoming_is_restore_point:
            mode = (stream_info or {}).get("journal_mode") or (
                self.engine.file_journal_mode(live) if live_existed else None)
            if mode:
                self.engine.set_file_journal_mode(incoming, mode)
            if not live_existed:
                self._give_recorded_owner(incoming, (stream_info or {}).get("owner"))
        self.engine.make_self_contained(incoming)
        self.journal.begin(op="swap", engine="sqlite", live=live, incoming=incoming, restore_point=rp,
                           live_existed=live_existed, incoming_is_restore_point=incoming_is_restore_point)
        try:
            if live_existed:
                self.journal.step("checkpoint_live")
                try:
                    self.engine.make_self_contained(live)
                except DatabaseError:
                    pass  # its WAL then moves with it into the restore point
                self.journal.step("link_restore_point")
                os.link(live, rp)
                for suffix in ("-wal", "-journal"):
                    if os.path.exists(live + suffix):
                        os.link(live + suffix, rp + suffix)
                fsync_directory(self.folder)
                self.journal.step("unlink_side_files")
                for suffix in ("-wal", "-shm", "-journal"):
                    try:
                        os.unlink(live + suffix)
                    except FileNotFoundError:
                        pass
            self.journal.step("replace")
            os.replace(incoming, live)
            fsync_directory(self.folder)
            for suffix in ("-wal", "-shm", "-journal"):
                if os.path.exists(incoming + suffix):
                    os.unlink(incoming + suffix)
            self.journal.step("done")
        except BaseException:
            self._recover_swap()
            raise
        self.journal.clear()
        return rp

    @staticmethod
    def _give_recorded_owner(path, record):
        """A host without the live file: the restored one gets the source file's recorded mode and
        owner (not the restoring user's 0600), never set-id bits."""
        if not record:
            return
        uid, gid = owner_ids(record)
        if uid is not None and os.geteuid() == 0:
            os.chown(path, uid, gid)
        os.chmod(path, int(record["mode"]) & FILE_MODE_MASK)

    def _recover_swap(self):
        actions = []
        j = self.journal.read()
        if j:
            live, incoming, rp = j["live"], j["incoming"], j.get("restore_point")
            if os.path.exists(incoming):
                if rp and os.path.exists(rp) and os.path.exists(live) and os.path.samefile(live, rp):
                    for suffix in ("-wal", "-journal"):
                        if os.path.exists(rp + suffix) and not os.path.exists(live + suffix):
                            os.link(rp + suffix, live + suffix)
                    for name in (rp, rp + "-wal", rp + "-journal", rp + "-shm"):
                        if os.path.exists(name):
                            os.unlink(name)
                elif rp and os.path.exists(rp) and not os.path.exists(live):
                    os.link(rp, live)
                if not j.get("incoming_is_restore_point"):
                    self.drop(incoming)
                fsync_directory(os.path.dirname(live))
                actions.append("an interrupted swap (step %s) was undone: %s was never replaced" % (j.get("step"), live))
            else:
                for suffix in ("-wal", "-shm", "-journal"):
                    if os.path.exists(incoming + suffix):
                        os.unlink(incoming + suffix)
                if not os.path.exists(live) and rp and os.path.exists(rp):
                    os.link(rp, live)
                    actions.append("%s was missing: restore point %s put back" % (live, rp))
                else:
                    actions.append("an interrupted swap (step %s) had completed" % j.get("step"))
            self.journal.clear()
        base = os.path.basename(self.live)
        folders = {self.folder}
        if self.scratch_dir:
            folders.add(self.scratch_dir)
        for folder in folders:
            for kind in SCRATCH_KINDS:
                pattern = re.compile(r"\." + re.escape(base) + r"\." + kind + "-" + STAMP_RE + "$")
                for path in glob.glob(os.path.join(glob.escape(folder), ".%s.%s-*" % (glob.escape(base), kind))):
                    if pattern.match(os.path.basename(path)):
                        self.drop(path)
                        actions.append("left-over scratch file %s removed" % path)
        return actions

    def check_restore_point(self, name):
        return self.engine.check_database_file(name)
