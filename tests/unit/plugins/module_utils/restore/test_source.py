# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one choice between the primary and the secondary repository (restore/source.py): a usable
primary is used and nothing is fetched; an unusable one falls back to the secondary (fetched, or
only planned in check mode); with neither the message says what is missing."""

from __future__ import annotations

import os

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.restore.errors import RestoreError
from ansible_collections.bim.wall_system.plugins.module_utils.restore.source import resolve_source


def _options(tmp_path, state, repository, secondary, fetch_only=True):
    return dict(repository=repository, backup_id="latest", secondary_repository=secondary,
                secondary_staging=str(tmp_path / "staging"), fetch_only=fetch_only, mode="swap", jobs=1,
                state_dir=state, data_dir=None, staging_dir=None)


def test_a_usable_primary_is_used_and_nothing_is_fetched(rs_sqlite_params, rs_repo, rs_state, tmp_path, take_backup):
    backup = take_backup(rs_sqlite_params, rs_repo)

    source = resolve_source(rs_sqlite_params, _options(tmp_path, rs_state, rs_repo, {"url": rs_repo}), False)

    assert (source.repository, source.backup_id, source.secondary, source.done) == (
        rs_repo, backup["backup_id"], None, True)
    assert not os.path.exists(tmp_path / "staging")


def test_an_unusable_primary_falls_back_to_the_secondary(rs_sqlite_params, rs_repo, rs_state, tmp_path, take_backup):
    backup = take_backup(rs_sqlite_params, rs_repo)
    gone = str(tmp_path / "lost-primary")
    options = _options(tmp_path, rs_state, gone, {"url": rs_repo})

    planned = resolve_source(rs_sqlite_params, options, True)
    assert not os.path.exists(tmp_path / "staging")  # check mode reads the secondary only
    assert planned.done and planned.plan["backup_id"] == backup["backup_id"]
    assert planned.secondary["would_fetch"] is True and planned.result()["changed"] is True
    assert gone in planned.warnings[0]

    fetched = resolve_source(rs_sqlite_params, options, False)
    assert fetched.repository == str(tmp_path / "staging") and fetched.backup_id == backup["backup_id"]
    assert fetched.secondary["fetched_chunks"] > 0 and fetched.done
    assert os.path.isfile(tmp_path / "staging" / "config.json")

    # Restoring (not fetch_only): the staging copy is what the restore reads, and it is not done yet.
    again = resolve_source(rs_sqlite_params, dict(options, fetch_only=False), False)
    assert again.repository == str(tmp_path / "staging") and not again.done
    assert again.secondary["fetched_chunks"] == 0


def test_no_usable_repository_is_a_clear_error(rs_sqlite_params, rs_state, tmp_path):
    gone = str(tmp_path / "lost-primary")
    with pytest.raises(RestoreError, match="%s is missing or unreadable and no secondary_repository" % gone):
        resolve_source(rs_sqlite_params, _options(tmp_path, rs_state, gone, None), False)
    with pytest.raises(RestoreError, match="repository is required"):
        resolve_source(rs_sqlite_params, _options(tmp_path, rs_state, None, None, fetch_only=False), False)
