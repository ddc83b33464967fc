# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pg_restore's --verbose lines: items reported to the listener, progress kept out of errors; and
a real parallel pg_restore reporting its items."""

from __future__ import annotations

import io
import subprocess
import uuid

from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql import pg_restore
from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_tools import libpq_environment
from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_engine import PostgresEngine

LINES = b"""pg_restore: connecting to database for restore
pg_restore: launching item 4276 TABLE DATA walls
pg_restore: finished item 4276 TABLE DATA walls
pg_restore: launching item 4114 CONSTRAINT walls walls_pkey
pg_restore: finished item 4114 CONSTRAINT walls walls_pkey
pg_restore: finished item 4126 FK CONSTRAINT intersections intersections_wall_a_fkey
pg_restore: finished item 4115 INDEX idx_intersections_point
pg_restore: pg_restore: launching item 4120 INDEX idx_logs_created_at
 finished item 4120 INDEX idx_logs_created_at
pg_restore:\x20
pg_restore: error: could not execute query: ERROR:  out of shared memory
pg_restore: finished main parallel loop
"""


def test_items_reach_the_listener_and_errors_stay():
    seen, messages = [], []
    pg_restore._read_messages(io.BytesIO(LINES), messages, lambda *item: seen.append(item))
    assert seen == [("launching", "TABLE DATA", "walls"), ("finished", "TABLE DATA", "walls"),
                    ("launching", "CONSTRAINT", "walls walls_pkey"), ("finished", "CONSTRAINT", "walls walls_pkey"),
                    ("finished", "FK CONSTRAINT", "intersections intersections_wall_a_fkey"),
                    ("finished", "INDEX", "idx_intersections_point"),
                    # with -j the processes' prefixes and messages interleave on the shared stderr
                    ("launching", "INDEX", "idx_logs_created_at"), ("finished", "INDEX", "idx_logs_created_at")]
    assert messages == ["pg_restore: error: could not execute query: ERROR:  out of shared memory"]


def test_a_failing_listener_does_not_stop_the_reading():
    messages = []

    def broken(*_item):
        raise RuntimeError("listener bug")
    pg_restore._read_messages(io.BytesIO(LINES), messages, broken)
    assert len(messages) == 1


def test_real_parallel_restore_reports_its_items(pg_conn_params, pg_admin, tmp_path):
    archive = str(tmp_path / "db.dump")
    engine = PostgresEngine(pg_conn_params)
    subprocess.run([engine.pg_tool("pg_dump"), "-Fc", "-Z0", "-f", archive], env=libpq_environment(pg_conn_params),
                   check=True)
    name = "bimtest_progress_%s" % uuid.uuid4().hex[:8]
    pg_admin.execute('CREATE DATABASE "%s" TEMPLATE template0' % name)
    seen = []
    try:
        engine.restore_archive(name, archive_path=archive, jobs=2, on_progress=lambda *item: seen.append(item))
    finally:
        pg_admin.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
    # Items pg_restore defers to its leader after the parallel loop ("processing missed item") are
    # not reported; their tables are digested after the restore, so only the reported ones count.
    finished = {tag.split(" ")[0] for event, kind, tag in seen if event == "finished" and kind == "CONSTRAINT"}
    assert finished and finished <= {"walls", "quality_metrics", "intersections", "logs", "temp_geometry",
                                     "spatial_ref_sys"}, seen
    assert ("finished", "TABLE DATA", "walls") in seen
    assert sum(1 for e, _k, _t in seen if e == "launching") == sum(1 for e, _k, _t in seen if e == "finished")
