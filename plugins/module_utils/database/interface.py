# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one interface every database engine implements, one small interface per domain.

Callers (health checks, maintenance, backup, restore) only ever see ``DatabaseEngine``;
``engine.open_engine()`` picks the implementation from ``ConnectionParams.engine``
(``probe_engines.open_probe_engine()`` the probe-only one). Methods return
plain Python values and raise ``DatabaseError`` with a message that is safe to show. The
domains, each declared in its own ``api_*.py`` and implemented by one mixin per engine:

  api_probes.py  ``HealthProbes``  health probes          pg_core.py / sqlite_core.py
  api_digests.py ``Digests``       digests, verification  pg_core.py / sqlite_core.py
  api_dump.py    ``Dumps``         archive/dump (backup)  pg_archive.py / sqlite_archive.py
  api_restore.py ``Restores``      restore and swap       pg_restore.py + pg_target.py /
                                                          sqlite_restore.py + sqlite_target.py
  api_maintenance.py ``Maintains`` maintenance        pg_maintenance(_ops).py / sqlite_maintenance(_ops).py

Nothing outside ``database/`` (and ``archiving/``, whose tools are engine-specific) branches on
the engine: tests/unit/test_engine_branches.py fails on any such branch.
"""

from __future__ import annotations

import abc

from ansible_collections.bim.wall_system.plugins.module_utils.database.api_digests import Digests
from ansible_collections.bim.wall_system.plugins.module_utils.database.api_dump import Dumps
from ansible_collections.bim.wall_system.plugins.module_utils.database.api_maintenance import Maintains
from ansible_collections.bim.wall_system.plugins.module_utils.database.api_probes import HealthProbes
from ansible_collections.bim.wall_system.plugins.module_utils.database.api_restore import Restores
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError
from ansible_collections.bim.wall_system.plugins.module_utils.database.schema import CLEANUP_TABLES


class ProbingEngine(HealthProbes, Digests):
    """A connection to one BIM database, used as a context manager: what every engine has, and
    all that a module that only looks needs (``probe_engines.py``)."""

    name = ""
    # The driver connection (psycopg or sqlite3), set by connect(); both drivers close the same way.
    conn = None
    # The discovered schema of the open connection (schema()); forgotten on close.
    _schema = None

    def __init__(self, params, read_only=False):
        self.params = params
        # Read-only engines cannot change data: probes and verification use them.
        self.read_only = read_only

    def __enter__(self):
        self.connect()
        return self

    def __exit__(self, *exc_info):
        self.close()

    @abc.abstractmethod
    def connect(self):
        """Open the connection; return the seconds it took. Never creates a database."""

    def close(self):
        """Close the connection; safe to call twice."""
        self._schema = None
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None

    def schema(self, refresh=False):
        """The BIM schema of this database as its catalog and ``params.schema`` describe it
        (``discovered.DiscoveredSchema``): read once per connection, again with ``refresh``
        (after maintenance changed indexes)."""
        if self._schema is None or refresh:
            self._schema = self._discover_schema()
        return self._schema

    @abc.abstractmethod
    def _discover_schema(self):
        """Read the catalog into a ``DiscoveredSchema`` (pg_schema.py / sqlite_schema.py)."""

    # ---- queries: each engine's _run talks to its driver; these name what the caller wants ----
    @abc.abstractmethod
    def _run(self, query, params, fetch):
        """Run ``query`` with ``params``; ``fetch`` "all" (rows), "one" (a row or None) or None
        (the affected row count, -1 if not applicable). Driver errors become DatabaseError."""

    def _fetchall(self, query, params=None):
        """Run ``query`` and return all rows as tuples."""
        return self._run(query, params, "all")

    def _fetchone(self, query, params=None):
        """Run ``query`` and return the first row (a tuple) or None."""
        return self._run(query, params, "one")

    def _execute(self, query, params=None):
        """Run ``query`` for its effect; return the affected row count (-1 if not applicable)."""
        return self._run(query, params, None)


class DatabaseEngine(ProbingEngine, Dumps, Restores, Maintains):
    """The whole interface: an engine of ``engine.open_engine()``."""

    def _cleanup_names(self, table):
        """(table, time column, key column) names of a cleanup table (``schema()``), unquoted;
        refuses a table cleanup may not touch or one that lacks what cleanup needs."""
        if table not in CLEANUP_TABLES:
            raise DatabaseError("cleanup is only allowed on %s, not %r" % (", ".join(CLEANUP_TABLES), table))
        columns = self.schema().time_columns.get(table)
        problem = columns.cleanup_problem() if columns else "table %s does not exist" % table
        if problem:
            raise DatabaseError(problem)
        return table, columns.time, columns.key
