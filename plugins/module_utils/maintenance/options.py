# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The db_maintenance module's options: their defaults are operations.DEFAULTS (the one place
they are stated); this adds only what the argument spec needs besides (types, choices)."""

from __future__ import annotations

from ansible_collections.bim.wall_system.plugins.module_utils.maintenance.operations import DEFAULTS

_TYPES = dict(
    log_retention_days=dict(type="int"),
    temp_retention_hours=dict(type="int"),
    batch_size=dict(type="int"),
    batch_pause_ms=dict(type="int"),
    lock_timeout_ms=dict(type="int"),
    deadline=dict(type="str"),
    state_dir=dict(type="path"),
    tables=dict(type="list", elements="str"),
    reindex_mode=dict(type="str", choices=["always", "repair"]),
    bloat_warning_percent=dict(type="float"),
    bloat_critical_percent=dict(type="float"),
    bloat_min_bytes=dict(type="int"),
    slow_statements=dict(type="int"),
    lock_wait=dict(type="int"),
)


def maintenance_argument_spec():
    """Argument spec of the maintenance options, defaults from operations.DEFAULTS (None: no default)."""
    spec = {}
    for name, default in DEFAULTS.items():
        spec[name] = dict(_TYPES[name])
        if default is not None:
            spec[name]["default"] = default
    return spec
