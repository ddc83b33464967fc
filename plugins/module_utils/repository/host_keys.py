# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host-key trust of the SFTP connections to secondary repositories.

The collection keeps its own known_hosts file on each BIM host (OpenSSH format, default
``/var/lib/bim-wall-system/known_hosts``). Keys are looked up there and in the system's files
(``/etc/ssh/ssh_known_hosts``, ``~/.ssh/known_hosts``, read only). Then:

- a known host whose key differs (or whose recorded key is of another type) is refused, the
  message naming both SHA256 fingerprints, as OpenSSH prints them;
- an unknown host is trusted on first use: its key is recorded in the collection's file
  (written atomically, under a lock, before any data moves) and every later connection must
  offer the same key. With ``strict`` (``strict_host_key_checking: true``) an unknown host is
  refused instead: the key must have been put in a known_hosts file beforehand.
- ``record=False`` (check mode) trusts an unknown key for that read-only connection without
  writing it.
"""

from __future__ import annotations

import base64
import hashlib
import os

try:
    import paramiko
except ImportError:  # pragma: no cover - the copy targets check for paramiko first
    paramiko = None

from ansible_collections.bim.wall_system.plugins.module_utils.common.atomic import atomic_write
from ansible_collections.bim.wall_system.plugins.module_utils.common.locking import file_lock
from ansible_collections.bim.wall_system.plugins.module_utils.repository.errors import RepositoryError
from ansible_collections.bim.wall_system.plugins.module_utils.repository.locations import DEFAULT_KNOWN_HOSTS

SYSTEM_KNOWN_HOSTS = ("/etc/ssh/ssh_known_hosts", "~/.ssh/known_hosts")


class HostKeyRefused(RepositoryError):
    """The server's host key is not one this host trusts; nothing was sent or read."""


def fingerprint(key):
    """``SHA256:<base64 without padding>`` of a paramiko key, as ``ssh-keygen -l`` prints it."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode("ascii").rstrip("=")


def entry_name(host, port):
    """The known_hosts name of ``host``:``port`` (OpenSSH writes ``[host]:port`` off port 22)."""
    return host if int(port) == 22 else "[%s]:%d" % (host, int(port))


def _load(path):
    """paramiko HostKeys of ``path`` (empty when the file does not exist)."""
    keys = paramiko.HostKeys()
    if os.path.exists(path):
        try:
            keys.load(path)
        except (OSError, UnicodeDecodeError) as exc:
            raise RepositoryError("cannot read known_hosts file %s: %s" % (path, exc))
    return keys


def append_key(path, name, key):
    """Add ``name key`` to the known_hosts file ``path`` (atomically; the caller holds its lock)."""
    try:
        with open(path, "rb") as handle:
            text = handle.read()
    except FileNotFoundError:
        text = b""
    if text and not text.endswith(b"\n"):
        text += b"\n"
    line = "%s %s %s\n" % (name, key.get_name(), key.get_base64())
    atomic_write(path, text + line.encode("ascii"), mode=0o600)


class HostTrust:
    """Host-key checking of one SFTP connection; ``status`` tells what happened to the key."""

    def __init__(self, known_hosts_file=None, strict=False, record=True):
        self.path = known_hosts_file or DEFAULT_KNOWN_HOSTS
        self.strict = strict
        self.record = record
        self.status = None  # known | recorded | new (check mode: seen first, not recorded)
        self.fingerprint = None

    def sources(self):
        """(path, HostKeys) of every file consulted: the collection's first, then the system's."""
        out = [(self.path, _load(self.path))]
        for path in SYSTEM_KNOWN_HOSTS:
            path = os.path.expanduser(path)
            if path != self.path and os.path.exists(path):
                try:
                    out.append((path, _load(path)))
                except RepositoryError:
                    continue  # an unreadable system file trusts nothing; ours is what counts
        return out

    def connected(self, client):
        """After a successful connect: the fingerprint of the key, ``status`` known if not new."""
        self.fingerprint = fingerprint(client.get_transport().get_remote_server_key())
        self.status = self.status or "known"

    def prepare(self, client):
        """Load every known key into ``client`` and make this object its missing-key policy."""
        known = client.get_host_keys()
        for _path, keys in self.sources():
            for name in keys.keys():
                for key_type, key in keys.lookup(name).items():
                    known.add(name, key_type, key)
        client.set_missing_host_key_policy(_Policy(self))

    def refused_change(self, name, offered, expected):
        """The HostKeyRefused for a changed key: both fingerprints and where the old one is."""
        where = [path for path, keys in self.sources() if (keys.lookup(name) or {}).get(expected.get_name()) == expected]
        return HostKeyRefused(
            "host key of %s has CHANGED: it offers %s %s, but %s %s is recorded in %s. Refusing to connect: "
            "someone may be between this host and the storage host, or the storage host was reinstalled. "
            "If the change is expected, check the new fingerprint with its administrator, then remove the "
            "old entry (ssh-keygen -R '%s' -f %s) and run again"
            % (name, offered.get_name(), fingerprint(offered), expected.get_name(), fingerprint(expected),
               " and ".join(where) or self.path, name, where[0] if where else self.path))

    def missing(self, name, key):
        """An unknown host offered ``key``: refuse (strict), record it (first use), or note it."""
        self.fingerprint = fingerprint(key)
        if self.strict:
            raise HostKeyRefused(
                "host key of %s (%s %s) is not in %s nor in the system known_hosts files, and "
                "strict_host_key_checking is on: check the fingerprint with the storage host's administrator, "
                "then add it (ssh-keyscan%s %s >> %s)"
                % (name, key.get_name(), self.fingerprint, self.path,
                   " -p " + name.rsplit(":", 1)[1] if name.startswith("[") else "",
                   name.strip("[").split("]")[0], self.path))
        if not self.record:
            self.status = "new"
            return
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, mode=0o700, exist_ok=True)
        with file_lock(self.path + ".lock"):
            # Another run may have recorded this host since our lookup: theirs is the first use.
            recorded = _load(self.path).lookup(name) or {}
            if recorded:
                expected = recorded.get(key.get_name()) or list(recorded.values())[0]
                if expected != key:
                    raise self.refused_change(name, key, expected)
                self.status = "known"
                return
            append_key(self.path, name, key)
        self.status = "recorded"


if paramiko is not None:
    class _Policy(paramiko.MissingHostKeyPolicy):
        """paramiko's hook for a host no loaded file names."""

        def __init__(self, trust):
            self.trust = trust

        def missing_host_key(self, client, hostname, key):
            self.trust.missing(hostname, key)


def translate(trust, exc, name):
    """A HostKeyRefused for what ``connect`` raised about the host key of ``name`` (its
    known_hosts name), or None when the failure is about something else."""
    if isinstance(exc, HostKeyRefused):
        return exc
    if paramiko is not None and isinstance(exc, paramiko.BadHostKeyException):
        return trust.refused_change(name, exc.key, exc.expected_key)
    return None
