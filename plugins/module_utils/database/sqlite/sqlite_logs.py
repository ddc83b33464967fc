# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SQLite: analysis of the application's logs table.

The time, level, category and message columns come from the discovered schema
(``engine.schema().time_columns["logs"]``). Times are UTC text ``YYYY-MM-DD HH:MM:SS`` (they
sort as strings), so a window is a range scan of the time column (by its index where the table
has one). Messages are normalized by a deterministic SQL function registered on the connection
(``bim_normalize``), the same rules as pg_logs' SQL. A table without a category column counts
every entry under ``all``.
"""

from __future__ import annotations

import re

from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError
from ansible_collections.bim.wall_system.plugins.module_utils.database.sqlite.sqlite_core import quote

ERROR_LEVELS = ("error", "critical", "fatal")
NO_CATEGORY = "all"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_HEX = re.compile(r"0[xX][0-9a-fA-F]+")
_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?")


def normalize_message(message):
    """``'wall 1234 offset failed after 3.5 ms'`` -> ``'wall N offset failed after N ms'``."""
    if message is None:
        return None
    text = _UUID.sub("<uuid>", str(message))
    text = _HEX.sub("<hex>", text)
    return _NUMBER.sub("N", text)


def _sqlite_time(value):
    """A datetime (aware: converted to UTC) or a string, as the table's text timestamps."""
    if hasattr(value, "strftime"):
        if getattr(value, "tzinfo", None) is not None:
            import datetime
            value = value.astimezone(datetime.timezone.utc)
        return value.strftime(TIME_FORMAT)
    return str(value)


class SqliteLogsMixin:
    """Logs methods of the SQLite engine."""

    def _register_normalize(self):
        self.conn.create_function("bim_normalize", 1, normalize_message, deterministic=True)

    def _log_columns(self):
        """{ts, level, category, message} as SQL of the logs table's discovered columns."""
        columns = self.schema().time_columns.get("logs")
        problem = columns.analysis_problem() if columns else "table logs does not exist"
        if problem:
            raise DatabaseError(problem)
        return dict(ts=quote(columns.time), level=quote(columns.level),
                    category=quote(columns.category) if columns.category else "'%s'" % NO_CATEGORY,
                    message=quote(columns.message) if columns.message else None)

    def log_counts(self, since, until):
        """``{category: {"total": n, "errors": n}}`` of the entries with ``since <= time < until``."""
        c = self._log_columns()
        placeholders = ",".join("?" * len(ERROR_LEVELS))
        rows = self._fetchall(
            "SELECT {category}, count(*), sum(CASE WHEN lower({level}) IN ({p}) THEN 1 ELSE 0 END)"
            " FROM logs WHERE {ts} >= ? AND {ts} < ? GROUP BY 1".format(p=placeholders, **c),
            list(ERROR_LEVELS) + [_sqlite_time(since), _sqlite_time(until)])
        return {row[0]: {"total": int(row[1]), "errors": int(row[2] or 0)} for row in rows}

    def top_error_messages(self, since, until, limit=5):
        """The most repeated error messages (numbers normalized) in the window:
        ``[{"category", "message", "count", "example"}]``, most frequent first; empty when the
        table has no message column."""
        c = self._log_columns()
        if c["message"] is None:
            return []
        self._register_normalize()
        placeholders = ",".join("?" * len(ERROR_LEVELS))
        rows = self._fetchall(
            "SELECT {category}, bim_normalize({message}) AS normalized, count(*), min({message})"
            " FROM logs WHERE {ts} >= ? AND {ts} < ? AND lower({level}) IN ({p})"
            " GROUP BY 1, 2 ORDER BY count(*) DESC, 1, 2 LIMIT ?".format(p=placeholders, **c),
            [_sqlite_time(since), _sqlite_time(until)] + list(ERROR_LEVELS) + [int(limit)])
        return [{"category": r[0], "message": r[1], "count": int(r[2]), "example": r[3]} for r in rows]
