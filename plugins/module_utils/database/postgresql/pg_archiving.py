# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL side of continuous archiving: the archive settings, the archiver's statistics and
the recovery marker table.

The marker table (``MARKER_TABLE``) belongs to the collection, not to the application: the
``continuous_archiving`` role creates it, drills write a row a second into it and compare the
newest row of the live database with the newest of a restored copy (the real RPO). It is not a
BIM table: digests and manifests never include it.
"""

from __future__ import annotations

import datetime

try:
    from psycopg import sql
except ImportError:  # reported by the engine's connect()
    sql = None

from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError

MARKER_TABLE = "bim_recovery_markers"
ARCHIVE_SETTINGS = ("wal_level", "archive_mode", "archive_command", "archive_timeout")


class PostgresArchivingMixin:
    """Archive settings, ``pg_stat_archiver`` and markers (needs the core mixin's helpers)."""

    def archive_settings(self):
        """``{name: {"running": value now in effect, "configured": value the files set,
        "pending_restart": bool}}`` for ``ARCHIVE_SETTINGS``."""
        running = {name: (setting, pending) for name, setting, pending in self._fetchall(
            "SELECT name, setting, pending_restart FROM pg_settings WHERE name = ANY(%s)", (list(ARCHIVE_SETTINGS),))}
        configured = {}
        for name, setting in self._fetchall(
                "SELECT name, setting FROM pg_file_settings WHERE name = ANY(%s) AND error IS NULL ORDER BY seqno",
                (list(ARCHIVE_SETTINGS),)):
            configured[name] = setting  # the last line of the last file wins
        return {name: {"running": running.get(name, (None, False))[0],
                       "configured": configured.get(name, running.get(name, (None, False))[0]),
                       "pending_restart": bool(running.get(name, (None, False))[1])}
                for name in ARCHIVE_SETTINGS}

    def set_archive_settings(self, wanted):
        """``ALTER SYSTEM`` the settings of ``wanted`` whose configured value differs, then reload.
        Returns the names changed."""
        current = self.archive_settings()
        changed = [name for name, value in wanted.items() if str(current[name]["configured"]) != str(value)]
        for name in changed:
            self._execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(str(wanted[name]))))
        if changed:
            self._execute("SELECT pg_reload_conf()")
        return changed

    def wake_checkpointer(self):
        """Reload the configuration, which wakes the checkpointer.

        Measured on PostgreSQL 15 (docs/pitr.md): after the server starts, its checkpointer sleeps
        up to checkpoint_timeout before it first looks at archive_timeout, so the first WAL switch
        (and with it the archive) can lag by minutes; a reload wakes it and archive_timeout holds
        from then on."""
        self._fetchone("SELECT pg_reload_conf()")

    def current_timeline(self):
        return int(self._fetchone("SELECT timeline_id FROM pg_control_checkpoint()")[0])

    def in_recovery(self):
        return bool(self._fetchone("SELECT pg_is_in_recovery()")[0])

    def settings_pending_restart(self):
        return [row[0] for row in self._fetchall("SELECT name FROM pg_settings WHERE pending_restart ORDER BY name")]

    def archiver_stats(self):
        """``pg_stat_archiver`` as a dict (times timezone-aware), plus ``archive_mode`` in effect."""
        row = self._fetchone(
            "SELECT archived_count, last_archived_wal, last_archived_time, failed_count, last_failed_wal, "
            "last_failed_time, stats_reset, current_setting('archive_mode'), current_setting('archive_timeout'), "
            "pg_walfile_name(pg_current_wal_lsn()), pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint, "
            "(SELECT setting::bigint FROM pg_settings WHERE name = 'wal_segment_size') FROM pg_stat_archiver")
        keys = ("archived_count", "last_archived_wal", "last_archived_time", "failed_count", "last_failed_wal",
                "last_failed_time", "stats_reset", "archive_mode", "archive_timeout", "current_wal", "current_lsn_bytes",
                "wal_segment_size")
        return dict(zip(keys, row))

    # -- recovery markers ------------------------------------------------------------------------
    def ensure_marker_table(self):
        """Create the marker table when missing; True when it was created."""
        exists = self._fetchone("SELECT to_regclass(%s) IS NOT NULL", ("public." + MARKER_TABLE,))[0]
        if exists:
            return False
        self._execute(sql.SQL(
            "CREATE TABLE IF NOT EXISTS public.{} (id bigserial PRIMARY KEY, "
            "written_at timestamptz NOT NULL DEFAULT clock_timestamp(), run text NOT NULL DEFAULT '')"
        ).format(sql.Identifier(MARKER_TABLE)))
        return True

    def write_marker(self, run=""):
        """Insert one marker (committed on return); returns its ``written_at``."""
        row = self._fetchone(sql.SQL("INSERT INTO public.{} (run) VALUES (%s) RETURNING written_at").format(
            sql.Identifier(MARKER_TABLE)), (run,))
        return row[0]

    def marker_times(self, run=None):
        """``written_at`` of the markers (of ``run`` when given), oldest first; [] without the table."""
        if not self._fetchone("SELECT to_regclass(%s) IS NOT NULL", ("public." + MARKER_TABLE,))[0]:
            return []
        query = sql.SQL("SELECT written_at FROM public.{}").format(sql.Identifier(MARKER_TABLE))
        if run is not None:
            query += sql.SQL(" WHERE run = %s")
            rows = self._fetchall(query + sql.SQL(" ORDER BY written_at"), (run,))
        else:
            rows = self._fetchall(query + sql.SQL(" ORDER BY written_at"))
        return [_aware(r[0]) for r in rows]


def _aware(moment):
    if moment is None:
        raise DatabaseError("a marker without a time")
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)
