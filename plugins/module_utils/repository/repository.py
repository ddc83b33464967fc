# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup repository: content-addressed zstd chunks, immutable manifests, verification
records and an exclusive lock. The on-disk format is docs/repository-format.md: version 1
(unkeyed: sha256 chunk names, an unkeyed manifest checksum) and version 2 (keyed: every chunk and
manifest sealed under the repository key of ``keys.py``, authenticated and optionally encrypted).

Plain Python: no Ansible types. Every error is a ``RepositoryError`` whose message is safe to show.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import datetime
import errno
import hashlib
import json
import os
import re
import socket
import time
import uuid

try:
    import zstandard
    HAS_ZSTD = True
    ZSTD_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - checked by the modules
    zstandard = None
    HAS_ZSTD = False
    ZSTD_IMPORT_ERROR = exc

from ansible_collections.bim.wall_system.plugins.module_utils.common.atomic import atomic_write, fsync_directory
from ansible_collections.bim.wall_system.plugins.module_utils.common.locking import file_lock
from ansible_collections.bim.wall_system.plugins.module_utils.repository import keys
from ansible_collections.bim.wall_system.plugins.module_utils.repository.chunker import MAX_CHUNK_SIZE
from ansible_collections.bim.wall_system.plugins.module_utils.repository.errors import CorruptChunkError, RepositoryError

FORMAT_NAME = "bim-backup-repository"
# Of the repository itself (config.json): 1 unkeyed, 2 keyed. An unkeyed repository is still
# created as 1, so releases before keys keep reading it; they refuse a keyed one by its version.
FORMAT_VERSION = 1
KEYED_FORMAT_VERSION = 2
KNOWN_FORMAT_VERSIONS = (1, 2)
# Manifest version 2 adds a table entry's "digest_form", which a reader must honour to verify
# the table (a reader that does not know it would take a binary digest for a text one and call a
# good backup damaged). A manifest that records no form stays version 1, so older releases read it.
# Version 3 adds the digest forms taken from the backup's own read (PostgreSQL "copy-rows", with
# "digest_encoding" and "ordered_digest"; SQLite "sqlite-pages"): a version-2 reader knows neither.
# Version 4 adds PostgreSQL "copy-ordered" (the rows' SHA-256 in the dump's order, no multiset),
# and content-defined chunks of up to 1 MiB: a version-3 reader knows neither (it refuses chunks
# over 512 KiB as damaged).
# Version 5 adds PostgreSQL "dump-framed" (the SHA-256 of the table's data as pg_dump frames it).
KNOWN_MANIFEST_VERSIONS = (1, 2, 3, 4, 5)
# The digest forms that need manifest version 3, 4 and 5.
VERSION_3_DIGEST_FORMS = ("copy-rows", "sqlite-pages")
VERSION_4_DIGEST_FORMS = ("copy-ordered",)
VERSION_5_DIGEST_FORMS = ("dump-framed",)
# The largest chunk a version-3 reader accepts.
VERSION_3_MAX_CHUNK = 512 * 1024
HASH_NAME = "sha256"
KEYED_HASH_NAME = "hmac-sha256"
BACKUP_ID_RE = re.compile(r"^[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$")
CHUNK_ID_RE = re.compile(r"^[0-9a-f]{64}$")
BACKUP_TYPES = ("full", "differential", "incremental")
FILE_MODE = 0o600
DIR_MODE = 0o700
# Decoded chunks a parallel ChunkReader keeps in flight: enough to keep two cores busy, small
# beside the 200 MiB a backup or restore process may use.
READ_AHEAD_BYTES = 32 * 1024 * 1024


class LockedError(RepositoryError):
    """The repository is locked by another run."""

    def __init__(self, message, holder=None):
        super().__init__(message)
        self.holder = holder or {}


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(dt):
    return dt.astimezone(datetime.timezone.utc).isoformat()


def parse_time(text):
    return datetime.datetime.fromisoformat(text).astimezone(datetime.timezone.utc)


def new_backup_id(now=None):
    now = now or utcnow()
    return "%s-%s" % (now.strftime("%Y%m%dT%H%M%SZ"), uuid.uuid4().hex[:8])


def check_backup_id(backup_id):
    """Raise RepositoryError unless ``backup_id`` is a well-formed id (never touches the disk)."""
    if not isinstance(backup_id, str) or not backup_id:
        raise RepositoryError("backup id must be a non-empty string, got %r" % (backup_id,))
    if "/" in backup_id or "\\" in backup_id or ".." in backup_id or "\x00" in backup_id:
        raise RepositoryError("backup id %r contains path characters; ids look like 20261127T124501Z-3fa9c2d1" % (backup_id,))
    if not BACKUP_ID_RE.match(backup_id):
        raise RepositoryError("backup id %r is not a valid id; ids look like 20261127T124501Z-3fa9c2d1" % (backup_id,))
    return backup_id


def stream_chunks(manifest, name, stream):
    """The ``(chunk_id, length)`` entries of ``stream``, each checked before anything uses it: a
    malformed entry is a RepositoryError naming the backup and the entry (never a Python error),
    and no path is ever built from an id that is not 64 hex digits."""
    chunks = stream.get("chunks") if isinstance(stream, dict) else None
    if not isinstance(chunks, list):
        raise RepositoryError("backup %s: stream %s has no list of chunks" % (manifest.get("id"), name))
    out = []
    for index, entry in enumerate(chunks):
        if not (isinstance(entry, (list, tuple)) and len(entry) == 2 and isinstance(entry[0], str)
                and CHUNK_ID_RE.match(entry[0]) and isinstance(entry[1], int) and not isinstance(entry[1], bool)
                and entry[1] >= 0):
            raise RepositoryError("backup %s: stream %s: chunk entry %d is malformed (%.80r); an entry is "
                                  "[64 hex digits, length]" % (manifest.get("id"), name, index, entry))
        if entry[1] > MAX_CHUNK_SIZE:
            raise RepositoryError("backup %s: stream %s: chunk entry %d gives chunk %s %d bytes, more than the "
                                  "largest chunk a backup writes (%d bytes)"
                                  % (manifest.get("id"), name, index, entry[0], entry[1], MAX_CHUNK_SIZE))
        out.append((entry[0], entry[1]))
    return out


def manifest_problem(manifest):
    """What makes a checksum-sound manifest unusable for listing, retention and prune, or None."""
    finished = manifest.get("finished")
    if not isinstance(finished, str):
        return "finished is not a time"
    try:
        parse_time(finished)
    except (ValueError, TypeError) as exc:
        return "finished %.40r is not a time (%s)" % (finished, exc)
    if manifest.get("type") not in BACKUP_TYPES:
        return "type %.40r is not one of %s" % (manifest.get("type"), ", ".join(BACKUP_TYPES))
    try:
        Repository.manifest_chunks(manifest)
    except RepositoryError as exc:
        return str(exc)
    return None


def manifest_checksum(manifest):
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def manifest_format_version(tables, streams=None):
    """The version a manifest with these ``tables`` entries and ``streams`` is written as (see
    KNOWN_MANIFEST_VERSIONS)."""
    forms = [(entry or {}).get("digest_form", False) for entry in (tables or {}).values()]
    chunk_sizes = [(s.get("chunker") or {}).get("max_size") or 0 for s in (streams or {}).values()]
    if any(form in VERSION_5_DIGEST_FORMS for form in forms):
        return 5
    if any(form in VERSION_4_DIGEST_FORMS for form in forms) or max(chunk_sizes, default=0) > VERSION_3_MAX_CHUNK:
        return 4
    if any(form in VERSION_3_DIGEST_FORMS for form in forms):
        return 3
    return 2 if any(form is not False for form in forms) else 1


def chunk_hash(data):
    return hashlib.sha256(data).hexdigest()


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    # A zombie is dead for our purposes.
    try:
        with open("/proc/%d/stat" % pid, "r") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
            if fields and fields[0] == "Z":
                return False
    except (OSError, IndexError):
        pass
    return True


def syncfs(path):
    """Make everything written below ``path`` durable with one call (Linux syncfs, else sync)."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(path, os.O_RDONLY)
        try:
            if libc.syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    except (OSError, AttributeError):
        pass
    os.sync()


def friendly_os_error(exc, action):
    if exc.errno == errno.ENOSPC:
        return RepositoryError("%s failed: no space left on device (%s)" % (action, exc.filename or ""))
    if exc.errno == errno.EDQUOT:
        return RepositoryError("%s failed: disk quota exceeded" % action)
    return RepositoryError("%s failed: %s" % (action, exc))


# Opening a folder inside the repository: never through a symbolic link (ELOOP), always a folder.
_FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


class ContainmentError(RepositoryError):
    """A path inside the repository is a symbolic link or not what the format says it is."""


def _entry_names(dir_fd):
    with os.scandir(dir_fd) as entries:
        return [entry.name for entry in entries]


def _remove_tree_at(dir_fd, name):
    """``rm -r`` of ``name`` in the folder ``dir_fd``, never following a symbolic link: a link is
    removed itself, a folder is emptied through descriptors opened with O_NOFOLLOW, so a link
    swapped in meanwhile cannot lead the removal outside."""
    try:
        fd = os.open(name, _FOLDER_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
            raise
        os.unlink(name, dir_fd=dir_fd)
        return
    try:
        for child in _entry_names(fd):
            _remove_tree_at(fd, child)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dir_fd)


class ChunkReader:
    """File-like reader of a reconstructed stream; each chunk is hash-checked when read.

    ``workers`` > 0 reads, decompresses and hash-checks the next chunks in that many threads
    (zstd and hashlib release the GIL) while the caller consumes the current one, keeping at most
    ``ahead_bytes`` of decoded chunks in flight; chunks are still handed out in stream order and a
    damaged one raises its ``CorruptChunkError`` at the point of the stream where it sits.
    """

    def __init__(self, repo, chunks, workers=0, ahead_bytes=READ_AHEAD_BYTES):
        self._repo = repo
        self._chunks = list(chunks)
        self._index = 0
        self._buffer = b""
        self._pos = 0
        self._ahead_bytes = ahead_bytes
        self._pending = collections.deque()  # (future, length), in stream order
        self._pending_bytes = 0
        self._submitted = 0
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, "bim-chunk-read") if workers > 0 else None

    def readable(self):
        return True

    @property
    def size(self):
        """Bytes of the whole stream."""
        return sum(length for _chunk_id, length in self._chunks)

    def _fill(self):
        """Submit chunks until the in-flight budget is used (always at least the next one)."""
        while self._submitted < len(self._chunks) and (not self._pending or self._pending_bytes < self._ahead_bytes):
            chunk_id, length = self._chunks[self._submitted]
            self._submitted += 1
            self._pending.append((self._pool.submit(self._repo.read_chunk, chunk_id, length), length))
            self._pending_bytes += length

    def _next_chunk(self):
        if self._index >= len(self._chunks):
            return False
        chunk_id, length = self._chunks[self._index]
        self._index += 1
        if self._pool is None:
            self._buffer = self._repo.read_chunk(chunk_id, expected_length=length)
        else:
            self._fill()
            future, size = self._pending.popleft()
            self._pending_bytes -= size
            self._fill()  # the next chunks are read while this one is awaited
            self._buffer = future.result()
        self._pos = 0
        return True

    def read(self, n=-1):
        if n is None or n < 0:
            parts = [self._buffer[self._pos:]]
            self._buffer, self._pos = b"", 0
            while self._next_chunk():
                parts.append(self._buffer)
            self._buffer = b""
            return b"".join(parts)
        out = []
        need = n
        while need > 0:
            if self._pos >= len(self._buffer):
                if not self._next_chunk():
                    break
                continue
            if self._pos == 0 and len(self._buffer) <= need:
                piece = self._buffer  # a whole chunk: no slice copy
            else:
                piece = self._buffer[self._pos:self._pos + need]
            self._pos += len(piece)
            need -= len(piece)
            out.append(piece)
        return out[0] if len(out) == 1 else b"".join(out)

    def readinto(self, buf):
        data = self.read(len(buf))
        buf[:len(data)] = data
        return len(data)

    def close(self):
        self._buffer = b""
        self._index = len(self._chunks)
        if self._pool is not None:
            for future, _length in self._pending:
                future.cancel()
            self._pending.clear()
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def decompress_chunk(chunk_id, frame):
    """The content of a chunk's zstd ``frame``, never more than MAX_CHUNK_SIZE bytes: a frame that
    declares more is refused before anything is allocated for it (zstandard sizes its output by
    the declared size and ignores ``max_output_size`` then), one that declares no size is cut off."""
    try:
        declared = zstandard.frame_content_size(frame)
    except zstandard.ZstdError as exc:
        raise CorruptChunkError(chunk_id, "does not decompress (%s)" % exc)
    if declared > MAX_CHUNK_SIZE:
        raise CorruptChunkError(chunk_id, "declares %d bytes of content, more than the largest chunk a backup "
                                          "writes (%d bytes)" % (declared, MAX_CHUNK_SIZE))
    try:
        return zstandard.ZstdDecompressor().decompress(frame, max_output_size=MAX_CHUNK_SIZE)
    except zstandard.ZstdError as exc:
        if declared < 0:  # no declared size: more than MAX_CHUNK_SIZE, or damaged
            raise CorruptChunkError(chunk_id, "does not decompress into the largest chunk a backup writes (%d "
                                              "bytes): larger, or damaged (%s)" % (MAX_CHUNK_SIZE, exc))
        raise CorruptChunkError(chunk_id, "does not decompress (%s)" % exc)


class Codec:
    """How a repository names, stores and checks chunks and manifests.

    Unkeyed (format 1): a chunk is a zstd frame named by the SHA-256 of its content; a manifest is
    JSON with an unkeyed checksum. Keyed (format 2, ``key`` a ``keys.RepositoryKey``): chunk names
    are keyed, and chunks and manifests are sealed (HMAC or AES-256-GCM) with their name as context.
    Every ``open_*`` checks authenticity before it decompresses or parses anything.
    """

    def __init__(self, key=None, where="the repository"):
        self.key = key
        self.where = where

    @property
    def keyed(self):
        return self.key is not None

    @property
    def hash_name(self):
        return KEYED_HASH_NAME if self.keyed else HASH_NAME

    def chunk_id(self, data):
        return self.key.chunk_id(data) if self.keyed else chunk_hash(data)

    def seal_chunk(self, chunk_id, frame):
        """The bytes stored for a chunk whose zstd frame is ``frame``."""
        return self.key.seal_chunk(chunk_id, frame) if self.keyed else frame

    def decode_chunk(self, chunk_id, raw, expected_length=None):
        """The content of a stored chunk, checked: authentic (keyed) or named by its content (unkeyed),
        decompresses into at most MAX_CHUNK_SIZE bytes, right length."""
        if not CHUNK_ID_RE.match(chunk_id or ""):
            raise CorruptChunkError(chunk_id, "invalid chunk id")
        if expected_length is not None and expected_length > MAX_CHUNK_SIZE:
            raise CorruptChunkError(chunk_id, "its manifest entry gives it %d bytes, more than the largest chunk a "
                                              "backup writes (%d bytes)" % (expected_length, MAX_CHUNK_SIZE))
        if self.keyed:
            raw = self.key.open_chunk(chunk_id, raw)
            if raw is None:
                raise CorruptChunkError(chunk_id, "fails its authentication (damaged, forged, or moved from another "
                                                  "name or repository)")
        data = decompress_chunk(chunk_id, raw)
        if expected_length is not None and len(data) != expected_length:
            raise CorruptChunkError(chunk_id, "length %d, manifest says %d" % (len(data), expected_length))
        # Keyed: the tag checked above binds this frame to its name, and only a holder of the key
        # (whose writer names a chunk by the keyed hash of its content) can make it; deriving the
        # keyed name from the content again would prove the same thing with one more hash pass
        # over every byte (a quarter of a restore's CPU). Unkeyed: the name is the only check.
        if not self.keyed and chunk_hash(data) != chunk_id:
            raise CorruptChunkError(chunk_id, "content does not match its hash")
        return data

    def seal_manifest(self, backup_id, text):
        return self.key.seal_manifest(backup_id, text) if self.keyed else text

    def parse_manifest(self, backup_id, raw):
        """The manifest dict of the stored bytes ``raw`` of ``manifests/<backup_id>.json``, checked:
        authentic for this id (keyed), JSON, a known version, its checksum, its id."""
        check_backup_id(backup_id)
        if self.keyed:
            raw = self.key.open_manifest(backup_id, raw)
            if raw is None:
                raise RepositoryError("manifest of backup %s fails its authentication (damaged, forged, or "
                                      "replayed from another backup or repository)" % backup_id)
        try:
            manifest = json.loads(raw.decode("utf-8"))
        except ValueError as exc:
            raise RepositoryError("manifest of backup %s is not valid JSON: %s" % (backup_id, exc))
        if not isinstance(manifest, dict):
            raise RepositoryError("manifest of backup %s is not a JSON object" % backup_id)
        if manifest.get("format_version") not in KNOWN_MANIFEST_VERSIONS:
            raise RepositoryError("backup %s has manifest format version %r; this release reads %s"
                                  % (backup_id, manifest.get("format_version"), list(KNOWN_MANIFEST_VERSIONS)))
        if manifest.get("checksum") != manifest_checksum(manifest):
            raise RepositoryError("manifest of backup %s fails its checksum (damaged or edited)" % backup_id)
        if manifest.get("id") != backup_id:
            raise RepositoryError("manifest file %s names backup %r" % (backup_id, manifest.get("id")))
        return manifest

    def warnings(self):
        if self.keyed:
            return []
        return ["backup repository %s is unauthenticated (format 1, no repository key): anyone who can write "
                "to it can forge a backup that verifies, and a PostgreSQL restore runs a forged backup's SQL "
                "with its database role; start a keyed repository (bim_backup_repository_key, "
                "docs/security.md)" % self.where]


def read_config(config_raw, where):
    """The config dict of a repository's config.json bytes; RepositoryError if it is not one this release reads."""
    try:
        config = json.loads(config_raw.decode("utf-8"))
    except ValueError as exc:
        raise RepositoryError("cannot read the config.json of %s: %s" % (where, exc))
    if not isinstance(config, dict) or config.get("format") != FORMAT_NAME:
        raise RepositoryError("%s is not a bim backup repository" % where)
    if config.get("format_version") not in KNOWN_FORMAT_VERSIONS:
        raise RepositoryError("repository %s has format version %r; this release reads %s"
                              % (where, config.get("format_version"), list(KNOWN_FORMAT_VERSIONS)))
    return config


def open_codec(config, key_raw, passphrase, where):
    """The Codec of a repository from its config dict and key.json bytes (None when absent), opened
    with the operator's ``passphrase`` (None when no key was given). A keyed repository without
    the key, a wrong key, or a key given to an unkeyed repository: RepositoryError."""
    if config.get("format_version") != KEYED_FORMAT_VERSION:
        if passphrase:
            raise RepositoryError("repository %s is unkeyed (format 1) but a repository key was given; a key cannot "
                                  "authenticate backups written without it: start a keyed repository in a new "
                                  "folder, or give no key" % where)
        return Codec(None, where)
    if not passphrase:
        raise RepositoryError("repository %s is keyed (format 2, %s): give its key (repository_key, from the "
                              "vaulted bim_backup_repository_key)" % (where, config.get("mode")))
    if key_raw is None:
        raise RepositoryError("repository %s is keyed but its key.json is missing" % where)
    try:
        document = json.loads(key_raw.decode("utf-8"))
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        raise RepositoryError("the key.json of %s is malformed: %s" % (where, exc))
    if document.get("mode") != config.get("mode") or document.get("repository_id") != config.get("repository_id"):
        raise RepositoryError("the key.json of %s does not belong to its config.json (mode or repository id differ)"
                              % where)
    try:
        data_key = keys.unwrap(document, passphrase, config.get("repository_id"), where)
        return Codec(keys.RepositoryKey(data_key, document["mode"]), where)
    except keys.KeyFileError as exc:
        raise RepositoryError(str(exc))


class Repository:
    """A backup repository folder. ``Repository(path)`` opens; ``create=True`` creates if missing."""

    def __init__(self, path, create=False, key=None, encryption=True):
        """``key``: the operator's repository key (None: unkeyed). Creating with a key makes a keyed
        repository (format 2), encrypted unless ``encryption`` is false (authenticated only)."""
        if not path or not isinstance(path, str):
            raise RepositoryError("repository path must be a non-empty string")
        self.path = os.path.abspath(path)
        self.chunks_dir = os.path.join(self.path, "chunks")
        self.manifests_dir = os.path.join(self.path, "manifests")
        self.verifications_dir = os.path.join(self.path, "verifications")
        self.tmp_dir = os.path.join(self.path, "tmp")
        self.lock_path = os.path.join(self.path, "lock")
        self.config_path = os.path.join(self.path, "config.json")
        self.key_path = os.path.join(self.path, "key.json")
        if not os.path.exists(self.config_path):
            if not create:
                raise RepositoryError("%s is not a backup repository (no config.json)" % self.path)
            self._create(key, encryption)
        self.config = self._read_config()
        self._passphrase = key  # kept in memory for copies and rotation, never written or shown
        self.codec = open_codec(self.config, self._read_optional(self.key_path), key, self.path)
        self.warnings.extend(self.codec.warnings())
        # A set, when a caller wants to know which chunks were read and checked (restore/read_checks.py:
        # a restore's reads as the backup's checksum verification): (chunk_id, length) of each read.
        self.read_log = None

    # ----------------------------------------------------------------- setup
    @classmethod
    def exists(cls, path):
        return os.path.isfile(os.path.join(path, "config.json"))

    def _create(self, key=None, encryption=True):
        old = os.umask(0o077)
        try:
            try:
                os.makedirs(self.path, mode=DIR_MODE, exist_ok=True)
                os.chmod(self.path, DIR_MODE)
                for folder in (self.chunks_dir, self.manifests_dir, self.verifications_dir, self.tmp_dir):
                    os.makedirs(folder, mode=DIR_MODE, exist_ok=True)
                config = {
                    "format": FORMAT_NAME,
                    "format_version": FORMAT_VERSION,
                    "repository_id": uuid.uuid4().hex,
                    "created": iso(utcnow()),
                    "chunk_hash": HASH_NAME,
                    "codec": "zstd",
                }
                if key:
                    mode = "encrypted" if encryption else "authenticated"
                    config.update(format_version=KEYED_FORMAT_VERSION, chunk_hash=KEYED_HASH_NAME, mode=mode)
                    document = keys.wrap(keys.RepositoryKey.generate(mode).data_key, key, config["repository_id"], mode)
                    # the key first: config.json is what makes the folder a repository
                    atomic_write(self.key_path, json.dumps(document, indent=2, sort_keys=True).encode(), FILE_MODE,
                                 tmp_dir=self.tmp_dir)
                atomic_write(self.config_path, json.dumps(config, indent=2, sort_keys=True).encode(), FILE_MODE, tmp_dir=self.tmp_dir)
            except OSError as exc:
                raise friendly_os_error(exc, "creating repository %s" % self.path)
            except keys.KeyFileError as exc:
                raise RepositoryError("creating repository %s: %s" % (self.path, exc))
        finally:
            os.umask(old)

    def _read_config(self):
        try:
            with open(self.config_path, "rb") as handle:
                return read_config(handle.read(), self.path)
        except OSError as exc:
            raise RepositoryError("cannot read %s: %s" % (self.config_path, exc))

    @staticmethod
    def _read_optional(path):
        try:
            with open(path, "rb") as handle:
                return handle.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise RepositoryError("cannot read %s: %s" % (path, exc))

    def identity(self):
        """``(config.json bytes, key.json bytes or None)``: what a copy of this repository must hold."""
        return self._read_optional(self.config_path), self._read_optional(self.key_path)

    def open_copy(self, path):
        """The repository at ``path`` (a copy holding this one's config.json and key.json), opened with this key."""
        return Repository(path, key=self._passphrase)

    def rotate_key(self, new_key):
        """Re-wrap the data key under ``new_key`` (call while holding the lock). Chunks and manifests
        are not rewritten; the old key no longer opens the repository."""
        if not self.codec.keyed:
            raise RepositoryError("repository %s is unkeyed: there is no key to rotate" % self.path)
        try:
            document = keys.wrap(self.codec.key.data_key, new_key, self.config["repository_id"], self.codec.key.mode)
        except keys.KeyFileError as exc:
            raise RepositoryError("rotating the key of %s: %s" % (self.path, exc))
        try:
            atomic_write(self.key_path, json.dumps(document, indent=2, sort_keys=True).encode(), FILE_MODE, tmp_dir=self.tmp_dir)
        except OSError as exc:
            raise friendly_os_error(exc, "rotating the key of %s" % self.path)
        self._passphrase = new_key

    # ----------------------------------------------------------------- locking
    def _read_lock(self):
        """(raw, info): (None, None) when unlocked; info is {} when the content is not a lock record."""
        try:
            with open(self.lock_path, "rb") as handle:
                raw = handle.read(64 * 1024)
        except FileNotFoundError:
            return None, None
        except OSError as exc:
            raise RepositoryError("cannot read the lock file %s: %s; if no backup, restore or verification of this "
                                  "repository is running, remove it" % (self.lock_path, exc))
        try:
            info = json.loads(raw.decode("utf-8"))
        except ValueError:
            return raw, {}
        return raw, (info if isinstance(info, dict) else {})

    def _lock_is_stale(self, info, raw):
        if info is None:
            return False
        if not info:
            # Unreadable content (a lock written in place by an earlier release whose writer
            # died between create and write). Stale if old.
            try:
                return time.time() - os.stat(self.lock_path).st_mtime > 60
            except OSError:
                return False
        return info.get("host") == socket.gethostname() and isinstance(info.get("pid"), int) and not _pid_alive(info["pid"])

    def _clear_stale_lock(self):
        """Remove the lock if it is stale; True if it removed one. Safe against racing clearers."""
        with file_lock(os.path.join(self.path, "lock.guard"), mode=FILE_MODE):
            raw, info = self._read_lock()
            if raw is None or not self._lock_is_stale(info, raw):
                return False
            # Same stale content as read under the guard: nobody else can replace it meanwhile
            # except by creating after removal, which needs the guard-free O_EXCL path to see no file.
            os.unlink(self.lock_path)
            fsync_directory(self.path)
            return True

    def lock_holder(self):
        return self._read_lock()[1]

    def _lock_message(self, info, raw=None):
        if not info and raw:
            return ("repository %s is locked by a lock file that is not a lock record (%d bytes, not a JSON object "
                    "naming pid, host, time and purpose); if no backup, restore or verification of this repository is "
                    "running, remove %s" % (self.path, len(raw), self.lock_path))
        if not info:
            return "repository %s is locked (lock file being written)" % self.path
        return ("repository %s is locked by pid %s on host %s since %s (%s); wait for it to finish"
                % (self.path, info.get("pid"), info.get("host"), info.get("time"), info.get("purpose")))

    def _create_lock_file(self, payload):
        """Create the lock file with its content in one step; FileExistsError when it is held.

        The content is written and fsynced in a private temp file first, then hard-linked to the
        lock name (link fails if the name exists), so a process killed at any moment leaves either
        no lock or a complete one naming a dead pid, which the next run clears at once.
        """
        tmp = os.path.join(self.path, ".lock.%d.%s.tmp" % (os.getpid(), uuid.uuid4().hex[:12]))
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        try:
            try:
                os.write(fd, payload)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.link(tmp, self.lock_path)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    @contextlib.contextmanager
    def lock(self, purpose, wait=0):
        """Hold the exclusive repository lock; wait up to ``wait`` seconds for another holder."""
        deadline = time.monotonic() + max(0, wait or 0)
        payload = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "time": iso(utcnow()),
                              "purpose": purpose}).encode("utf-8")
        while True:
            try:
                self._create_lock_file(payload)
            except FileExistsError:
                raw, info = self._read_lock()
                if raw is not None and self._lock_is_stale(info, raw) and self._clear_stale_lock():
                    continue
                if time.monotonic() >= deadline:
                    raise LockedError(self._lock_message(info, raw), info)
                time.sleep(0.2)
                continue
            except OSError as exc:
                raise friendly_os_error(exc, "taking the lock of %s" % self.path)
            break
        try:
            yield self
        finally:
            raw, info = self._read_lock()
            if info and info.get("pid") == os.getpid() and info.get("host") == socket.gethostname():
                with contextlib.suppress(OSError):
                    os.unlink(self.lock_path)

    # ----------------------------------------------------------------- containment
    @property
    def warnings(self):
        """What housekeeping found and set right (symbolic links inside the repository), for the result."""
        return self.__dict__.setdefault("_warnings", [])

    def _warn(self, text):
        if text not in self.warnings:
            self.warnings.append(text)

    def _open_folder(self, *parts):
        """A descriptor of the folder ``parts`` below the repository, opened one level at a time with
        O_NOFOLLOW: a symbolic link at any level below the root is a ContainmentError, so whatever
        is done through the descriptor stays inside the repository's real path. (The root itself
        may be a link: that is where the operator put the repository.)"""
        fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
        where = self.path
        for part in parts:
            where = os.path.join(where, part)
            try:
                child = os.open(part, _FOLDER_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise ContainmentError(self._not_a_folder(where))
                raise
            finally:
                os.close(fd)
            fd = child
        return fd

    @staticmethod
    def _not_a_folder(where):
        if os.path.islink(where):
            return ("%s is a symbolic link (to %s); the repository's folders must be real folders inside it, "
                    "so nothing is read, written or removed through it" % (where, os.readlink(where)))
        return "%s is not a folder" % where

    def _unlink_inside(self, parts, name):
        """Remove the file ``name`` of the folder ``parts`` (never through a link); False if absent."""
        fd = self._open_folder(*parts)
        try:
            os.unlink(name, dir_fd=fd)
            return True
        except FileNotFoundError:
            return False
        finally:
            os.close(fd)

    def _own_tmp(self):
        """A descriptor of tmp/, which only ever holds scratch files: a symbolic link there (which
        an earlier release would have emptied the target of) is removed, not followed, and a real
        folder made in its place."""
        if os.path.islink(self.tmp_dir):
            self._warn("%s was a symbolic link (to %s); removed the link (its target was not touched) and made a "
                       "real folder" % (self.tmp_dir, os.readlink(self.tmp_dir)))
            os.unlink(self.tmp_dir)
        if not os.path.lexists(self.tmp_dir):
            os.mkdir(self.tmp_dir, DIR_MODE)
        return self._open_folder("tmp")

    def _contain_chunk_folders(self):
        """Remove symbolic links among chunks/<xx> (the links only): chunks are written, listed and
        pruned through these folders, and a link would take them into another folder or repository."""
        try:
            fd = self._open_folder("chunks")
        except FileNotFoundError:
            return 0
        removed = 0
        try:
            with os.scandir(fd) as entries:
                links = [entry.name for entry in entries if entry.is_symlink()]
            for name in links:
                where = os.path.join(self.chunks_dir, name)
                target = os.readlink(name, dir_fd=fd)
                os.unlink(name, dir_fd=fd)
                removed += 1
                self._warn("%s was a symbolic link (to %s); removed the link (its target was not touched): chunks "
                           "are only ever kept inside the repository" % (where, target))
        finally:
            os.close(fd)
        return removed

    def clean_tmp(self):
        """Remove leftovers of crashed runs and symbolic links that would lead housekeeping outside
        the repository (call while holding the lock). Returns the count. Every removal goes through
        descriptors opened without following links (see ``_open_folder``)."""
        removed = 0
        try:
            fd = self._own_tmp()
            try:
                for name in _entry_names(fd):
                    with contextlib.suppress(OSError):
                        _remove_tree_at(fd, name)
                        removed += 1
            finally:
                os.close(fd)
            for name in os.listdir(self.path):
                # .lock.<pid>.<random>.tmp of a process killed while taking the lock (never a live one's)
                parts = name.split(".")
                if (len(parts) == 5 and parts[1] == "lock" and parts[4] == "tmp" and parts[2].isdigit()
                        and not _pid_alive(int(parts[2]))):
                    if self._unlink_inside((), name):
                        removed += 1
            for folder in ("manifests", "verifications"):
                fd = self._open_folder(folder)
                try:
                    for name in _entry_names(fd):
                        if name.endswith(".tmp") or name.startswith("."):
                            with contextlib.suppress(FileNotFoundError):
                                os.unlink(name, dir_fd=fd)
                                removed += 1
                finally:
                    os.close(fd)
            removed += self._contain_chunk_folders()
        except FileNotFoundError as exc:
            raise RepositoryError("repository %s is incomplete: %s is missing" % (self.path, exc.filename or exc))
        except OSError as exc:
            raise friendly_os_error(exc, "cleaning up repository %s" % self.path)
        return removed

    # ----------------------------------------------------------------- chunks
    def chunk_path(self, chunk_id):
        if not CHUNK_ID_RE.match(chunk_id or ""):
            raise RepositoryError("invalid chunk id %r" % (chunk_id,))
        return os.path.join(self.chunks_dir, chunk_id[:2], chunk_id)

    def has_chunk(self, chunk_id):
        return os.path.exists(self.chunk_path(chunk_id))

    def list_chunks(self):
        """Set of chunk ids present on disk: regular files in real chunks/<xx> folders. A symbolic
        link (a folder or a chunk) is never followed, only reported in ``warnings``: prune removes
        what this lists, and must never remove another folder's files."""
        found = set()
        try:
            fd = self._open_folder("chunks")
        except FileNotFoundError:
            return found
        try:
            with os.scandir(fd) as prefixes:
                folders = []
                for entry in prefixes:
                    if entry.is_symlink():
                        self._warn("%s is a symbolic link; not followed (a repository keeps its chunks inside it)"
                                   % os.path.join(self.chunks_dir, entry.name))
                    elif len(entry.name) == 2 and entry.is_dir(follow_symlinks=False):
                        folders.append(entry.name)
            for prefix in folders:
                sub = os.open(prefix, _FOLDER_FLAGS, dir_fd=fd)
                try:
                    with os.scandir(sub) as entries:
                        for entry in entries:
                            if not (CHUNK_ID_RE.match(entry.name) and entry.name.startswith(prefix)):
                                continue
                            if entry.is_file(follow_symlinks=False):
                                found.add(entry.name)
                            elif entry.is_symlink():
                                self._warn("chunk %s is a symbolic link; not followed" % entry.name)
                finally:
                    os.close(sub)
        finally:
            os.close(fd)
        return found

    def chunk_stored_size(self, chunk_id):
        try:
            return os.stat(self.chunk_path(chunk_id)).st_size
        except FileNotFoundError:
            return 0

    def chunk_id(self, data):
        """The name of a chunk with content ``data`` (keyed in a keyed repository)."""
        return self.codec.chunk_id(data)

    def read_chunk(self, chunk_id, expected_length=None):
        """Return the chunk's content after checking it (Codec.decode_chunk); CorruptChunkError otherwise."""
        path = self.chunk_path(chunk_id)
        try:
            with open(path, "rb") as handle:
                raw = handle.read()
        except FileNotFoundError:
            raise CorruptChunkError(chunk_id, "missing")
        except OSError as exc:
            raise CorruptChunkError(chunk_id, "unreadable: %s" % exc)
        data = self.decode_chunk(chunk_id, raw, expected_length)
        if self.read_log is not None and expected_length is not None:
            self.read_log.add((chunk_id, expected_length))  # set.add: safe from the reader's threads
        return data

    def decode_chunk(self, chunk_id, raw, expected_length=None):
        return self.codec.decode_chunk(chunk_id, raw, expected_length)

    def write_chunk(self, chunk_id, compressed, fsync=False):
        """Store a chunk as stored bytes (``Codec.seal_chunk`` of its zstd frame; temp file in tmp/,
        rename). Returns its size."""
        path = self.chunk_path(chunk_id)
        folder = os.path.dirname(path)
        try:
            if not os.path.isdir(folder):
                os.makedirs(folder, mode=DIR_MODE, exist_ok=True)
            atomic_write(path, compressed, FILE_MODE, tmp_dir=self.tmp_dir, fsync=fsync)
        except OSError as exc:
            raise friendly_os_error(exc, "writing chunk %s" % chunk_id)
        return len(compressed)

    def remove_chunk(self, chunk_id):
        """Remove a chunk file; never through a symbolic link (ContainmentError)."""
        self.chunk_path(chunk_id)  # checks the id before it names anything on disk
        with contextlib.suppress(FileNotFoundError):
            self._unlink_inside(("chunks", chunk_id[:2]), chunk_id)

    # ----------------------------------------------------------------- manifests
    def manifest_path(self, backup_id):
        return os.path.join(self.manifests_dir, check_backup_id(backup_id) + ".json")

    def backup_ids(self):
        try:
            names = os.listdir(self.manifests_dir)
        except FileNotFoundError:
            return []
        return sorted(n[:-5] for n in names if n.endswith(".json") and BACKUP_ID_RE.match(n[:-5]))

    def load_manifest(self, backup_id):
        path = self.manifest_path(backup_id)
        try:
            with open(path, "rb") as handle:
                raw = handle.read()
        except FileNotFoundError:
            raise RepositoryError("unknown backup id %s in repository %s" % (backup_id, self.path))
        except OSError as exc:
            raise RepositoryError("cannot read manifest of backup %s: %s" % (backup_id, exc))
        return self.codec.parse_manifest(backup_id, raw)

    def load_listed(self, backup_id):
        """``load_manifest`` plus the shape listing, retention and prune rely on (``manifest_problem``)."""
        manifest = self.load_manifest(backup_id)
        problem = manifest_problem(manifest)
        if problem:
            raise RepositoryError("manifest of backup %s is malformed: %s" % (backup_id, problem))
        return manifest

    def list_backups(self, skip_damaged=True):
        """Manifests sorted by finish time (oldest first). Damaged manifests are skipped (see
        ``damaged_manifests``): one unreadable manifest never stops the others being used."""
        out = []
        for backup_id in self.backup_ids():
            try:
                out.append(self.load_listed(backup_id))
            except RepositoryError:
                if not skip_damaged:
                    raise
        out.sort(key=lambda m: (m["finished"], m["id"]))
        return out

    def damaged_manifests(self):
        bad = {}
        for backup_id in self.backup_ids():
            try:
                self.load_listed(backup_id)
            except RepositoryError as exc:
                bad[backup_id] = str(exc)
        return bad

    def write_manifest(self, manifest):
        """Write the manifest LAST: everything it names must already be durable."""
        manifest = dict(manifest)
        manifest["checksum"] = manifest_checksum(manifest)
        data = self.codec.seal_manifest(manifest["id"], json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8"))
        try:
            atomic_write(self.manifest_path(manifest["id"]), data, FILE_MODE, tmp_dir=self.tmp_dir)
        except OSError as exc:
            raise friendly_os_error(exc, "writing the manifest of backup %s" % manifest["id"])
        return manifest

    def remove_backup(self, backup_id):
        check_backup_id(backup_id)
        self._unlink_inside(("manifests",), backup_id + ".json")
        with contextlib.suppress(FileNotFoundError):
            self._unlink_inside(("verifications",), backup_id + ".json")
        fsync_directory(self.manifests_dir)

    def resolve(self, selector):
        """'latest' | 'latest_verified' | a backup id -> manifest."""
        if selector in (None, "", "latest"):
            backups = self.list_backups()
            newest = backups[-1]["id"] if backups else ""
            # Ids begin with their start time (to the second): a damaged manifest started no earlier
            # may be the newest backup, and "latest" must not quietly mean an older one.
            newer = sorted(b for b in self.damaged_manifests() if b[:16] >= newest[:16])  # YYYYMMDDTHHMMSSZ
            if newer:
                raise RepositoryError("the newest backup %s cannot be used: its manifest is damaged; 'latest' does not "
                                      "fall back to an older backup: name the backup id to use (the newest readable "
                                      "one is %s)" % (newer[-1], newest or "none"))
            if not backups:
                raise RepositoryError("repository %s holds no backup" % self.path)
            return backups[-1]
        if selector == "latest_verified":
            for manifest in reversed(self.list_backups()):
                state = self.verification_state(manifest["id"])
                if state and state.get("passed"):
                    return manifest
            raise RepositoryError("repository %s holds no verified backup" % self.path)
        return self.load_listed(selector)

    # ----------------------------------------------------------------- streams
    @staticmethod
    def _stream(manifest, name):
        streams = manifest.get("streams") or {}
        if name not in streams:
            raise RepositoryError("backup %s has no stream %r (it has %s)" % (manifest.get("id"), name, sorted(streams)))
        return streams[name]

    def open_stream(self, manifest, name="database", workers=0):
        """A ``ChunkReader`` of stream ``name``; ``workers`` threads decode the chunks ahead."""
        return ChunkReader(self, stream_chunks(manifest, name, self._stream(manifest, name)), workers=workers)

    @staticmethod
    def stream_size(manifest, name="database"):
        return int(Repository._stream(manifest, name)["size"])

    @staticmethod
    def manifest_chunks(manifest):
        """{chunk_id: length} of every chunk a manifest names."""
        out = {}
        streams = manifest.get("streams") or {}
        if not isinstance(streams, dict):
            raise RepositoryError("backup %s: streams is not an object" % manifest.get("id"))
        for name, stream in sorted(streams.items()):
            for chunk_id, length in stream_chunks(manifest, name, stream):
                out[chunk_id] = length
        return out

    def referenced_chunks(self, manifests=None):
        refs = set()
        for manifest in (self.list_backups() if manifests is None else manifests):
            refs.update(self.manifest_chunks(manifest))
        return refs

    # ----------------------------------------------------------------- verification
    def verify_checksums(self, manifests):
        """Re-read and hash-check every chunk the manifests name (each once).

        Returns ``{backup_id: [problem, ...]}`` (an empty list when the backup is sound).
        """
        users = {}
        for manifest in manifests:
            for chunk_id, length in self.manifest_chunks(manifest).items():
                users.setdefault((chunk_id, length), []).append(manifest["id"])
        problems = {m["id"]: [] for m in manifests}
        for (chunk_id, length), backup_ids in sorted(users.items()):
            try:
                self.read_chunk(chunk_id, expected_length=length)
            except CorruptChunkError as exc:
                for backup_id in backup_ids:
                    problems[backup_id].append(str(exc))
        for manifest in manifests:
            problems[manifest["id"]].extend(self.stream_size_problems(manifest))
        return problems

    @staticmethod
    def stream_size_problems(manifest):
        """Streams of ``manifest`` whose chunk lengths do not add up to the size it records."""
        problems = []
        for name, stream in (manifest.get("streams") or {}).items():
            total = sum(length for _chunk_id, length in stream_chunks(manifest, name, stream))
            if total != stream.get("size"):
                problems.append("stream %s: chunks add up to %d bytes, manifest says %s" % (name, total, stream.get("size")))
        return problems

    def verification_path(self, backup_id):
        return os.path.join(self.verifications_dir, check_backup_id(backup_id) + ".json")

    def verification_records(self, backup_id):
        try:
            with open(self.verification_path(backup_id), "rb") as handle:
                data = json.loads(handle.read().decode("utf-8"))
            return list(data.get("records") or [])
        except FileNotFoundError:
            return []
        except (OSError, ValueError):
            return []

    def record_verification(self, backup_id, level, passed, problems=None, details=None):
        """Append a verification record (atomically rewrites verifications/<id>.json)."""
        self.load_manifest(backup_id)
        records = self.verification_records(backup_id)
        record = {"level": level, "passed": bool(passed), "problems": list(problems or []),
                  "details": dict(details or {}), "time": iso(utcnow())}
        records.append(record)
        records = records[-50:]
        data = json.dumps({"backup_id": backup_id, "records": records}, indent=1, sort_keys=True).encode("utf-8")
        old = os.umask(0o077)
        try:
            os.makedirs(self.verifications_dir, mode=DIR_MODE, exist_ok=True)
            atomic_write(self.verification_path(backup_id), data, FILE_MODE, tmp_dir=self.tmp_dir)
        except OSError as exc:
            raise friendly_os_error(exc, "recording the verification of backup %s" % backup_id)
        finally:
            os.umask(old)
        return record

    def verification_state(self, backup_id):
        records = self.verification_records(backup_id)
        return records[-1] if records else None

    def restore_verified(self, backup_id, manifest_checksum):
        """The newest restore-level record of ``backup_id`` if it passed and was made for the
        manifest whose checksum is ``manifest_checksum``, else None (a later failed
        restore-level verification withdraws an earlier pass)."""
        for record in reversed(self.verification_records(backup_id)):
            if record.get("level") == "restore":
                passed = record.get("passed") and manifest_checksum
                same = (record.get("details") or {}).get("manifest_checksum") == manifest_checksum
                return record if passed and same else None
        return None

    # ----------------------------------------------------------------- prune
    def prune(self):
        """Remove chunks no manifest on disk names. Call while holding the lock.

        Returns ``{"removed_chunks": n, "removed_bytes": n}``, with ``skipped`` (the reason, also in
        ``warnings``) when a damaged manifest makes it remove nothing.
        """
        manifests = self.list_backups()
        damaged = self.damaged_manifests()
        removed = removed_bytes = 0
        if damaged:
            # Their chunks cannot be told apart from orphans: remove none, and say so (the backup
            # itself goes on; see docs/repository-format.md).
            reason = ("not pruning: manifests that cannot be read would lose their chunks: %s"
                      % ", ".join(sorted(damaged)))
            self._warn(reason)
            return {"removed_chunks": 0, "removed_bytes": 0, "skipped": reason}
        referenced = self.referenced_chunks(manifests)
        for chunk_id in self.list_chunks() - referenced:
            removed_bytes += self.chunk_stored_size(chunk_id)
            self.remove_chunk(chunk_id)
            removed += 1
        return {"removed_chunks": removed, "removed_bytes": removed_bytes}
