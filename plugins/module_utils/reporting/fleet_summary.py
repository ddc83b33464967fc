# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet summaries: per-host results -> counts per status, problems, fleet thresholds, JSON files.

Generic on purpose: the health, backup, maintenance and drill roles all hand it one small dict
per host (at least ``status``), or the raw registered result of a task. A host with no result
at all is counted as ``unreachable``; it is never dropped.
"""

from __future__ import annotations

import datetime
import json
import os
import re

from ansible_collections.bim.wall_system.plugins.module_utils.common.atomic import atomic_write

UNREACHABLE = "unreachable"
DEFAULT_OK_STATUSES = ("healthy", "ok", "success", "succeeded", "passed", "verified", "skipped")
# Timestamped copies of each kind kept in the report folder: a health check every five minutes
# would otherwise leave 288 files a day there.
DEFAULT_KEEP_COPIES = 100
NO_RESULT_REASON = "no result: the host was unreachable or failed before the task ran"
_KIND_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def fleet_summary_argument_spec():
    """Options of the ``fleet_summary`` action (documented in plugins/modules/fleet_summary.py)."""
    return dict(
        kind=dict(type="str", required=True),
        results=dict(type="dict"),
        fact=dict(type="str"),
        hosts=dict(type="list", elements="str"),
        status_key=dict(type="str", default="status", no_log=False),
        reasons_key=dict(type="str", default="reasons", no_log=False),
        include_keys=dict(type="list", elements="str", default=[], no_log=False),
        ok_statuses=dict(type="list", elements="str", default=list(DEFAULT_OK_STATUSES)),
        report_dir=dict(type="path", default="bim-reports"),
        write=dict(type="bool", default=True),
        keep_copies=dict(type="int", default=DEFAULT_KEEP_COPIES),
        max_percent=dict(type="dict", default={}),
        stats=dict(type="str"),
    )


FLEET_SUMMARY_MUTUALLY_EXCLUSIVE = [("results", "fact")]
FLEET_SUMMARY_REQUIRED_ONE_OF = [("results", "fact")]


class SummaryError(Exception):
    """Bad input to the summary (message safe to show)."""


def _reasons(value):
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    if isinstance(value, dict):
        return ["%s: %s" % (k, v) for k, v in value.items()]
    return [str(value)]


def host_entry(value, status_key="status", reasons_key="reasons", include_keys=()):
    """The per-host summary ``{status, reasons, ...}`` of one host's value.

    ``value`` is a summary dict (with ``status_key``), a task result registered by Ansible
    (``unreachable``/``failed``/``skipped`` are understood), or None (no result at all).
    """
    if value is None or value == {}:
        return {"status": UNREACHABLE, "reasons": [NO_RESULT_REASON]}
    if not isinstance(value, dict):
        return {"status": "unknown", "reasons": ["result is not a dict: %r" % (value,)]}
    if value.get("unreachable"):
        return {"status": UNREACHABLE, "reasons": _reasons(value.get("msg") or "host unreachable")}
    if value.get(status_key) is not None:
        entry = {"status": str(value[status_key]), "reasons": _reasons(value.get(reasons_key))}
    elif value.get("failed") or "failed_when_result" in value:
        # failed, or failed but tolerated by failed_when: false
        entry = {"status": "failed", "reasons": _reasons(value.get("msg") or "task failed")}
    elif value.get("skipped"):
        entry = {"status": "skipped", "reasons": _reasons(value.get("skip_reason"))}
    else:
        entry = {"status": "unknown", "reasons": ["result has no %r field" % status_key]}
    for key in include_keys:
        if key in value and key not in entry:
            entry[key] = value[key]
    return entry


def build_summary(kind, hosts, entries, ok_statuses=DEFAULT_OK_STATUSES, generated_at=None):
    """``{kind, generated_at, total, counts, percent, hosts, problems}``.

    ``hosts``: every host that should have a result (e.g. ansible_play_hosts_all);
    ``entries``: host -> per-host entry (``host_entry`` output). A host of ``hosts`` missing
    from ``entries`` is ``unreachable``; an entry for a host not in ``hosts`` is kept too.
    """
    if not _KIND_RE.match(kind or ""):
        raise SummaryError("kind %r must be a short name of letters, digits, '_', '.', '-'" % (kind,))
    generated_at = generated_at or datetime.datetime.now(datetime.timezone.utc)
    names = list(hosts) + [h for h in entries if h not in hosts]
    per_host = {}
    counts = {}
    problems = []
    for host in names:
        entry = entries.get(host)
        if entry is None:
            entry = host_entry(None)
        entry = dict(entry)
        entry.setdefault("reasons", [])
        status = str(entry.get("status", "unknown"))
        entry["status"] = status
        per_host[host] = entry
        counts[status] = counts.get(status, 0) + 1
        if status not in ok_statuses:
            problems.append({"host": host, "status": status, "reasons": entry["reasons"]})
    total = len(names)
    return {
        "kind": kind,
        "generated_at": generated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "total": total,
        "counts": counts,
        "percent": {s: round(100.0 * n / total, 1) for s, n in counts.items()} if total else {},
        "hosts": per_host,
        "problems": problems,
    }


def threshold_violations(summary, max_percent):
    """Messages for every status whose share of hosts is above ``max_percent[status]``."""
    messages = []
    total = summary["total"]
    for status, limit in sorted((max_percent or {}).items()):
        if limit is None:
            continue
        try:
            limit = float(limit)
        except (TypeError, ValueError):
            raise SummaryError("max_percent.%s must be a number, got %r" % (status, limit))
        count = summary["counts"].get(status, 0)
        share = 100.0 * count / total if total else 0.0
        if share > limit:
            hosts = [h for h, e in summary["hosts"].items() if e["status"] == status]
            messages.append("%d of %d hosts (%.1f%%) are %s, more than the allowed %g%%: %s"
                            % (count, total, share, status, limit, ", ".join(hosts)))
    return messages


def write_summary(report_dir, summary, keep_copies=DEFAULT_KEEP_COPIES):
    """Write ``<kind>-summary.json`` and a timestamped copy atomically; return both paths and the
    older copies removed (the newest ``keep_copies`` of this kind stay).

    The folder is created (0700) when missing; files are 0600.
    """
    kind = summary["kind"]
    os.makedirs(report_dir, mode=0o700, exist_ok=True)
    stamp = summary["generated_at"].replace("-", "").replace(":", "")
    data = json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n"
    latest = os.path.join(report_dir, "%s-summary.json" % kind)
    stamped = os.path.join(report_dir, "%s-summary-%s.json" % (kind, stamp))
    atomic_write(stamped, data)
    atomic_write(latest, data)
    return latest, stamped, prune_copies(report_dir, kind, keep_copies)


def prune_copies(report_dir, kind, keep_copies):
    """Remove all but the newest ``keep_copies`` timestamped copies of ``kind`` (their names sort by
    time); only names this module writes are touched. Returns the paths removed."""
    pattern = re.compile(r"^%s-summary-\d{8}T\d{6}(\.\d+)?Z\.json$" % re.escape(kind))
    copies = sorted(name for name in os.listdir(report_dir) if pattern.match(name))
    removed = []
    for name in copies[:max(0, len(copies) - max(1, keep_copies))]:
        path = os.path.join(report_dir, name)
        try:
            os.unlink(path)
        except FileNotFoundError:  # another run pruned it first
            continue
        removed.append(path)
    return removed
