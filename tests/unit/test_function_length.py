# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""No function in plugins/ is longer than 80 lines (from its ``def`` to its last line): a
procedure that long hides its steps; split it into named ones (issue 14)."""

from __future__ import annotations

import ast
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLUGINS = os.path.join(ROOT, "plugins")
LIMIT = 80


def function_lengths():
    """{"relative/path.py:name": lines} of every function and method under plugins/."""
    lengths = {}
    for folder, _dirs, files in os.walk(PLUGINS):
        for name in files:
            if not name.endswith(".py"):
                continue
            path = os.path.join(folder, name)
            with open(path, encoding="utf-8") as handle:
                tree = ast.parse(handle.read(), filename=path)
            relative = os.path.relpath(path, PLUGINS)
            for node in ast.walk(tree):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    key = "%s:%s" % (relative, node.name)
                    lengths[key] = max(lengths.get(key, 0), node.end_lineno - node.lineno + 1)
    return lengths


def test_no_function_is_longer_than_the_limit():
    lengths = function_lengths()
    assert len(lengths) > 100, "the walk found too few functions under %s" % PLUGINS
    too_long = sorted("%s (%d lines)" % (key, n) for key, n in lengths.items() if n > LIMIT)
    assert not too_long, "functions over %d lines: %s" % (LIMIT, ", ".join(too_long))
