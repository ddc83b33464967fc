# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore and swap: the interface an engine implements for ``restore/runner.py``.

An engine hands out its restore target (``restore/targets.Target``: naming of copies and restore
points, restore into a copy, the copy's checks, the crash-safe swap and its recovery); the
target's implementation lives beside the engine (``pg_target.py``, ``sqlite_target.py``).
"""

from __future__ import annotations

import abc


class Restores(abc.ABC):
    """Restore-and-swap domain of an engine."""

    @abc.abstractmethod
    def restore_target(self, **options):
        """The ``restore/targets.Target`` of this engine's live database; ``options``: state_dir,
        data_dir, staging_dir, scratch_dir (see ``Target``)."""
