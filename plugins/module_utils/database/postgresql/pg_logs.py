# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL: analysis of the application's logs table.

The time, level, category and message columns come from the discovered schema
(``engine.schema().time_columns["logs"]``): every query is a range scan of the time column
bounded by the window (by its index where the table has one); level, category and message are
read as text (an enum or varchar column works as well). Messages are normalized in SQL (UUIDs ->
``<uuid>``, hex literals -> ``<hex>``, numbers -> ``N``) with the same rules as
``sqlite_logs.normalize_message`` so both engines group the same messages. A table without a
category column counts every entry under ``all``.
"""

from __future__ import annotations

try:
    from psycopg import sql
except ImportError:  # pragma: no cover - pg_core reports the missing library
    sql = None

from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError

ERROR_LEVELS = ["error", "critical", "fatal"]
NO_CATEGORY = "all"

# Mirrors sqlite_logs.normalize_message (PostgreSQL ARE syntax); {m} is the message as text.
_NORMALIZED = (
    "regexp_replace(regexp_replace(regexp_replace({m},"
    " '[0-9a-fA-F]{{8}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{12}}', '<uuid>', 'g'),"
    " '0[xX][0-9a-fA-F]+', '<hex>', 'g'),"
    " '[0-9]+(\\.[0-9]+)?', 'N', 'g')"
)


class PostgresLogsMixin:
    """Logs methods of the PostgreSQL engine."""

    def _log_columns(self):
        """{time, level, category, message} as SQL of the logs table's discovered columns."""
        columns = self.schema().time_columns.get("logs")
        problem = columns.analysis_problem() if columns else "table logs does not exist"
        if problem:
            raise DatabaseError(problem)

        def text(name):
            return sql.SQL("{}::text").format(sql.Identifier(name))

        return dict(ts=sql.Identifier(columns.time), level=text(columns.level),
                    category=text(columns.category) if columns.category else sql.Literal(NO_CATEGORY),
                    message=text(columns.message) if columns.message else None)

    def log_counts(self, since, until):
        """``{category: {"total": n, "errors": n}}`` of the entries with ``since <= time < until``.

        ``since``/``until`` are timezone-aware datetimes.
        """
        c = self._log_columns()
        rows = self._fetchall(sql.SQL(
            "SELECT {category}, count(*), count(*) FILTER (WHERE lower({level}) = ANY(%s))"
            " FROM logs WHERE {ts} >= %s AND {ts} < %s GROUP BY 1").format(**c), [ERROR_LEVELS, since, until])
        return {row[0]: {"total": int(row[1]), "errors": int(row[2])} for row in rows}

    def top_error_messages(self, since, until, limit=5):
        """The most repeated error messages (numbers normalized) in the window:
        ``[{"category", "message", "count", "example"}]``, most frequent first; empty when the
        table has no message column."""
        c = self._log_columns()
        if c["message"] is None:
            return []
        normalized = sql.SQL(_NORMALIZED).format(m=c["message"])
        rows = self._fetchall(sql.SQL(
            "SELECT {category}, {normalized} AS normalized, count(*), min({message})"
            " FROM logs WHERE {ts} >= %s AND {ts} < %s AND lower({level}) = ANY(%s)"
            " GROUP BY 1, 2 ORDER BY count(*) DESC, 1, 2 LIMIT %s").format(normalized=normalized, **c),
            [since, until, ERROR_LEVELS, int(limit)])
        return [{"category": r[0], "message": r[1], "count": int(r[2]), "example": r[3]} for r in rows]
