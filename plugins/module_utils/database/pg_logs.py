# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL: analysis of the application's logs table.

Every query is a range scan of ``idx_logs_created_at`` bounded by the window; messages are
normalized in SQL (UUIDs -> ``<uuid>``, hex literals -> ``<hex>``, numbers -> ``N``) with the same
rules as ``sqlite_logs.normalize_message`` so both engines group the same messages.
"""

from __future__ import annotations

ERROR_LEVELS = ["error", "critical", "fatal"]

# Mirrors sqlite_logs.normalize_message (PostgreSQL ARE syntax).
_NORMALIZED = (
    "regexp_replace(regexp_replace(regexp_replace(message,"
    " '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}', '<uuid>', 'g'),"
    " '0[xX][0-9a-fA-F]+', '<hex>', 'g'),"
    " '[0-9]+(\\.[0-9]+)?', 'N', 'g')"
)


class PostgresLogsMixin:
    """Logs methods of the PostgreSQL engine."""

    def log_counts(self, since, until):
        """``{category: {"total": n, "errors": n}}`` of the entries with ``since <= created_at < until``.

        ``since``/``until`` are timezone-aware datetimes.
        """
        rows = self._fetchall(
            "SELECT category, count(*), count(*) FILTER (WHERE lower(level) = ANY(%s))"
            " FROM logs WHERE created_at >= %s AND created_at < %s GROUP BY category",
            [ERROR_LEVELS, since, until])
        return {row[0]: {"total": int(row[1]), "errors": int(row[2])} for row in rows}

    def top_error_messages(self, since, until, limit=5):
        """The most repeated error messages (numbers normalized) in the window:
        ``[{"category", "message", "count", "example"}]``, most frequent first."""
        rows = self._fetchall(
            "SELECT category, " + _NORMALIZED + " AS normalized, count(*), min(message)"
            " FROM logs WHERE created_at >= %s AND created_at < %s AND lower(level) = ANY(%s)"
            " GROUP BY category, normalized ORDER BY count(*) DESC, category, normalized LIMIT %s",
            [since, until, ERROR_LEVELS, int(limit)])
        return [{"category": r[0], "message": r[1], "count": int(r[2]), "example": r[3]} for r in rows]
