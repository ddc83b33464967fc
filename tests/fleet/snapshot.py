# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A folder tree as data, for tests that must prove nothing outside a repository or a restore
target changed: compare ``tree(path)`` before and after."""

from __future__ import annotations

import os


def tree(path):
    """{relative path: bytes, 'dir' or ('link', target)} of everything below ``path`` (links not followed)."""
    out = {}
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            full = os.path.join(root, name)
            rel = os.path.relpath(full, path)
            if os.path.islink(full):
                out[rel] = ("link", os.readlink(full))
            elif os.path.isdir(full):
                out[rel] = "dir"
            else:
                with open(full, "rb") as handle:
                    out[rel] = handle.read()
    return out
