# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The probing part of ``postgresql.PostgresEngine`` (see ``probe_engines.py``)."""

from __future__ import annotations

from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_archiving import PostgresArchivingMixin
from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_core import PostgresCoreMixin
from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_logs import PostgresLogsMixin


class PostgresProbeEngine(PostgresArchivingMixin, PostgresLogsMixin, PostgresCoreMixin):
    """Connection, probes, logs analysis and archiver statistics of PostgreSQL."""

    name = "postgresql"
