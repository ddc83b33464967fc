# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``open_engine()``: the engine of ``ConnectionParams.engine`` with every domain of the interface
(``interface.py``). A module that only probes opens ``probe_engines.open_probe_engine()`` instead, so
its AnsiballZ payload does not carry the backup, restore and maintenance code this file pulls in.
"""

from __future__ import annotations

from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import UnknownEngineError


def open_engine(params, read_only=False):
    """Return the (not yet connected) engine for ``params.engine``.

    ``read_only=True`` opens PostgreSQL with ``default_transaction_read_only`` and SQLite with
    ``mode=ro``, for callers that only read (health probes, digests of a live database).
    """
    if params.engine == "postgresql":
        from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_engine import PostgresEngine
        return PostgresEngine(params, read_only=read_only)
    if params.engine == "sqlite":
        from ansible_collections.bim.wall_system.plugins.module_utils.database.sqlite.sqlite_engine import SqliteEngine
        return SqliteEngine(params, read_only=read_only)
    raise UnknownEngineError(params.engine)
