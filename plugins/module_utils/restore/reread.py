# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup's database stream opened a second time, for a verification that must compare a
table with the backup's own rows (``CopyVerifier``'s ``archive``): its chunks are read and
hash-checked as in the restore, and what the repository raises (a damaged or missing chunk)
becomes a ``DatabaseError`` the verification reports, never a traceback."""

from __future__ import annotations

from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError


class _Reread:
    """A context manager with ``read(size)`` over a repository ``ChunkReader``."""

    def __init__(self, opener):
        self._opener = opener
        self._stream = None

    def __enter__(self):
        self._stream = self._call(self._opener)
        self._call(self._stream.__enter__)
        return self

    def read(self, size=-1):
        return self._call(self._stream.read, size)

    def __exit__(self, *exc):
        return self._stream.__exit__(*exc)

    @staticmethod
    def _call(func, *args):
        from ansible_collections.bim.wall_system.plugins.module_utils.repository.errors import RepositoryError
        try:
            return func(*args)
        except RepositoryError as exc:
            raise DatabaseError("reading the backup again: %s" % exc) from None


def archive_opener(repo, manifest, workers):
    """A callable that opens ``manifest``'s database stream again (``workers`` decoding threads)."""
    return lambda: _Reread(lambda: repo.open_stream(manifest, "database", workers=workers))
