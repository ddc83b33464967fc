# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SQLite: restore, swap and rollback."""

from __future__ import annotations


class SqliteRestoreMixin:
    """Restore methods of the SQLite engine."""
