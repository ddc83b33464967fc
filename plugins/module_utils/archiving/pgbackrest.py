# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pgBackRest: the configuration the collection writes, and driving the tool.

One stanza per BIM host. The configuration file is the collection's own (``--config`` on every
call, so several clusters on one machine never share a file): a ``[global]`` section with the
repository, asynchronous archive-push (spool folder), lock and log folders, and one
``[<stanza>]`` section naming the cluster. Every command runs as the OS user owning the data
directory (the user ``archive_command`` runs as), with the database password in
``PGPASSWORD`` for the commands that connect (never on a command line).
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shlex

from ansible_collections.bim.wall_system.plugins.module_utils.archiving.common import (
    ArchiveError, checked, from_epoch, iso_utc, run_as, window)

BACKUP_TYPES = ("full", "diff", "incr")
# The collection's names for the types (the backup module's) -> pgBackRest's.
TYPE_NAMES = {"full": "full", "differential": "diff", "incremental": "incr", "diff": "diff", "incr": "incr"}
_SEGMENT = re.compile(r"^([0-9A-F]{24})(?:-[0-9a-f]{40})?(?:\.(?:gz|lz4|zst|bz2))?$")


def retention_days(retention):
    """Days of recoverable history the collection's ``keep_*`` rules ask for (the longest of
    keep_daily days, keep_weekly weeks and keep_monthly months of 31 days), or None."""
    retention = retention or {}
    days = [int(retention.get("keep_daily") or 0), int(retention.get("keep_weekly") or 0) * 7,
            int(retention.get("keep_monthly") or 0) * 31]
    return max(days) or None


def retention_lines(prefix, retention):
    """``<prefix>retention-full*`` lines of the collection's ``keep_*`` rules (see render_config)."""
    days = retention_days(retention)
    keep_last = int((retention or {}).get("keep_last") or 0)
    if days:
        return [prefix + "retention-full-type=time", prefix + "retention-full=%d" % days]
    if keep_last:
        return [prefix + "retention-full-type=count", prefix + "retention-full=%d" % keep_last]
    return []


def render_config(stanza, repositories, pg_path, pg_port, pg_socket_dir, pg_user, spool_path, lock_path, log_path,
                  retention=None, process_max=2, compress_type="zst", archive_push_queue_max=None, cmd_ssh=None):
    """The text of the collection's pgbackrest.conf.

    ``repositories``: list of ``{"path": ..., "host": optional repository host reached over SSH,
    "host_user", "host_port", "host_config": optional}``, repo1 first; ``cmd_ssh`` the ssh program
    pgBackRest runs to reach those hosts (repo_host.py). Retention: with keep_daily/weekly/monthly the full
    backups are kept by age (``repo-retention-full-type=time``, the longest of those periods in
    days) so every moment inside it stays recoverable; with only keep_last, by count.
    """
    lines = ["# Written by bim.wall_system.continuous_archiving: changes here are overwritten.", "[global]"]
    for number, repo in enumerate(repositories, start=1):
        prefix = "repo%d-" % number
        lines.append(prefix + "path=" + repo["path"])
        if repo.get("host"):
            lines.append(prefix + "host=" + repo["host"])
            if repo.get("host_user"):
                lines.append(prefix + "host-user=" + repo["host_user"])
            if repo.get("host_port"):
                lines.append(prefix + "host-port=%d" % int(repo["host_port"]))
            if repo.get("host_config"):
                lines.append(prefix + "host-config=" + repo["host_config"])
        lines += retention_lines(prefix, retention)
    lines += [
        "archive-async=y",
        "spool-path=" + spool_path,
        "lock-path=" + lock_path,
        "log-path=" + log_path,
        "log-level-console=warn",
        "log-level-file=info",
        "start-fast=y",
        "compress-type=" + compress_type,
        "process-max=%d" % int(process_max),
    ]
    if archive_push_queue_max:
        lines.append("archive-push-queue-max=" + str(archive_push_queue_max))
    if cmd_ssh:
        lines.append("cmd-ssh=" + cmd_ssh)
    lines += ["", "[%s]" % stanza, "pg1-path=" + pg_path, "pg1-port=%d" % int(pg_port)]
    if pg_socket_dir:
        lines.append("pg1-socket-path=" + pg_socket_dir)
    if pg_user:
        lines.append("pg1-user=" + pg_user)
    return "\n".join(lines) + "\n"


def archive_command(config, stanza, binary="pgbackrest"):
    """The archive_command PostgreSQL runs for each finished WAL segment."""
    return "%s --config=%s --stanza=%s archive-push %%p" % (binary, config, stanza)


class PgBackRest:
    """pgBackRest driven for one stanza with the collection's configuration file."""

    tool = "pgbackrest"

    def __init__(self, config, stanza, os_user="postgres", password=None, binary="pgbackrest", timeout=6 * 3600,
                 remote_backups=None):
        self.config = config
        # {"N": {"ssh": argv reaching repository host N, "config": its pgbackrest.conf}}: pgBackRest backs
        # up into a repository host's repository only when run there (repo_host.py)
        self.remote_backups = remote_backups or {}
        self.stanza = stanza
        self.os_user = os_user
        self.password = password
        self.binary = binary
        self.timeout = timeout
        # The archive listing of the last look (recovery_end_problems compares a restore with what the
        # archive held when the restore began, not with segments archived while it ran).
        self.last_listing = None

    # -- running -------------------------------------------------------------------------------
    def _argv(self, command, *options):
        """pgBackRest's order: options, the command, then its positional arguments (repo-ls PATH)."""
        flags = [o for o in options if o.startswith("--")]
        positional = [o for o in options if not o.startswith("--")]
        return [self.binary, "--config=" + self.config, "--stanza=" + self.stanza] + flags + [command] + positional

    def _env(self):
        env = dict(os.environ)
        if self.password:
            env["PGPASSWORD"] = self.password
        else:
            env.pop("PGPASSWORD", None)
        return env

    def run(self, command, *options, **kwargs):
        """Run a command; returns stdout or raises ArchiveError with pgBackRest's message."""
        return checked(self._argv(command, *options), "pgbackrest %s" % command, user=self.os_user, env=self._env(),
                       timeout=kwargs.get("timeout", self.timeout), secrets=[self.password])

    def try_run(self, command, *options, **kwargs):
        """(rc, stdout, stderr) without raising."""
        return run_as(self._argv(command, *options), user=self.os_user, env=self._env(),
                      timeout=kwargs.get("timeout", self.timeout), secrets=[self.password])

    # -- stanza ----------------------------------------------------------------------------------
    def info(self):
        """pgBackRest's info document of the stanza (``None`` when the stanza is missing)."""
        out = self.run("info", "--output=json", timeout=300)
        try:
            stanzas = json.loads(out)
        except ValueError:
            raise ArchiveError("pgbackrest info did not answer JSON: %s" % out[:300]) from None
        for entry in stanzas:
            if entry.get("name") == self.stanza:
                if entry.get("status", {}).get("code") == 1:  # "missing stanza path"
                    return None
                return entry
        return None

    def stanza_exists(self):
        return self.info() is not None

    def stanza_create(self):
        self.run("stanza-create", timeout=600)

    def check(self, timeout=300):
        """``pgbackrest check``: the configuration is sound and a WAL switch reaches the repository."""
        self.run("check", "--archive-timeout=%d" % max(10, int(timeout)), timeout=timeout + 60)

    # -- backups ---------------------------------------------------------------------------------
    def backup(self, kind="full", repos=1):
        """Take a physical backup (full / diff / incr) into each of the ``repos`` repositories (pgBackRest
        backs up to one repository per run: each holds its own backups, so each can restore alone; a
        repository without a full gets one, as pgBackRest upgrades the type itself). Returns the new
        backup's entry (repo1's)."""
        kind = TYPE_NAMES.get(kind, kind)
        if kind not in BACKUP_TYPES:
            raise ArchiveError("physical backup type must be full, differential or incremental, not %r" % kind)
        before = {(b["label"], b["repo"]) for b in self.backups()}
        for repo in range(1, int(repos) + 1):
            remote = self.remote_backups.get(str(repo))
            if remote:
                command = "pgbackrest --config=%s --stanza=%s --repo=%d --type=%s backup" % (
                    shlex.quote(remote["config"]), shlex.quote(self.stanza), repo, kind)
                checked(remote["ssh"] + [command], "pgbackrest backup on repository host %d" % repo,
                        user=self.os_user, timeout=self.timeout)
            else:
                self.run("backup", "--type=" + kind, "--repo=%d" % repo)
        new = [b for b in self.backups() if (b["label"], b["repo"]) not in before]
        if not new:
            raise ArchiveError("pgbackrest backup ended without a new backup in the repository")
        return ([b for b in new if b["repo"] == 1] or new)[-1]

    def backups(self, info=None):
        """Physical backups, oldest first, in the collection's words."""
        info = self.info() if info is None else info
        out = []
        for item in (info or {}).get("backup") or []:
            stamp = item.get("timestamp") or {}
            size = item.get("info") or {}
            out.append({
                "label": item.get("label"),
                "repo": (item.get("database") or {}).get("repo-key", 1),
                "type": {"diff": "differential", "incr": "incremental"}.get(item.get("type"), item.get("type")),
                "parent": item.get("prior"),
                "started": iso_utc(from_epoch(stamp["start"])) if stamp.get("start") else None,
                "finished": iso_utc(from_epoch(stamp["stop"])) if stamp.get("stop") else None,
                "wal_start": (item.get("archive") or {}).get("start"),
                "wal_stop": (item.get("archive") or {}).get("stop"),
                "database_bytes": size.get("size"),
                "repository_bytes": (size.get("repository") or {}).get("size"),
                "repository_delta_bytes": (size.get("repository") or {}).get("delta"),
                "error": bool(item.get("error")),
            })
        return out

    # -- the archive ----------------------------------------------------------------------------
    def _newest_segment(self, info=None):
        """``(segment, arrival)`` of the archived WAL segment that reaches furthest (ties: the newest
        arrival), or ``(None, None)``.

        "Furthest" by position, not by name: after a point-in-time swap was rolled back, the archive
        keeps an abandoned timeline whose segment names sort higher but which ends earlier than the
        timeline the cluster went on with."""
        info = self.info() if info is None else info
        archives = [a for a in (info or {}).get("archive") or [] if a.get("max")]
        if not archives:
            return None, None
        listing = self._archive_listing(info)
        best = None
        for name, entry in listing.items():
            segment = segment_name(name) if entry.get("type") == "file" else None
            if not segment:
                continue
            key = (int(segment[8:16], 16) * 0x100000000 + int(segment[16:24], 16), entry.get("time") or 0)
            if best is None or key > best[0]:
                best = (key, segment)
        if best is None:
            return archives[-1]["max"], None
        return best[1], from_epoch(best[0][1]) if best[0][1] else None

    def _archive_listing(self, info=None):
        """``{path: entry}`` of the newest archive id's folder (``repo-ls --recurse``), or {}."""
        info = self.info() if info is None else info
        archives = [a for a in (info or {}).get("archive") or [] if a.get("max")]
        if not archives:
            return {}
        rc, out, _err = self.try_run("repo-ls", "--output=json", "--recurse",
                                     "archive/%s/%s" % (self.stanza, archives[-1]["id"]), timeout=300)
        try:
            self.last_listing = json.loads(out) if rc == 0 else {}
        except ValueError:
            self.last_listing = {}
        return self.last_listing

    def archived_segments(self, info=None, listing=None):
        """Names of the WAL segments in the repository (newest archive id), sorted."""
        listing = self._archive_listing(info) if listing is None else listing
        return sorted({segment_name(n) for n, e in listing.items() if e.get("type") == "file"} - {None})

    def newest_archived(self, info=None):
        """``(segment, moment)`` of the newest WAL segment in the repository (the moment it arrived
        there), or ``(None, None)``."""
        return self._newest_segment(info)

    def newest_timeline(self, info=None):
        """The timeline of the archived WAL that reaches furthest (what "latest" means when the live
        cluster cannot be asked), or None."""
        segment, _arrival = self._newest_segment(info)
        return int(segment[:8], 16) if segment else None

    def recoverable_window(self, info=None, last_archived_time=None):
        """``{"earliest", "latest"}``: from the end of the oldest backup (the first consistent
        moment) to the newest moment whose WAL is in the repository. ``last_archived_time``
        (``pg_stat_archiver`` of the live server, when known) refines the latest moment."""
        info = self.info() if info is None else info
        stops = [from_epoch(item["timestamp"]["stop"]) for item in (info or {}).get("backup") or []
                 if not item.get("error") and (item.get("timestamp") or {}).get("stop")]
        if not stops:
            return window(None, None)
        _segment, latest = self.newest_archived(info)
        if last_archived_time is not None and (latest is None or last_archived_time > latest):
            latest = last_archived_time
        return window(min(stops), latest if latest and latest > max(stops) else max(stops))

    # -- restore ---------------------------------------------------------------------------------
    def restore(self, pg_path, target_time=None, archive_mode_off=True, process_max=2, timeline=None):
        """Restore the stanza into the empty folder ``pg_path`` with the recovery settings for
        ``target_time`` (a datetime; None = the end of the archive, i.e. latest) along ``timeline``
        (default PostgreSQL's: the highest). The cluster recovers when it is started and promotes
        itself at the target."""
        options = ["--pg1-path=" + pg_path, "--process-max=%d" % int(process_max)]
        if target_time is not None:
            options += ["--type=time", "--target=" + target_time.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f+00"),
                        "--target-action=promote"]
        else:
            options.append("--type=default")
        if timeline:
            options.append("--target-timeline=%d" % int(timeline))
        if archive_mode_off:
            options.append("--archive-mode=off")
        self.run("restore", *options)


def segment_name(name):
    """The 24-hex-digit WAL segment a repository file name holds, or None."""
    match = _SEGMENT.match(os.path.basename(name))
    return match.group(1) if match else None
