# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Copies of a repository's backups to secondary repositories: a local folder or SFTP (paramiko).

Order per backup: every chunk first (each read back from the target and hash-checked on
arrival), the manifest last by rename. An interrupted copy leaves no manifest in the target,
so the target never lists a backup it does not fully hold; the next run copies what is missing.
"""

from __future__ import annotations

import os
import posixpath
import stat
import urllib.parse
import uuid

try:
    import paramiko
    HAS_PARAMIKO = True
    PARAMIKO_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - checked by the modules
    paramiko = None
    HAS_PARAMIKO = False
    PARAMIKO_IMPORT_ERROR = exc

from ansible_collections.bim.wall_system.plugins.module_utils.common.atomic import atomic_write
from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import (
    CHUNK_ID_RE, BACKUP_ID_RE, DIR_MODE, FORMAT_VERSION, KEYED_FORMAT_VERSION, CorruptChunkError, Repository,
    RepositoryError, read_config,
)
from ansible_collections.bim.wall_system.plugins.module_utils.repository import guard
from ansible_collections.bim.wall_system.plugins.module_utils.repository.host_keys import HostTrust, entry_name, translate


def describe_url(url):
    """The URL without any password (user@host:port/path stays)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "sftp" and parts.password:
        netloc = "%s@%s" % (parts.username, parts.hostname)
        if parts.port:
            netloc += ":%d" % parts.port
        return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return url


def parse_target(entry, record_new_keys=True):
    """``entry``: a URL string or {url, key_file, strict_host_key_checking, known_hosts_file}.
    Returns a target. ``record_new_keys=False`` (check mode): a host seen for the first time is
    trusted for this read-only connection but not written to the known_hosts file."""
    if isinstance(entry, str):
        entry = {"url": entry}
    url = entry.get("url") or ""
    if url.startswith("sftp://"):
        parts = urllib.parse.urlsplit(url)
        if not parts.hostname or not parts.path or parts.path == "/":
            raise RepositoryError("copy_to URL %s must look like sftp://user@host[:port]/path" % describe_url(url))
        if parts.password:
            raise RepositoryError("copy_to URL %s must not hold a password; use key_file" % describe_url(url))
        return SftpTarget(parts.hostname, parts.port or 22, parts.username or "root", parts.path,
                          key_file=entry.get("key_file"), timeout=int(entry.get("timeout") or 20),
                          trust=HostTrust(entry.get("known_hosts_file"), strict=bool(entry.get("strict_host_key_checking")),
                                          record=record_new_keys))
    if url.startswith("file://"):
        url = url[len("file://"):]
    if not url.startswith("/"):
        raise RepositoryError("copy_to %r must be an absolute path or sftp://user@host[:port]/path" % (url,))
    return LocalTarget(url)


class LocalTarget:
    """A secondary repository in a local folder (another disk, an NFS mount...)."""

    def __init__(self, path):
        self.path = path
        self.url = path
        self.repo = None

    def open(self):
        old = os.umask(0o077)
        try:
            for sub in ("", "chunks", "manifests", "verifications", "tmp"):
                os.makedirs(os.path.join(self.path, sub), mode=DIR_MODE, exist_ok=True)
        finally:
            os.umask(old)

    def attach(self, source):
        """Open the target as a repository like ``source`` (after match_identity)."""
        self.repo = source.open_copy(self.path)
        self.repo.clean_tmp()

    def read_meta(self, name):
        try:
            with open(os.path.join(self.path, name), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None

    def put_meta(self, name, data):
        atomic_write(os.path.join(self.path, name), data, tmp_dir=os.path.join(self.path, "tmp"))

    def close(self):
        pass

    def manifest_ids(self):
        return set(self.repo.backup_ids())

    def chunk_ids(self):
        return self.repo.list_chunks()

    def put_chunk(self, chunk_id, raw, length):
        old = os.umask(0o077)
        try:
            self.repo.write_chunk(chunk_id, raw, fsync=True)
        finally:
            os.umask(old)
        with open(self.repo.chunk_path(chunk_id), "rb") as handle:
            self.repo.decode_chunk(chunk_id, handle.read(), length)

    def put_manifest(self, backup_id, raw):
        atomic_write(self.repo.manifest_path(backup_id), raw, tmp_dir=self.repo.tmp_dir)

    def manifests(self):
        return [{"id": m["id"], "finished": m["finished"], "chunks": set(Repository.manifest_chunks(m)),
                 "suspicious": m.get("suspicious")} for m in self.repo.list_backups()]

    def forget(self, backup_id):
        self.repo.remove_backup(backup_id)

    def remove_chunk(self, chunk_id):
        self.repo.remove_chunk(chunk_id)


class SftpTarget:
    """A secondary repository on another host over SFTP (paramiko, key authentication)."""

    def __init__(self, host, port, user, path, key_file=None, timeout=20, trust=None):
        self.host, self.port, self.user, self.path = host, port, user, path.rstrip("/")
        self.key_file, self.timeout = key_file, timeout
        self.trust = trust or HostTrust()
        self.url = "sftp://%s@%s:%d%s" % (user, host, port, self.path)
        self.client = None
        self.sftp = None
        self.codec = None

    def open(self):
        if not HAS_PARAMIKO:
            raise RepositoryError("the Python library paramiko is required for sftp copies")
        client = paramiko.SSHClient()
        try:
            # The host key is checked (and on first use recorded) before authentication: no key,
            # no byte of a backup goes to or comes from a host that is not the one trusted.
            self.trust.prepare(client)
            client.connect(self.host, port=self.port, username=self.user, key_filename=self.key_file,
                           timeout=self.timeout, banner_timeout=self.timeout, auth_timeout=self.timeout,
                           allow_agent=False, look_for_keys=self.key_file is None)
            self.trust.connected(client)
            self.client = client
            self.sftp = client.open_sftp()
            self.sftp.get_channel().settimeout(self.timeout * 3)
        except (RepositoryError, paramiko.SSHException, OSError) as exc:
            client.close()
            refused = translate(self.trust, exc, entry_name(self.host, self.port))
            if refused is not None:
                raise refused
            if isinstance(exc, RepositoryError):
                raise
            raise RepositoryError("cannot open SFTP to %s: %s" % (self.url, exc))
        self._mkdirs(self.path)
        for sub in ("chunks", "manifests", "verifications", "tmp"):
            self._mkdirs(posixpath.join(self.path, sub))
        # Leftovers of an interrupted copy.
        tmp = posixpath.join(self.path, "tmp")
        for name in self.sftp.listdir(tmp):
            try:
                self.sftp.remove(posixpath.join(tmp, name))
            except OSError:
                pass

    def attach(self, source):
        """Check what arrives with ``source``'s codec (the same key, after match_identity)."""
        self.codec = source.codec

    def read_meta(self, name):
        try:
            with self.sftp.open(posixpath.join(self.path, name), "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None

    def put_meta(self, name, data):
        self._put_atomic(posixpath.join(self.path, name), data)

    def close(self):
        if self.client is not None:
            self.client.close()
            self.client = self.sftp = None

    def _exists(self, path):
        try:
            self.sftp.stat(path)
            return True
        except OSError:
            return False

    def _mkdirs(self, path):
        parts = []
        current = path
        while current not in ("", "/") and not self._exists(current):
            parts.append(current)
            current = posixpath.dirname(current)
        for folder in reversed(parts):
            self.sftp.mkdir(folder, mode=0o700)
            self.sftp.chmod(folder, 0o700)

    def _put_atomic(self, path, data):
        tmp = posixpath.join(self.path, "tmp", "%s.%s.tmp" % (posixpath.basename(path), uuid.uuid4().hex[:12]))
        with self.sftp.open(tmp, "wb") as handle:
            handle.chmod(0o600)
            handle.write(data)
        self.sftp.posix_rename(tmp, path)

    def manifest_ids(self):
        names = self.sftp.listdir(posixpath.join(self.path, "manifests"))
        return {n[:-5] for n in names if n.endswith(".json") and BACKUP_ID_RE.match(n[:-5])}

    def chunk_ids(self):
        found = set()
        base = posixpath.join(self.path, "chunks")
        for attr in self.sftp.listdir_attr(base):
            if len(attr.filename) == 2 and stat.S_ISDIR(attr.st_mode or 0):
                for name in self.sftp.listdir(posixpath.join(base, attr.filename)):
                    if CHUNK_ID_RE.match(name):
                        found.add(name)
        return found

    def put_chunk(self, chunk_id, raw, length):
        folder = posixpath.join(self.path, "chunks", chunk_id[:2])
        if not self._exists(folder):
            self._mkdirs(folder)
        path = posixpath.join(folder, chunk_id)
        self._put_atomic(path, raw)
        # Hash-check on arrival: read the stored file back.
        with self.sftp.open(path, "rb") as handle:
            handle.prefetch()
            back = handle.read()
        self.codec.decode_chunk(chunk_id, back, length)

    def put_manifest(self, backup_id, raw):
        self._put_atomic(posixpath.join(self.path, "manifests", backup_id + ".json"), raw)

    def manifests(self):
        out = []
        for backup_id in sorted(self.manifest_ids()):
            with self.sftp.open(posixpath.join(self.path, "manifests", backup_id + ".json"), "rb") as handle:
                handle.prefetch()
                raw = handle.read()
            try:
                manifest = self.codec.parse_manifest(backup_id, raw)
            except RepositoryError as exc:
                raise RepositoryError("%s on %s; not pruning there" % (exc, self.url))
            out.append({"id": backup_id, "finished": manifest["finished"],
                        "chunks": set(Repository.manifest_chunks(manifest)), "suspicious": manifest.get("suspicious")})
        return out

    def forget(self, backup_id):
        self.sftp.remove(posixpath.join(self.path, "manifests", backup_id + ".json"))

    def remove_chunk(self, chunk_id):
        self.sftp.remove(posixpath.join(self.path, "chunks", chunk_id[:2], chunk_id))


def _apply_retention(target, rules, prune, result, forget_suspicious=()):
    """Same retention rules on the target, and the same suspicious backups forgotten (those that are
    flagged there too), then remove the target's chunks no manifest there names."""
    manifests = sorted(target.manifests(), key=lambda m: (m["finished"], m["id"]))
    expire = set(guard.expiry(manifests, rules)) if rules else set()  # suspicious backups are kept there too
    dropped = {m["id"] for m in manifests if m["id"] in forget_suspicious and guard.is_suspicious(m)}
    forget = expire | dropped
    for manifest in manifests:
        if manifest["id"] in forget:
            target.forget(manifest["id"])
            result["expired" if manifest["id"] in expire else "forgotten"].append(manifest["id"])
    if prune and forget:
        needed = set()
        for manifest in manifests:
            if manifest["id"] not in forget:
                needed.update(manifest["chunks"])
        for chunk_id in target.chunk_ids() - needed:
            target.remove_chunk(chunk_id)
            result["pruned_chunks"] += 1


def match_identity(repo, target):
    """Make ``target`` a copy of ``repo``'s identity: a new target gets its key.json and config.json;
    an existing one must be the same kind of repository (a keyed one: the same repository id), and
    gets the primary's key.json when the key was rotated since the last copy."""
    config_raw, key_raw = repo.identity()
    existing = target.read_meta("config.json")
    if existing is None:
        if key_raw is not None:
            target.put_meta("key.json", key_raw)
        target.put_meta("config.json", config_raw)  # last: config.json makes the folder a repository
        return
    config = read_config(existing, describe_url(target.url))
    if repo.codec.keyed:
        if (config.get("format_version") != KEYED_FORMAT_VERSION
                or config.get("repository_id") != repo.config.get("repository_id")):
            raise RepositoryError("copy target %s holds another repository; a keyed repository is copied only into "
                                  "an empty folder or its own copy" % describe_url(target.url))
        if target.read_meta("key.json") != key_raw:
            target.put_meta("key.json", key_raw)
    elif config.get("format_version") != FORMAT_VERSION:
        raise RepositoryError("copy target %s is a keyed repository and its source is not" % describe_url(target.url))


def copy_backups(repo, target, manifests, rules=None, prune=True, forget_suspicious=()):
    """Copy ``manifests`` (and their chunks) that the target lacks, then apply ``rules`` (retention)
    and forget the suspicious backups ``forget_suspicious`` on the target. Returns a status dict."""
    result = {"url": describe_url(target.url), "status": "ok", "copied_backups": [], "copied_chunks": 0,
              "copied_bytes": 0, "error": None, "expired": [], "forgotten": [], "pruned_chunks": 0}
    try:
        target.open()
        if getattr(target, "trust", None) is not None:
            result["host_key"] = {"fingerprint": target.trust.fingerprint, "trust": target.trust.status}
        match_identity(repo, target)
        target.attach(repo)
        have_manifests = target.manifest_ids()
        have_chunks = target.chunk_ids()
        for manifest in manifests:
            if manifest["id"] in have_manifests:
                continue
            for chunk_id, length in Repository.manifest_chunks(manifest).items():
                if chunk_id in have_chunks:
                    continue
                with open(repo.chunk_path(chunk_id), "rb") as handle:
                    raw = handle.read()
                repo.decode_chunk(chunk_id, raw, length)  # never copy a corrupt chunk
                target.put_chunk(chunk_id, raw, length)
                have_chunks.add(chunk_id)
                result["copied_chunks"] += 1
                result["copied_bytes"] += len(raw)
            with open(repo.manifest_path(manifest["id"]), "rb") as handle:
                target.put_manifest(manifest["id"], handle.read())
            result["copied_backups"].append(manifest["id"])
        if rules or forget_suspicious:
            _apply_retention(target, rules, prune, result, forget_suspicious)
    except CorruptChunkError as exc:
        result.update(status="failed", error="copy to %s stopped: %s" % (result["url"], exc))
    except RepositoryError as exc:
        result.update(status="failed", error=str(exc))
    except (OSError, EOFError) as exc:
        result.update(status="failed", error="copy to %s failed: %s" % (result["url"], exc or type(exc).__name__))
    except Exception as exc:  # paramiko raises its own SSHException family mid-transfer
        result.update(status="failed", error="copy to %s failed: %s: %s" % (result["url"], type(exc).__name__, exc))
    finally:
        try:
            target.close()
        except Exception:
            pass
    return result
