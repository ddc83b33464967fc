# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The disaster recovery's preflight in one run (``restore`` module, ``preflight: true``).

Changes nothing in the database, and runs before the application stops:

1. choose the repository (``source.resolve_source``, as ``fetch_only``): the primary when usable,
   else the backup is fetched from the secondary into local staging (every chunk hash-checked on
   arrival); in check mode nothing is fetched and the plan is read from the secondary, which ends
   the preflight there;
2. verify the chosen backup's checksums (every chunk read, decompressed, its length and SHA-256
   checked, as ``backup_verify`` at ``level: checksum``; the result recorded in the repository
   unless in check mode); a damaged backup stops the recovery here;
3. plan the restore (bytes to read, free space needed vs available per file system) and refuse
   when it would not fit.

With the restore following in the same run (``then_restore``), step 2 is left to the restore's own
reads (``read_checks.py``): the backup is read once, every chunk checked as it is read, the rest
read before anything is stopped or swapped, and a damaged backup still changes nothing.

Returns the result keys of the module: ``repository_used``, ``backup_id``, ``backup_finished``,
``secondary`` (when used), ``checksums`` and ``plan``.
"""

from __future__ import annotations

from ansible_collections.bim.wall_system.plugins.module_utils.restore import runner
from ansible_collections.bim.wall_system.plugins.module_utils.restore.errors import RestoreError
from ansible_collections.bim.wall_system.plugins.module_utils.restore.source import resolve_source


def run_preflight(params, options, check_mode, read_checks=None):
    """``options``: the restore module's parameters (repository, backup_id, secondary_repository,
    secondary_staging, mode, jobs, state_dir, data_dir, staging_dir, repository_key). ``read_checks``
    (a ``read_checks.ReadChecks``, not in check mode): the restore that follows verifies the checksums
    with its reads, the preflight does not read the chunks. Raises RestoreError with a message safe to
    show; nothing was changed then but a fetch into staging."""
    source = resolve_source(params, dict(options, fetch_only=True), check_mode)
    result = source.result()
    result.setdefault("changed", False)
    result["warnings"] = list(source.warnings)
    if source.plan is not None:
        # check mode, primary not usable: the plan read from the secondary is the preflight's answer;
        # its chunks are hash-checked when a real run fetches them.
        result.update(checksums=None, backup_finished=source.plan.get("backup_finished"))
        return result
    key = options.get("repository_key")
    if read_checks is None or check_mode:
        result["checksums"] = verify_checksums(source.repository, source.backup_id, check_mode, key, result["warnings"])
    planned = runner.run_restore(params, source.repository, runner.RestoreOptions(
        source.backup_id, mode="swap", jobs=options["jobs"], check_mode=True, state_dir=options["state_dir"],
        data_dir=options["data_dir"], staging_dir=options["staging_dir"], lock_wait=options.get("lock_timeout", 60),
        repository_key=key))
    result["warnings"].extend(w for w in planned["warnings"] if w not in result["warnings"])
    result.update(backup_id=planned["backup_id"], backup_finished=planned.get("backup_finished"),
                  rpo_s=planned.get("rpo_s"), plan=planned["plan"], restore_points=planned.get("restore_points"))
    if "checksums" not in result:
        result["checksums"] = {"backup_id": planned["backup_id"], "passed": None, "chunks": None, "problems": [],
                               "recorded": False, "duration_s": None, "checked_by": "restore"}
    return result


def verify_checksums(repository, backup_id, check_mode, key, warnings):
    """Step 2: ``{backup_id, passed, chunks, problems, recorded}``; raises when the backup is damaged."""
    checked = runner.verify_backups(repository, [backup_id], level="checksum", record=True, check_mode=check_mode,
                                    repository_key=key)
    warnings.extend(w for w in checked.get("warnings") or [] if w not in warnings)
    item = checked["backups"][0]
    summary = {"backup_id": item["backup_id"], "passed": item["passed"], "chunks": item.get("chunks"),
               "problems": item["problems"], "recorded": checked["recorded"],
               "duration_s": checked.get("duration_s"), "checked_by": "preflight"}
    if not item["passed"]:
        raise RestoreError("backup %s in %s failed checksum verification, nothing was changed: %s" % (
            item["backup_id"], repository, "; ".join(item["problems"][:10])), problems=item["problems"],
            checksums=summary, warnings=warnings)
    return summary
