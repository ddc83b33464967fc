# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet report as one plain dict (written as JSON, rendered as HTML and Prometheus metrics).

Inputs are plain values: the health results of the hosts (host -> health_check result) and,
when known, the backup, drill and maintenance summaries (the JSON files the roles write through
``bim.wall_system.fleet_summary``). Summaries are read tolerantly: a per-host mapping under
``hosts`` (dict or list of dicts with ``host``) is what the report needs.
"""

from __future__ import annotations

import datetime

REPORT_VERSION = 1
# "failed": the health check itself could not run (a configuration error, a module failure);
# "unreachable": no result at all
STATUS_ORDER = ("healthy", "degraded", "unknown", "unhealthy", "failed", "unreachable")

_TIME_KEYS = ("finished_at", "completed_at", "end_time", "ended_at", "timestamp", "time", "created_at",
              "started_at", "last_backup_time", "last_backup_at", "date")


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(value):
    return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value):
    """A timezone-aware UTC datetime from epoch seconds or an ISO-8601 string; None if unknown."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return datetime.datetime.fromtimestamp(float(value), datetime.timezone.utc)
    text = str(value).strip()
    if not text:
        return None
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.datetime.fromisoformat(text.replace(" ", "T", 1) if "T" not in text else text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed


def per_host(summary):
    """``{host: entry}`` from a summary document, whatever its exact layout."""
    if not summary:
        return {}
    hosts = summary.get("hosts") if isinstance(summary, dict) else summary
    if hosts is None and isinstance(summary, dict):
        hosts = summary.get("results")
    out = {}
    if isinstance(hosts, dict):
        for host, entry in hosts.items():
            if isinstance(entry, dict):
                out[str(host)] = entry
    elif isinstance(hosts, list):
        for entry in hosts:
            if isinstance(entry, dict) and entry.get("host"):
                out[str(entry["host"])] = entry
    return out


def _first(entry, keys):
    for key in keys:
        if entry.get(key) not in (None, ""):
            return entry[key]
    return None


def _entry_time(entry):
    value = _first(entry, _TIME_KEYS)
    if value is None:
        for nested in ("last_backup", "latest", "last", "backup", "result"):
            if isinstance(entry.get(nested), dict):
                value = _first(entry[nested], _TIME_KEYS)
                if value is not None:
                    break
    return parse_time(value)


def _ok(entry):
    """True/False/None from the usual result fields of a summary entry."""
    for key in ("ok", "passed", "success", "verified"):
        if isinstance(entry.get(key), bool):
            return entry[key]
    status = _first(entry, ("status", "result", "outcome", "state"))
    if isinstance(status, str):
        lowered = status.lower()
        if lowered in ("ok", "passed", "pass", "success", "succeeded", "verified", "healthy", "completed", "done"):
            return True
        if lowered in ("failed", "fail", "error", "unhealthy", "aborted", "unverified"):
            return False
    if entry.get("failed") is True:
        return False
    return None


def _message(entry):
    message = _first(entry, ("msg", "message"))
    if message is None and entry.get("reasons"):
        reasons = entry["reasons"]
        message = "; ".join(str(r) for r in reasons) if isinstance(reasons, list) else str(reasons)
    return message


def backup_view(entry, now, fallback_time=None):
    """``{last_backup_at, age_hours, backup_id, type, ok, message, stored_bytes, recoverable_window,
    suspicious}`` of one host's backup summary.

    Without a time in the entry, a successful entry dates from the summary's ``generated_at``.
    ``stored_bytes`` is the compressed size of the backup in the repository (``referenced_bytes``);
    ``recoverable_window`` (``{earliest, latest}``, ISO-8601 UTC) is passed on when the entry has it.
    """
    if not entry:
        return None
    at = _entry_time(entry)
    if at is None and _ok(entry):
        at = fallback_time
    inner = entry.get("last_backup") if isinstance(entry.get("last_backup"), dict) else entry
    view = {
        "last_backup_at": iso(at) if at else None,
        "age_hours": round((now - at).total_seconds() / 3600.0, 2) if at else None,
        "backup_id": _first(inner, ("backup_id", "id", "name")),
        "type": _first(inner, ("type", "backup_type", "kind_of_backup", "level")),
        "ok": _ok(entry),
        "message": _message(entry),
        "stored_bytes": _number(_first(inner, ("referenced_bytes", "stored_bytes"))),
        "recoverable_window": _window(entry.get("recoverable_window")),
        # the backup module flagged the run's backup (none of the BIM tables, or walls rows dropped)
        "suspicious": bool(entry.get("suspicious")) or entry.get("status") == "suspicious",
    }
    return view


def _number(value):
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _window(value):
    """``{earliest, latest}`` as ISO-8601 UTC strings, or None when either edge cannot be read."""
    if not isinstance(value, dict):
        return None
    earliest, latest = parse_time(value.get("earliest")), parse_time(value.get("latest"))
    if earliest is None or latest is None:
        return None
    return {"earliest": iso(earliest), "latest": iso(latest)}


def drill_view(entry, fallback_time=None):
    if not entry:
        return None
    at = _entry_time(entry) or fallback_time
    return {
        "at": iso(at) if at else None,
        "ok": _ok(entry),
        "result": _first(entry, ("status", "result", "outcome")),
        "rto_seconds": _number(_first(entry, ("rto_seconds", "rto_s", "rto"))),
        "rpo_seconds": _number(_first(entry, ("rpo_seconds", "rpo_s", "rpo"))),
        "message": _message(entry),
    }


def maintenance_view(entry, fallback_time=None):
    """``{at, ok, tier, message, duration_seconds, window_seconds}`` of one host's maintenance.

    The duration runs from the first task's start to the last task's end (role ``maintenance``
    records both); the window from that start to the run's ``deadline`` (the window end the
    ``db_maintenance`` module resolved), when there was one.
    """
    if not entry:
        return None
    tasks = [t for t in entry.get("tasks") or [] if isinstance(t, dict)]
    starts = [parse_time(t.get("started")) for t in tasks]
    ends = [parse_time(t.get("finished")) for t in tasks]
    starts, ends = [t for t in starts if t], [t for t in ends if t]
    duration = _first(entry, ("duration_seconds", "duration_s"))
    if duration is None and starts and ends:
        duration = round((max(ends) - min(starts)).total_seconds(), 3)
    deadline = parse_time(entry.get("deadline"))
    window = round((deadline - min(starts)).total_seconds(), 3) if deadline and starts else None
    at = (max(ends) if ends else None) or _entry_time(entry) or fallback_time
    return {"at": iso(at) if at else None, "ok": _ok(entry),
            "tier": _first(entry, ("tier", "schedule")), "message": _message(entry),
            "duration_seconds": _number(duration), "window_seconds": window}


def recoverable_window(row):
    """``{"earliest", "latest"}`` (ISO-8601 UTC) of the host's continuous archive, from its
    ``archiving`` check, or None where archiving is not set up."""
    for check in row.get("checks") or []:
        if check.get("name") == "archiving":
            window = (check.get("metrics") or {}).get("recoverable_window")
            if isinstance(window, dict):
                return {"earliest": window.get("earliest"), "latest": window.get("latest")}
    return None


def summary_time(summary):
    return parse_time(summary.get("generated_at")) if isinstance(summary, dict) else None


def _system_view(result):
    system = result.get("system")
    if not isinstance(system, dict):
        for check in result.get("checks") or []:
            if isinstance(check, dict) and check.get("name") == "system":
                system = check.get("metrics")
    return system if isinstance(system, dict) else {}


def build_report(results, backup_summary=None, drill_summary=None, maintenance_summary=None, hosts=None,
                 generated_at=None, title="BIM Wall System fleet report"):
    """The fleet report dict. ``hosts``: every host expected (those without a result are 'unreachable')."""
    now = generated_at or utc_now()
    backups, drills, maint = per_host(backup_summary), per_host(drill_summary), per_host(maintenance_summary)
    names = sorted(set(results or {}) | set(hosts or ()))
    rows = []
    for host in names:
        result = (results or {}).get(host)
        if isinstance(result, dict) and result.get("checks") is not None:
            status = result.get("overall_status") or "unknown"
            row = {
                "host": host,
                "overall_status": status,
                "checks": [{"name": c.get("name"), "status": c.get("status"), "message": c.get("message") or "",
                            "metrics": c.get("metrics") or {}, "duration_ms": c.get("duration_ms")}
                           for c in result.get("checks") or [] if isinstance(c, dict)],
                "alerts": list(result.get("alerts") or []),
                "recommendations": list(result.get("recommendations") or []),
                "system": _system_view(result),
                "checked_at": result.get("timestamp") or result.get("checked_at"),
            }
        else:
            message = (result or {}).get("msg") if isinstance(result, dict) else None
            # a failure tolerated by failed_when: false is registered with failed_when_result instead
            failed = (isinstance(result, dict) and not result.get("unreachable")
                      and (bool(result.get("failed")) or "failed_when_result" in result))
            reason = ("%s: the health check could not run: %s" % (host, message) if failed
                      else "%s: no health result (host unreachable%s)" % (host, ": " + message if message else ""))
            row = {"host": host, "overall_status": "failed" if failed else "unreachable", "checks": [], "alerts": [],
                   "recommendations": [reason], "system": {}, "checked_at": None}
        row["recoverable_window"] = recoverable_window(row)
        row["backup"] = backup_view(backups.get(host), now, summary_time(backup_summary))
        row["drill"] = drill_view(drills.get(host), summary_time(drill_summary))
        row["maintenance"] = maintenance_view(maint.get(host), summary_time(maintenance_summary))
        rows.append(row)
    counts = {s: 0 for s in STATUS_ORDER}
    for row in rows:
        counts[row["overall_status"] if row["overall_status"] in counts else "unknown"] += 1
    worst = "healthy"
    for row in rows:
        status = row["overall_status"] if row["overall_status"] in STATUS_ORDER else "unknown"
        if STATUS_ORDER.index(status) > STATUS_ORDER.index(worst):
            worst = status
    return {
        "version": REPORT_VERSION,
        "title": title,
        "generated_at": iso(now),
        "generator": "bim.wall_system.fleet_report",
        "fleet": {
            "hosts": len(rows),
            "overall_status": worst if rows else "unknown",
            "status_counts": {k: v for k, v in counts.items() if v},
            "alerts": sum(len(r["alerts"]) for r in rows),
        },
        "hosts": rows,
    }
