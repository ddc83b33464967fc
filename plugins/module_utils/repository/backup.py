# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One backup run: plan the type, stream the database (and include_paths) into chunks, write
the manifest last, apply retention, prune, copy to secondary repositories.

``run_backup(params, options)`` is what the ``backup`` module calls; ``plan_backup`` is its
check mode. Plain Python; errors are ``RepositoryError`` / ``DatabaseError`` with safe messages.
"""

from __future__ import annotations

import datetime
import os
import time

from ansible_collections.bim.wall_system.plugins.module_utils.database.api_dump import ScratchError
from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError
from ansible_collections.bim.wall_system.plugins.module_utils.repository import chunker, files_stream, guard, retention
from ansible_collections.bim.wall_system.plugins.module_utils.repository.copy import copy_backups, parse_target
from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import (
    Repository, RepositoryError, check_backup_id, friendly_os_error, iso, manifest_format_version, new_backup_id,
    parse_time, syncfs, utcnow,
)
from ansible_collections.bim.wall_system.plugins.module_utils.repository.writer import ChunkSession

TYPES = ("auto", "full", "differential", "incremental")

DEFAULTS = {
    "type": "auto",
    "full_every_days": 7,
    "compression_level": 3,
    "include_paths": [],
    "retention": {},
    "prune": True,
    "copy_to": [],
    "lock_timeout": 0,
    "suspicious_drop": guard.DEFAULT_SUSPICIOUS_DROP,
    # Ids of suspicious backups the operator has examined and removes in this run (see guard).
    "forget_suspicious": [],
    "workers": 2,
    # Library-only switch for benchmarks: skip the table digests (the manifest then has no tables).
    "table_digests": True,
    # The operator's key (None: an unkeyed repository), encryption of a repository created with a
    # key, and the key to rotate to (re-wraps the data key before this backup).
    "repository_key": None,
    "repository_encryption": True,
    "new_repository_key": None,
}


def _options(options):
    opts = dict(DEFAULTS)
    opts.update({k: v for k, v in (options or {}).items() if v is not None})
    if opts["type"] not in TYPES:
        raise RepositoryError("type must be one of %s, got %r" % (", ".join(TYPES), opts["type"]))
    level = int(opts["compression_level"])
    if not 1 <= level <= 19:
        raise RepositoryError("compression_level must be between 1 and 19, got %d" % level)
    opts["compression_level"] = level
    if int(opts["full_every_days"]) < 0:
        raise RepositoryError("full_every_days must be >= 0")
    try:
        opts["retention"] = retention.normalize(opts["retention"])
        opts["suspicious_drop"] = guard.check_drop(opts["suspicious_drop"])
    except (retention.RetentionError, guard.GuardError) as exc:
        raise RepositoryError(str(exc))
    for path in opts["include_paths"] or []:
        if not os.path.isabs(path):
            raise RepositoryError("include_paths entry %r must be an absolute path" % (path,))
        if not os.path.exists(path):
            raise RepositoryError("include_paths entry %s does not exist" % path)
    opts["targets"] = [parse_target(entry) for entry in opts["copy_to"] or []]
    opts["forget_suspicious"] = [check_backup_id(i) for i in dict.fromkeys(opts["forget_suspicious"] or [])]
    return opts


def plan_type(backups, requested, full_every_days, now=None):
    """(type, parent_id) for the next backup given the existing manifests (oldest first)."""
    now = now or utcnow()
    fulls = [m for m in backups if m.get("type") == "full"]
    last_full = fulls[-1] if fulls else None
    kind = requested
    if requested == "auto":
        if last_full is None:
            kind = "full"
        elif full_every_days and now - parse_time(last_full["finished"]) >= datetime.timedelta(days=full_every_days):
            kind = "full"
        else:
            kind = "incremental"
    if kind in ("differential", "incremental") and last_full is None:
        # Nothing to be relative to: the first backup is a full whatever was asked.
        kind = "full"
    if kind == "full":
        return "full", None
    if kind == "differential":
        return "differential", last_full["id"]
    return "incremental", backups[-1]["id"]


def _expiry(repo, backups, rules, new_id=None, now=None):
    """Ids retention expires (oldest first): never a suspicious backup nor the newest one that passed
    a restore-level verification (see guard)."""
    protected = [guard.newest_restore_verified(repo, backups)] if repo is not None else []
    return guard.expiry(backups, rules, protected, new_id, iso(now) if now else None)


def plan_backup(params, repository, options=None, now=None):
    """Check mode: what a run would do, writing nothing."""
    opts = _options(options)
    now = now or utcnow()
    repo = Repository(repository, key=opts["repository_key"]) if Repository.exists(repository) else None
    backups = repo.list_backups() if repo else []
    kind, parent = plan_type(backups, opts["type"], int(opts["full_every_days"]), now)
    return {
        "changed": True,
        "type": kind,
        "parent_id": parent,
        "backup_id": None,
        "expired": _expiry(repo, backups, opts["retention"], "planned", now) if opts["retention"] else [],
        "forgotten": guard.suspicious_to_forget(repo, opts["forget_suspicious"]) if repo else [],
        "repository": os.path.abspath(repository),
        "repository_exists": Repository.exists(repository),
        "storage_locations": [{"url": t.url, "status": "planned"} for t in opts["targets"]],
        "source": params.describe(),
        "protection": protection(repo) if repo else ("unkeyed" if not opts["repository_key"] else (
            "encrypted" if opts["repository_encryption"] else "authenticated")),
        "key_rotated": bool(repo and opts["new_repository_key"]),
        "warnings": repo.warnings if repo else [],
    }


def protection(repo):
    """``unkeyed``, ``authenticated`` or ``encrypted``: what the repository's key gives it."""
    return repo.codec.key.mode if repo.codec.keyed else "unkeyed"


def _store_files(session, paths):
    reader, thread, errors, record = files_stream.tar_stream(paths)
    try:
        chunks, size = session.store_stream(chunker.cdc_chunks(reader))
    finally:
        reader.close()
        thread.join()
    if errors:
        raise RepositoryError("reading include_paths failed: %s" % errors[0])
    # The record (mode, owner, size, digest per entry) is what a restore trusts, not the tar.
    return {"kind": "tar", "size": size, "chunks": chunks, "chunker": chunker.cdc_parameters(),
            "record_version": files_stream.RECORD_VERSION, "entries": record.get("entries", []),
            "parents": files_stream.parents_record(paths)}


def _store_database(session, params, repo, backup_id, with_digests=True):
    """The database stream and its table digests, read once by the engine (``Dumps``)."""

    def store(reader, page_size=None):
        if page_size:
            fixed = chunker.fixed_parameters(page_size)
            chunks, size = session.store_stream(chunker.fixed_chunks(reader, fixed["size"]))
            return chunks, size, fixed
        chunks, size = session.store_stream(chunker.cdc_chunks(reader))
        return chunks, size, chunker.cdc_parameters()

    try:
        return open_engine(params).dump_database(store, repo.tmp_dir, backup_id, with_digests, session.timings)
    except ScratchError as exc:
        if exc.os_error is not None:
            raise friendly_os_error(exc.os_error, exc.action)
        raise RepositoryError(str(exc))


def run_backup(params, repository, options=None):
    """Take one backup. Returns the module result (see the backup module's RETURN)."""
    opts = _options(options)
    old_umask = os.umask(0o077)
    try:
        return _run(params, repository, opts)
    finally:
        os.umask(old_umask)


def _run(params, repository, opts):
    repo = Repository(repository, create=True, key=opts["repository_key"], encryption=opts["repository_encryption"])
    started = utcnow()
    clock = time.monotonic()
    with repo.lock("backup", wait=opts["lock_timeout"]):
        repo.clean_tmp()
        if opts["new_repository_key"]:
            repo.rotate_key(opts["new_repository_key"])
        # Chunks of a crashed run are named by no manifest: remove them before deduplicating
        # against the repository, so nothing unverified is ever reused.
        orphans = repo.prune()
        # Before this backup is judged: it is then compared with the newest backup that stays.
        forgotten = guard.forget_suspicious(repo, opts["forget_suspicious"])
        backups = repo.list_backups()
        kind, parent = plan_type(backups, opts["type"], int(opts["full_every_days"]), started)
        backup_id = new_backup_id(started)
        session = ChunkSession(repo, level=opts["compression_level"], workers=opts["workers"],
                               verify_reused=(kind == "full"))
        streams, tables = _store_streams(session, params, repo, backup_id, opts)
        # Without digests (a benchmark switch) there is nothing to judge the backup by.
        suspicious = guard.suspicion(tables, backups[-1] if backups else None,
                                     opts["suspicious_drop"]) if opts["table_digests"] else []
        # Every chunk durable before the manifest names it.
        mark = time.monotonic()
        syncfs(repo.path)
        session.timings["sync_s"] = round(time.monotonic() - mark, 3)
        manifest = _manifest(repo, session, params, opts, dict(id=backup_id, type=kind, parent_id=parent),
                             started, streams, tables)
        if suspicious:
            manifest["suspicious"] = suspicious
        manifest = repo.write_manifest(manifest)
        expired, pruned, rules = _apply_retention(repo, backup_id, suspicious, forgotten, opts)
        pruned["orphans_removed"] = orphans["removed_chunks"]
        locations = _copy_to_targets(repo, session, opts, rules)
    return {
        "changed": True,
        "backup_id": backup_id,
        "type": kind,
        "parent_id": parent,
        "engine": params.engine,
        "repository": repo.path,
        "started": manifest["started"],
        "finished": manifest["finished"],
        "duration_s": round(time.monotonic() - clock, 3),
        "source_bytes": manifest["source_bytes"],
        "new_stored_bytes": manifest["new_stored_bytes"],
        "referenced_bytes": manifest["referenced_bytes"],
        "new_chunks": manifest["new_chunks"],
        "reused_chunks": manifest["reused_chunks"],
        "repaired_chunks": manifest["repaired_chunks"],
        "tables": tables,
        "suspicious": bool(suspicious),
        "suspicious_reasons": suspicious,
        "warnings": list(repo.warnings),
        "streams": {name: {"kind": s["kind"], "size": s["size"], "chunks": len(s["chunks"])} for name, s in streams.items()},
        "storage_locations": locations,
        "copy_failed": any(loc["status"] != "ok" for loc in locations),
        "expired": expired,
        "forgotten": forgotten,
        "pruned": pruned,
        "timings": session.timings,
        "protection": protection(repo),
        "key_rotated": bool(opts["new_repository_key"]),
    }


def _store_streams(session, params, repo, backup_id, opts):
    """The database stream and, with ``include_paths``, the files stream; and the table digests."""
    streams = {}
    mark = time.monotonic()
    streams["database"], tables = _store_database(session, params, repo, backup_id, opts["table_digests"])
    session.timings["database_s"] = round(time.monotonic() - mark, 3)
    if opts["include_paths"]:
        mark = time.monotonic()
        streams["files"] = _store_files(session, list(opts["include_paths"]))
        session.timings["files_s"] = round(time.monotonic() - mark, 3)
    return streams, tables


def _manifest(repo, session, params, opts, identity, started, streams, tables):
    """The manifest of the backup ``identity`` ({id, type, parent_id}) whose streams are stored."""
    parent = identity["parent_id"]
    names = {}
    for stream in streams.values():
        for chunk_id, length in stream["chunks"]:
            names[chunk_id] = length
    referenced = sum(session.chunk_sizes.get(c) or repo.chunk_stored_size(c) for c in names)
    parent_chunks = set()
    if parent:
        parent_chunks = set(Repository.manifest_chunks(repo.load_manifest(parent)))
    changed_bytes = sum(length for c, length in names.items() if c not in parent_chunks)
    return {
        "format_version": manifest_format_version(tables, streams),
        "id": identity["id"],
        "type": identity["type"],
        "parent_id": parent,
        "engine": params.engine,
        "source": params.describe(),
        "started": iso(started),
        "finished": iso(utcnow()),
        "source_bytes": sum(s["size"] for s in streams.values()),
        "stored_bytes": session.stats["new_stored_bytes"],
        "new_stored_bytes": session.stats["new_stored_bytes"],
        "referenced_bytes": referenced,
        "changed_since_parent_bytes": changed_bytes if parent else None,
        "new_chunks": session.stats["new_chunks"],
        "reused_chunks": session.stats["reused_chunks"],
        "verified_reused_chunks": session.stats["verified_reused_chunks"],
        "repaired_chunks": session.stats["repaired_chunks"],
        "tables": tables,
        "streams": streams,
        "chunker": streams["database"]["chunker"],
        "codec": {"name": "zstd", "level": opts["compression_level"]},
        "hash": repo.codec.hash_name,
        "include_paths": list(opts["include_paths"] or []),
    }


def _apply_retention(repo, backup_id, suspicious, forgotten, opts):
    """(expired ids, prune figures, the rules applied): a suspicious backup expires nothing; the
    chunks of expired and ``forgotten`` backups are pruned."""
    expired = []
    pruned = {"removed_chunks": 0, "removed_bytes": 0}
    rules = opts["retention"]
    if rules and suspicious:
        # Never trade good backups for one that looks wrong: this run expires nothing.
        repo.warnings.append("backup %s is suspicious (%s); kept, and retention expired nothing"
                             % (backup_id, "; ".join(suspicious)))
        rules = {}
    if rules:
        expired = _expiry(repo, repo.list_backups(), rules)
        for old_id in expired:
            repo.remove_backup(old_id)
    if opts["prune"] and (expired or forgotten):
        pruned = repo.prune()
    return expired, pruned, rules


def _copy_to_targets(repo, session, opts, rules):
    """Storage locations: the primary, then each ``copy_to`` target with the copy's status."""
    locations = [{"url": repo.path, "status": "ok", "primary": True, "error": None}]
    mark = time.monotonic()
    if opts["targets"]:
        # Copy every backup the target lacks: a copy interrupted last time completes now.
        remaining = repo.list_backups()
        for target in opts["targets"]:
            status = copy_backups(repo, target, remaining, rules, opts["prune"], opts["forget_suspicious"])
            status["primary"] = False
            locations.append(status)
        session.timings["copies_s"] = round(time.monotonic() - mark, 3)
    return locations


def backup_summary(repo, now=None, max_age_s=None):
    """What backup_info returns: every backup with its verification state and age."""
    now = now or utcnow()
    items = []
    for manifest in repo.list_backups():
        state = repo.verification_state(manifest["id"])
        finished = parse_time(manifest["finished"])
        items.append({
            "id": manifest["id"],
            "type": manifest["type"],
            "parent_id": manifest.get("parent_id"),
            "engine": manifest.get("engine"),
            "started": manifest["started"],
            "finished": manifest["finished"],
            "age_s": round((now - finished).total_seconds(), 1),
            "source_bytes": manifest.get("source_bytes"),
            "new_stored_bytes": manifest.get("new_stored_bytes"),
            "referenced_bytes": manifest.get("referenced_bytes"),
            "tables": {t: v.get("rows") for t, v in (manifest.get("tables") or {}).items()},
            "include_paths": manifest.get("include_paths") or [],
            "suspicious": list(manifest.get("suspicious") or []),
            "verification": state,
            "verified": bool(state and state.get("passed")),
        })
    latest = items[-1] if items else None
    verified = [i for i in items if i["verified"]]
    result = {
        "repository": repo.path,
        "backups": items,
        "count": len(items),
        "latest": latest,
        "latest_verified": verified[-1] if verified else None,
        "suspicious": [i["id"] for i in items if i["suspicious"]],
        "damaged_manifests": repo.damaged_manifests(),
        "stale": False,
        "protection": protection(repo),
        "warnings": list(repo.warnings),
        "msg": "%d backup(s) in %s" % (len(items), repo.path),
    }
    if max_age_s is not None:
        if latest is None:
            result["stale"] = True
            result["msg"] = "repository %s holds no backup (max_age %ss)" % (repo.path, int(max_age_s))
        elif latest["age_s"] > max_age_s:
            result["stale"] = True
            result["msg"] = ("newest backup %s is %.1f h old, older than max_age %.1f h"
                             % (latest["id"], latest["age_s"] / 3600.0, max_age_s / 3600.0))
    return result


__all__ = ["run_backup", "plan_backup", "plan_type", "backup_summary", "DatabaseError"]
