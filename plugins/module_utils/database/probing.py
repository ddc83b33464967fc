# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every engine has: the connection, the discovered schema, the query helpers and the
health probes. ``interface.DatabaseEngine`` adds the other domains.

Its own file so that what only probes (``probe_engines.py``: the health check, the monitoring
exporter) imports none of the backup, restore, maintenance and digest interfaces: Ansible packs
every module a module imports into the AnsiballZ payload, wherever the import stands.
"""

from __future__ import annotations

import abc

from ansible_collections.bim.wall_system.plugins.module_utils.database.api_probes import HealthProbes


class ProbingEngine(HealthProbes):
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
