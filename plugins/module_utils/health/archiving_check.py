# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``archiving`` check: is the continuous archive keeping up?

Runs where the ``continuous_archiving`` role set archiving up (its descriptor is in the archive
folder). PostgreSQL (pgBackRest): ``pg_stat_archiver`` reports a failure newer than the last
success (archive_command is failing now) -> error; WAL written after the last archived segment
has waited longer than ``archive_delay_ratio`` x archive_timeout (seed 2x) -> warning (10x
error). SQLite (Litestream): each replica's daemon must run, its replica be readable (an SFTP replica whose
storage host shows another key than the pinned one is refused: both fingerprints in the message),
and the worst replica's lag (``replica_lag_s``, seconds the newest shipped transaction is behind
while transactions wait) stay under 5 s (60 s error).
Metrics carry the recoverable window (``recoverable_window``: earliest / latest, ISO-8601 UTC).
"""

from __future__ import annotations

from ansible_collections.bim.wall_system.plugins.module_utils.archiving.common import ArchiveError, parse_moment
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError
from ansible_collections.bim.wall_system.plugins.module_utils.health.base import (
    ERROR, Alert, CheckResult, ThresholdSpec, register_check)
from ansible_collections.bim.wall_system.plugins.module_utils.health.thresholds import evaluate

THRESHOLDS = {
    "archive_delay_ratio": ThresholdSpec(2.0, 10.0, description="seconds WAL waits for the archive / archive_timeout"),
    "replica_lag_s": ThresholdSpec(5.0, 60.0, description="seconds the Litestream replica is behind"),
}


def _epoch(text):
    return round(parse_moment(text).timestamp(), 3) if text else None


@register_check("archiving", thresholds=THRESHOLDS, needs=("archive_dir",),
                description="continuous archive keeping up (pgBackRest / Litestream), recoverable window")
def archiving_check(ctx):
    from ansible_collections.bim.wall_system.plugins.module_utils.archiving.archive_status import open_archive_status
    result = CheckResult("archiving")
    try:
        info = open_archive_status(ctx.conn, ctx.archive_dir).info()
    except (ArchiveError, DatabaseError, OSError) as exc:
        result.status = ERROR
        result.message = "cannot read the continuous archive: %s" % ctx.mask(exc)
        return result
    health = info["archive_health"]
    window = info["recoverable_window"]
    result.metrics.update({k: v for k, v in health.items() if not isinstance(v, (dict, list))})
    result.metrics.update(recoverable_window=window, recoverable_window_earliest_ts=_epoch(window["earliest"]),
                          recoverable_window_latest_ts=_epoch(window["latest"]),
                          physical_backups=len(info.get("physical_backups") or []))
    parts = []
    if window["earliest"] is None:
        result.worsen("warning")
        parts.append("no base to restore from yet (no physical backup or snapshot)")
    else:
        parts.append("recoverable %s .. %s" % (window["earliest"], window["latest"]))
    if info["tool"] == "pgbackrest":
        _postgresql(result, ctx, health, parts)
    else:
        _sqlite(result, ctx, health, parts)
    result.message = "; ".join(parts)
    return result


def _postgresql(result, ctx, health, parts):
    if not health.get("server_answered"):
        result.status = ERROR
        parts.append("the server does not answer (pg_stat_archiver unread)")
        return
    if health.get("archive_mode") != "on":
        result.status = ERROR
        parts.append("archive_mode is %s (a restart is pending?)" % health.get("archive_mode"))
    if health.get("archive_failing"):
        result.status = ERROR
        result.alerts.append(Alert("archiving", "archive_failing", 1, 0, "critical"))
        parts.append("archive_command is failing: %s failures, last at %s on %s" % (
            health.get("failed_count"), health.get("last_failed_time"), health.get("last_failed_wal")))
        result.recommendations.append("archiving: archive_command fails; read pgBackRest's archive-push log in the "
                                      "archive folder (repository full or unreachable?)")
    parts.append("last archived %s %ss ago" % (health.get("last_archived_wal"), health.get("last_archived_age_s")))
    if evaluate(result, ctx, "archive_delay_ratio", health.get("archive_delay_ratio")):
        parts.append("WAL waits %ss for the archive (%sx archive_timeout)" % (
            health.get("archive_delay_s"), health.get("archive_delay_ratio")))
        result.recommendations.append("archiving: the archive lags behind the server; the RPO grows with it")


def _sqlite(result, ctx, health, parts):
    """Every replica (one Litestream process each) must run and be readable; the worst lag counts."""
    lags, stopped, unreadable = [], [], []
    for replica in health.get("replicas") or [health]:
        where = replica.get("replica") or "the replica"
        if not replica.get("daemon_pid"):
            stopped.append(where)
            parts.append("Litestream of %s is not running" % where)
        if not replica.get("replica_reachable", True):
            unreadable.append(where)
            parts.append("%s cannot be read: %s" % (where, ctx.mask(replica.get("replica_error"))))
            continue
        parts.append("%s at transaction %s, %s behind, lag %ss" % (
            where, replica.get("replica_txid"), replica.get("transactions_behind"), replica.get("lag_s")))
        lags.append(replica.get("lag_s") or 0.0)
    if stopped:
        result.status = ERROR
        result.alerts.append(Alert("archiving", "replica_daemon_running", 0, 1, "critical"))
        result.recommendations.append("archiving: start Litestream (the continuous_archiving role does)")
    if unreadable:
        result.status = ERROR
        result.alerts.append(Alert("archiving", "replica_reachable", 0, 1, "critical"))
        result.recommendations.append("archiving: the Litestream replica %s is unreachable or refused; its lag "
                                      "grows with every write" % " and ".join(unreadable))
    if lags:
        result.metrics["replica_lag_s"] = max(lags)
        if evaluate(result, ctx, "replica_lag_s", max(lags)):
            result.recommendations.append("archiving: the Litestream replica lags; is the replica reachable?")
