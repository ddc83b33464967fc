# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host's memory as /proc/meminfo reports it (the health check's memory figures, the
restore's choice of staging in memory)."""

from __future__ import annotations


def read_meminfo(path="/proc/meminfo"):
    """``{"total", "free", "available"}`` in bytes, or None where /proc is not available."""
    values = {}
    try:
        with open(path) as handle:
            for line in handle:
                key, _sep, rest = line.partition(":")
                parts = rest.split()
                if parts:
                    values[key] = int(parts[0]) * 1024
    except (OSError, ValueError):
        return None
    if "MemTotal" not in values:
        return None
    total = values["MemTotal"]
    return {
        "total": total,
        "free": values.get("MemFree", 0),
        "available": values.get("MemAvailable", values.get("MemFree", 0)),
    }
