# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the repository tests: databases come from tests/unit/conftest.py (real PostgreSQL
on 127.0.0.1:5432 and SQLite files); here only helpers to restore a stream for comparison."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import Repository


@pytest.fixture
def repo_path(tmp_path):
    return str(tmp_path / "repo")


@pytest.fixture
def modes_of():
    return all_modes


@pytest.fixture
def repository_sound():
    return assert_repository_sound


def all_modes(path):
    """(path, mode, is_dir) of everything below ``path`` (inclusive)."""
    out = [(path, stat.S_IMODE(os.stat(path).st_mode), True)]
    for root, dirs, files in os.walk(path):
        for name in dirs:
            full = os.path.join(root, name)
            out.append((full, stat.S_IMODE(os.stat(full).st_mode), True))
        for name in files:
            full = os.path.join(root, name)
            out.append((full, stat.S_IMODE(os.stat(full).st_mode), False))
    return out


def assert_repository_sound(path):
    """Every manifest loads, every chunk it names exists and hash-checks; no temp leftovers named."""
    repo = Repository(path)
    manifests = repo.list_backups(skip_damaged=False)
    problems = repo.verify_checksums(manifests)
    assert all(not p for p in problems.values()), problems
    return manifests
