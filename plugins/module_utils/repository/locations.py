# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options of one secondary repository location, apart from ``copy.py`` and ``host_keys.py``:
a module that only declares the option (restore's ``secondary_repository``, backup's ``copy_to``)
does not import paramiko when it starts (about 0.12 s of every run), only when it copies or fetches."""

from __future__ import annotations

DEFAULT_KNOWN_HOSTS = "/var/lib/bim-wall-system/known_hosts"


def location_options():
    """Argument-spec ``options`` of one secondary repository location, as ``copy.parse_target()`` reads it.

    Shared by the modules that take one (backup ``copy_to``, restore ``secondary_repository``).
    """
    return dict(
        url=dict(type="str", required=True),
        # a path to the key, not the key itself
        key_file=dict(type="path", no_log=False),
        # false: trust on first use, recorded in known_hosts_file; true: the key must be known already
        strict_host_key_checking=dict(type="bool", default=False),
        known_hosts_file=dict(type="path", default=DEFAULT_KNOWN_HOSTS),
    )
