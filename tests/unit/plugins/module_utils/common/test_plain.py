# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import json

from ansible_collections.bim.wall_system.plugins.module_utils.common.plain import to_plain


class _Text(str):
    """Stands for Ansible's tagged str subclasses."""


def test_containers_and_str_subclasses_become_plain():
    value = {1: (_Text("a"), {"b"}), "n": [True, None, 2, 2.5]}
    plain = to_plain(value)
    assert plain == {"1": ["a", ["b"]], "n": [True, None, 2, 2.5]}
    assert type(plain["1"][0]) is str  # pylint: disable=unidiomatic-typecheck
    json.dumps(plain)


def test_text_limit_cuts_long_strings_and_says_how_much():
    plain = to_plain({"out": "x" * 30, "short": "ok"}, text_limit=10)
    assert plain == {"out": "x" * 10 + "...[20 characters cut]", "short": "ok"}


def test_no_limit_keeps_every_character():
    assert to_plain("y" * 5000) == "y" * 5000
