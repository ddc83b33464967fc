# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The application killed mid-transaction on a SQLite file in a rollback-journal mode leaves a hot
journal. The read-only health check says so in words (SQLite's own error is "attempt to write a
readonly database") and changes nothing; a backup, which opens the file read-write, lets SQLite roll
the interrupted write back and stores the last committed state, which a verified restore returns."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys

from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import ConnectionParams
from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine
from ansible_collections.bim.wall_system.plugins.module_utils.health.base import CheckContext
from ansible_collections.bim.wall_system.plugins.module_utils.health.runner import (
    build_report, run_checks, thresholds_for)
from ansible_collections.bim.wall_system.plugins.module_utils.repository.backup import run_backup
from ansible_collections.bim.wall_system.plugins.module_utils.restore.runner import RestoreOptions, run_restore

# A writer whose transaction outgrows its page cache, so SQLite writes the journal and changed
# pages to disk before the commit; it says so, then waits to be killed.
WRITER = r"""
import os, sqlite3, sys, time
path = sys.argv[1]
conn = sqlite3.connect(path, isolation_level=None)
conn.execute("PRAGMA cache_size = 5")
conn.execute("BEGIN")
for n in range(1000000, 1004000):
    conn.execute("INSERT INTO walls (id, project_id, name, material, height_mm, thickness_mm, geom_wkt, created_at,"
                 " updated_at) VALUES (?, 1, ?, 'clay brick', 2400, 300, 'LINESTRING(0 0, 1 1)', '2026-12-06 10:00:00',"
                 " '2026-12-06 10:00:00')", (n, "uncommitted " * 20))
conn.execute("UPDATE walls SET height_mm = -1")
assert os.path.getsize(path + "-journal") > 0
print("spilled", flush=True)
time.sleep(600)
"""


def _sha256(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def _committed(path):
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT count(*), min(height_mm) FROM walls").fetchone()
    finally:
        conn.close()


def test_a_hot_journal_is_named_by_the_health_check_and_rolled_back_by_the_backup(sqlite_conn_params, tmp_path):
    path = sqlite_conn_params.sqlite_path
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()
    committed = _committed(path)
    with open_engine(sqlite_conn_params) as engine:
        digests = engine.table_digests()

    writer = subprocess.Popen([sys.executable, "-c", WRITER, path], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert writer.stdout.readline() == b"spilled\n", writer.stderr.read()
    finally:
        writer.send_signal(signal.SIGKILL)  # our own child, by its PID, mid-transaction
        writer.communicate()
    journal = path + "-journal"
    before = (_sha256(path), _sha256(journal))

    report = build_report(run_checks(CheckContext(conn=sqlite_conn_params, thresholds=thresholds_for(), timeout=30),
                                     ["database"]))
    database = report["checks"][0]
    assert database["status"] == "error", database
    assert "has a hot journal (%s)" % journal in database["message"], database["message"]
    assert "The application's next start rolls it back" in database["message"]
    assert (_sha256(path), _sha256(journal)) == before  # the check wrote nothing

    backup = run_backup(sqlite_conn_params, str(tmp_path / "repo"), {"type": "full"})
    assert not os.path.exists(journal) or os.path.getsize(journal) == 0  # rolled back by SQLite itself
    assert _committed(path) == committed
    copy = str(tmp_path / "copy" / "bim_walls.db")
    os.makedirs(os.path.dirname(copy))
    result = run_restore(sqlite_conn_params, str(tmp_path / "repo"), RestoreOptions(
        backup["backup_id"], mode="new", target_name=copy, keep_target=True, verification="full",
        state_dir=str(tmp_path / "state")))
    assert result["verified"], result
    assert _committed(copy) == committed
    with open_engine(ConnectionParams(engine="sqlite", sqlite_path=copy)) as engine:
        assert engine.table_digests() == digests
