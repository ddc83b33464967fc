# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Print the newest fleet summary JSON of a bim-reports/ folder (used by demo/run.sh)."""

from __future__ import annotations

import glob
import json
import os
import sys


def newest_summary(folder):
    """Return the path of the newest *.json file under folder whose name says summary, or any JSON."""
    files = [f for f in glob.glob(os.path.join(folder, "**", "*.json"), recursive=True) if os.path.isfile(f)]
    if not files:
        return None
    preferred = [f for f in files if "summary" in os.path.basename(f) or "health" in os.path.basename(f)]
    return max(preferred or files, key=os.path.getmtime)


def main(argv):
    folder = argv[1] if len(argv) > 1 else "bim-reports"
    path = newest_summary(folder)
    if path is None:
        print("no fleet summary JSON found under %s" % folder)
        return 1
    with open(path, encoding="utf-8") as handle:
        summary = json.load(handle)
    print("fleet summary: %s" % path)
    counts = summary.get("counts") if isinstance(summary, dict) else None
    if isinstance(counts, dict):
        print("  " + ", ".join("%s: %s" % (k, v) for k, v in sorted(counts.items())))
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
