# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the collection under test is installed, for tests and benchmarks that start Ansible or a
child Python: never one machine's folder.

1. ``ANSIBLE_COLLECTIONS_PATH`` when set (tests/run.sh sets it to the tree's build);
2. else, when this tree is itself an installed copy (``.../ansible_collections/bim/wall_system``),
   the folder above ``ansible_collections``;
3. else the tree's own build, ``<tree>/.cache/collections`` (``tests/run.sh build`` installs it).
"""

from __future__ import annotations

import os

TREE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def collections_path():
    """The collections path (``os.pathsep``-separated, as ANSIBLE_COLLECTIONS_PATH)."""
    configured = os.environ.get("ANSIBLE_COLLECTIONS_PATH")
    if configured:
        return configured
    if TREE.endswith(os.path.join("ansible_collections", "bim", "wall_system")):
        return os.path.dirname(os.path.dirname(os.path.dirname(TREE)))
    return os.path.join(TREE, ".cache", "collections")


def collections_root():
    """The first folder of collections_path(): what PYTHONPATH needs to import the collection."""
    return collections_path().split(os.pathsep)[0]
