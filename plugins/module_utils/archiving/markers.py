# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The marker writer: a row a second into the collection's marker table, for drills that measure
the real RPO.

Every marker the database committed is also appended to a journal beside the archive
(``markers-journal.jsonl`` in the archive folder), outside the database: when the database is
lost, the journal still tells the newest moment it held, and RPO is that moment minus the newest
marker of the recovered database. A write that fails (the database is down or gone) is counted
and the writer keeps its rhythm until its time is up.

Each marker opens its own connection, as an application request does: a connection kept open
would go on writing into a SQLite file that was removed under it (the open file outlives its
name), and count markers no database holds.
"""

from __future__ import annotations

import json
import os
import time

from ansible_collections.bim.wall_system.plugins.module_utils.archiving.common import iso_utc
from ansible_collections.bim.wall_system.plugins.module_utils.archiving.pitr import marker_journal_path
from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError


def write_markers(params, archive_dir, duration, interval=1.0, run="", clock=time.monotonic, sleep=time.sleep):
    """Write a marker every ``interval`` seconds for ``duration`` seconds. Returns counts and times."""
    journal = marker_journal_path(archive_dir)
    os.makedirs(os.path.dirname(journal), mode=0o700, exist_ok=True)
    written, failures, last_error = [], 0, None
    start = clock()
    tick = 0
    with open(journal, "a", encoding="utf-8") as out:
        os.chmod(journal, 0o600)
        while clock() - start < duration:
            try:
                with open_engine(params) as engine:
                    if not written:
                        engine.ensure_marker_table()
                    moment = engine.write_marker(run)
                out.write(json.dumps({"run": run, "written_at": iso_utc(moment)}) + "\n")
                out.flush()
                os.fsync(out.fileno())
                written.append(moment)
            except (DatabaseError, OSError) as exc:
                failures += 1
                last_error = str(exc)
            tick += 1
            wait = start + tick * interval - clock()
            if wait > 0:
                sleep(wait)
    return {"written": len(written), "failures": failures, "last_error": last_error,
            "first": iso_utc(written[0]) if written else None, "last": iso_utc(written[-1]) if written else None,
            "journal": journal, "run": run}
