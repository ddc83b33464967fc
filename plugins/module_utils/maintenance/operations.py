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
from ansible_collections.bim.wall_system.plugins.module_utils.database.schema import BIM_TABLES
from ansible_collections.bim.wall_system.plugins.module_utils.maintenance import deadline as dl
from ansible_collections.bim.wall_system.plugins.module_utils.maintenance.batching import delete_in_batches
from ansible_collections.bim.wall_system.plugins.module_utils.maintenance.history import History

OPERATIONS = ("cleanup_logs", "cleanup_temp", "vacuum", "vacuum_full", "analyze", "reindex", "bloat_report",
              "performance_report", "integrity_check", "quick_check", "foreign_key_check", "optimize")
DEFAULT_STATE_DIR = "/var/lib/bim-wall-system/maintenance"

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
    """Runs operations on one engine; vacuum, analyze and reindex are the engine's own
    (``database/api_maintenance.Maintains``), which it runs given this runner."""

    # What every operation returns; the engine's operations build theirs with it too.
    result = staticmethod(_result)

    def __init__(self, engine, options, check_mode, deadline):
        self.engine = engine
        self.opts = options
        self.check = check_mode
        self.deadline = deadline
        self.history = None
        self.tables = None
        self.lost_during = None  # the operation during which the connection (and the lock) was lost
        if self.opts.get("batch_size") is None:
            self.opts["batch_size"] = engine.maint_batch_size

    # ---- plumbing ---------------------------------------------------------------------------
    def open(self):
        self.engine.maint_open(self.opts["lock_timeout_ms"])

    def close(self):
        self.engine.maint_close()

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
            pause_ms = self.engine.maint_batch_pause_ms
        done = delete_in_batches(self.engine, table, cutoff, self.opts["batch_size"], deadline=self.deadline,
                                 pause_s=pause_ms / 1000.0)
        details.update(done)
        if done["stopped_at_deadline"]:
            details["remaining_rows"] = self.engine.maint_count_older(table, cutoff)
            details["reason"] = "stopped before the deadline %s" % dl.describe(self.deadline)
        self.record(operation, started, done["deleted"])
        return _result(operation, started, changed=done["deleted"] > 0, **details)

    def vacuum(self, operation):
        return self.engine.maint_vacuum_operation(self, operation, time.monotonic())

    def analyze(self, operation):
        return self.engine.maint_analyze_operation(self, operation, time.monotonic())

    def reindex(self, operation):
        return self.engine.maint_reindex_operation(self, operation, time.monotonic())

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
        details.update(self.engine.maint_report_extras(self.opts))
        if not self.check and self.history is not None:
            self.history.set_snapshot(sizes)
        return _result(operation, started, **details)

    def run(self, operation):
        unsupported = self.engine.maint_unsupported(operation)
        if unsupported:
            return _result(operation, time.monotonic(), skipped=True, reason=unsupported)
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
        if self.lost_during:
            # Not reconnected: without its session the run no longer holds the lock, and whoever
            # ended the session may have meant to stop the maintenance.
            return _result(operation, started, skipped=True, reason="not run: the connection to the database "
                           "was lost during %s, and the maintenance lock with it" % self.lost_during)
        try:
            return handler(operation)
        except DatabaseError as exc:
            return _result(operation, started, success=False, error=str(exc))
        finally:
            if self.engine.maint_session_lost():
                self.lost_during = operation


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
