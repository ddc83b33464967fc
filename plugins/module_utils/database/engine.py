# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one interface both database engines implement.

Callers (health checks, maintenance, backup, restore) only ever see ``DatabaseEngine``;
``open_engine()`` picks the implementation from ``ConnectionParams.engine``. Methods return
plain Python values and raise ``DatabaseError`` with a message that is safe to show.
"""

from __future__ import annotations

import abc

from ansible_collections.bim.wall_system.plugins.module_utils.database.schema import DIGEST_TABLES


class DatabaseEngine(abc.ABC):
    """A connection to one BIM database, used as a context manager."""

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

    @abc.abstractmethod
    def existing_tables(self):
        """Names of the BIM tables (schema.BIM_TABLES) present in the database."""

    @abc.abstractmethod
    def query_latency(self):
        """Run bounded probe queries (a key lookup and a spatial window query, never a full scan).

        Returns ``{"key_lookup_ms": float, "spatial_window_ms": float, "spatial_window_rows": int}``.
        """

    @abc.abstractmethod
    def connection_usage(self):
        """Return ``{"active": int, "idle": int, "max_connections": int or None}`` (PostgreSQL adds
        ``idle_in_transaction`` and ``total``, all client sessions of the server)."""

    @abc.abstractmethod
    def data_directory(self):
        """The folder whose file system holds the data (for disk usage), or None if unknown."""

    @abc.abstractmethod
    def spatial_indexes(self):
        """One dict per expected spatial index (declared in ``bim_schema`` or found in the
        catalog): ``{name, table, column, expected, declared, present, valid, problem}``.

        Extra entries (``expected: False``) report leftovers, invalid duplicates and other
        invalid indexes of the spatial tables. Spatial tables without any spatial index are
        not errors and not listed here: ``schema().unindexed``.
        """

    @abc.abstractmethod
    def row_counts(self, tables=DIGEST_TABLES):
        """Exact row count per existing table of ``tables``."""

    @abc.abstractmethod
    def table_digest(self, table):
        """SHA-256 hex digest of the table's rows in primary-key order (same data, same digest)."""

    @abc.abstractmethod
    def table_digests(self, tables=DIGEST_TABLES, forms=None):
        """``{table: {"rows": int, "digest": str}}`` for every existing table of ``tables``, all
        from one snapshot. PostgreSQL adds ``digest_form`` (the form each table was digested in);
        ``forms`` ({table: form}, e.g. a manifest's) makes the digests comparable with those."""


def open_engine(params, read_only=False):
    """Return the (not yet connected) engine for ``params.engine``.

    ``read_only=True`` opens PostgreSQL with ``default_transaction_read_only`` and SQLite with
    ``mode=ro``, for callers that only read (health probes, digests of a live database).
    """
    if params.engine == "postgresql":
        from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql import PostgresEngine
        return PostgresEngine(params, read_only=read_only)
    if params.engine == "sqlite":
        from ansible_collections.bim.wall_system.plugins.module_utils.database.sqlite import SqliteEngine
        return SqliteEngine(params, read_only=read_only)
    from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError
    raise DatabaseError("unknown database engine %r (expected postgresql or sqlite)" % (params.engine,))
