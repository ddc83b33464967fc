# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run history kept on the managed host: durations and rates of earlier maintenance runs and
the last size snapshot of every table and index (for growth reports).

One JSON file per database in ``state_dir`` (folder 0700, file 0600, written atomically):
``history-<identity>.json`` = ``{"version": 1, "database": str, "operations": {op: [runs]},
"snapshot": {"taken": iso, "sizes": {...}}}``; each run is ``{at, duration_s, work, rate}``.
"""

from __future__ import annotations

import datetime
import json
import os
import re

from ansible_collections.bim.wall_system.plugins.module_utils.common.atomic import atomic_write

VERSION = 1
KEEP_RUNS = 20
RATE_RUNS = 5


class History:
    def __init__(self, state_dir, identity, database=""):
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", identity)
        self.state_dir = state_dir
        self.path = os.path.join(state_dir, "history-%s.json" % safe)
        self.data = {"version": VERSION, "database": database, "operations": {}, "snapshot": None}
        self.load()

    def load(self):
        try:
            with open(self.path, "r", encoding="utf-8") as handle:
                data = json.load(handle)
            if isinstance(data, dict) and data.get("version") == VERSION:
                self.data.update(data)
        except (OSError, ValueError):
            pass  # no history yet, or unreadable: start afresh (estimates fall back to defaults)

    def save(self):
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        os.chmod(self.state_dir, 0o700)
        atomic_write(self.path, json.dumps(self.data, indent=1, sort_keys=True), mode=0o600)

    def record(self, operation, duration_s, work):
        runs = self.data["operations"].setdefault(operation, [])
        rate = (float(work) / duration_s) if (work and duration_s > 0) else None
        runs.append(dict(at=_now(), duration_s=round(duration_s, 4), work=work, rate=rate))
        del runs[:-KEEP_RUNS]

    def rate(self, operation):
        """The slowest rate of the last runs that did work (conservative), or None."""
        rates = [r["rate"] for r in self.data["operations"].get(operation, [])[-RATE_RUNS:] if r.get("rate")]
        return min(rates) if rates else None

    def last_duration(self, operation):
        runs = self.data["operations"].get(operation, [])
        return runs[-1]["duration_s"] if runs else None

    def snapshot(self):
        return self.data.get("snapshot")

    def set_snapshot(self, sizes):
        self.data["snapshot"] = {"taken": _now(), "sizes": sizes}


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
