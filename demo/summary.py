# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Print the fleet summaries a demo run left in bim-reports/ (used by demo/run.sh).

The playbooks write ``<kind>-summary.json`` (the latest) beside timestamped copies. This prints
one line per kind (counts per status and every host with a problem), then the whole health
summary: the fleet summary an operator reads first.
"""

from __future__ import annotations

import glob
import json
import os
import sys

ORDER = ("health", "backup", "verify", "drill")


def load(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def kind_of(path):
    return os.path.basename(path)[: -len("-summary.json")]


def one_line(kind, summary):
    counts = summary.get("counts") or {}
    parts = ["%s %s" % (status, count) for status, count in sorted(counts.items())]
    line = "%-8s %s host(s): %s" % (kind, summary.get("total", sum(counts.values())), ", ".join(parts) or "-")
    problems = summary.get("problems") or []
    if problems:
        line += "; problems: %s" % json.dumps(problems, sort_keys=True)
    return line


def main(argv):
    folder = argv[1] if len(argv) > 1 else "bim-reports"
    files = sorted(glob.glob(os.path.join(folder, "*-summary.json")),
                   key=lambda p: (ORDER.index(kind_of(p)) if kind_of(p) in ORDER else len(ORDER), p))
    if not files:
        print("no *-summary.json under %s" % folder)
        return 1
    summaries = {}
    for path in files:
        try:
            summaries[kind_of(path)] = load(path)
        except (OSError, ValueError) as exc:
            print("%s: unreadable (%s)" % (path, exc))
    for kind, summary in summaries.items():
        if isinstance(summary, dict):
            print(one_line(kind, summary))
    health = summaries.get("health")
    if isinstance(health, dict):
        print()
        print("fleet health summary (%s):" % os.path.join(folder, "health-summary.json"))
        print(json.dumps(health, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
