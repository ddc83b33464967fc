# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The shared fixtures themselves: a child process can import the collection."""

from __future__ import annotations

import subprocess
import sys


def test_child_process_imports_the_collection(collection_env, sqlite_conn_params):
    code = ("import sys\n"
            "from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import ConnectionParams\n"
            "from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine\n"
            "with open_engine(ConnectionParams(engine='sqlite', sqlite_path=sys.argv[1])) as e:\n"
            "    print(e.row_counts(['walls'])['walls'])\n")
    out = subprocess.run([sys.executable, "-c", code, sqlite_conn_params.sqlite_path], env=collection_env,
                         check=True, capture_output=True, text=True).stdout
    assert out.strip() == "300"
