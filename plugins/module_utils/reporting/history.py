# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet report's bounded history: one small entry per report run, the last N runs of the last
D days, kept beside the report (``<name>-history.json``) so the page can draw trends.

An entry holds per host what the trends need and nothing else: the overall status, the backup's
age and stored size, the last drill's time, RTO and RPO, the last maintenance's time, duration
and window. The file is replaced atomically under an exclusive lock, so two overlapping report
runs both land; a file that cannot be read is set aside (``.corrupt``) and a new history begins.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os

from ansible_collections.bim.wall_system.plugins.module_utils.common.atomic import atomic_write
from ansible_collections.bim.wall_system.plugins.module_utils.common.locking import file_lock

HISTORY_VERSION = 1
DEFAULT_RUNS = 500
DEFAULT_DAYS = 90


def _parse(value):
    if not isinstance(value, str):
        return None
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)


def entry_of(report):
    """The history entry of one fleet report (``report_json.build_report``)."""
    hosts = {}
    for row in report["hosts"]:
        backup, drill, maintenance = row.get("backup") or {}, row.get("drill") or {}, row.get("maintenance") or {}
        hosts[row["host"]] = {
            "status": row["overall_status"],
            "backup_age_hours": backup.get("age_hours"),
            "backup_at": backup.get("last_backup_at"),
            "backup_stored_bytes": backup.get("stored_bytes"),
            "drill_at": drill.get("at"),
            "drill_rto_seconds": drill.get("rto_seconds"),
            "drill_rpo_seconds": drill.get("rpo_seconds"),
            "maintenance_at": maintenance.get("at"),
            "maintenance_duration_seconds": maintenance.get("duration_seconds"),
            "maintenance_window_seconds": maintenance.get("window_seconds"),
        }
    return {"at": report["generated_at"], "hosts": hosts}


def bound(entries, now, runs=DEFAULT_RUNS, days=DEFAULT_DAYS):
    """The entries of the last ``days`` days, at most the last ``runs`` of them, oldest first."""
    oldest = now - datetime.timedelta(days=days)
    kept = [e for e in entries if isinstance(e, dict) and _parse(e.get("at")) and _parse(e["at"]) >= oldest]
    kept.sort(key=lambda e: _parse(e["at"]))
    return kept[-runs:] if runs > 0 else []


def read(path):
    """The entries of the history file ([] when it does not exist); a damaged file is set aside."""
    try:
        with open(path, "r", encoding="utf-8") as handle:
            data = json.load(handle)
        if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
            raise ValueError("not a history document")
        return data["entries"]
    except FileNotFoundError:
        return []
    except (OSError, ValueError):
        with contextlib.suppress(OSError):
            os.replace(path, path + ".corrupt")
        return []


def record(path, report, runs=DEFAULT_RUNS, days=DEFAULT_DAYS, check_mode=False):
    """Add ``report``'s entry to the history at ``path``; return the bounded entries (oldest first)."""
    now = _parse(report["generated_at"])
    if check_mode:
        return bound(read(path) + [entry_of(report)], now, runs, days)
    with file_lock(path + ".lock"):
        entries = bound(read(path) + [entry_of(report)], now, runs, days)
        document = {"version": HISTORY_VERSION, "entries": entries}
        atomic_write(path, json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n", mode=0o600)
    return entries
