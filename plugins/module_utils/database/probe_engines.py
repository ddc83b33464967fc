# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Engines for modules that only look: connection, probes, the logs analysis and the
archiver's statistics (the core, logs and archiving mixins of each engine).

``open_probe_engine()`` is ``engine.open_engine()`` without the backup, restore and maintenance
domains. The health check and the monitoring exporter open it, so their AnsiballZ payload (built on
the controller, sent and unpacked on every run) carries about half the code: Ansible packs every
module a module imports, wherever the import stands, and ``engine.py`` imports all of them. The
engine's module is imported only for the engine asked for, so a SQLite host never imports psycopg.
"""

from __future__ import annotations

from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import UnknownEngineError


def open_probe_engine(params, read_only=True):
    """Return the (not yet connected) probe engine for ``params.engine``; read-only unless asked."""
    if params.engine == "postgresql":
        from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_probe_engine import PostgresProbeEngine
        return PostgresProbeEngine(params, read_only=read_only)
    if params.engine == "sqlite":
        from ansible_collections.bim.wall_system.plugins.module_utils.database.sqlite.sqlite_probe_engine import SqliteProbeEngine
        return SqliteProbeEngine(params, read_only=read_only)
    raise UnknownEngineError(params.engine)
