# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Free-space arithmetic of a restore plan: what must fit where, before anything starts."""

from __future__ import annotations

import os

from ansible_collections.bim.wall_system.plugins.module_utils.common.meminfo import read_meminfo

RESERVE_BYTES = 16 * 1024 * 1024
# A staged PostgreSQL archive is read by pg_restore and deleted seconds later: on a memory file
# system it costs no disk writes (0.5 s of 11 on the 1M-wall benchmark). It goes there only when
# it takes at most this share of the memory the kernel reports available, and fits.
MEMORY_STAGING_DIR = "/dev/shm"
MEMORY_STAGING_SHARE = 0.25


def existing_ancestor(path):
    """``path`` or its nearest existing parent folder."""
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def free_bytes(path):
    """Bytes available to this (unprivileged view of the) user on ``path``'s file system."""
    st = os.statvfs(existing_ancestor(path))
    return st.f_bavail * st.f_frsize


def device_of(path):
    return os.stat(existing_ancestor(path)).st_dev


def space_plan(needs):
    """``needs``: list of ``(label, path, bytes)``. Sums needs per file system.

    Returns ``(fits, rows)``; each row ``{path, labels, needed_bytes, available_bytes, fits}``.
    """
    by_dev = {}
    order = []
    for label, path, amount in needs:
        if path is None or amount <= 0:
            continue
        dev = device_of(path)
        if dev not in by_dev:
            by_dev[dev] = {"path": existing_ancestor(path), "labels": [], "needed_bytes": 0,
                           "available_bytes": free_bytes(path)}
            order.append(dev)
        by_dev[dev]["labels"].append(label)
        by_dev[dev]["needed_bytes"] += int(amount)
    rows = []
    for dev in order:
        row = by_dev[dev]
        row["needed_bytes"] += RESERVE_BYTES
        row["fits"] = row["available_bytes"] >= row["needed_bytes"]
        rows.append(row)
    return all(r["fits"] for r in rows), rows


def files_needs(size, staging, files_root, keep_dir=None):
    """Needs of restoring ``size`` bytes of configuration files: staged first (``staging``), then
    written below ``files_root``, and, in a swap, up to as much again kept of what they replace
    (``keep_dir``)."""
    needs = [("configuration files staged", staging, size), ("configuration files written", files_root, size)]
    if keep_dir:
        needs.append(("configuration files replaced, kept with the restore point", keep_dir, size))
    return needs


def human(amount):
    amount = float(amount)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(amount) < 1024 or unit == "TiB":
            return "%.1f %s" % (amount, unit) if unit != "B" else "%d B" % amount
        amount /= 1024.0
    return "%d B" % amount


def describe_shortfall(rows):
    parts = []
    for row in rows:
        if not row["fits"]:
            parts.append("%s needs %s (%d bytes) for %s but has %s (%d bytes) free" % (
                row["path"], human(row["needed_bytes"]), row["needed_bytes"], " + ".join(row["labels"]),
                human(row["available_bytes"]), row["available_bytes"]))
    return "; ".join(parts)


def _filesystem_type(path, mounts="/proc/mounts"):
    """Type of the file system ``path`` is on (the longest mount point holding it), or None."""
    path = os.path.realpath(path)
    best, kind = "", None
    try:
        with open(mounts) as handle:
            for line in handle:
                fields = line.split()
                if len(fields) < 3:
                    continue
                point = fields[1].replace("\\040", " ")
                inside = path == point or path.startswith(point.rstrip("/") + "/")
                if inside and len(point) >= len(best):
                    best, kind = point, fields[2]
    except OSError:
        return None
    return kind


def memory_staging_dir(size, folder=MEMORY_STAGING_DIR):
    """``folder`` when a file of ``size`` bytes may be staged there (a writable tmpfs with room
    for it, the file at most ``MEMORY_STAGING_SHARE`` of the available memory), else None."""
    if not os.path.isdir(folder) or not os.access(folder, os.W_OK | os.X_OK):
        return None
    if _filesystem_type(folder) != "tmpfs":
        return None
    memory = read_meminfo()
    if memory is None or size > memory["available"] * MEMORY_STAGING_SHARE:
        return None
    if size + RESERVE_BYTES > free_bytes(folder):
        return None
    return folder
