# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Plain Python values out of what Ansible hands an action plugin."""

from __future__ import annotations


def to_plain(value, text_limit=0):
    """Turn Ansible's tagged / lazy containers and str subclasses into plain dicts, lists and scalars.

    Controller-side plugins pass task arguments and hostvars on to json and to comparisons in
    module_utils, which must not depend on Ansible's types. ``text_limit`` (the JSON-lines log)
    cuts longer strings and says how much was cut.
    """
    if isinstance(value, dict):
        return {str(k): to_plain(v, text_limit) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [to_plain(v, text_limit) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        text = str(value)
        if text_limit and len(text) > text_limit:
            text = text[:text_limit] + "...[%d characters cut]" % (len(text) - text_limit)
        return text
    return value
