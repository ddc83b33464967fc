#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: db_maintenance
short_description: Maintain a BIM Wall System database inside a maintenance window
version_added: 0.1.0
description:
  - Runs the maintenance operations named in O(operations), in that order, on one BIM database
    (PostgreSQL with PostGIS, or a SQLite file) and returns one result per operation.
  - C(cleanup_logs) and C(cleanup_temp) delete rows of C(logs) / C(temp_geometry) whose time column
    (discovered, or named in O(schema)) is strictly older than the retention, in batches of O(batch_size) rows, each batch its own short transaction
    (PostgreSQL C(lock_timeout) / SQLite C(busy_timeout) = O(lock_timeout_ms)), so the application
    keeps writing meanwhile. A cleanup stops cleanly before O(deadline) and reports what is left.
  - C(vacuum) and C(analyze) on both engines; C(vacuum_full) (PostgreSQL C(VACUUM FULL), which locks
    each table) only when named. A SQLite C(VACUUM) first checks there is free space for the copy it writes.
  - C(reindex) rebuilds the spatial indexes with C(REINDEX INDEX CONCURRENTLY) on PostgreSQL; invalid
    leftovers of an interrupted concurrent build (C(*_ccnew*), C(*_ccold*), invalid duplicates) are
    dropped with C(DROP INDEX CONCURRENTLY), an invalid spatial index is rebuilt and a missing one
    created when O(schema) declares it. On SQLite it checks the R*Trees (C(rtreecheck)) and reindexes
    the spatial tables. The spatial indexes are the ones the catalog holds plus those O(schema) names.
  - C(bloat_report) estimates wasted bytes per table and index, with warning and critical limits.
  - C(performance_report) reports table and index sizes and their growth since the last run, and on
    PostgreSQL the slowest statements from C(pg_stat_statements) when that extension is installed.
  - SQLite only (skipped on PostgreSQL) C(integrity_check), C(quick_check), C(foreign_key_check), C(optimize).
  - Two runs never overlap on one database; the second one skips with a clear message
    (PostgreSQL session advisory lock; SQLite C(flock) on C(<file>-maintenance.lock) next to the file).
  - With O(deadline), an operation whose estimate (from table sizes and the durations of earlier runs,
    kept in O(state_dir)) would not finish in time is skipped with that reason.
author:
  - BIM Wall System operations team (@bim-wall-system)
extends_documentation_fragment:
  - bim.wall_system.connection
attributes:
  check_mode:
    description: Can run in check mode and return changed status prediction without modifying target.
    support: full
    details: Reports what would run and how many rows each cleanup would delete; changes nothing and writes no history.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check mode), when in diff mode.
    support: none
options:
  operations:
    description:
      - Operations to run, in this order. Duplicates run once.
    type: list
    elements: str
    required: true
    choices: [cleanup_logs, cleanup_temp, vacuum, vacuum_full, analyze, reindex, bloat_report,
              performance_report, integrity_check, quick_check, foreign_key_check, optimize]
  log_retention_days:
    description: Rows of C(logs) whose time column (e.g. C(created_at)) is strictly older than now minus this many days are deleted.
    type: int
    default: 30
  temp_retention_hours:
    description: Rows of C(temp_geometry) strictly older than now minus this many hours are deleted.
    type: int
    default: 24
  batch_size:
    description:
      - Rows deleted per transaction by a cleanup.
      - Default 5000 on PostgreSQL and 2000 on SQLite, whose single write lock each batch holds
        (at 2000 rows a concurrent writer waited at most about 90 ms in the benchmark).
    type: int
  batch_pause_ms:
    description:
      - Pause between two cleanup batches, to leave the write lock, the disk and the WAL to the application.
      - Default 0 on PostgreSQL (row locks only) and 20 on SQLite, where a writer waiting in the busy
        handler would otherwise starve while batches follow each other (see docs/benchmarks.md).
    type: int
  lock_timeout_ms:
    description:
      - Longest wait for a lock of any one statement (PostgreSQL C(lock_timeout), SQLite busy timeout).
      - A cleanup batch that times out is retried a few times with a pause, then the operation fails.
    type: int
    default: 2000
  deadline:
    description:
      - When the maintenance window ends. Seconds from now (V(3600)), a local time V(HH:MM) (its next
        occurrence), or an ISO 8601 time (V(2026-11-28T04:00:00+01:00)).
      - An operation whose estimate does not fit before it is skipped with the reason; cleanups stop
        before it. Operations are not started once it has passed.
    type: str
  state_dir:
    description:
      - Folder on the managed host for the run history (durations, rates, size snapshot), one JSON file
        per database. Created 0700, files 0600.
    type: path
    default: /var/lib/bim-wall-system/maintenance
  tables:
    description:
      - BIM tables that C(vacuum), C(vacuum_full), C(analyze) and C(bloat_report) cover. Default all of them.
    type: list
    elements: str
  reindex_mode:
    description:
      - V(always) rebuilds every spatial index; V(repair) only drops leftovers and rebuilds invalid or
        missing indexes (then a healthy database reports no change).
    type: str
    choices: [always, repair]
    default: always
  bloat_warning_percent:
    description: Wasted share of a table or index, in percent, that makes its level V(warning).
    type: float
    default: 20
  bloat_critical_percent:
    description: Wasted share, in percent, that makes its level V(critical).
    type: float
    default: 50
  bloat_min_bytes:
    description: Relations smaller than this are always V(ok) in the bloat report.
    type: int
    default: 1048576
  slow_statements:
    description: Number of slowest statements C(performance_report) lists.
    type: int
    default: 10
  lock_wait:
    description:
      - Seconds to wait for another maintenance run on the same database to finish (polling every second,
        never past O(deadline)) before skipping. V(0) skips at once.
      - Useful when two schedules start together (the seed's Sunday 02:00 cleanup and optimization).
    type: int
    default: 0
  fail_on_problems:
    description:
      - Fail the task when an operation did not succeed (a check found problems, an index stayed invalid,
        a cleanup failed). When false the results still say V(success=false).
    type: bool
    default: true
notes:
  - V(changed) is true only when the database changed; see RV(results) and docs/maintenance.md for what
    that means per operation. A second run of the daily operations right after a first reports no change.
  - The PostgreSQL maintenance session sets C(client_connection_check_interval) to one second, so a run killed on the
    host (a cancelled job) stops its statement in flight and frees the maintenance lock within about a second;
    batches it committed stay done. A server that refuses the setting (PostgreSQL 13, Windows) runs without it.
seealso:
  - module: bim.wall_system.cache_maintenance
  - module: bim.wall_system.health_check
'''

EXAMPLES = r'''
- name: Daily cleanup, vacuum and analyze, never past 04:00
  bim.wall_system.db_maintenance:
    engine: postgresql
    db_host: 127.0.0.1
    db_name: bim_walls
    operations: [cleanup_logs, cleanup_temp, vacuum, analyze]
    deadline: "04:00"

- name: Weekly optimization of a SQLite installation
  bim.wall_system.db_maintenance:
    engine: sqlite
    sqlite_path: /var/lib/bim/walls.db
    operations: [reindex, analyze, optimize, bloat_report, integrity_check]
    deadline: 3600

- name: How many log rows would a 14-day retention delete?
  bim.wall_system.db_maintenance:
    engine: postgresql
    operations: [cleanup_logs]
    log_retention_days: 14
  check_mode: true
'''

RETURN = r'''
results:
  description: One entry per operation, in the order run.
  returned: always
  type: list
  elements: dict
  sample:
    - operation: cleanup_logs
      success: true
      changed: true
      skipped: false
      duration_ms: 412
      details: {table: logs, cutoff: "2026-10-28T02:00:00+00:00", eligible_rows: 15000, deleted: 15000, batches: 4}
    - operation: reindex
      success: true
      changed: false
      skipped: true
      duration_ms: 3
      details: {reason: "estimated 90 s (...) but only 60 s left before the deadline 2026-11-28T04:00:00+01:00"}
lock_busy:
  description: True when another maintenance run held the lock, so nothing ran (see RV(msg)).
  returned: always
  type: bool
  sample: false
lock:
  description: Whether the maintenance lock was taken, and who holds it otherwise (PostgreSQL backend pid or SQLite pid).
  returned: always
  type: dict
  sample: {acquired: true, holder: null}
deadline:
  description: The deadline as a local ISO time, or null.
  returned: always
  type: str
  sample: "2026-11-28T04:00:00+01:00"
failed_operations:
  description: Operations whose result has success=false.
  returned: always
  type: list
  elements: str
  sample: []
errors:
  description: One line per operation that did not succeed, its name followed by the reason.
  returned: always
  type: list
  elements: str
  sample: ["integrity_check: *** in database main *** Page 12: btreeInitPage() returns error code 11"]
skipped_operations:
  description: Operations skipped (deadline, not applicable to the engine, nothing to do).
  returned: always
  type: list
  elements: str
  sample: [integrity_check]
database:
  description: Secret-free description of the database.
  returned: always
  type: str
  sample: postgresql 127.0.0.1:5432/bim_walls
operations:
  description: The operations requested, duplicates removed.
  returned: always
  type: list
  elements: str
  sample: [cleanup_logs, vacuum]
check_mode:
  description: Whether the run was in check mode.
  returned: always
  type: bool
  sample: false
history_error:
  description: Why the run history could not be saved (the run itself succeeded).
  returned: when the history could not be written
  type: str
  sample: "could not save the run history in /var/lib/bim-wall-system/maintenance: permission denied"
msg:
  description: Summary of the run.
  returned: always
  type: str
  sample: "4 operation(s) on postgresql 127.0.0.1:5432/bim_walls: 0 failed, 0 skipped"
'''

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import (
    ConnectionParams,
    database_argument_spec,
    database_required_if,
)
from ansible_collections.bim.wall_system.plugins.module_utils.database.schema import SchemaOverrideError
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import MissingLibraryError
from ansible_collections.bim.wall_system.plugins.module_utils.maintenance.operations import (
    DEFAULTS,
    OPERATIONS,
    MaintenanceError,
    run_maintenance,
)
from ansible_collections.bim.wall_system.plugins.module_utils.maintenance.options import maintenance_argument_spec


def main():
    argument_spec = database_argument_spec()
    argument_spec.update(maintenance_argument_spec())
    argument_spec.update(
        operations=dict(type="list", elements="str", required=True, choices=list(OPERATIONS)),
        fail_on_problems=dict(type="bool", default=True),
    )
    module = AnsibleModule(argument_spec=argument_spec, required_if=database_required_if(),
                           supports_check_mode=True)
    params = module.params
    options = {name: params[name] for name in DEFAULTS}
    try:
        conn = ConnectionParams.from_params(params)
    except SchemaOverrideError as exc:
        module.fail_json(msg=str(exc))
    try:
        result = run_maintenance(conn, params["operations"], options, check_mode=module.check_mode)
    except MissingLibraryError as exc:
        module.fail_json(msg=missing_required_lib(exc.library), exception=exc.exception_text)
    except MaintenanceError as exc:
        module.fail_json(msg="maintenance of %s not started: %s" % (conn.describe(), exc))
    result.setdefault("lock", dict(acquired=False, holder=None))
    errors = []
    for r in result["results"]:
        if not r["success"]:
            d = r["details"]
            why = d.get("error") or d.get("reason") or "; ".join(d.get("problems") or d.get("errors") or []) or "failed"
            errors.append("%s: %s" % (r["operation"], why))
    result["errors"] = errors
    if errors and params["fail_on_problems"]:
        result["msg"] = "maintenance of %s: %s" % (result["database"], " | ".join(errors))
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
