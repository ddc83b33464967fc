# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The health check runs every few minutes on every host: its module carries only what it calls.

Ansible packs into a module's AnsiballZ payload every module_utils file the module imports,
directly or not, wherever the import stands (inside a function too); the payload is built on the
controller, sent and unpacked on every run. Read the same way here, from the syntax tree: the
health_check module must not pull in the backup, restore or maintenance code (it did, through
the full engines and the archive's restore side, and carried twice the code). And a SQLite host
must not import psycopg (a tenth of a second per run)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PREFIX = "ansible_collections.bim.wall_system."
# What the health check never calls; each with the reason it is kept out.
NOT_CARRIED = {
    "plugins/module_utils/restore/": "the restore side",
    "plugins/module_utils/maintenance/": "maintenance",
    "plugins/module_utils/repository/repository.py": "the backup repository (its errors are in errors.py)",
    "plugins/module_utils/repository/backup.py": "backups",
    "plugins/module_utils/archiving/archives.py": "the archive's restore side (archive_status.py reads)",
    "plugins/module_utils/database/engine.py": "the full engines (probe_engines.py opens the probing part)",
    "plugins/module_utils/database/postgresql/pg_restore.py": "PostgreSQL restores",
    "plugins/module_utils/database/postgresql/pg_target.py": "PostgreSQL restore targets",
    "plugins/module_utils/database/postgresql/pg_archive.py": "PostgreSQL dumps",
    "plugins/module_utils/database/postgresql/pg_maintenance.py": "PostgreSQL maintenance",
    "plugins/module_utils/database/sqlite/sqlite_restore.py": "SQLite restores",
    "plugins/module_utils/database/sqlite/sqlite_target.py": "SQLite restore targets",
    "plugins/module_utils/database/sqlite/sqlite_archive.py": "SQLite backups",
    "plugins/module_utils/database/sqlite/sqlite_maintenance.py": "SQLite maintenance",
    "plugins/module_utils/database/postgresql/pg_digests.py": "PostgreSQL table digests (backups, verification)",
    "plugins/module_utils/database/postgresql/pg_row_digests.py": "the copy-rows digest form",
    "plugins/module_utils/database/row_digest.py": "the order-independent row digest",
    "plugins/module_utils/database/postgresql/pg_copy_digest.py": "the psql readers of the digests",
    "plugins/module_utils/database/postgresql/pg_dump_digest.py": "the reader of pg_dump's archive",
    "plugins/module_utils/database/sqlite/sqlite_digests.py": "SQLite table digests (backups, verification)",
    "plugins/module_utils/database/sqlite/sqlite_pages.py": "the sqlite-pages digest form",
    "plugins/module_utils/database/api_digests.py": "the digests' interface",
    "plugins/module_utils/database/api_dump.py": "the dumps' interface",
    "plugins/module_utils/database/api_restore.py": "the restores' interface",
    "plugins/module_utils/database/api_maintenance.py": "the maintenance interface",
    "plugins/module_utils/archiving/pg_cluster.py": "the live cluster, stopped and started by a restore",
}


def _file_of(dotted):
    rel = dotted[len(PREFIX):].replace(".", "/")
    for candidate in (rel + ".py", rel + "/__init__.py"):
        if os.path.isfile(os.path.join(ROOT, candidate)):
            return candidate
    return None


def _imports(path):
    """The collection's files ``path`` imports, as AnsiballZ finds them (every import statement)."""
    with open(os.path.join(ROOT, path), encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), path)
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PREFIX):
            names = [node.module] + ["%s.%s" % (node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names if alias.name.startswith(PREFIX)]
        found.update(f for f in map(_file_of, names) if f)
    return found


def payload_of(module):
    todo, seen = ["plugins/modules/%s.py" % module], set()
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(_imports(path) - seen)
    return seen


def test_the_health_check_module_carries_no_backup_restore_maintenance_or_digest_code():
    payload = payload_of("health_check")
    assert "plugins/module_utils/database/probe_engines.py" in payload  # the walk sees the imports
    # A moved or renamed file would leave its entry matching nothing: the check would pass unseen.
    gone = [path for path in NOT_CARRIED if not os.path.exists(os.path.join(ROOT, path))]
    assert gone == [], "NOT_CARRIED names files that are not there: %s" % gone
    carried = sorted("%s (%s)" % (path, why) for prefix, why in NOT_CARRIED.items()
                     for path in payload if path.startswith(prefix))
    assert carried == []


def test_a_sqlite_health_probe_does_not_import_psycopg(tmp_path):
    database = tmp_path / "walls.db"
    script = textwrap.dedent("""
        import sqlite3, sys
        sqlite3.connect(sys.argv[1]).execute("CREATE TABLE walls (id INTEGER PRIMARY KEY)").connection.commit()
        from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import ConnectionParams
        from ansible_collections.bim.wall_system.plugins.module_utils.database.probe_engines import open_probe_engine
        from ansible_collections.bim.wall_system.plugins.module_utils.health import registry  # every check
        with open_probe_engine(ConnectionParams(engine="sqlite", sqlite_path=sys.argv[1])) as engine:
            assert engine.existing_tables() == ["walls"], engine.existing_tables()
        print(sorted(m for m in sys.modules if m.split(".")[0] == "psycopg"))
    """)
    proc = subprocess.run([sys.executable, "-c", script, str(database)], capture_output=True, text=True,
                          env=dict(os.environ), check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_alerts_that_send_nothing_import_no_channel_code(tmp_path):
    """The alert action runs after every health check on the controller; the senders' libraries
    (smtplib, ssl, ansible.module_utils.urls: about 0.1-0.2 s) are imported only to send."""
    script = textwrap.dedent("""
        import sys
        from ansible_collections.bim.wall_system.plugins.module_utils.alerting.notify import run_alerts
        rules = [{"name": "down", "expression": "checks is not defined", "severity": "critical",
                  "channels": ["email"], "cooldown": 60}]
        out = run_alerts(rules, {"pg1": {"checks": []}}, {}, sys.argv[1])
        assert out["firing"] == [], out
        print(sorted(m for m in ("smtplib", "ssl", "ansible.module_utils.urls",
                                 "ansible_collections.bim.wall_system.plugins.module_utils.alerting.channels")
                     if m in sys.modules))
    """)
    proc = subprocess.run([sys.executable, "-c", script, str(tmp_path / "alert-state.json")], capture_output=True,
                          text=True, env=dict(os.environ), check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
