# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Physical backups (``backup`` module, ``method: physical``): pgBackRest full / differential /
incremental of the whole cluster, planned with the same rule as logical backups (``auto``: a full
when there is none or the last is older than ``full_every_days``, else an incremental)."""

from __future__ import annotations

import time

from ansible_collections.bim.wall_system.plugins.module_utils.archiving.archives import open_archive
from ansible_collections.bim.wall_system.plugins.module_utils.archiving.common import ArchiveError, utc_now
from ansible_collections.bim.wall_system.plugins.module_utils.repository.backup import plan_type


def _as_manifests(backups):
    return [{"id": b["label"], "type": b["type"], "finished": b["finished"]} for b in backups if not b["error"]]


def run_physical_backup(params, archive_dir, kind="auto", full_every_days=7, check_mode=False):
    """Take (or, in check mode, plan) a physical backup. Returns the module result."""
    archive = open_archive(params, archive_dir)
    if archive.engine_name != "postgresql":
        raise ArchiveError("method physical is for PostgreSQL; a SQLite database is replicated continuously "
                           "by Litestream (its snapshots are the physical copies)")
    existing = archive.tool.backups()
    planned, parent = plan_type(_as_manifests(existing), kind, int(full_every_days), utc_now())
    result = {"changed": True, "method": "physical", "tool": "pgbackrest", "stanza": archive.tool.stanza,
              "type": planned, "parent_id": parent, "backup_id": None, "repository": archive_dir,
              "storage_locations": [], "expired": []}
    if check_mode:
        return result
    started = time.monotonic()
    new = archive.physical_backup(planned)
    after = {b["label"] for b in archive.tool.backups()}
    result.update(backup_id=new["label"], type=new["type"], parent_id=new["parent"], started=new["started"],
                  finished=new["finished"], source_bytes=new["database_bytes"],
                  new_stored_bytes=new["repository_delta_bytes"], referenced_bytes=new["repository_bytes"],
                  expired=sorted(b["label"] for b in existing if b["label"] not in after),
                  duration_s=round(time.monotonic() - started, 3), copy_failed=False,
                  storage_locations=[{"url": r.get("host", "") + ":" + r["path"] if r.get("host") else r["path"],
                                      "status": "ok", "primary": n == 0, "error": None}
                                     for n, r in enumerate(archive.descriptor.get("repositories") or [])])
    return result
