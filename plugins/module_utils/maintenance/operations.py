# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The maintenance procedure behind the ``db_maintenance`` module.

``run_maintenance(params, operations, options, check_mode)`` takes the maintenance lock, runs
the operations in the order given, each guarded by the deadline, and returns
``{changed, lock_busy, msg, lock, deadline, results: [{operation, success, changed, skipped,
duration_ms, details}]}``.

What ``changed`` means per operation (an operator's view: "did this run alter the database?"):

- cleanup_*: rows were deleted (0 rows deleted is no change);
- vacuum / vacuum_full: dead row versions were removed (PostgreSQL: VACUUM VERBOSE's
  "tuples: N removed"; SQLite: the file lost free pages);
- analyze: tables were analysed; PostgreSQL analyses only tables modified since their last
  analyze (n_mod_since_analyze > 0), SQLite reports a change when sqlite_stat1 changed;
- optimize: sqlite_stat1 changed;
- reindex: an index was rebuilt, created, or a leftover dropped;
- bloat_report, performance_report and the SQLite checks never change anything.

So a second run right after a first one reports changed=false for the daily tier.
"""

from __future__ import annotations

import datetime
import time

from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError, MissingLibraryError
from ansible_collections.bim.wall_system.plugins.module_utils.database.schema import BIM_TABLES, SPATIAL_TABLES
from ansible_collections.bim.wall_system.plugins.module_utils.maintenance import deadline as dl
from ansible_collections.bim.wall_system.plugins.module_utils.maintenance.batching import delete_in_batches
from ansible_collections.bim.wall_system.plugins.module_utils.maintenance.history import History

OPERATIONS = ("cleanup_logs", "cleanup_temp", "vacuum", "vacuum_full", "analyze", "reindex", "bloat_report",
              "performance_report", "integrity_check", "quick_check", "foreign_key_check", "optimize")
SQLITE_ONLY = ("integrity_check", "quick_check", "foreign_key_check", "optimize")
DEFAULT_STATE_DIR = "/var/lib/bim-wall-system/maintenance"
SQLITE_BATCH_PAUSE_MS = 20
# Rows per cleanup batch by engine: a SQLite batch holds the database's single write lock.
DEFAULT_BATCH_SIZE = {"postgresql": 5000, "sqlite": 2000}

DEFAULTS = dict(
    log_retention_days=30,
    temp_retention_hours=24,
    batch_size=None,
    batch_pause_ms=None,
    lock_timeout_ms=2000,
    deadline=None,
    state_dir=DEFAULT_STATE_DIR,
    tables=None,
    bloat_warning_percent=20.0,
    bloat_critical_percent=50.0,
    bloat_min_bytes=1024 * 1024,
    reindex_mode="always",
    slow_statements=10,
    lock_wait=0,
)


class MaintenanceError(Exception):
    """Bad input or a failure before any operation ran; the message is safe to show."""


def validate(operations, options):
    unknown = [op for op in operations if op not in OPERATIONS]
    if unknown:
        raise MaintenanceError("unknown operation(s) %s; choose from %s" % (", ".join(unknown), ", ".join(OPERATIONS)))
    if (options.get("lock_wait") or 0) < 0:
        raise MaintenanceError("lock_wait must be 0 or more seconds")
    for key in ("log_retention_days", "temp_retention_hours", "batch_size", "lock_timeout_ms"):
        value = options.get(key)
        if key == "batch_size" and value is None:
            continue  # the engine's default
        if value is None or value <= 0:
            raise MaintenanceError("%s must be a positive number, got %r" % (key, value))
    if options.get("reindex_mode") not in ("always", "repair"):
        raise MaintenanceError("reindex_mode must be always or repair")
    tables = options.get("tables")
    if tables:
        bad = [t for t in tables if t not in BIM_TABLES]
        if bad:
            raise MaintenanceError("tables must be BIM tables (%s), got %s" % (", ".join(BIM_TABLES), ", ".join(bad)))
    try:
        return dl.parse_deadline(options.get("deadline"))
    except dl.DeadlineError as exc:
        raise MaintenanceError(str(exc)) from None


def _result(operation, started, success=True, changed=False, skipped=False, **details):
    return dict(operation=operation, success=success, changed=changed, skipped=skipped,
                duration_ms=int((time.monotonic() - started) * 1000), details=details)


class Runner:
    def __init__(self, engine, options, check_mode, deadline):
        self.engine = engine
        self.opts = options
        self.check = check_mode
        self.deadline = deadline
        self.is_pg = engine.name == "postgresql"
        self.history = None
        self.tables = None
        if self.opts.get("batch_size") is None:
            self.opts["batch_size"] = DEFAULT_BATCH_SIZE[engine.name]

    # ---- plumbing ---------------------------------------------------------------------------
    def open(self):
        if self.is_pg:
            if not hasattr(self.engine, "read_only"):
                self.engine.read_only = False
            self.engine.connect()
            self.engine.maint_set_lock_timeout(self.opts["lock_timeout_ms"])
        else:
            self.engine.maint_begin(busy_timeout_ms=self.opts["lock_timeout_ms"])

    def close(self):
        try:
            if self.is_pg:
                try:
                    self.engine.maint_unlock()
                except DatabaseError:
                    pass
                self.engine.close()
            else:
                self.engine.maint_end()
        except DatabaseError:
            pass

    def present_tables(self):
        if self.tables is None:
            wanted = self.opts.get("tables") or list(BIM_TABLES)
            stats = self.engine.maint_table_stats(wanted)
            self.tables = [t for t in wanted if t in stats]
        return self.tables

    def remaining(self):
        return None if self.deadline is None else self.deadline - time.time()

    def guard(self, operation, work, units=1):
        """None when ``operation`` fits before the deadline, else the skip reason."""
        if self.deadline is None:
            return None
        seconds, basis = dl.estimate_seconds(operation, work, units, self.history.rate(operation))
        left = self.remaining()
        if seconds > left:
            return ("estimated %.0f s (%s) but only %.0f s left before the deadline %s"
                    % (seconds, basis, max(0.0, left), dl.describe(self.deadline)))
        return None

    def record(self, operation, started, work):
        if not self.check and self.history is not None:
            self.history.record(operation, time.monotonic() - started, work)

    # ---- operations ---------------------------------------------------------------------------
    def cleanup(self, operation):
        started = time.monotonic()
        table = "logs" if operation == "cleanup_logs" else "temp_geometry"
        if operation == "cleanup_logs":
            age = datetime.timedelta(days=self.opts["log_retention_days"])
        else:
            age = datetime.timedelta(hours=self.opts["temp_retention_hours"])
        if table not in self.present_tables():
            return _result(operation, started, skipped=True, table=table, reason="table %s does not exist" % table)
        columns = self.engine.schema().time_columns[table]
        if columns.cleanup_problem():
            return _result(operation, started, skipped=True, table=table, reason=columns.cleanup_problem())
        cutoff = datetime.datetime.now(datetime.timezone.utc) - age
        details = dict(table=table, time_column=columns.time, cutoff=cutoff.isoformat(), retention=str(age))
        eligible = self.engine.maint_count_older(table, cutoff)
        details["eligible_rows"] = eligible
        if self.check:
            return _result(operation, started, changed=eligible > 0, would_delete=eligible, deleted=0, **details)
        if eligible == 0:
            return _result(operation, started, deleted=0, **details)
        # A cleanup is batched and stops at the deadline on its own: it only needs room for a batch.
        reason = self.guard(operation, min(eligible, self.opts["batch_size"]))
        if reason:
            return _result(operation, started, skipped=True, reason=reason, deleted=0, **details)
        pause_ms = self.opts["batch_pause_ms"]
        if pause_ms is None:
            # a SQLite writer waiting in its busy handler sleeps in growing steps: without a pause the
            # next batch takes the write lock again first and the writer starves (bench/maintenance)
            pause_ms = 0 if self.is_pg else SQLITE_BATCH_PAUSE_MS
        done = delete_in_batches(self.engine, table, cutoff, self.opts["batch_size"], deadline=self.deadline,
                                 pause_s=pause_ms / 1000.0)
        details.update(done)
        if done["stopped_at_deadline"]:
            details["remaining_rows"] = self.engine.maint_count_older(table, cutoff)
            details["reason"] = "stopped before the deadline %s" % dl.describe(self.deadline)
        self.record(operation, started, done["deleted"])
        return _result(operation, started, changed=done["deleted"] > 0, **details)

    def vacuum(self, operation):
        started = time.monotonic()
        full = operation == "vacuum_full"
        if not self.is_pg:
            return self.sqlite_vacuum(operation, started)
        self.engine.maint_flush_stats()
        stats = self.engine.maint_table_stats(self.present_tables())
        work = sum(s["table_bytes"] for s in stats.values())
        dead_before = {t: s["dead"] for t, s in stats.items()}
        details = dict(tables=list(stats), dead_tuples_before=dead_before, full=full, bytes=work)
        if self.check:
            return _result(operation, started, changed=sum(dead_before.values()) > 0,
                           would_vacuum=list(stats), **details)
        reason = self.guard(operation, work, len(stats))
        if reason:
            return _result(operation, started, skipped=True, reason=reason, **details)
        removed = {}
        for table in stats:
            removed[table] = self.engine.maint_vacuum_verbose(table, full=full)
        self.engine.maint_flush_stats()
        after = self.engine.maint_table_stats(list(stats))
        details["dead_tuples_after"] = {t: s["dead"] for t, s in after.items()}
        details["removed_tuples"] = removed
        if full:
            details["bytes_after"] = sum(s["table_bytes"] for s in after.values())
        self.record(operation, started, work)
        changed = sum(removed.values()) > 0 or (full and details["bytes_after"] < work)
        return _result(operation, started, changed=changed, **details)

    def sqlite_vacuum(self, operation, started):
        pages = self.engine.maint_pages()
        details = dict(bytes_before=pages["bytes"], free_pages=pages["freelist_count"], page_size=pages["page_size"])
        if pages["freelist_count"] == 0:
            return _result(operation, started, reason="no free pages: nothing to reclaim", **details)
        needed, available, folder = self.engine.maint_vacuum_room()
        details.update(room_needed=needed, room_available=available, room_folder=folder)
        if available < needed:
            return _result(operation, started, success=False, skipped=True,
                           reason="VACUUM needs room for a copy of %d bytes but %s has %d free" % (needed, folder, available),
                           **details)
        if self.check:
            return _result(operation, started, changed=True, would_free_bytes=pages["free_bytes"], **details)
        reason = self.guard(operation, pages["bytes"])
        if reason:
            return _result(operation, started, skipped=True, reason=reason, **details)
        self.engine.maint_vacuum()
        after = self.engine.maint_pages()
        details.update(bytes_after=after["bytes"], freed_bytes=pages["bytes"] - after["bytes"])
        self.record(operation, started, pages["bytes"])
        return _result(operation, started, changed=after["bytes"] < pages["bytes"], **details)

    def analyze(self, operation):
        started = time.monotonic()
        tables = self.present_tables()
        if self.is_pg:
            stats = self.engine.maint_table_stats(tables)
            todo = [t for t, s in stats.items() if (s["mod_since_analyze"] or 0) > 0 or s["last_analyze"] is None]
            work = sum(stats[t]["table_bytes"] for t in todo)
            details = dict(tables=todo, up_to_date=[t for t in stats if t not in todo],
                           modified_rows={t: stats[t]["mod_since_analyze"] for t in todo})
            if self.check or not todo:
                return _result(operation, started, changed=bool(todo), **details)
            reason = self.guard(operation, work, len(todo))
            if reason:
                return _result(operation, started, skipped=True, reason=reason, **details)
            for table in todo:
                self.engine.maint_analyze(table)
            self.record(operation, started, work)
            return _result(operation, started, changed=True, **details)
        before = self.engine.maint_stat1()
        work = self.engine.maint_database_bytes()
        if self.check:
            return _result(operation, started, changed=not before, tables=tables,
                           note="SQLite cannot tell in advance whether ANALYZE changes existing statistics")
        reason = self.guard(operation, work)
        if reason:
            return _result(operation, started, skipped=True, reason=reason, tables=tables)
        for table in tables:
            self.engine.maint_analyze(table)
        after = self.engine.maint_stat1()
        self.record(operation, started, work)
        return _result(operation, started, changed=after != before, tables=tables, statistics_changed=after != before)

    def optimize(self, operation):
        started = time.monotonic()
        before = self.engine.maint_stat1()
        if self.check:
            return _result(operation, started, note="PRAGMA optimize would run")
        self.engine.maint_optimize()
        after = self.engine.maint_stat1()
        return _result(operation, started, changed=after != before, statistics_changed=after != before)

    def check_pragma(self, operation):
        started = time.monotonic()
        work = self.engine.maint_database_bytes()
        reason = self.guard(operation, work)
        if reason:
            return _result(operation, started, skipped=True, reason=reason)
        problems = self.engine.maint_check(operation)
        details = dict(ok=not problems, problems=problems)
        if operation == "integrity_check":
            rtree = self.engine.maint_rtree_check()
            details["rtree"] = rtree
            bad = ["%s: %s" % (k, v) for k, v in rtree.items() if v]
            details["problems"] = problems + bad
            details["ok"] = not details["problems"]
        self.record(operation, started, work)
        return _result(operation, started, success=details["ok"], **details)

    def reindex(self, operation):
        started = time.monotonic()
        if not self.is_pg:
            return self.sqlite_reindex(operation, started)
        state = self.engine.maint_index_state()
        plan, problems = _reindex_plan(state, self.opts["reindex_mode"])
        details = dict(indexes=[dict(name=e["index"], table=e["table"], column=e["column"], declared=e["declared"],
                                     present=e["present"], valid=e["valid"], bytes=e["bytes"],
                                     leftovers=[x["name"] for x in state["leftovers"] if x["table"] == e["table"]])
                                for e in state["indexes"]],
                       plan=[dict(action=a, index=n, reason=r) for a, n, _e, r in plan])
        if problems:
            details["problems"] = problems
        if self.check or not plan:
            return _result(operation, started, success=not problems, changed=bool(plan), **details)
        builds = [p for p in plan if p[0] != "drop"]
        work = sum(p[2]["bytes"] for p in builds)
        reason = self.guard(operation, work, max(1, len(builds)))
        repairs = [p for p in plan if p[0] in ("drop", "create", "rebuild")]
        if reason and repairs:
            # never leave a broken spatial index for lack of time when a repair fits on its own
            repair_reason = self.guard(operation, sum(p[2]["bytes"] for p in repairs if p[0] != "drop"),
                                       max(1, len([p for p in repairs if p[0] != "drop"])))
            if repair_reason is None:
                plan, reason = repairs, None
                details["note"] = "scheduled rebuilds skipped for the deadline; repairs done"
        if reason:
            return _result(operation, started, skipped=True, reason=reason, **details)
        done, errors = [], list(problems)
        for action, name, entry, why in plan:
            try:
                if action == "drop":
                    self.engine.maint_drop_index_concurrently(name)
                elif action == "create":
                    self.engine.maint_create_spatial_index(entry["table"], name, entry["column"])
                else:
                    self.engine.maint_reindex_concurrently(name)
                done.append(dict(action=action, index=name, reason=why))
            except DatabaseError as exc:
                errors.append("%s %s: %s" % (action, name, exc))
                self._drop_new_leftovers()
        # what was broken and is fixed now, for the maintenance summary ("the tier repaired ...")
        repaired = ["%s %s (%s)" % (d["action"], d["index"], d["reason"]) for d in done if d["action"] != "reindex"]
        details.update(done=done, errors=errors, repaired=repaired)
        after = self.engine.maint_index_state()
        details["valid_after"] = {e["index"]: e["present"] and e["valid"] for e in after["indexes"]}
        if after["leftovers"]:
            details["leftovers_after"] = [x["name"] for x in after["leftovers"]]
        self.record(operation, started, work)
        return _result(operation, started, success=not errors and all(details["valid_after"].values())
                       and not after["leftovers"], changed=bool(done), **details)

    def _drop_new_leftovers(self):
        try:
            for left in self.engine.maint_index_state()["leftovers"]:
                self.engine.maint_drop_index_concurrently(left["name"])
        except DatabaseError:
            pass

    def sqlite_reindex(self, operation, started):
        rtree = self.engine.maint_rtree_check()
        indexed = {i.table for i in self.engine.schema().spatial_indexes}
        tables = [t for t in self.present_tables() if t in SPATIAL_TABLES or t in indexed]
        details = dict(tables=tables, rtree=rtree)
        if self.opts["reindex_mode"] == "repair" and not any(rtree.values()):
            return _result(operation, started, reason="reindex_mode=repair and every R*Tree checks ok", **details)
        if self.check:
            return _result(operation, started, changed=bool(tables), would_reindex=tables, **details)
        reason = self.guard(operation, self.engine.maint_database_bytes(), len(tables))
        if reason:
            return _result(operation, started, skipped=True, reason=reason, **details)
        for table in tables:
            self.engine.maint_reindex(table)
        problems = ["%s: %s" % (k, v) for k, v in rtree.items() if v]
        details["problems"] = problems
        self.record(operation, started, self.engine.maint_database_bytes())
        return _result(operation, started, success=not problems, changed=bool(tables), **details)

    def bloat_report(self, operation):
        started = time.monotonic()
        work = self.engine.maint_database_bytes()
        reason = self.guard(operation, work)
        if reason:
            return _result(operation, started, skipped=True, reason=reason)
        entries = self.engine.maint_bloat(self.present_tables())
        warn, crit, floor = (self.opts["bloat_warning_percent"], self.opts["bloat_critical_percent"],
                             self.opts["bloat_min_bytes"])
        for e in entries:
            e["wasted_percent"] = round(100.0 * e["wasted_bytes"] / e["bytes"], 1) if e["bytes"] else 0.0
            if e["bytes"] < floor and e["kind"] != "freelist":
                e["level"] = "ok"
            elif e["wasted_percent"] >= crit:
                e["level"] = "critical"
            elif e["wasted_percent"] >= warn:
                e["level"] = "warning"
            else:
                e["level"] = "ok"
        levels = [e["level"] for e in entries]
        overall = "critical" if "critical" in levels else "warning" if "warning" in levels else "ok"
        self.record(operation, started, work)
        return _result(operation, started, level=overall, entries=entries,
                       wasted_bytes=sum(e["wasted_bytes"] for e in entries),
                       limits=dict(warning_percent=warn, critical_percent=crit, min_bytes=floor))

    def performance_report(self, operation):
        started = time.monotonic()
        sizes = self.engine.maint_relation_sizes()
        previous = self.history.snapshot() if self.history else None
        growth = {}
        if previous:
            for name, info in sizes.items():
                old = previous["sizes"].get(name, {}).get("bytes")
                growth[name] = dict(kind=info["kind"], bytes=info["bytes"],
                                    growth_bytes=None if old is None else info["bytes"] - old)
        details = dict(database_bytes=self.engine.maint_database_bytes(), sizes=sizes,
                       growth_since=previous["taken"] if previous else None, growth=growth)
        if self.is_pg:
            details["slowest_statements"] = self.engine.maint_slowest_statements(self.opts["slow_statements"])
        if not self.check and self.history is not None:
            self.history.set_snapshot(sizes)
        return _result(operation, started, **details)

    def run(self, operation):
        if operation in SQLITE_ONLY and self.is_pg:
            started = time.monotonic()
            if operation == "optimize":
                return _result(operation, started, skipped=True, reason="SQLite only (PostgreSQL: use analyze)")
            return _result(operation, started, skipped=True, reason="SQLite only")
        handler = {
            "cleanup_logs": self.cleanup, "cleanup_temp": self.cleanup,
            "vacuum": self.vacuum, "vacuum_full": self.vacuum, "analyze": self.analyze,
            "reindex": self.reindex, "bloat_report": self.bloat_report,
            "performance_report": self.performance_report, "optimize": self.optimize,
        }.get(operation, self.check_pragma)
        started = time.monotonic()
        if self.deadline is not None and self.remaining() <= 0:
            return _result(operation, started, skipped=True,
                           reason="the deadline %s has passed" % dl.describe(self.deadline))
        try:
            return handler(operation)
        except DatabaseError as exc:
            return _result(operation, started, success=False, error=str(exc))


def _reindex_plan(state, mode):
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


def _wait_for_lock(engine, wait_s, deadline, poll_s=1.0):
    """Try the maintenance lock, polling up to ``wait_s`` seconds (never past the deadline)."""
    limit = time.time() + (wait_s or 0)
    if deadline is not None:
        limit = min(limit, deadline)
    while True:
        got, holder = engine.maint_try_lock()
        if got or time.time() + poll_s > limit:
            return got, holder
        time.sleep(poll_s)


def run_maintenance(params, operations, options=None, check_mode=False, engine=None):
    """Run ``operations`` on the database of ``params`` (a ``ConnectionParams``); see module docstring."""
    opts = dict(DEFAULTS)
    opts.update({k: v for k, v in (options or {}).items() if v is not None})
    ops = []
    for op in operations:
        if op not in ops:
            ops.append(op)
    deadline = validate(ops, opts)
    engine = engine or open_engine(params)
    runner = Runner(engine, opts, check_mode, deadline)
    out = dict(changed=False, lock_busy=False, results=[], operations=ops, check_mode=check_mode,
               deadline=dl.describe(deadline) if deadline else None, database=params.describe())
    try:
        runner.open()
    except MissingLibraryError:
        raise
    except DatabaseError as exc:
        raise MaintenanceError(str(exc)) from None
    try:
        got, holder = _wait_for_lock(engine, opts["lock_wait"], deadline)
        if not got:
            out.update(lock_busy=True, lock=dict(acquired=False, holder=holder),
                       msg="another maintenance run holds the maintenance lock on %s%s; skipped, nothing done"
                           % (params.describe(), " (pid %s)" % holder if holder else ""))
            return out
        out["lock"] = dict(acquired=True, holder=None)
        runner.history = History(opts["state_dir"], engine.maint_identity(), params.describe())
        for op in ops:
            out["results"].append(runner.run(op))
        if not check_mode:
            try:
                runner.history.save()
            except OSError as exc:
                out["history_error"] = "could not save the run history in %s: %s" % (opts["state_dir"], exc)
    finally:
        runner.close()
    out["changed"] = any(r["changed"] for r in out["results"])
    failed = [r["operation"] for r in out["results"] if not r["success"]]
    skipped = [r["operation"] for r in out["results"] if r["skipped"]]
    out["failed_operations"] = failed
    out["skipped_operations"] = skipped
    out["msg"] = "%d operation(s) on %s: %d failed, %d skipped%s" % (
        len(ops), params.describe(), len(failed), len(skipped), " (check mode)" if check_mode else "")
    return out
