# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import os

from ansible_collections.bim.wall_system.plugins.module_utils.common.paths import unused_path


def test_a_free_name_is_kept(tmp_path):
    assert unused_path(str(tmp_path / "copy")) == str(tmp_path / "copy")


def test_taken_names_get_the_next_number(tmp_path):
    (tmp_path / "copy").mkdir()
    (tmp_path / "copy_2").write_text("x")
    assert unused_path(str(tmp_path / "copy")) == str(tmp_path / "copy_3")


def test_a_dangling_link_counts_as_taken(tmp_path):
    os.symlink(str(tmp_path / "nowhere"), str(tmp_path / "point"))
    assert unused_path(str(tmp_path / "point")) == str(tmp_path / "point_2")
