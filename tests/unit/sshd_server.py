# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real sshd of a test's own on 127.0.11.1 (root, key auth, internal-sftp), on a free port so
tests running side by side never share one. Loaded by tests/unit/conftest.py (fixture ``sshd``).

    .key           the client's private key          .url(path)   sftp://root@ADDRESS:PORT/path
    .start()       .cut() (sshd and every session killed at once, as a host that goes away)
    .new_host_key()  a new ed25519 host key (takes effect at the next start)
    .host_key_fingerprint()  SHA256:... of the current host key, as ssh-keygen -l prints it
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time

SSHD = "/usr/sbin/sshd"
ADDRESS = "127.0.11.1"


def _port_open(addr, port):
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((addr, port)) == 0


def _free_port():
    with socket.socket() as sock:
        sock.bind((ADDRESS, 0))
        return sock.getsockname()[1]


def wait(predicate, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s" % what)


def _children(pid):
    """Every descendant of ``pid`` (read from /proc)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as handle:
                    ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
                parents.setdefault(ppid, []).append(int(entry))
            except (OSError, IndexError, ValueError):
                pass
    out, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


class Sshd:
    def __init__(self, base):
        self.base = base
        self.address = ADDRESS
        self.port = _free_port()
        self.key = os.path.join(base, "client_key")
        subprocess.check_call(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", self.key])
        self.host_key = os.path.join(base, "host_key")
        self.new_host_key()
        shutil.copy(self.key + ".pub", os.path.join(base, "authorized_keys"))
        self.pidfile = os.path.join(base, "sshd.pid")
        self.config = os.path.join(base, "sshd_config")
        with open(self.config, "w") as handle:
            handle.write("\n".join([
                "ListenAddress %s:%d" % (ADDRESS, self.port), "HostKey %s" % self.host_key,
                "PidFile %s" % self.pidfile, "AuthorizedKeysFile %s" % os.path.join(base, "authorized_keys"),
                "PermitRootLogin prohibit-password", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
                "UsePAM no", "StrictModes no", "UseDNS no", "LogLevel ERROR", "Subsystem sftp internal-sftp", ""]))
        os.chmod(self.config, 0o600)

    def url(self, path):
        return "sftp://root@%s:%d%s" % (ADDRESS, self.port, path)

    def new_host_key(self):
        for name in (self.host_key, self.host_key + ".pub"):
            if os.path.exists(name):
                os.unlink(name)
        subprocess.check_call(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", self.host_key])

    def host_key_fingerprint(self):
        out = subprocess.check_output(["ssh-keygen", "-l", "-E", "sha256", "-f", self.host_key + ".pub"], text=True)
        return out.split()[1]

    def start(self):
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        subprocess.check_call([SSHD, "-f", self.config, "-E", os.path.join(self.base, "sshd.log")])
        wait(lambda: _port_open(ADDRESS, self.port), 15, "sshd on %s:%d" % (ADDRESS, self.port))

    def pid(self):
        try:
            with open(self.pidfile) as handle:
                return int(handle.read().strip())
        except (OSError, ValueError):
            return None

    def cut(self):
        """The storage host goes away: sshd and every session it serves die at once."""
        pid = self.pid()
        if not pid:
            return
        for victim in _children(pid) + [pid]:
            try:
                os.kill(victim, signal.SIGKILL)
            except OSError:
                pass
        wait(lambda: not _port_open(ADDRESS, self.port), 15, "sshd to stop")
        os.unlink(self.pidfile)
