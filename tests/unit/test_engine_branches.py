# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The engine is the only place where PostgreSQL and SQLite differ (issue 14): each engine's code is
one folder, ``module_utils/database/<engine>/``, and no other code under plugins/ branches on the
engine, except the three files that name the engines to pick one (``REGISTRY``). Read from the
syntax tree, so docstrings and documentation may name the engines; code may not: an engine's name
as a literal, an engine flag (``is_pg``), an engine's class or constant (``Postgres*``,
``Sqlite*``, ``PG_*``: isinstance, construction) or an import of an engine's own files or driver."""

from __future__ import annotations

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLUGINS = os.path.join(ROOT, "plugins")
DATABASE = os.path.join(PLUGINS, "module_utils", "database")
ENGINE_NAMES = ("postgresql", "sqlite")
# Where engine-specific code belongs, each with the one-line reason: each engine's folder, and archiving/.
ALLOWED = {"module_utils/database/%s" % name: "the %s engine" % name for name in ENGINE_NAMES}
ALLOWED["module_utils/archiving"] = "continuous archiving runs an engine's own tool (pgBackRest or Litestream)"
# Files that name every engine, each with the one-line reason (a new engine adds a line to each).
REGISTRY = {
    "module_utils/database/connection.py": "the engine choices and the connection options each engine reads",
    "module_utils/database/engine.py": "opens the engine class of the engine asked for",
    "module_utils/database/probe_engines.py": "opens the probing part of the engine asked for",
}
DRIVERS = ("psycopg", "sqlite3")
FLAGS = ("is_pg", "is_postgres", "is_postgresql", "is_sqlite")
CLASS_PREFIXES = ("Postgres", "Sqlite", "SQLite", "PG_", "SQLITE_")


def _engine_module(dotted):
    """True for an import of an engine's own files (database/<engine>/...) or of a driver."""
    parts = (dotted or "").split(".")
    if parts[0] in DRIVERS:
        return True
    if "database" in parts[:-1]:
        return parts[parts.index("database") + 1] in ENGINE_NAMES
    return False


def _branches(tree):
    """(line, what) of every engine branch in ``tree``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and node.value in ENGINE_NAMES:
            found.append((node.lineno, "engine name %r" % node.value))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, "import %s" % a.name) for a in node.names if _engine_module(a.name)]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names = [module] + ["%s.%s" % (module, a.name) for a in node.names]
            if any(_engine_module(n) for n in names):
                found.append((node.lineno, "import from %s" % module))
        elif isinstance(node, (ast.Name, ast.Attribute, ast.arg)):
            name = {ast.Name: "id", ast.Attribute: "attr", ast.arg: "arg"}[type(node)]
            name = getattr(node, name)
            if name in FLAGS or name.startswith(CLASS_PREFIXES):
                found.append((node.lineno, "engine-specific name %s" % name))
    return found


def engine_branches(root=PLUGINS):
    """["path:line: what"] of every engine branch under ``root`` outside ``ALLOWED`` and ``REGISTRY``."""
    problems = []
    for folder, _dirs, files in os.walk(root):
        relative = os.path.relpath(folder, root)
        if any(relative == allowed or relative.startswith(allowed + os.sep) for allowed in ALLOWED):
            continue
        for name in sorted(files):
            if not name.endswith(".py") or os.path.join(relative, name) in REGISTRY:
                continue
            path = os.path.join(folder, name)
            with open(path, encoding="utf-8") as handle:
                tree = ast.parse(handle.read(), filename=path)
            problems += ["%s:%d: %s" % (os.path.relpath(path, root), line, what) for line, what in _branches(tree)]
    return sorted(problems)


def test_no_engine_branch_outside_the_engines():
    problems = engine_branches()
    assert not problems, "engine branches outside %s:\n%s" % (", ".join(sorted(ALLOWED)), "\n".join(problems))


def test_each_engine_is_one_folder_named_in_the_registry():
    """database/ holds one folder per engine, named as connection.ENGINES names it, and the
    engines' files are nowhere else: a third engine is a new folder and a line in each REGISTRY file."""
    folders = sorted(name for name in os.listdir(DATABASE)
                     if os.path.isdir(os.path.join(DATABASE, name)) and not name.startswith("__"))
    with open(os.path.join(DATABASE, "connection.py"), encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    engines = next(ast.literal_eval(node.value) for node in ast.walk(tree) if isinstance(node, ast.Assign)
                   and [getattr(t, "id", None) for t in node.targets] == ["ENGINES"])
    assert folders == sorted(engines) == sorted(ENGINE_NAMES)
    stray = [name for name in os.listdir(DATABASE) if name.endswith(".py") and name.startswith(("pg_", "sqlite", "postgresql"))]
    assert not stray, "engine files outside their folder: %s" % stray


def test_the_check_finds_each_kind_of_branch():
    """Each rule fires on a line that breaks it (so a silent walk cannot pass the test above)."""
    source = "\n".join([
        'if engine.name == "postgresql": pass',
        "if self.is_pg: pass",
        "isinstance(target, SqliteTarget)",
        "from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_custom_archive import X",
        "from ansible_collections.bim.wall_system.plugins.module_utils.database.sqlite import sqlite_restore",
        "import psycopg",
        "from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine",
        '"""a docstring naming postgresql and sqlite is fine"""',
    ])
    lines = sorted({line for line, _what in _branches(ast.parse(source))})
    assert lines == [1, 2, 3, 4, 5, 6]


def test_the_walk_reads_the_plugins():
    walked = [name for _folder, _dirs, files in os.walk(PLUGINS) for name in files if name.endswith(".py")]
    assert len(walked) > 100, "too few files under %s" % PLUGINS
