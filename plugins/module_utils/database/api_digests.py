# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Digests and verification: the interface an engine implements for backups (the manifest's
figures), restore verification (``restore/verifier.py``) and ``check_live_unchanged``."""

from __future__ import annotations

import abc

from ansible_collections.bim.wall_system.plugins.module_utils.database.schema import DIGEST_TABLES


class Digests(abc.ABC):
    """Row counts and byte-exact table digests of an engine."""

    @abc.abstractmethod
    def row_counts(self, tables=DIGEST_TABLES):
        """Exact row count per existing table of ``tables``."""

    @abc.abstractmethod
    def table_digest(self, table):
        """SHA-256 hex digest of the table's rows in primary-key order (same data, same digest)."""

    @abc.abstractmethod
    def table_digests(self, tables=DIGEST_TABLES, forms=None, recorded=None, archive=None):
        """``{table: {"rows": int, "digest": str}}`` for every existing table of ``tables``, all
        from one snapshot, with ``digest_form`` where the engine has more than one form;
        ``forms`` ({table: form}, e.g. a manifest's) makes the digests comparable with those,
        ``recorded`` ({table: the manifest's entry}) hands a form what else it recorded, and
        ``archive`` (a callable: a context manager reading the backup's database stream again)
        lets a form compare with the backup's own rows where its cheap check does not decide."""
