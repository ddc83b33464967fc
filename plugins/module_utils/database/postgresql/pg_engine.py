# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The PostgreSQL engine, assembled from one mixin per domain so each domain stays in its own file
(the domains' interfaces: ``interface.py``):

  pg_core.py: connection and probes; pg_digests.py: row counts and table digests
  pg_maintenance.py: maintenance statements; pg_maintenance_ops.py: vacuum, analyze, reindex
  pg_archive.py: dump stream for backups
  pg_restore.py: restore steps; pg_target.py: the restore target (copies, swap, recovery)
  pg_logs.py: analysis of the application's logs table
  pg_archiving.py: continuous-archiving settings, pg_stat_archiver, recovery markers
"""

from __future__ import annotations

from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_core import PostgresCoreMixin
from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_digests import PostgresDigestsMixin
from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_maintenance import PostgresMaintenanceMixin
from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_maintenance_ops import PostgresMaintenanceOpsMixin
from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_archive import PostgresArchiveMixin
from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_restore import PostgresRestoreMixin
from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_logs import PostgresLogsMixin
from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_archiving import PostgresArchivingMixin
from ansible_collections.bim.wall_system.plugins.module_utils.database.interface import DatabaseEngine


class PostgresEngine(PostgresArchivingMixin, PostgresLogsMixin, PostgresRestoreMixin, PostgresArchiveMixin,
                     PostgresMaintenanceOpsMixin, PostgresMaintenanceMixin, PostgresDigestsMixin, PostgresCoreMixin,
                     DatabaseEngine):
    """PostgreSQL implementation of ``interface.DatabaseEngine``."""

    name = "postgresql"
