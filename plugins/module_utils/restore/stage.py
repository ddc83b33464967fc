# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bring one backup from a secondary repository into a local staging repository.

Used by disaster recovery when the primary repository is gone or unreachable. The secondary is
named like the backup module's ``copy_to`` entries: a local path, or ``sftp://user@host[:port]/path``
(with ``key_file``), opened through the repository package's copy targets (paramiko). Order
follows the repository's crash model: every chunk first (decompressed and hash-checked on
arrival, then renamed into place), the manifest last. An interrupted pull leaves no manifest,
and the next pull fetches only what is missing. ``plan_pull`` tells what a pull would fetch,
reading the secondary only (check mode). A keyed secondary is read with the repository key: every
manifest and chunk is authenticated before it is parsed or stored, and the staging repository
gets the secondary's config.json and key.json, so it is the same keyed repository.
"""

from __future__ import annotations

import json
import os
import posixpath

from ansible_collections.bim.wall_system.plugins.module_utils.common.atomic import atomic_write
from ansible_collections.bim.wall_system.plugins.module_utils.restore.errors import RestoreError


def _repo_api():
    from ansible_collections.bim.wall_system.plugins.module_utils.repository import repository, copy
    return repository, copy


class _RemoteReader:
    """Read access to a secondary repository, local or SFTP."""

    def __init__(self, entry, key=None, record_new_keys=True):
        repository, copy = _repo_api()
        self.repository = repository
        self.target = copy.parse_target(entry, record_new_keys=record_new_keys)
        self.url = copy.describe_url(self.target.url)
        self.local = isinstance(self.target, copy.LocalTarget)
        self.key = key

    def __enter__(self):
        if self.local:
            if not self.repository.Repository.exists(self.target.path):
                raise RestoreError("secondary repository %s does not exist" % self.url)
            self.repo = self.repository.Repository(self.target.path, key=self.key)
        else:
            from ansible_collections.bim.wall_system.plugins.module_utils.repository.host_keys import HostKeyRefused
            try:
                self.target.open()
            except HostKeyRefused as exc:
                raise RestoreError("secondary repository %s is not trusted, nothing was read from it: %s" % (self.url, exc))
            except self.repository.RepositoryError as exc:
                raise RestoreError("secondary repository unreachable: %s" % exc)
        # What a copy of it must hold, and how its manifests and chunks are checked (with the key).
        config_raw = self._read_optional("config.json")
        if config_raw is None:
            raise RestoreError("secondary repository %s has no config.json" % self.url)
        self.config = self.repository.read_config(config_raw, self.url)
        self._identity = (config_raw, self._read_optional("key.json"))
        self.codec = self.repository.open_codec(self.config, self._identity[1], self.key, self.url)
        return self

    def host_key(self):
        """{fingerprint, trust} of an SFTP secondary's host key; None for a local one."""
        if self.local:
            return None
        return {"fingerprint": self.target.trust.fingerprint, "trust": self.target.trust.status}

    def identity(self):
        return self._identity

    def _read_optional(self, relpath):
        try:
            return self._read(relpath)
        except FileNotFoundError:
            return None

    def __exit__(self, *exc):
        if not self.local:
            self.target.close()

    def _read(self, relpath):
        if self.local:
            with open(os.path.join(self.target.path, relpath), "rb") as handle:
                return handle.read()
        with self.target.sftp.open(posixpath.join(self.target.path, relpath), "rb") as handle:
            handle.prefetch()
            return handle.read()

    def manifest_ids(self):
        return sorted(self.target.manifest_ids()) if not self.local else sorted(self.repo.backup_ids())

    def manifest_raw(self, backup_id):
        return self._read("manifests/%s.json" % backup_id)

    def verification_raw(self, backup_id):
        try:
            return self._read("verifications/%s.json" % backup_id)
        except (OSError, IOError):
            return None

    def chunk_raw(self, chunk_id):
        return self._read("chunks/%s/%s" % (chunk_id[:2], chunk_id))

    def chunk_sizes(self, chunk_ids):
        """{chunk_id: stored size} of ``chunk_ids``, without reading them. Over SFTP one listing
        per chunk folder (at most 256 round trips) instead of one stat per chunk; raises OSError
        (FileNotFoundError) for a chunk the secondary does not hold."""
        sizes = {}
        by_folder = {}
        for chunk_id in chunk_ids:
            by_folder.setdefault(chunk_id[:2], []).append(chunk_id)
        for folder, wanted in sorted(by_folder.items()):
            if self.local:
                base = os.path.join(self.target.path, "chunks", folder)
                found = {c: os.path.getsize(os.path.join(base, c)) for c in wanted if os.path.isfile(os.path.join(base, c))}
            else:
                try:
                    listing = self.target.sftp.listdir_attr(posixpath.join(self.target.path, "chunks", folder))
                except FileNotFoundError:
                    listing = []
                found = {entry.filename: entry.st_size for entry in listing}
            for chunk_id in wanted:
                if chunk_id not in found:
                    raise FileNotFoundError("chunk %s is missing in the secondary repository" % chunk_id)
                sizes[chunk_id] = found[chunk_id]
        return sizes


def _choose_backup(remote, selector):
    """The (manifest, raw bytes) of the backup ``selector`` names in ``remote``; manifests whose
    checksum does not match are passed over."""
    repository, _copy = _repo_api()
    manifests = []
    for backup_id in remote.manifest_ids():
        try:
            raw = remote.manifest_raw(backup_id)
            manifest = remote.codec.parse_manifest(backup_id, raw)  # authentic before parsed
        except (OSError, repository.RepositoryError):
            continue
        manifests.append((manifest, raw))
    if not manifests:
        raise RestoreError("secondary repository %s holds no backup" % remote.url)
    manifests.sort(key=lambda item: item[0].get("finished") or "")
    chosen = None
    if selector in (None, "", "latest"):
        chosen = manifests[-1]
    elif selector == "latest_verified":
        for manifest, raw in reversed(manifests):
            vraw = remote.verification_raw(manifest["id"])
            try:
                records = json.loads(vraw.decode("utf-8")).get("records") if vraw else []
            except ValueError:
                records = []
            if records and records[-1].get("passed"):
                chosen = (manifest, raw)
                break
    else:
        chosen = next((item for item in manifests if item[0]["id"] == selector), None)
    if chosen is None:
        raise RestoreError("backup %s is not in secondary repository %s" % (selector, remote.url))
    return chosen


def _remote_errors(call, doing):
    """Run ``call()``, turning what a remote repository can raise into RestoreError (``doing``:
    what the message says failed, e.g. "pulling from")."""
    repository, _copy = _repo_api()
    try:
        return call()
    except repository.CorruptChunkError as exc:
        raise RestoreError("secondary repository: %s" % exc)
    except repository.RepositoryError as exc:
        raise RestoreError("%s the secondary repository failed: %s" % (doing, exc))
    except RestoreError:
        raise
    except Exception as exc:  # OSError, EOFError and paramiko's SSHException family mid-transfer
        raise RestoreError("%s the secondary repository failed: %s: %s" % (doing, type(exc).__name__, exc))


def plan_pull(secondary, selector, staging_path, key=None):
    """What ``pull_backup`` would do, reading the secondary only (check mode): nothing is written.

    Returns ``(manifest, figures)``: the manifest of the backup chosen and ``{"backup_id",
    "source", "fetch_chunks", "fetch_bytes", "reused_chunks"}``; ``fetch_bytes`` are the stored
    bytes of the chunks the staging repository does not hold yet.
    """
    repository, _copy = _repo_api()
    Repository = repository.Repository
    if selector not in (None, "", "latest", "latest_verified"):
        repository.check_backup_id(selector)

    def plan():
        local = Repository(staging_path, key=key) if Repository.exists(staging_path) else None
        # check mode: a host seen for the first time is not written to the known_hosts file
        with _RemoteReader(secondary, key, record_new_keys=False) as remote:
            manifest, _raw = _choose_backup(remote, selector)
            missing = []
            reused = 0
            for chunk_id in Repository.manifest_chunks(manifest):
                if local is not None and local.has_chunk(chunk_id):
                    reused += 1
                else:
                    missing.append(chunk_id)
            return manifest, {"backup_id": manifest["id"], "source": remote.url, "fetch_chunks": len(missing),
                              "fetch_bytes": sum(remote.chunk_sizes(missing).values()), "reused_chunks": reused,
                              "host_key": remote.host_key()}

    return _remote_errors(plan, "reading")


def pull_backup(secondary, selector, staging_path, key=None):
    """Copy the backup ``selector`` names (latest | latest_verified | id) into ``staging_path``.

    Returns ``{"backup_id", "source", "fetched_chunks", "fetched_bytes", "reused_chunks"}``.
    """
    repository, copy = _repo_api()
    Repository = repository.Repository
    if selector not in (None, "", "latest", "latest_verified"):
        repository.check_backup_id(selector)
    result = {"fetched_chunks": 0, "fetched_bytes": 0, "reused_chunks": 0}

    def staging_like(remote):
        """The staging repository, holding the secondary's config.json and key.json."""
        old = os.umask(0o077)
        try:
            staging = copy.LocalTarget(staging_path)
            staging.open()
            copy.match_identity(remote, staging)
            return Repository(staging_path, key=key)
        finally:
            os.umask(old)

    def pull():
        with _RemoteReader(secondary, key) as remote:
            local = staging_like(remote)
            result["source"] = remote.url
            result["host_key"] = remote.host_key()
            manifest, raw = _choose_backup(remote, selector)
            for chunk_id, length in Repository.manifest_chunks(manifest).items():
                if local.has_chunk(chunk_id):
                    result["reused_chunks"] += 1
                    continue
                data = remote.chunk_raw(chunk_id)
                remote.codec.decode_chunk(chunk_id, data, length)  # authenticated and hash-checked on arrival
                local.write_chunk(chunk_id, data, fsync=True)
                result["fetched_chunks"] += 1
                result["fetched_bytes"] += len(data)
            atomic_write(local.manifest_path(manifest["id"]), raw, tmp_dir=local.tmp_dir)
            vraw = remote.verification_raw(manifest["id"])
            if vraw:
                atomic_write(local.verification_path(manifest["id"]), vraw, tmp_dir=local.tmp_dir)
            result["backup_id"] = manifest["id"]

    _remote_errors(pull, "pulling from")
    return result
