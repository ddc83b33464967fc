# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The probing part of ``sqlite.SqliteEngine`` (see ``probe_engines.py``)."""

from __future__ import annotations

from ansible_collections.bim.wall_system.plugins.module_utils.database.sqlite.sqlite_archiving import SqliteArchivingMixin
from ansible_collections.bim.wall_system.plugins.module_utils.database.sqlite.sqlite_core import SqliteCoreMixin
from ansible_collections.bim.wall_system.plugins.module_utils.database.sqlite.sqlite_logs import SqliteLogsMixin


class SqliteProbeEngine(SqliteArchivingMixin, SqliteLogsMixin, SqliteCoreMixin):
    """Connection, probes, logs analysis and marker times of SQLite."""

    name = "sqlite"
