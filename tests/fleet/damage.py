# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Damage to stored backups, shared by the unit tests and the fleet scenarios."""

from __future__ import annotations

import os


def flip_chunk_byte(repository, chunk_id):
    """Damage a stored chunk in place: one byte in its middle inverted."""
    from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import Repository
    path = Repository(repository).chunk_path(chunk_id)
    os.chmod(path, 0o600)
    with open(path, "r+b") as handle:
        handle.seek(os.path.getsize(path) // 2)
        byte = handle.read(1)
        handle.seek(-1, 1)
        handle.write(bytes([byte[0] ^ 0xFF]))
