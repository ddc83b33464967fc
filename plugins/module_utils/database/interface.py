# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one interface every database engine implements, one small interface per domain.

Callers (health checks, maintenance, backup, restore) only ever see ``DatabaseEngine``;
``engine.open_engine()`` picks the implementation from ``ConnectionParams.engine``
(``probe_engines.open_probe_engine()`` the probe-only one). Methods return
plain Python values and raise ``DatabaseError`` with a message that is safe to show. The
domains, each declared in its own ``api_*.py`` and implemented by one mixin per engine:

  api_probes.py  ``HealthProbes``  health probes          pg_core.py / sqlite_core.py
                 (``probing.ProbingEngine``: the connection and probes every engine has)
  api_digests.py ``Digests``       digests, verification  pg_digests.py / sqlite_digests.py
  api_dump.py    ``Dumps``         archive/dump (backup)  pg_archive.py / sqlite_archive.py
  api_restore.py ``Restores``      restore and swap       pg_restore.py + pg_target.py /
                                                          sqlite_restore.py + sqlite_target.py
  api_maintenance.py ``Maintains`` maintenance        pg_maintenance(_ops).py / sqlite_maintenance(_ops).py

Nothing outside ``database/`` (and ``archiving/``, whose tools are engine-specific) branches on
the engine: tests/unit/test_engine_branches.py fails on any such branch.
"""

from __future__ import annotations

from ansible_collections.bim.wall_system.plugins.module_utils.database.api_digests import Digests
from ansible_collections.bim.wall_system.plugins.module_utils.database.api_dump import Dumps
from ansible_collections.bim.wall_system.plugins.module_utils.database.api_maintenance import Maintains
from ansible_collections.bim.wall_system.plugins.module_utils.database.api_restore import Restores
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError
from ansible_collections.bim.wall_system.plugins.module_utils.database.probing import ProbingEngine
from ansible_collections.bim.wall_system.plugins.module_utils.database.schema import CLEANUP_TABLES


class DatabaseEngine(ProbingEngine, Digests, Dumps, Restores, Maintains):
    """The whole interface: an engine of ``engine.open_engine()``."""

    def _cleanup_names(self, table):
        """(table, time column, key column) names of a cleanup table (``schema()``), unquoted;
        refuses a table cleanup may not touch or one that lacks what cleanup needs."""
        if table not in CLEANUP_TABLES:
            raise DatabaseError("cleanup is only allowed on %s, not %r" % (", ".join(CLEANUP_TABLES), table))
        columns = self.schema().time_columns.get(table)
        problem = columns.cleanup_problem() if columns else "table %s does not exist" % table
        if problem:
            raise DatabaseError(problem)
        return table, columns.time, columns.key
