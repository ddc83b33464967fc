# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SQLite engine, assembled from one mixin per domain so each domain stays in its own file
(the domains' interfaces: ``interface.py``):

  sqlite_core.py: connection and probes; sqlite_digests.py: row counts and table digests
  sqlite_maintenance.py: maintenance statements; sqlite_maintenance_ops.py: vacuum, analyze, reindex
  sqlite_archive.py: dump stream for backups
  sqlite_restore.py: restore steps; sqlite_target.py: the restore target (copies, swap, recovery)
  sqlite_logs.py: analysis of the application's logs table
  sqlite_archiving.py: journal mode for Litestream, recovery markers
"""

from __future__ import annotations

from ansible_collections.bim.wall_system.plugins.module_utils.database.sqlite.sqlite_core import SqliteCoreMixin
from ansible_collections.bim.wall_system.plugins.module_utils.database.sqlite.sqlite_digests import SqliteDigestsMixin
from ansible_collections.bim.wall_system.plugins.module_utils.database.sqlite.sqlite_maintenance import SqliteMaintenanceMixin
from ansible_collections.bim.wall_system.plugins.module_utils.database.sqlite.sqlite_maintenance_ops import SqliteMaintenanceOpsMixin
from ansible_collections.bim.wall_system.plugins.module_utils.database.sqlite.sqlite_archive import SqliteArchiveMixin
from ansible_collections.bim.wall_system.plugins.module_utils.database.sqlite.sqlite_restore import SqliteRestoreMixin
from ansible_collections.bim.wall_system.plugins.module_utils.database.sqlite.sqlite_logs import SqliteLogsMixin
from ansible_collections.bim.wall_system.plugins.module_utils.database.sqlite.sqlite_archiving import SqliteArchivingMixin
from ansible_collections.bim.wall_system.plugins.module_utils.database.interface import DatabaseEngine


class SqliteEngine(SqliteArchivingMixin, SqliteLogsMixin, SqliteRestoreMixin, SqliteArchiveMixin,
                   SqliteMaintenanceOpsMixin, SqliteMaintenanceMixin, SqliteDigestsMixin, SqliteCoreMixin, DatabaseEngine):
    """SQLite implementation of ``interface.DatabaseEngine``."""

    name = "sqlite"
