# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restore, rollback and backup verification: the procedures the modules call.

Every procedure takes plain values (``ConnectionParams``, paths, numbers), raises
``RestoreError`` with a message safe to show, and returns a plain dict for the module result.
Order of a restore (``run_restore``):

1. lock the target, ``recover()`` what a killed run left (journal, scratch copies);
2. resolve the backup, plan it (bytes to read, free space needed vs available per file system);
   refuse when it does not fit, before anything is written;
3. restore into a scratch copy beside the live database (chunks hash-checked while read);
4. verify the copy: rows and digests per table against the manifest, engine integrity checks;
   a copy that fails is removed and live data was never touched;
5. with ``restore_files``: the files stream staged and checked, destinations checked
   (``files_step.py``); a failure drops the copy, live data untouched;
6. ``swap``: the crash-safe swap of ``targets.py``, the old live database kept as restore point;
   then the staged files written (a failure rolls the swap back and names the restore point);
   only then are older restore points pruned to ``keep_restore_points``; ``new``: the copy stays
   (or is dropped after measurement, for drills).
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import time

from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError
from ansible_collections.bim.wall_system.plugins.module_utils.restore.errors import RestoreError
from ansible_collections.bim.wall_system.plugins.module_utils.restore import files_step
from ansible_collections.bim.wall_system.plugins.module_utils.restore.files import (
    files_point_dir, prune_file_points, put_back_files)
from ansible_collections.bim.wall_system.plugins.module_utils.restore.files_stage import recorded_size
from ansible_collections.bim.wall_system.plugins.module_utils.restore.reread import archive_opener
from ansible_collections.bim.wall_system.plugins.module_utils.restore.space import (
    describe_shortfall, files_needs, space_plan)
from ansible_collections.bim.wall_system.plugins.module_utils.restore.targets import make_target

LEVELS = ("checksum", "restore")
# Threads that read, decompress and hash-check the backup's chunks ahead of the restore writing
# them; two keep the writer fed on a two-core host without starving the database server.
READ_WORKERS = 2
# auto: a restore of a backup whose restore-level verification passed, on an engine that writes the
# stored image itself (SQLite), checks the file's identity instead of repeating that verification.
VERIFICATIONS = ("auto", "full")


RECORD_LEVEL = {"checksum": "checksums", "restore": "restore"}


def _repository_api():
    from ansible_collections.bim.wall_system.plugins.module_utils.repository import repository
    return repository


def open_repository(path, key=None):
    """The repository at ``path``, opened with the operator's repository ``key`` (None: unkeyed)."""
    repository = _repository_api()
    try:
        return repository.Repository(path, key=key)
    except repository.RepositoryError as exc:
        raise RestoreError("cannot open the backup repository: %s" % exc)
    except OSError as exc:
        raise RestoreError("cannot open the backup repository %s: %s" % (path, exc))


def resolve_backup(repo, selector):
    repository = _repository_api()
    try:
        return repo.resolve(selector or "latest")
    except repository.RepositoryError as exc:
        raise RestoreError("cannot choose backup %r: %s" % (selector, exc))
    except (OSError, ValueError, KeyError) as exc:
        raise RestoreError("cannot read backup %r: %s" % (selector, exc))


def select_manifests(repo, selectors):
    """``selectors``: list of 'all' | 'latest' | 'latest_verified' | ids -> manifests, oldest first."""
    repository = _repository_api()
    chosen = {}
    try:
        for selector in selectors or ["latest"]:
            if selector == "all":
                for manifest in repo.list_backups():
                    chosen[manifest["id"]] = manifest
                damaged = getattr(repo, "damaged_manifests", lambda: [])()
                if damaged:
                    raise RestoreError("damaged manifests in the repository: %s" % ", ".join(str(d) for d in damaged),
                                       damaged=list(damaged))
            else:
                manifest = repo.resolve(selector)
                chosen[manifest["id"]] = manifest
    except repository.RepositoryError as exc:
        raise RestoreError("cannot choose backups %s: %s" % (", ".join(selectors or ["latest"]), exc))
    return sorted(chosen.values(), key=lambda m: m.get("finished") or "")


def _age_seconds(iso_text):
    if not iso_text:
        return None
    try:
        when = datetime.datetime.fromisoformat(iso_text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return round((datetime.datetime.now(datetime.timezone.utc) - when).total_seconds(), 1)


def plan_restore(target, repo, manifest, mode="swap", target_name=None, tables=None, jobs=2, files_root=None):
    """What a restore would do, with the free-space figures (``files_root``: the configuration
    files are restored there too). Never writes anything."""
    stored = 0
    chunk_size = getattr(repo, "chunk_stored_size", None)
    for chunk_id in repo.manifest_chunks(manifest):
        try:
            stored += chunk_size(chunk_id) if chunk_size else 0
        except (OSError, Exception):  # a missing chunk shows up when it is read
            pass
    extra = ()
    if files_root and (manifest.get("streams") or {}).get("files"):
        extra = files_needs(recorded_size(manifest), files_step.staging_dir(target), files_root,
                            target.state_dir if mode == "swap" else None)
    return _plan(target, manifest, stored, mode, target_name, tables, jobs, extra_needs=extra)


def _plan(target, manifest, bytes_to_read, mode, target_name, tables, jobs, extra_needs=()):
    """The plan of restoring ``manifest`` into ``target`` (see ``plan_restore``): ``bytes_to_read``
    from the repository, ``extra_needs`` more ``(label, path, bytes)`` in the free-space check."""
    if manifest.get("engine") and manifest["engine"] != target.engine_name:
        raise RestoreError("backup %s is a %s backup; the target is %s" % (
            manifest["id"], manifest["engine"], target.engine_name))
    size = _repository_api().Repository.stream_size(manifest, "database")
    needs = target.space_needs(size, mode, jobs, tables, target=target_name if mode == "new" else None)
    needs = list(needs) + list(extra_needs)
    unknown = [label for label, path, _n in needs if path is None]
    fits, rows = space_plan(needs)
    files = (manifest.get("streams") or {}).get("files")
    return {
        "backup_id": manifest["id"],
        "backup_type": manifest.get("type"),
        "backup_finished": manifest.get("finished"),
        "engine": target.engine_name,
        "mode": mode,
        "live": target.live,
        "live_exists": target.live_exists(),
        "target": target_name or (target.live if mode == "swap" else None),
        "tables": list(tables) if tables else sorted(manifest.get("tables") or {}),
        "bytes_to_read": bytes_to_read,
        "restored_bytes": size,
        "files_bytes": int(files["size"]) if files else 0,
        "space": rows,
        "space_unknown_for": unknown,
        "fits": fits,
        "jobs": jobs,
    }


def plan_secondary_restore(params, secondary, selector, staging, mode="swap", jobs=2, state_dir=None, data_dir=None,
                           staging_dir=None, scratch_dir=None, repository_key=None):
    """Check mode with the primary repository unusable: what fetching backup ``selector`` from the
    ``secondary`` repository into ``staging`` and restoring it would need. Reads the secondary
    only. Returns the plan (as ``plan_restore``'s, ``bytes_to_read`` being the bytes to fetch,
    ``secondary`` the fetch figures); raises RestoreError when it would not fit."""
    from ansible_collections.bim.wall_system.plugins.module_utils.restore.stage import plan_pull
    target = make_target(params, state_dir=state_dir, data_dir=data_dir, staging_dir=staging_dir,
                         scratch_dir=scratch_dir)
    manifest, fetch = plan_pull(secondary, selector, staging, key=repository_key)
    plan = _plan(target, manifest, fetch["fetch_bytes"], mode, None, None, jobs,
                 extra_needs=[("fetch from the secondary repository", staging, fetch["fetch_bytes"])])
    plan["secondary"] = fetch
    if not plan["fits"]:
        raise RestoreError("not enough free space for fetching backup %s from the secondary repository and "
                           "restoring it: %s" % (manifest["id"], describe_shortfall(plan["space"])), plan=plan)
    return plan


def _restore_copy(target, repo, manifest, scratch, jobs, tables=None, verifier=None):
    """Restore ``manifest``'s database stream into ``scratch``; a ``verifier`` hears of the
    restore's progress and is cancelled when the restore fails."""
    try:
        with repo.open_stream(manifest, "database", workers=READ_WORKERS) as stream:
            target.restore_into(scratch, stream, jobs=jobs, tables=tables, verifier=verifier)
    except BaseException:
        if verifier:
            verifier.cancel()
        raise


def _identity_record(repo, target, manifest, verification, tables):
    """The passed restore-level verification a restore may rely on instead of checking again
    (``verification: auto``, an engine whose restore writes the stored image itself, the whole
    database), or None."""
    if verification != "auto" or tables or not target.restores_identical_image:
        return None
    return repo.restore_verified(manifest["id"], manifest.get("checksum"))


@dataclasses.dataclass
class RestoreOptions:
    """What ``run_restore`` does (the ``restore`` module's options of a logical restore)."""

    backup_id: str = "latest"
    mode: str = "swap"
    # mode new: the copy's name (a database name or a file path); None: a scratch name
    target_name: str | None = None
    tables: list | None = None
    jobs: int = 2
    keep_restore_points: int = 2
    keep_target: bool = True
    check_live_unchanged: bool = False
    check_mode: bool = False
    restore_files: bool = False
    files_root: str = "/"
    state_dir: str | None = None
    data_dir: str | None = None
    staging_dir: str | None = None
    scratch_dir: str | None = None
    lock_wait: float = 60.0
    # progress(step, copy): told when restoring, verifying, staging files and swapping start
    progress: object = None
    verification: str = "auto"
    repository_key: str | None = dataclasses.field(default=None, repr=False)
    # mode swap: called right before the swap, once the copy (and the files) are verified and staged
    # (the application's stop command); raising stops the restore, the copy is dropped, live untouched
    before_swap: object = None
    # read_checks.ReadChecks: the restore's reads are the backup's checksum verification (the preflight's
    # in one run), finished and recorded before before_swap; a damaged backup changes nothing
    read_checks: object = None

    def validate(self):
        if self.mode not in ("swap", "new"):
            raise RestoreError("mode must be swap or new, not %r" % (self.mode,))
        if self.verification not in VERIFICATIONS:
            raise RestoreError("verification must be auto or full, not %r" % (self.verification,))
        if self.tables and self.mode == "swap":
            raise RestoreError("tables (a subset) is only allowed with mode=new: a swap replaces the whole database")
        if self.jobs < 1:
            raise RestoreError("jobs must be at least 1")
        if self.keep_restore_points < 0:
            raise RestoreError("keep_restore_points must be 0 or more")

    def target_options(self):
        return dict(state_dir=self.state_dir, data_dir=self.data_dir, staging_dir=self.staging_dir,
                    scratch_dir=self.scratch_dir)

    def files_root_to_plan(self):
        """The folder the configuration files are restored below, when they are (else None)."""
        return self.files_root if self.restore_files else None

    def tell(self, step, copy):
        if self.progress:
            self.progress(step, copy)


def run_restore(params, repository, opts):
    """Restore backup ``opts.backup_id`` from ``repository`` (see the module docstring for the
    order; ``opts``: ``RestoreOptions``). Returns the result dict."""
    opts.validate()
    target, repo, manifest, result = _open_restore(params, repository, opts)
    if opts.read_checks:
        opts.read_checks.check_sizes(repo, manifest, result["warnings"])
    if opts.check_mode:
        return _plan_only(target, repo, manifest, opts, result)
    started = time.monotonic()
    with target.lock(wait=opts.lock_wait):
        if opts.read_checks and _repairs_pending(target):
            # a killed run's swap is repaired only for a backup known sound, as after a separate preflight
            opts.read_checks.read_rest(repo, manifest, result["warnings"])
        _recover_and_plan(target, repo, manifest, opts, result)
        before = target.live_digests() if opts.check_live_unchanged else None
        scratch = _copy_and_verify(target, repo, manifest, opts, result)
        staged = None
        if opts.restore_files and (manifest.get("streams") or {}).get("files"):
            staged = _stage_files(target, repo, manifest, opts, scratch, result["warnings"])
        if opts.read_checks:
            _finish_read_checks(target, repo, manifest, opts, result, scratch, staged)
        result["changed"] = True
        if opts.mode == "swap":
            _before_swap(target, opts, result, scratch, staged)
            _swap_copy_in(target, manifest, opts, result, scratch, staged)
        else:
            _keep_or_drop_copy(target, opts, result, scratch, staged)
        if opts.check_live_unchanged:
            after = target.live_digests()
            result.update(live_digests_before=before, live_digests_after=after, live_unchanged=before == after)
        result["restore_points"] = target.restore_points()
    if opts.restore_files and "files" not in result:
        result["files"] = {"written": [], "unchanged": [], "skipped": []}
    if "files" in result:
        result["changed"] = result["changed"] or bool(result["files"]["written"])
    result["duration_s"] = round(time.monotonic() - started, 3)
    return result


def _open_restore(params, repository, opts):
    """The target, the repository, the chosen backup's manifest and the result to fill in."""
    target = make_target(params, **opts.target_options())
    repo = open_repository(repository, opts.repository_key)
    if opts.read_checks:
        opts.read_checks.watch(repo)
    manifest = resolve_backup(repo, opts.backup_id)
    unknown = [t for t in opts.tables or [] if t not in (manifest.get("tables") or {})]
    if unknown:
        raise RestoreError("tables %s are not in backup %s (it holds %s)" % (
            ", ".join(unknown), manifest["id"], ", ".join(sorted(manifest.get("tables") or {}))))
    result = {"changed": False, "backup_id": manifest["id"], "backup_finished": manifest.get("finished"),
              "mode": opts.mode, "restore_point": None, "verified": False, "warnings": list(repo.warnings),
              "rpo_s": _age_seconds(manifest.get("finished"))}
    return target, repo, manifest, result


def _plan_only(target, repo, manifest, opts, result):
    """Check mode: the plan, and a refusal when it does not fit."""
    pending = target.pending_journal()
    if pending:
        result["warnings"].append("an interrupted swap (step %s) is pending; the next run repairs it first"
                                  % pending.get("step"))
    plan = plan_restore(target, repo, manifest, opts.mode, opts.target_name, opts.tables, opts.jobs,
                        files_root=opts.files_root_to_plan())
    result.update(plan=plan, changed=True, target=plan["target"], tables={}, duration_s=0.0,
                  restore_points=target.restore_points())
    if not plan["fits"]:
        raise RestoreError("not enough free space for restoring backup %s: %s" % (
            manifest["id"], describe_shortfall(plan["space"])), plan=plan)
    return result


def _recover_and_plan(target, repo, manifest, opts, result):
    """Under the target's lock: repair what a killed run left, plan, refuse what cannot work."""
    warnings = result["warnings"]
    recovered = target.recover()
    if recovered:
        result["changed"] = True
        warnings.extend(recovered)
    plan = plan_restore(target, repo, manifest, opts.mode, opts.target_name, opts.tables, opts.jobs,
                        files_root=opts.files_root_to_plan())
    result["plan"] = plan
    if not plan["fits"]:
        raise RestoreError("not enough free space for restoring backup %s: %s" % (
            manifest["id"], describe_shortfall(plan["space"])), plan=plan, warnings=warnings)
    if plan["space_unknown_for"]:
        warnings.append("free space could not be checked for: %s" % ", ".join(plan["space_unknown_for"]))
    if opts.mode == "new" and opts.target_name and target.exists(opts.target_name):
        raise RestoreError("the target %s already exists; a restore in new mode never overwrites" % opts.target_name)


def _copy_name(target, opts):
    if opts.mode == "new" and not opts.keep_target and not opts.target_name:
        return target.scratch_name("drill")
    return opts.target_name or target.scratch_name("restore" if opts.mode == "swap" else "copy")


def _copy_and_verify(target, repo, manifest, opts, result):
    """Restore into a copy and verify it (in full, or by its identity with a verified image);
    a copy that fails is dropped and live data was never touched. Returns the copy's name."""
    warnings = result["warnings"]
    scratch = _copy_name(target, opts)
    identity = _identity_record(repo, target, manifest, opts.verification, opts.tables)
    verifier = None if identity else target.copy_verifier(scratch, manifest.get("tables") or {}, opts.tables,
                                                          archive=archive_opener(repo, manifest, READ_WORKERS))
    t0 = time.monotonic()
    opts.tell("restoring", scratch)
    _restore_reporting(target, repo, manifest, scratch, opts, verifier, warnings)
    t1 = time.monotonic()
    opts.tell("verifying", scratch)
    try:
        if identity:
            problems, table_result = target.verify_identity(scratch, manifest)
        else:
            problems, table_result = verifier.finish()
    except (DatabaseError, RestoreError) as exc:
        problems, table_result = ["verification could not run: %s" % exc], {}
    t2 = time.monotonic()
    result.update(restore_s=round(t1 - t0, 3), verify_s=round(t2 - t1, 3), rto_s=round(t2 - t0, 3),
                  tables=table_result, verification="identity" if identity else "full")
    if identity:
        result["identity_verified_at"] = identity.get("time")
    if problems:
        target.drop(scratch)
        raise RestoreError("the restored copy of backup %s failed verification, nothing was swapped and "
                           "live data is untouched: %s" % (manifest["id"], "; ".join(problems[:10])),
                           problems=problems, tables=table_result, warnings=warnings)
    result["verified"] = True
    return scratch


def _restore_reporting(target, repo, manifest, scratch, opts, verifier, warnings):
    """``_restore_copy`` with its failures told as what they mean for the live data."""
    repository_mod = _repository_api()
    try:
        _restore_copy(target, repo, manifest, scratch, opts.jobs, opts.tables, verifier)
    except repository_mod.CorruptChunkError as exc:
        if opts.read_checks:
            raise opts.read_checks.damaged(repo, manifest, exc, warnings)
        raise RestoreError("backup %s is damaged, nothing was changed: %s" % (manifest["id"], exc),
                           chunk=getattr(exc, "chunk_id", None), warnings=warnings)
    except repository_mod.RepositoryError as exc:
        raise RestoreError("reading backup %s failed, nothing was changed: %s" % (manifest["id"], exc),
                           warnings=warnings)
    except (DatabaseError, OSError) as exc:  # OSError: e.g. the staging folder filled up meanwhile
        raise RestoreError("restoring backup %s into %s failed, live data untouched: %s" % (
            manifest["id"], scratch, exc), warnings=warnings)


def _before_swap(target, opts, result, scratch, staged):
    """``opts.before_swap`` (a failure drops the copy and the staged files: nothing was swapped), then
    the warnings about the live database the swap replaces (processes holding it open)."""
    if opts.before_swap:
        try:
            opts.before_swap()
        except (RestoreError, OSError) as exc:
            target.drop(scratch)
            if staged:
                files_step.discard(target)
            raise RestoreError("%s; nothing was swapped and live data is untouched" % exc, warnings=result["warnings"])
    result["warnings"].extend(target.swap_warnings())


def _swap_copy_in(target, manifest, opts, result, scratch, staged):
    """The crash-safe swap, then the staged files; only then are older restore points pruned."""
    opts.tell("swapping", scratch)
    t3 = time.monotonic()
    rp = target.new_restore_point_name() if target.live_exists() else None
    journal = files_step.begin(target, staged, opts.files_root, rp) if staged else None
    try:
        result["restore_point"] = target.swap_in(scratch, stream_info=manifest["streams"]["database"],
                                                 restore_point=rp)
    except (DatabaseError, OSError) as exc:
        if staged:
            files_step.discard(target)
        raise RestoreError("the swap failed and was undone, live data untouched: %s" % exc,
                           warnings=result["warnings"])
    result["swap_s"] = round(time.monotonic() - t3, 3)
    result["target"] = target.live
    if staged:
        result["files"] = files_step.install_after_swap(target, staged, opts.files_root, rp, journal)
    # Only a restore that fully succeeded prunes restore points.
    result["pruned_restore_points"] = target.prune(opts.keep_restore_points)
    prune_file_points(target.state_dir, result["pruned_restore_points"])


def _keep_or_drop_copy(target, opts, result, scratch, staged):
    """Mode new: the copy stays (or is dropped after measurement, for drills)."""
    result["target"] = scratch
    if staged:
        try:
            result["files"] = files_step.install(staged, opts.files_root)
        finally:
            files_step.discard(target)
    if not opts.keep_target:
        target.drop(scratch)
        result["target_dropped"] = True


def _stage_files(target, repo, manifest, opts, scratch, warnings):
    """Stage and check the configuration files before the swap; on failure the restored copy
    is dropped and the live database and files were never touched."""
    repository_mod = _repository_api()
    opts.tell("staging files", scratch)
    try:
        staged = files_step.stage(target, repo, manifest, opts.files_root)
    except repository_mod.CorruptChunkError as exc:
        if not opts.read_checks:
            raise _files_refused(target, manifest, scratch, exc, warnings)
        target.drop(scratch)
        raise opts.read_checks.damaged(repo, manifest, exc, warnings)
    except (repository_mod.RepositoryError, RestoreError, OSError) as exc:
        raise _files_refused(target, manifest, scratch, exc, warnings)
    if not staged["recorded"]:
        warnings.append("backup %s predates recorded file owners: restored files keep the owner of the file they "
                        "replace (new ones: the restoring user), modes come from its tar without set-id bits"
                        % manifest["id"])
    return staged


def _files_refused(target, manifest, scratch, exc, warnings):
    """The copy dropped; the error of configuration files that cannot be restored."""
    target.drop(scratch)
    return RestoreError("the configuration files of backup %s cannot be restored, nothing was swapped and live "
                        "data is untouched: %s" % (manifest["id"], exc), warnings=warnings)


def _repairs_pending(target):
    """Whether ``recover()`` would repair a killed run's swap or configuration files step."""
    return bool(target.pending_journal()) or files_step.pending(target)


def _finish_read_checks(target, repo, manifest, opts, result, scratch, staged):
    """The backup's checksum verification completed from the restore's reads (``read_checks.py``)
    and recorded, before anything is stopped or swapped; a failure drops the copy and the staged files."""
    try:
        result["checksums"] = opts.read_checks.finish(repo, manifest, result["warnings"])
    except RestoreError:
        target.drop(scratch)
        if staged:
            files_step.discard(target)
        raise


def run_rollback(params, rollback_to="latest", keep_restore_points=2, check_mode=False, state_dir=None,
                 data_dir=None, lock_wait=60.0):
    """Swap a restore point back in; the replaced live database becomes a restore point itself."""
    target = make_target(params, state_dir=state_dir, data_dir=data_dir)
    started = time.monotonic()
    result = {"changed": False, "warnings": [], "mode": "rollback", "backup_id": None, "verified": False,
              "tables": {}}
    points = target.restore_points()
    name = _choose_point(target, points, rollback_to)
    result["rolled_back_to"] = name
    if check_mode:
        result.update(changed=True, restore_points=points, restore_point=None, duration_s=0.0,
                      plan={"rollback_to": name, "live": target.live, "live_exists": target.live_exists()})
        return result
    with target.lock(wait=lock_wait):
        result["warnings"].extend(target.recover())
        points = target.restore_points()
        name = _choose_point(target, points, rollback_to)
        problems = target.check_restore_point(name)
        if problems:
            raise RestoreError("restore point %s is not sound, nothing was changed: %s" % (name, "; ".join(problems)))
        try:
            result["restore_point"] = target.swap_in(name, incoming_is_restore_point=True)
        except (DatabaseError, OSError) as exc:
            raise RestoreError("the rollback swap failed and was undone: %s" % exc)
        result["changed"] = True
        result["verified"] = True
        result["target"] = target.live
        # The configuration files the restore replaced come back with the database.
        result["files"] = put_back_files(files_point_dir(target.state_dir, name))
        # Keep the restore point that now holds the replaced copy, prune older ones.
        result["pruned_restore_points"] = target.prune(max(keep_restore_points, 1))
        prune_file_points(target.state_dir, result["pruned_restore_points"])
        result["restore_points"] = target.restore_points()
    result["duration_s"] = round(time.monotonic() - started, 3)
    return result


def _choose_point(target, points, wanted):
    if not points:
        raise RestoreError("there is no restore point of %s to roll back to" % target.live)
    if wanted in (None, "", "latest"):
        return points[-1]
    for point in points:
        if point == wanted or os.path.basename(point) == wanted:
            return point
    raise RestoreError("restore point %s not found; restore points of %s: %s" % (
        wanted, target.live, ", ".join(os.path.basename(p) for p in points)))


def list_restore_points(params, state_dir=None):
    return make_target(params, state_dir=state_dir).restore_points()


# ---- backup verification -------------------------------------------------------------------------
def verify_backups(repository, selectors, level="checksum", params=None, record=True, check_mode=False,
                   jobs=2, state_dir=None, scratch_dir=None, staging_dir=None, data_dir=None, lock_wait=60.0,
                   repository_key=None):
    """Verify backups by checksums (every chunk read once) or by a restore into a scratch copy.

    Returns ``{"passed", "backups": [{backup_id, level, passed, problems, ...}], "recorded"}``.
    """
    if level not in LEVELS:
        raise RestoreError("level must be checksum or restore, not %r" % (level,))
    repo = open_repository(repository, repository_key)
    manifests = select_manifests(repo, selectors)
    results = []
    started = time.monotonic()
    if level == "checksum":
        problems = repo.verify_checksums(manifests)
        for manifest in manifests:
            found = problems.get(manifest["id"], [])
            results.append({"backup_id": manifest["id"], "level": level, "passed": not found, "problems": found,
                            "chunks": len(repo.manifest_chunks(manifest))})
    else:
        if params is None:
            raise RestoreError("a restore-level verification needs the database connection options")
        if check_mode:
            target = make_target(params, state_dir=state_dir, scratch_dir=scratch_dir, staging_dir=staging_dir,
                                 data_dir=data_dir)
            for manifest in manifests:
                results.append({"backup_id": manifest["id"], "level": level, "passed": None, "problems": [],
                                "plan": plan_restore(target, repo, manifest, "new", None, None, jobs)})
            return {"passed": True, "backups": results, "recorded": False, "duration_s": 0.0,
                    "warnings": list(repo.warnings)}
        for manifest in manifests:
            results.append(_verify_by_restore(params, repo, manifest, jobs, state_dir, scratch_dir, staging_dir,
                                              data_dir, lock_wait))
    recorded = False
    if record and not check_mode:
        for item in results:
            details = {k: v for k, v in item.items() if k not in ("backup_id", "level", "passed", "problems")}
            repo.record_verification(item["backup_id"], RECORD_LEVEL[level], item["passed"], item["problems"], details)
        recorded = bool(results)
    return {"passed": all(r["passed"] for r in results), "backups": results, "recorded": recorded,
            "duration_s": round(time.monotonic() - started, 3), "warnings": list(repo.warnings)}


def _verify_by_restore(params, repo, manifest, jobs, state_dir, scratch_dir, staging_dir, data_dir, lock_wait):
    repository = _repository_api()
    target = make_target(params, state_dir=state_dir, scratch_dir=scratch_dir, staging_dir=staging_dir,
                         data_dir=data_dir)
    # The manifest's checksum binds the record to exactly this manifest (see _identity_record).
    item = {"backup_id": manifest["id"], "level": "restore", "passed": False, "problems": [], "tables": {},
            "manifest_checksum": manifest.get("checksum")}
    if manifest.get("engine") and manifest["engine"] != target.engine_name:
        item["problems"].append("backup %s is a %s backup; the target engine is %s" % (
            manifest["id"], manifest["engine"], target.engine_name))
        return item
    with target.lock(wait=lock_wait):
        target.recover()
        plan = plan_restore(target, repo, manifest, "new", None, None, jobs)
        if not plan["fits"]:
            item["problems"].append("not enough free space for a scratch restore: %s" % describe_shortfall(plan["space"]))
            return item
        scratch = target.scratch_name("verify")
        verifier = target.copy_verifier(scratch, manifest.get("tables") or {},
                                        archive=archive_opener(repo, manifest, READ_WORKERS))
        t0 = time.monotonic()
        try:
            try:
                _restore_copy(target, repo, manifest, scratch, jobs, verifier=verifier)
            except repository.CorruptChunkError as exc:
                item["problems"].append(str(exc))
                item["chunk"] = getattr(exc, "chunk_id", None)
                return item
            except (repository.RepositoryError, DatabaseError, RestoreError, OSError) as exc:
                item["problems"].append("restore into a scratch copy failed: %s" % exc)
                return item
            t1 = time.monotonic()
            try:
                problems, tables = verifier.finish()
            except (DatabaseError, RestoreError) as exc:
                problems, tables = ["checks of the scratch copy could not run: %s" % exc], {}
            item.update(problems=problems, tables=tables, passed=not problems, restore_s=round(t1 - t0, 3),
                        verify_s=round(time.monotonic() - t1, 3))
        finally:
            try:
                target.drop(scratch)
            except (DatabaseError, OSError):
                pass
    return item
