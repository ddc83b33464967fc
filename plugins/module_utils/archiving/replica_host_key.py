# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The storage host's key that Litestream's SFTP replica is pinned to.

Litestream (0.5) checks an SFTP host key only when its replica has ``host-key`` (one key, in
authorized_keys form); without it, it connects to anything and logs "sftp host key not verified".
The collection pins the key under the same trust as its own SFTP copies (``host_keys.py``): the
collection's known_hosts file (and the system's), trust on first use recorded there, or
``strict`` (the key must be there beforehand), and a changed key refused with both fingerprints.

Litestream is a Go program: its SSH library asks for host key types in its own order (ECDSA, then
RSA, then Ed25519), so a host with several keys shows Litestream another key than OpenSSH or
paramiko would see. The key is therefore read here in Go's order. When the host is known under
another type only (our copies, through paramiko, recorded its Ed25519 key), the host must first
prove it holds that recorded key; the Go-order key is then recorded beside it (not in strict mode,
where it must be added by hand).
"""

from __future__ import annotations

import socket

try:
    import paramiko
except ImportError:  # pragma: no cover - the continuous_archiving module needs it for SFTP replicas only
    paramiko = None

from ansible_collections.bim.wall_system.plugins.module_utils.archiving.common import ArchiveError
from ansible_collections.bim.wall_system.plugins.module_utils.common.locking import file_lock
from ansible_collections.bim.wall_system.plugins.module_utils.repository.host_keys import (
    HostKeyRefused, HostTrust, append_key, entry_name, fingerprint)
from ansible_collections.bim.wall_system.plugins.module_utils.repository.errors import RepositoryError

# golang.org/x/crypto/ssh's host key algorithms, in its order of preference (without certificates)
GO_KEY_TYPES = ("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "rsa-sha2-256",
                "rsa-sha2-512", "ssh-rsa", "ssh-ed25519")


def split_host(address):
    """(host, port) of ``addr:port`` (port 22 when absent; ``[v6]:port`` understood)."""
    host, sep, port = address.rpartition(":")
    if not sep or "]" in port or (host.count(":") and not host.startswith("[")):
        return address.strip("[]"), 22
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        raise ArchiveError("the SFTP replica host %r is not host:port" % (address,)) from None


def offered_key(host, port, key_types=GO_KEY_TYPES, timeout=20):
    """The host key ``host``:``port`` shows a client asking for ``key_types`` in that order (no login)."""
    if paramiko is None:
        raise ArchiveError("pinning the SFTP replica's host key needs paramiko on the host (meta/ee-requirements.txt)")
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        raise ArchiveError("cannot reach the SFTP replica's host %s:%s to read its host key: %s" % (host, port, exc)) from None
    transport = paramiko.Transport(sock)
    try:
        options = transport.get_security_options()
        wanted = [k for k in key_types if k in options.key_types]
        options.key_types = wanted
        transport.start_client(timeout=timeout)
        return transport.get_remote_server_key()
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise ArchiveError("the SFTP replica's host %s:%s offers none of the host key types %s: %s" % (
            host, port, ", ".join(key_types), exc)) from None
    finally:
        transport.close()


def _keyscan_type(key_type):
    """``ssh-keyscan -t`` name of a key type: ecdsa, rsa or ed25519."""
    return "ecdsa" if key_type.startswith("ecdsa") else key_type.split("-")[-1]


def _recorded(trust, name):
    """{key type: key} recorded for ``name``: the collection's file first, then the system's."""
    found = {}
    for _path, keys in trust.sources():
        for key_type, key in (keys.lookup(name) or {}).items():
            found.setdefault(key_type, key)
    return found


def _known_under_other_type(trust, name, host, port, key, recorded):
    """The host is known under other key types only: it must prove it holds one, then ``key`` is
    recorded beside it (refused in strict mode)."""
    recorded_type, expected = next(iter(recorded.items()))
    proof = offered_key(host, port, (recorded_type,))
    if proof != expected:
        raise trust.refused_change(name, proof, expected)
    if trust.strict:
        raise HostKeyRefused(
            "%s is known by its %s key only, but Litestream's SSH library asks for its %s key (%s); "
            "strict_host_key_checking is on: check that fingerprint with the storage host's administrator, then "
            "add it (ssh-keyscan -t %s%s %s >> %s)" % (
                name, recorded_type, key.get_name(), fingerprint(key), _keyscan_type(key.get_name()),
                " -p %d" % port if port != 22 else "", host, trust.path))
    if not trust.record:
        return "new"
    with file_lock(trust.path + ".lock"):
        append_key(trust.path, name, key)
    return "recorded"


def pin(address, known_hosts_file=None, strict=False, record=True, key_types=GO_KEY_TYPES):
    """The ``host-key`` line for Litestream's replica on ``address`` (``host:port``), checked
    against the known_hosts files; the key is the one a client asking for ``key_types`` in that
    order sees (Litestream's Go library by default). Returns ``(line, status, fingerprint)``;
    status is known, recorded or new (check mode: seen first, not recorded). A changed key is an
    ArchiveError naming both fingerprints."""
    host, port = split_host(address)
    name = entry_name(host, port)
    trust = HostTrust(known_hosts_file, strict=strict, record=record)
    key = offered_key(host, port, key_types)
    try:
        recorded = _recorded(trust, name)
        expected = recorded.get(key.get_name())
        if expected is not None and expected != key:
            raise trust.refused_change(name, key, expected)
        if expected is not None:
            status = "known"
        elif recorded:
            status = _known_under_other_type(trust, name, host, port, key, recorded)
        else:
            trust.missing(name, key)
            status = trust.status
    except RepositoryError as exc:
        raise ArchiveError("SFTP replica: %s" % exc) from None
    return "%s %s" % (key.get_name(), key.get_base64()), status, fingerprint(key)


def explain_mismatch(address, pinned_line, known_hosts_file=None):
    """What Litestream's "ssh: host key mismatch" means here: the key it was pinned to and the one
    the host shows now, both as SHA256 fingerprints."""
    host, port = split_host(address)
    if paramiko is None:
        return "host key of %s has CHANGED (Litestream: ssh: host key mismatch)" % entry_name(host, port)
    try:
        was = fingerprint(paramiko.hostkeys.HostKeyEntry.from_line("pinned " + pinned_line).key)
    except (AttributeError, ValueError, paramiko.SSHException):
        was = "(unreadable pinned key)"
    try:
        offered = offered_key(host, port)
        now = "%s %s" % (offered.get_name(), fingerprint(offered))
    except ArchiveError as exc:
        now = "(not read: %s)" % exc
    return ("host key of %s has CHANGED: the replica is pinned to %s %s, the host now offers %s. Litestream "
            "refuses to connect: someone may be between this host and the storage host, or it was reinstalled. "
            "If the change is expected, check the new fingerprint with its administrator, remove the old entry "
            "(ssh-keygen -R '%s' -f %s) and run the continuous_archiving role again" % (
                entry_name(host, port), pinned_line.split()[0], was, now, entry_name(host, port),
                known_hosts_file or HostTrust().path))
