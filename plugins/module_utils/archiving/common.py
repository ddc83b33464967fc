# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the continuous-archiving tools (pgBackRest, Litestream) share: the error type, running a
tool as the database's OS user, a call run in the background, moments in time, and the archive
descriptor.

The descriptor (``archiving.json`` in the archive folder, written by the ``continuous_archiving``
module) records how archiving was set up on the host: the tool, its configuration file, the
stanza or replica, the data directory. Every other module (backup, backup_info, restore,
health_check) reads it instead of repeating the settings, so one inventory variable
(``bim_archiving_dir``) is all the roles share.
"""

from __future__ import annotations

import datetime
import json
import os
import pwd
import subprocess
import threading

from ansible_collections.bim.wall_system.plugins.module_utils.common.atomic import atomic_write

DEFAULT_ARCHIVE_DIR = "/var/lib/bim-wall-system/archiving"
DESCRIPTOR_NAME = "archiving.json"
DESCRIPTOR_VERSION = 1


class ArchiveError(Exception):
    """Continuous archiving or a point-in-time restore failed; the message is safe to show.

    ``details`` carries structured context for the module result (``rc``, ``stderr``, ``cmd``...).
    """

    def __init__(self, message, **details):
        super().__init__(message)
        self.details = details


# ---- moments ---------------------------------------------------------------------------------
def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def iso_utc(moment):
    """ISO-8601 UTC with a Z, to the microsecond when there is one: 2026-12-05T10:05:40.243556Z."""
    if moment is None:
        return None
    moment = moment.astimezone(datetime.timezone.utc)
    spec = "microseconds" if moment.microsecond else "seconds"
    return moment.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def from_epoch(seconds):
    return datetime.datetime.fromtimestamp(float(seconds), datetime.timezone.utc)


def parse_moment(text):
    """A timezone-aware datetime from ISO-8601 text (no offset = UTC), or ArchiveError."""
    if isinstance(text, datetime.datetime):
        return text if text.tzinfo else text.replace(tzinfo=datetime.timezone.utc)
    value = str(text or "").strip()
    if not value:
        raise ArchiveError("a moment is required (ISO-8601, e.g. 2026-12-05T10:05:40Z)")
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        moment = datetime.datetime.fromisoformat(value.replace(" ", "T", 1))
    except ValueError:
        raise ArchiveError("%r is not an ISO-8601 moment such as 2026-12-05T10:05:40Z" % (text,)) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.timezone.utc)


def parse_target_time(text):
    """None for ``latest`` (the newest moment the archive holds), else the moment."""
    if text is None or str(text).strip().lower() == "latest":
        return None
    return parse_moment(text)


def window(earliest, latest):
    """The recoverable window as the report contract has it (ISO-8601 UTC strings)."""
    return {"earliest": iso_utc(earliest), "latest": iso_utc(latest)}


# ---- running the tools -----------------------------------------------------------------------
def os_user(name):
    """(uid, gid, home) of an OS user, or ArchiveError."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise ArchiveError("the OS user %s does not exist on this host" % name) from None
    return entry.pw_uid, entry.pw_gid, entry.pw_dir


def owner_name(path):
    """Name of the OS user owning ``path``."""
    uid = os.stat(path).st_uid
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def run_as(argv, user=None, env=None, timeout=3600, secrets=(), cwd="/"):
    """Run ``argv`` (as OS user ``user`` when given and we are root); return (rc, stdout, stderr).

    Secrets are removed from the output. A program that cannot be started is an ArchiveError.
    """
    kwargs = {}
    if user and os.geteuid() == 0:
        uid, gid, home = os_user(user)
        kwargs.update(user=uid, group=gid, extra_groups=[])
        env = dict(env if env is not None else os.environ)
        env["HOME"] = home
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=env, timeout=timeout, check=False, cwd=cwd, **kwargs)
    except FileNotFoundError:
        raise ArchiveError("the program %s was not found on this host" % argv[0]) from None
    except subprocess.TimeoutExpired:
        raise ArchiveError("%s did not finish within %s s" % (" ".join(argv[:3]), timeout), cmd=" ".join(argv)) from None
    out = proc.stdout.decode("utf-8", "replace")
    err = proc.stderr.decode("utf-8", "replace")
    for secret in secrets:
        if secret:
            out, err = out.replace(secret, "********"), err.replace(secret, "********")
    return proc.returncode, out, err


def checked(argv, what, **kwargs):
    """``run_as`` that raises ArchiveError naming ``what`` when the program fails; returns stdout."""
    rc, out, err = run_as(argv, **kwargs)
    if rc != 0:
        text = (err.strip() or out.strip())[-2000:]
        raise ArchiveError("%s failed (rc=%d): %s" % (what, rc, text), rc=rc, stderr=text, cmd=" ".join(argv))
    return out


class Background:
    """A call run in a thread of its own; ``result()`` waits for it and returns (or raises) what it did."""

    def __init__(self, func, run=True, value=None):
        self.value, self.error = value, None
        self.thread = threading.Thread(target=self._run, args=(func,), daemon=True) if run else None
        if self.thread:
            self.thread.start()

    def _run(self, func):
        try:
            self.value = func()
        except BaseException as exc:  # raised in the caller by result()
            self.error = exc

    def result(self):
        if self.thread:
            self.thread.join()
        if self.error is not None:
            raise self.error
        return self.value


# ---- the descriptor --------------------------------------------------------------------------
def descriptor_path(archive_dir):
    return os.path.join(archive_dir or DEFAULT_ARCHIVE_DIR, DESCRIPTOR_NAME)


def load_descriptor(archive_dir, required=True):
    """The descriptor of ``archive_dir``; None (or ArchiveError when ``required``) if there is none."""
    path = descriptor_path(archive_dir)
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        if required:
            raise ArchiveError("continuous archiving is not set up here: %s is missing (run the "
                               "bim.wall_system.continuous_archiving role first)" % path) from None
        return None
    except (OSError, ValueError) as exc:
        raise ArchiveError("cannot read the archiving descriptor %s: %s" % (path, exc)) from None
    if not isinstance(data, dict) or data.get("tool") not in ("pgbackrest", "litestream"):
        raise ArchiveError("%s is not an archiving descriptor of this collection" % path)
    return data


def write_descriptor(archive_dir, data):
    """Write the descriptor; returns True when its content changed."""
    data = dict(data, version=DESCRIPTOR_VERSION)
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    path = descriptor_path(archive_dir)
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == text:
                return False
    except OSError:
        pass
    atomic_write(path, text, mode=0o600)
    return True


class Service:
    """Start / stop of a daemon (Litestream): the commands the role recorded (a test fleet's own
    process control), else systemd's unit."""

    def __init__(self, start_command=None, stop_command=None, unit=None):
        self.start_command = start_command
        self.stop_command = stop_command
        self.unit = unit

    @classmethod
    def from_descriptor(cls, data):
        service = (data or {}).get("service") or {}
        return cls(service.get("start_command"), service.get("stop_command"), service.get("unit"))

    @property
    def configured(self):
        return bool(self.start_command or self.unit)

    def _do(self, action):
        command = self.start_command if action == "start" else self.stop_command
        argv = ["/bin/sh", "-c", command] if command else (["systemctl", action, self.unit] if self.unit else None)
        if argv is None:
            return False
        rc, out, err = run_as(argv, timeout=300)
        if rc != 0:
            raise ArchiveError("%s of the archiving service failed (rc=%d): %s" % (
                action, rc, (err.strip() or out.strip())[-500:]), cmd=" ".join(argv))
        return True

    def start(self):
        return self._do("start")

    def stop(self):
        return self._do("stop")
