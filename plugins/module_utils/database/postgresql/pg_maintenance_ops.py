# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL: the maintenance operations whose meaning is the engine's (``api_maintenance``):
VACUUM per table counting the dead row versions removed, ANALYZE of modified tables only, and
the GiST index plan (drop leftovers, create missing, rebuild invalid, CONCURRENTLY).
"""

from __future__ import annotations

from ansible_collections.bim.wall_system.plugins.module_utils.database.api_maintenance import Maintains
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError

# Operations of the module that only SQLite has, and why they are skipped here.
SQLITE_ONLY = {"integrity_check": "SQLite only", "quick_check": "SQLite only", "foreign_key_check": "SQLite only",
               "optimize": "SQLite only (PostgreSQL: use analyze)"}


class PostgresMaintenanceOpsMixin(Maintains):
    """Maintenance operations of the PostgreSQL engine, on its autocommit connection."""

    maint_batch_size = 5000
    maint_batch_pause_ms = 0
    # A run killed on the host (a cancelled job, an OOM kill) would leave its server session
    # running its statement, or waiting on a row lock, with the maintenance lock held until that
    # statement ends. Polling the socket this often ends such a session, its statement rolled
    # back, within about this long of its client's death.
    client_check_ms = 1000

    def maint_open(self, lock_timeout_ms):
        self.connect()
        self.maint_set_lock_timeout(lock_timeout_ms)
        self.maint_set_client_check(self.client_check_ms)

    def maint_close(self):
        try:
            try:
                self.maint_unlock()
            except DatabaseError:
                pass
            self.close()
        except DatabaseError:
            pass

    def maint_session_lost(self):
        return self.conn is None or self.conn.closed

    def maint_unsupported(self, operation):
        return SQLITE_ONLY.get(operation)

    def maint_report_extras(self, opts):
        return {"slowest_statements": self.maint_slowest_statements(opts["slow_statements"])}

    def maint_vacuum_operation(self, run, operation, started):
        full = operation == "vacuum_full"
        self.maint_flush_stats()
        stats = self.maint_table_stats(run.present_tables())
        work = sum(s["table_bytes"] for s in stats.values())
        dead_before = {t: s["dead"] for t, s in stats.items()}
        details = dict(tables=list(stats), dead_tuples_before=dead_before, full=full, bytes=work)
        if run.check:
            return run.result(operation, started, changed=sum(dead_before.values()) > 0,
                              would_vacuum=list(stats), **details)
        reason = run.guard(operation, work, len(stats))
        if reason:
            return run.result(operation, started, skipped=True, reason=reason, **details)
        removed = {}
        for table in stats:
            removed[table] = self.maint_vacuum_verbose(table, full=full)
        self.maint_flush_stats()
        after = self.maint_table_stats(list(stats))
        details["dead_tuples_after"] = {t: s["dead"] for t, s in after.items()}
        details["removed_tuples"] = removed
        if full:
            details["bytes_after"] = sum(s["table_bytes"] for s in after.values())
        run.record(operation, started, work)
        changed = sum(removed.values()) > 0 or (full and details["bytes_after"] < work)
        return run.result(operation, started, changed=changed, **details)

    def maint_analyze_operation(self, run, operation, started):
        """Only tables modified since their last analyze (n_mod_since_analyze) are analysed."""
        tables = run.present_tables()
        stats = self.maint_table_stats(tables)
        todo = [t for t, s in stats.items() if (s["mod_since_analyze"] or 0) > 0 or s["last_analyze"] is None]
        work = sum(stats[t]["table_bytes"] for t in todo)
        details = dict(tables=todo, up_to_date=[t for t in stats if t not in todo],
                       modified_rows={t: stats[t]["mod_since_analyze"] for t in todo})
        if run.check or not todo:
            return run.result(operation, started, changed=bool(todo), **details)
        reason = run.guard(operation, work, len(todo))
        if reason:
            return run.result(operation, started, skipped=True, reason=reason, **details)
        for table in todo:
            self.maint_analyze(table)
        run.record(operation, started, work)
        return run.result(operation, started, changed=True, **details)

    def maint_reindex_operation(self, run, operation, started):
        state = self.maint_index_state()
        plan, problems = reindex_plan(state, run.opts["reindex_mode"])
        details = dict(indexes=[dict(name=e["index"], table=e["table"], column=e["column"], declared=e["declared"],
                                     present=e["present"], valid=e["valid"], bytes=e["bytes"],
                                     leftovers=[x["name"] for x in state["leftovers"] if x["table"] == e["table"]])
                                for e in state["indexes"]],
                       plan=[dict(action=a, index=n, reason=r) for a, n, _e, r in plan])
        if problems:
            details["problems"] = problems
        if run.check or not plan:
            return run.result(operation, started, success=not problems, changed=bool(plan), **details)
        builds = [p for p in plan if p[0] != "drop"]
        work = sum(p[2]["bytes"] for p in builds)
        reason = run.guard(operation, work, max(1, len(builds)))
        repairs = [p for p in plan if p[0] in ("drop", "create", "rebuild")]
        if reason and repairs:
            # never leave a broken spatial index for lack of time when a repair fits on its own
            repair_reason = run.guard(operation, sum(p[2]["bytes"] for p in repairs if p[0] != "drop"),
                                      max(1, len([p for p in repairs if p[0] != "drop"])))
            if repair_reason is None:
                plan, reason = repairs, None
                details["note"] = "scheduled rebuilds skipped for the deadline; repairs done"
        if reason:
            return run.result(operation, started, skipped=True, reason=reason, **details)
        done, errors, lost = [], list(problems), None
        for position, (action, name, entry, why) in enumerate(plan):
            try:
                if action == "drop":
                    self.maint_drop_index_concurrently(name)
                elif action == "create":
                    self.maint_create_spatial_index(entry["table"], name, entry["column"])
                else:
                    self.maint_reindex_concurrently(name)
                done.append(dict(action=action, index=name, reason=why))
            except DatabaseError as exc:
                errors.append("%s %s: %s" % (action, name, exc))
                if self.maint_session_lost():  # its server process ended (terminated, restarted)
                    lost = [n for _a, n, _e, _w in plan[position + 1:]]
                    break
                self._maint_drop_new_leftovers()
        # what was broken and is fixed now, for the maintenance summary ("the tier repaired ...")
        repaired = ["%s %s (%s)" % (d["action"], d["index"], d["reason"]) for d in done if d["action"] != "reindex"]
        details.update(done=done, errors=errors, repaired=repaired)
        if lost is not None:
            # No connection to look again: say what may be left, with the error that says why.
            details.update(not_attempted=lost, note="the connection to the database was lost: a rebuild it stopped "
                           "may have left a *_ccnew index beside the index in use, which stays valid; the next "
                           "reindex drops it")
            return run.result(operation, started, success=False, changed=bool(done), **details)
        after = self.maint_index_state()
        details["valid_after"] = {e["index"]: e["present"] and e["valid"] for e in after["indexes"]}
        if after["leftovers"]:
            details["leftovers_after"] = [x["name"] for x in after["leftovers"]]
        run.record(operation, started, work)
        return run.result(operation, started, success=not errors and all(details["valid_after"].values())
                          and not after["leftovers"], changed=bool(done), **details)

    def _maint_drop_new_leftovers(self):
        try:
            for left in self.maint_index_state()["leftovers"]:
                self.maint_drop_index_concurrently(left["name"])
        except DatabaseError:
            pass


def reindex_plan(state, mode):
    """([(action, index name, entry, reason)], problems) for ``maint_index_state()``'s state:
    drop every leftover, create a missing (declared) index, rebuild an invalid one, and with
    ``mode`` always rebuild the valid ones too. A missing index whose geometry column is unknown
    cannot be created: a problem that names the bim_schema key to set."""
    plan, problems = [], []
    for left in state["leftovers"]:
        plan.append(("drop", left["name"], dict(left, bytes=0), left["reason"]))
    for entry in state["indexes"]:
        if not entry["present"]:
            if entry["column"]:
                plan.append(("create", entry["index"], entry, "missing"))
            else:
                problems.append("create %s: the geometry column of %s is unknown; set bim_schema.%s.geometry_column"
                                % (entry["index"], entry["table"], entry["table"]))
        elif not entry["valid"]:
            plan.append(("rebuild", entry["index"], entry, "invalid"))
        elif mode == "always":
            plan.append(("reindex", entry["index"], entry, "scheduled rebuild"))
    return plan, problems
