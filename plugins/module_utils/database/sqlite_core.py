# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SQLite: connection, probes and table digests (being written)."""

from __future__ import annotations

from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import DatabaseEngine


class SqliteCoreMixin(DatabaseEngine):
    """Connection, probes and digests of the SQLite engine."""
