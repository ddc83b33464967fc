# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a PostgreSQL restore's time goes: one restore (mode new, ``verification: full``) of the
benchmark database's latest backup in REPO into a new database, with the start and end of each
step (staging, ``CREATE DATABASE``, pg_restore, each table's digest, amcheck, ``finish()``) and
pg_restore's reports of tables and constraints, in seconds from the start; then the wall time,
the system-wide busy CPU-seconds and this process's own CPU.

    PYTHONPATH=.cache/collections python bench/backup.py --setup --walls 1000000      # the data, once
    PYTHONPATH=.cache/collections python bench/restore_profile.py REPO [--backup] [--target NAME]

``--backup`` first takes a full backup of the benchmark database into REPO (untimed). The new
database is dropped afterwards. The wrappers cost microseconds per call (a few hundred calls).
"""

from __future__ import annotations

import argparse
import functools
import os
import resource
import subprocess
import time

from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql import pg_digests, pg_restore, pg_target
from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import ConnectionParams
from ansible_collections.bim.wall_system.plugins.module_utils.repository.backup import run_backup
from ansible_collections.bim.wall_system.plugins.module_utils.restore import verifier
from ansible_collections.bim.wall_system.plugins.module_utils.restore.runner import RestoreOptions, run_restore
from restore import PG_BIN, PORT, busy_cpu_s  # bench/restore.py, beside this script

# pg_restore item kinds worth a line (the schema's hundreds of PostGIS functions are not).
REPORTED_KINDS = ("TABLE DATA", "INDEX", "CONSTRAINT", "FK CONSTRAINT")
_START = [time.monotonic()]


def _since_start():
    return time.monotonic() - _START[0]


def _traced(owner, name, label_of=None):
    """Replace ``owner.name`` by a wrapper printing when each call starts and ends."""
    func = getattr(owner, name)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        began = _since_start()
        try:
            return func(*args, **kwargs)
        finally:
            ended = _since_start()
            label = label_of(args) if label_of else ""
            print("  %-24s %-16s %6.2f - %6.2f  (%5.2f s)" % (name, label, began, ended, ended - began), flush=True)
    setattr(owner, name, wrapper)


def _trace_restore_reports():
    report = pg_target._RestoreProgress.__call__

    def traced(self, event, kind, tag):
        if event == "finished" and kind in REPORTED_KINDS:
            print("      %6.2f  pg_restore finished %s %s" % (_since_start(), kind, tag), flush=True)
        return report(self, event, kind, tag)
    pg_target._RestoreProgress.__call__ = traced


def _instrument():
    _traced(pg_target.PostgresTarget, "_stage_archive")
    _traced(pg_restore.PostgresRestoreMixin, "create_database")
    _traced(pg_restore.PostgresRestoreMixin, "restore_archive")
    _traced(pg_restore.PostgresRestoreMixin, "check_btree_indexes")
    _traced(pg_target, "_spatial_problems")
    _traced(pg_digests, "dumped_table_digest", lambda args: args[3])
    _traced(pg_digests, "archive_table_rows", lambda args: "(fallback) " + args[2])
    _traced(verifier.CopyVerifier, "finish")
    _trace_restore_reports()


def _cpu_s(who):
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("repo")
    parser.add_argument("--backup", action="store_true", help="take a full backup into REPO first")
    parser.add_argument("--target", default="bimbench_profile")
    args = parser.parse_args()
    source = ConnectionParams(engine="postgresql", db_host="127.0.0.1", db_port=PORT, db_user="postgres",
                              db_name="bimbench")
    if args.backup:
        run_backup(source, args.repo, {"type": "full"})
    _instrument()
    state = args.repo.rstrip("/") + "-state"
    own, children = _cpu_s(resource.RUSAGE_SELF), _cpu_s(resource.RUSAGE_CHILDREN)
    busy, _START[0] = busy_cpu_s(), time.monotonic()
    options = RestoreOptions("latest", mode="new", target_name=args.target, jobs=2, state_dir=state,
                             verification="full")
    result = run_restore(source, args.repo, options)
    wall, busy = _since_start(), busy_cpu_s() - busy
    print("restore %.2f s (restore_s %s, verify_s %s): %.1f busy CPU-s system-wide, this process %.2f, "
          "its finished children (pg_restore, pg_dump) %.2f" % (
              wall, result.get("restore_s"), result.get("verify_s"), busy, _cpu_s(resource.RUSAGE_SELF) - own,
              _cpu_s(resource.RUSAGE_CHILDREN) - children))
    env = dict(os.environ, PGHOST="127.0.0.1", PGPORT=str(PORT), PGUSER="postgres")
    subprocess.run([os.path.join(PG_BIN, "dropdb"), "--if-exists", args.target], env=env, check=True)


if __name__ == "__main__":
    main()
