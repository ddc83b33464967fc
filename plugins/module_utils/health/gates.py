# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which findings of a health check stop database maintenance.

Maintenance exists to repair: an invalid spatial index, bloat or stale statistics are reasons to
run it, not to skip it, and the application's or the cache's state does not make touching the
database unsafe. Only two findings do: the database cannot be reached (nothing to maintain), or
the file system of its data is beyond the critical disk usage threshold (VACUUM, REINDEX and
their WAL need room; running out of it mid-operation hurts the application). A maintenance lock
held by another run is the third reason; ``db_maintenance`` finds it itself.
"""

from __future__ import annotations


def maintenance_blockers(results):
    """Reasons (texts) among ``results`` (``CheckResult`` list) that make maintenance unsafe or
    pointless; empty when maintenance may run."""
    blockers = []
    for result in results:
        if result.name != "database":
            continue
        if not result.metrics.get("reachable"):
            blockers.append("database unreachable: %s" % (result.message or "no connection"))
        for alert in result.alerts:
            if alert.metric == "disk_usage" and alert.severity == "critical":
                blockers.append("disk %.0f%% used, beyond the critical %.0f%% (maintenance needs room)"
                                % (alert.value * 100, alert.threshold * 100))
    return blockers
