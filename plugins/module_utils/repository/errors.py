# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The repository's errors, apart from ``repository.py`` so that what only names them (the host
keys of a Litestream replica, read by the health check) does not carry the repository's code."""

from __future__ import annotations


class RepositoryError(Exception):
    """A repository operation failed; the message is safe to show."""


class CorruptChunkError(RepositoryError):
    """A chunk is missing, does not decompress, or its content does not match its name."""

    def __init__(self, chunk_id, reason):
        super().__init__("chunk %s is corrupt: %s" % (chunk_id, reason))
        self.chunk_id = chunk_id
        self.reason = reason
