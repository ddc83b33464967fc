# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore targets: the restore-and-swap interface every engine implements.

A target is the live database of one installation. Every operation on it runs under its
``TargetLock`` and starts with ``recover()``, which reads the swap journal a killed run may have
left and brings the target back to a consistent state. ``Target`` declares what the restore
procedures (``runner.py``) call and holds what both engines share (lock, journal, pruning);
each engine implements the rest in its own file: ``database/postgresql/pg_target.py`` (databases on a
server, renamed in place) and ``database/sqlite/sqlite_target.py`` (files, linked and replaced), each
of which describes its crash-safe swap. ``make_target`` asks the engine for its target.
"""

from __future__ import annotations

import abc
import datetime
import os

from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError
from ansible_collections.bim.wall_system.plugins.module_utils.database.schema import DIGEST_TABLES
from ansible_collections.bim.wall_system.plugins.module_utils.restore.errors import RestoreError
from ansible_collections.bim.wall_system.plugins.module_utils.restore.journal import (
    DEFAULT_STATE_DIR, Journal, TargetLock, safe_key)

# Kinds of scratch copies this collection names itself and may remove when a run left them.
SCRATCH_KINDS = ("restore", "verify", "drill")
STAMP_RE = r"\d{14}(?:_\d+)?(?:_[0-9a-f]{4})?"


def utc_stamp():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d%H%M%S")


def _spatial_problems(engine, tables):
    problems = []
    try:
        indexes = engine.spatial_indexes()
    except (DatabaseError, NotImplementedError, AttributeError, TypeError) as exc:
        return ["spatial indexes could not be checked: %s" % exc]
    for idx in indexes or []:
        if tables and idx.get("table") not in tables:
            continue
        if not idx.get("present", True) or not idx.get("valid", True):
            problems.append("spatial index %s on %s: %s" % (
                idx.get("name"), idx.get("table"), idx.get("problem") or "missing or invalid"))
    return problems


class Target(abc.ABC):
    """The restore-and-swap interface of one engine's live database (see the module docstring).

    Copies, restore points and scratch copies are named by the engine (a database name or a
    file path); the procedures only pass those names back."""

    engine_name = ""
    # True when the restore writes the stored image itself (byte for byte, every chunk checked on
    # the way in): a passed restore-level verification then proves the copy (``verify_identity``).
    restores_identical_image = False

    def __init__(self, params, state_dir=None, data_dir=None, staging_dir=None, scratch_dir=None):
        self.params = params
        self.state_dir = state_dir or DEFAULT_STATE_DIR
        self.data_dir = data_dir
        self.staging_dir = staging_dir
        self.scratch_dir = scratch_dir
        self.engine = open_engine(params)
        self.key = safe_key(self.describe_key())
        self.journal = Journal(os.path.join(self.state_dir, "%s.swap.json" % self.key))

    # -- what both engines share -------------------------------------------------------------
    def lock(self, wait=60.0):
        return TargetLock(os.path.join(self.state_dir, "%s.lock" % self.key), wait=wait)

    def pending_journal(self):
        return self.journal.read()

    def recover(self):
        """Repair what a killed run left: the swap (``_recover_swap`` of the engine), then the
        configuration-files step around it (``files_step.recover``). Returns what was done."""
        from ansible_collections.bim.wall_system.plugins.module_utils.restore import files_step
        return self._recover_swap() + files_step.recover(self)

    def live_digests(self, tables=DIGEST_TABLES):
        """Digests of the live database, or None when it does not exist."""
        if not self.live_exists():
            return None
        with open_engine(self.params) as eng:
            return eng.table_digests(tables)

    def prune(self, keep):
        """Drop all but the ``keep`` newest restore points; returns the dropped ones."""
        points = self.restore_points()
        drop = points[:-keep] if keep > 0 else points
        for name in drop:
            self.drop(name)
        return drop

    def swap_warnings(self):
        """Warnings about the live database before a swap replaces it (none by default)."""
        return []

    def verify_identity(self, name, manifest):
        """``(problems, tables)`` of a copy that is the stored image itself; only engines with
        ``restores_identical_image`` restore such copies."""
        raise RestoreError("a %s restore does not write the stored image; verify it in full" % self.engine_name)

    # -- naming --------------------------------------------------------------------------------
    @abc.abstractmethod
    def describe_key(self):
        """A text naming the live database uniquely on this host (for the lock and journal files)."""

    @property
    @abc.abstractmethod
    def live(self):
        """The name of the live database (a database name or an absolute file path)."""

    @abc.abstractmethod
    def exists(self, name):
        """Whether a database (copy, restore point) named ``name`` exists."""

    @abc.abstractmethod
    def live_exists(self):
        """Whether the live database exists."""

    @abc.abstractmethod
    def scratch_name(self, kind):
        """A new, unused name for a scratch copy of ``kind`` (SCRATCH_KINDS or ``copy``)."""

    @abc.abstractmethod
    def restore_points(self):
        """Names of the live database's restore points, oldest first."""

    @abc.abstractmethod
    def new_restore_point_name(self):
        """A new, unused restore point name."""

    # -- plan, restore, checks -------------------------------------------------------------------
    @abc.abstractmethod
    def data_directory(self):
        """The folder whose file system receives a restored database, or None when unknown."""

    @abc.abstractmethod
    def space_needs(self, stream_size, mode, jobs, tables, target=None):
        """``[(label, folder, bytes)]`` a restore of a ``stream_size``-byte stream needs
        (``target``: the copy's name chosen by the operator in mode ``new``)."""

    @abc.abstractmethod
    def restore_into(self, name, stream, jobs=1, tables=None, verifier=None):
        """Create copy ``name`` from the backup's database ``stream``; a ``verifier``
        (``CopyVerifier``) may hear of tables that are complete early."""

    @abc.abstractmethod
    def copy_verifier(self, name, expected, tables=None, archive=None):
        """The ``CopyVerifier`` of copy ``name`` against the manifest's ``expected`` tables;
        ``archive`` opens the backup's database stream again (``CopyVerifier``)."""

    @abc.abstractmethod
    def drop(self, name):
        """Remove copy or restore point ``name``."""

    @abc.abstractmethod
    def size_of(self, name):
        """Bytes copy ``name`` takes."""

    @abc.abstractmethod
    def check_restore_point(self, name):
        """Problems found in restore point ``name`` before a rollback swaps it in ([]: sound)."""

    # -- swap --------------------------------------------------------------------------------------
    @abc.abstractmethod
    def swap_in(self, incoming, incoming_is_restore_point=False, session_timeout=30.0, stream_info=None,
                restore_point=None):
        """Make ``incoming`` the live database, crash-safe (journalled); the old live one becomes
        ``restore_point``. Returns the restore point's name (None without a live database)."""

    @abc.abstractmethod
    def _recover_swap(self):
        """Finish or undo a swap a killed run left and remove scratch copies; returns actions."""


def make_target(params, **options):
    """The restore target of ``params``' database, from its engine (``restore_target``)."""
    try:
        engine = open_engine(params)
    except DatabaseError as exc:
        raise RestoreError(str(exc)) from None
    return engine.restore_target(**options)
