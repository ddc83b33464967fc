# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read a backup's ``files`` stream (tar) into a scratch folder and check every member, before
anything live is touched.

A member is accepted only when its name is relative, canonical (no ``..``, ``.`` or empty part),
at or below one of the manifest's ``include_paths``, and, for a backup that records its files
(``streams.files.entries``, docs/repository-format.md), named by that record with the same type,
size and SHA-256. Mode and owner come from the record, never from the tar. Symlinks, hard links,
devices and sparse members are never created: a recorded symlink is reported as skipped, any other
is refused. A file's bytes go to the scratch folder in blocks (memory stays bounded whatever the
member's size). Any refusal fails the whole staging: nothing is written below ``files_root``.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import tarfile

from ansible_collections.bim.wall_system.plugins.module_utils.restore.errors import RestoreError

BLOCK = 1024 * 1024


def _roots(manifest):
    roots = []
    for path in manifest.get("include_paths") or []:
        roots.append(posixpath.normpath("/" + str(path)).strip("/"))
    return roots


def check_name(raw, roots):
    """The member name ``raw`` as a relative path, or RestoreError saying why it is refused."""
    if not raw or "\x00" in raw:
        raise RestoreError("refusing the files stream: member name %r is empty or holds a NUL" % raw)
    if raw.startswith("/"):
        raise RestoreError("refusing the files stream: member %s has an absolute name" % raw)
    parts = raw.rstrip("/").split("/")
    if any(part in ("", ".", "..") for part in parts):
        raise RestoreError("refusing the files stream: member %s is not a plain relative name (.., . or //)" % raw)
    name = "/".join(parts)
    if not any(root == "" or name == root or name.startswith(root + "/") for root in roots):
        raise RestoreError("refusing the files stream: member %s is not under the backup's include_paths (%s)"
                           % (raw, ", ".join("/" + r for r in roots) or "none"))
    return name


def _kind(member):
    if member.isdir():
        return "dir"
    if member.isfile() and not member.issparse():
        return "file"
    if member.issym():
        return "symlink"
    return "other"


def recorded_size(manifest):
    """Bytes of the files a restore writes: the record's sum, else the tar's size."""
    stream = (manifest.get("streams") or {}).get("files")
    if not stream:
        return 0
    if "entries" in stream:
        return sum(int(e.get("size") or 0) for e in stream["entries"] if e.get("type") == "file")
    return int(stream.get("size") or 0)


def _stage_file(tar, member, staging, number, expected):
    """Copy ``member``'s bytes into ``staging/<number>`` block by block; check size and digest
    against the record entry ``expected`` (None: an older backup without one)."""
    path = os.path.join(staging, "%d" % number)
    source = tar.extractfile(member)
    digest = hashlib.sha256()
    size = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        while True:
            block = source.read(BLOCK)
            if not block:
                break
            digest.update(block)
            size += len(block)
            view = memoryview(block)
            while view:
                view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    if expected is not None and (size != int(expected.get("size", -1)) or digest.hexdigest() != expected.get("sha256")):
        raise RestoreError("refusing the files stream: member %s does not match the backup's record "
                           "(%d bytes, sha256 %s)" % (member.name, size, digest.hexdigest()))
    return "%d" % number


def _meta(entry, member, kind):
    """Mode and owner to give the entry: the record's; for an older backup the tar's permission
    bits only (owner: see files_step) — set-id bits are dropped later in any case."""
    if entry is not None:
        return {k: entry.get(k) for k in ("mode", "uid", "gid", "user", "group")}
    return {"mode": member.mode & (0o1777 if kind == "dir" else 0o777), "uid": None, "gid": None}


def stage_files(repo, manifest, staging):
    """Read the ``files`` stream of ``manifest`` into the new folder ``staging`` and check it.

    Returns ``{"dir", "items": [{path, kind, staged?, meta}], "parents": {rel: meta},
    "skipped": [...], "recorded": bool, "bytes"}``; raises RestoreError (a refused member, a
    stream that is not a tar) and the repository's errors (a damaged chunk)."""
    stream = manifest["streams"]["files"]
    record = None
    if "entries" in stream:
        record = {e["path"]: e for e in stream["entries"]}
    roots = _roots(manifest)
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(staging, mode=0o700)
    plan = {"dir": staging, "items": [], "parents": {p["path"]: p for p in stream.get("parents") or []},
            "skipped": [], "recorded": record is not None, "bytes": 0}
    seen = set()
    with repo.open_stream(manifest, "files") as source:
        try:
            with tarfile.open(fileobj=source, mode="r|") as tar:
                for number, member in enumerate(tar):
                    name = check_name(member.name, roots)
                    kind = _kind(member)
                    if name in seen:
                        raise RestoreError("refusing the files stream: member %s appears twice" % member.name)
                    seen.add(name)
                    entry = record.get(name) if record is not None else None
                    if record is not None and (entry is None or entry.get("type") != kind):
                        raise RestoreError("refusing the files stream: member %s (%s) is not in the backup's "
                                           "record as such" % (member.name, kind))
                    if kind == "symlink":
                        plan["skipped"].append(name)
                        continue
                    if kind == "other":
                        raise RestoreError("refusing the files stream: member %s is a link, device or sparse "
                                           "file; only files and folders are restored" % member.name)
                    item = {"path": name, "kind": kind, "meta": _meta(entry, member, kind)}
                    if kind == "file":
                        item["staged"] = _stage_file(tar, member, staging, number, entry)
                        plan["bytes"] += member.size
                    plan["items"].append(item)
        except tarfile.TarError as exc:
            raise RestoreError("the files stream of backup %s is not a readable tar: %s" % (manifest["id"], exc))
    if record is not None:
        missing = sorted(set(record) - seen)
        if missing:
            raise RestoreError("the files stream of backup %s lacks recorded entries: %s" % (
                manifest["id"], ", ".join(missing[:10])))
    return plan
