# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SQLite: the maintenance operations whose meaning is the engine's (``api_maintenance``):
VACUUM of the whole file when it has free pages (and room for its copy), ANALYZE judged by
sqlite_stat1, and REINDEX of the spatial tables checked with rtreecheck.
"""

from __future__ import annotations

from ansible_collections.bim.wall_system.plugins.module_utils.database.api_maintenance import Maintains
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError
from ansible_collections.bim.wall_system.plugins.module_utils.database.schema import SPATIAL_TABLES


class SqliteMaintenanceOpsMixin(Maintains):
    """Maintenance operations of the SQLite engine, on its maintenance connection."""

    # A batch holds the database's single write lock: smaller batches, and a pause between them
    # (a writer waiting in its busy handler sleeps in growing steps: without a pause the next
    # batch takes the write lock again first and the writer starves; bench/maintenance).
    maint_batch_size = 2000
    maint_batch_pause_ms = 20

    def maint_open(self, lock_timeout_ms):
        self.maint_begin(busy_timeout_ms=lock_timeout_ms)

    def maint_close(self):
        try:
            self.maint_end()
        except DatabaseError:
            pass

    def maint_vacuum_operation(self, run, operation, started):
        pages = self.maint_pages()
        details = dict(bytes_before=pages["bytes"], free_pages=pages["freelist_count"], page_size=pages["page_size"])
        if pages["freelist_count"] == 0:
            return run.result(operation, started, reason="no free pages: nothing to reclaim", **details)
        needed, available, folder = self.maint_vacuum_room()
        details.update(room_needed=needed, room_available=available, room_folder=folder)
        if available < needed:
            return run.result(operation, started, success=False, skipped=True,
                              reason="VACUUM needs room for a copy of %d bytes but %s has %d free" % (needed, folder, available),
                              **details)
        if run.check:
            return run.result(operation, started, changed=True, would_free_bytes=pages["free_bytes"], **details)
        reason = run.guard(operation, pages["bytes"])
        if reason:
            return run.result(operation, started, skipped=True, reason=reason, **details)
        self.maint_vacuum()
        after = self.maint_pages()
        details.update(bytes_after=after["bytes"], freed_bytes=pages["bytes"] - after["bytes"])
        run.record(operation, started, pages["bytes"])
        return run.result(operation, started, changed=after["bytes"] < pages["bytes"], **details)

    def maint_analyze_operation(self, run, operation, started):
        """SQLite cannot tell which tables need it: every table; changed when sqlite_stat1 changed."""
        tables = run.present_tables()
        before = self.maint_stat1()
        work = self.maint_database_bytes()
        if run.check:
            return run.result(operation, started, changed=not before, tables=tables,
                              note="SQLite cannot tell in advance whether ANALYZE changes existing statistics")
        reason = run.guard(operation, work)
        if reason:
            return run.result(operation, started, skipped=True, reason=reason, tables=tables)
        for table in tables:
            self.maint_analyze(table)
        after = self.maint_stat1()
        run.record(operation, started, work)
        return run.result(operation, started, changed=after != before, tables=tables, statistics_changed=after != before)

    def maint_reindex_operation(self, run, operation, started):
        rtree = self.maint_rtree_check()
        indexed = {i.table for i in self.schema().spatial_indexes}
        tables = [t for t in run.present_tables() if t in SPATIAL_TABLES or t in indexed]
        details = dict(tables=tables, rtree=rtree)
        if run.opts["reindex_mode"] == "repair" and not any(rtree.values()):
            return run.result(operation, started, reason="reindex_mode=repair and every R*Tree checks ok", **details)
        if run.check:
            return run.result(operation, started, changed=bool(tables), would_reindex=tables, **details)
        reason = run.guard(operation, self.maint_database_bytes(), len(tables))
        if reason:
            return run.result(operation, started, skipped=True, reason=reason, **details)
        for table in tables:
            self.maint_reindex(table)
        problems = ["%s: %s" % (k, v) for k, v in rtree.items() if v]
        details["problems"] = problems
        run.record(operation, started, self.maint_database_bytes())
        return run.result(operation, started, success=not problems, changed=bool(tables), **details)
