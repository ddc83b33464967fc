# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Errors of the database engine layer."""

from __future__ import annotations


class DatabaseError(Exception):
    """A database operation failed. The message is safe to show: it never holds a password."""


class MissingLibraryError(DatabaseError):
    """An optional Python library the engine needs is not installed on the managed host."""

    def __init__(self, library, exception_text=None):
        super().__init__("the Python library %s is required" % library)
        self.library = library
        self.exception_text = exception_text


class UnknownEngineError(DatabaseError):
    """``ConnectionParams.engine`` names no engine of the collection (both engine factories say so)."""

    def __init__(self, name):
        super().__init__("unknown database engine %r (expected postgresql or sqlite)" % (name,))


class LockTimeout(DatabaseError):
    """A maintenance batch waited longer than its lock (or busy) timeout for a lock."""
