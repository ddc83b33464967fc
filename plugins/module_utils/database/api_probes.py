# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Health probes: the interface an engine implements for the ``database`` health check
(``health/database_check.py``): bounded probes that never scan a table, and the advice an
operator gets for what they find."""

from __future__ import annotations

import abc


class HealthProbes(abc.ABC):
    """Health-probe domain of an engine."""

    def missing_database(self):
        """``(message, recommendation)`` when the database is known not to exist without
        connecting (a driver that would create it must never be asked to), else None."""
        return None

    @abc.abstractmethod
    def existing_tables(self):
        """Names of the BIM tables (schema.BIM_TABLES) present in the database."""

    def elsewhere_advice(self):
        """When some BIM tables are not where this connection looks: a recommendation naming
        where all of them are (PostgreSQL: another schema, set ``db_namespace``), else None."""
        return None

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
    def index_advice(self, index):
        """What an operator should run for a spatial index entry (``spatial_indexes()``) with a
        problem: one recommendation, prefixed ``database:``."""

    @abc.abstractmethod
    def create_index_hint(self, table):
        """How to create the missing spatial index of ``table``: text inserted after "create
        one" (starts with a space, or is empty)."""

    @abc.abstractmethod
    def log_counts(self, since, until):
        """``{category: {"total": n, "errors": n}}`` of the application's log entries with
        ``since <= time < until`` (timezone-aware datetimes): the ``logs`` health check."""

    @abc.abstractmethod
    def top_error_messages(self, since, until, limit=5):
        """The most repeated error messages (numbers normalized) in the window, most frequent
        first: ``[{"category", "message", "count", "example"}]``."""
