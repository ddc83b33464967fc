# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``database`` check, written against ``engine.DatabaseEngine`` only.

Connect time, bounded query latency (key lookup + spatial window), connections vs the server
limit, disk usage of the data folder, and the spatial indexes (present and valid).
"""

from __future__ import annotations

import os

from ansible_collections.bim.wall_system.plugins.module_utils.database.probe_engines import open_probe_engine
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import (
    DatabaseError, MissingLibraryError)
from ansible_collections.bim.wall_system.plugins.module_utils.database.schema import BIM_TABLES
from ansible_collections.bim.wall_system.plugins.module_utils.health.base import (
    ERROR, WARNING, CheckResult, ThresholdSpec, register_check)
from ansible_collections.bim.wall_system.plugins.module_utils.health.thresholds import evaluate


def disk_usage(path):
    """``{"path", "total_bytes", "free_bytes", "used_bytes", "usage"}`` of the file system holding ``path``.

    ``usage`` is used / (used + available to unprivileged users), as ``df`` computes it.
    """
    st = os.statvfs(path)
    total = st.f_blocks * st.f_frsize
    free = st.f_bavail * st.f_frsize
    used = (st.f_blocks - st.f_bfree) * st.f_frsize
    denominator = used + free
    return {
        "path": path,
        "total_bytes": total,
        "free_bytes": free,
        "used_bytes": used,
        "usage": round(used / denominator, 4) if denominator else 0.0,
    }


def _check_disk(result, ctx, engine, parts):
    folder = ctx.data_dir
    if not folder:
        try:
            folder = engine.data_directory()
        except DatabaseError:
            folder = None
    if not folder or not os.path.isdir(folder):
        parts.append("data folder unknown here (set data_dir)" if not folder
                     else "data folder %s not found on this host" % folder)
        return
    usage = disk_usage(folder)
    result.metrics["data_directory"] = folder
    result.metrics["disk_usage"] = usage["usage"]
    result.metrics["disk_free_bytes"] = usage["free_bytes"]
    if evaluate(result, ctx, "disk_usage", usage["usage"]):
        result.recommendations.append(
            "database: the file system of %s is %.0f%% full; free space (old logs, temp_geometry: "
            "db_maintenance cleanup) or grow it" % (folder, usage["usage"] * 100))
    parts.append("disk %.0f%% used" % (usage["usage"] * 100))


def _check_connections(result, ctx, engine, parts):
    usage = engine.connection_usage()
    active, idle, limit = usage.get("active"), usage.get("idle"), usage.get("max_connections")
    result.metrics["active_connections"] = active
    result.metrics["idle_connections"] = idle
    if limit:
        total = usage.get("total", (active or 0) + (idle or 0))
        ratio = round(total / float(limit), 4)
        result.metrics["max_connections"] = limit
        result.metrics["connection_usage"] = ratio
        if evaluate(result, ctx, "connection_usage", ratio):
            result.recommendations.append(
                "database: %d of %d connections in use; look for idle sessions or a connection pool leak"
                % (total, limit))
        parts.append("%s/%s connections" % (total, limit))


def _check_indexes(result, ctx, engine, parts):
    """Expected spatial indexes (declared in bim_schema, or found) must be present and valid;
    a spatial table with none is information; a bim_schema entry the database contradicts is
    an error."""
    indexes = engine.spatial_indexes()
    schema = engine.schema()
    bad = [i for i in indexes if not (i.get("present") and i.get("valid"))]
    result.metrics["spatial_index_count"] = sum(1 for i in indexes if i.get("present") and i.get("valid"))
    result.metrics["spatial_indexes_invalid"] = [i.get("name") for i in bad]
    result.metrics["spatial_indexes"] = [i.get("name") for i in indexes if i.get("expected")]
    result.metrics["tables_without_spatial_index"] = list(schema.unindexed)
    if schema.unmapped:
        result.metrics["rtrees_of_no_table"] = list(schema.unmapped)
    for index in bad:
        result.worsen(ERROR)
        result.recommendations.append(engine.index_advice(index))
    for problem in schema.problems:
        result.worsen(ERROR)
        result.recommendations.append("database: %s; correct bim_schema or the database" % problem)
    if schema.problems:
        parts.insert(0, "schema: " + "; ".join(schema.problems))
    if bad:
        parts.insert(0, "spatial index problem: " + ", ".join(
            "%s %s" % (i.get("name"), i.get("problem") or "not valid") for i in bad))
    else:
        parts.append("%d spatial indexes valid" % len(indexes))
    for table in schema.unindexed:
        # information, not a fault: the operator did not declare one (bim_schema) and there is none
        parts.append("%s has no spatial index (information)" % table)
        result.recommendations.append(
            "database: %s has no spatial index, so spatial queries on it scan the table; create one%s, or "
            "declare it in bim_schema.%s so that its absence is an error"
            % (table, engine.create_index_hint(table), table))


def _missing_database(params):
    """(message, recommendation) when the engine knows the database is missing without
    connecting; an unknown engine is reported by the connection attempt below."""
    try:
        return open_probe_engine(params).missing_database()
    except DatabaseError:
        return None


@register_check(
    "database",
    thresholds={
        "database_response_time_ms": ThresholdSpec(1000.0, 5000.0, description="slowest of connect time "
                                                   "and the probe queries"),
        "connection_usage": ThresholdSpec(0.80, 0.95, description="connections in use / max_connections"),
        "disk_usage": ThresholdSpec(0.85, 0.95, description="used fraction of the data folder's file system"),
    },
    description="Connect time, query latency, connections, disk usage, spatial indexes.")
def check_database(ctx):
    result = CheckResult("database")
    params = ctx.conn
    if params is None:
        return result.fail("no database connection options given")
    absent = _missing_database(params)
    if absent:
        result.status = ERROR
        result.message, advice = absent
        result.recommendations.append(advice)
        return result
    parts = []
    # read by the maintenance gate (health/gates.py): no connection, nothing to maintain
    result.metrics["reachable"] = False
    try:
        engine = open_probe_engine(params)
        connect_s = engine.connect()
        result.metrics["reachable"] = True
        try:
            connect_ms = round(connect_s * 1000.0, 3)
            result.metrics["connect_time_ms"] = connect_ms
            present = set(engine.existing_tables())
            missing = [t for t in BIM_TABLES if t not in present]
            if missing:
                result.worsen(ERROR)
                parts.append("missing BIM tables: %s" % ", ".join(missing))
                advice = engine.elsewhere_advice()
                if advice:
                    result.recommendations.append(advice)
            latency = engine.query_latency() if "walls" in present else {}
            for key, value in latency.items():
                result.metrics[key] = value
            probes = [v for k, v in latency.items() if k.endswith("_ms")]
            response = max([connect_ms] + probes)
            result.metrics["database_response_time_ms"] = response
            if evaluate(result, ctx, "database_response_time_ms", response):
                result.recommendations.append(
                    "database: response time %.0f ms is high; run db_maintenance (ANALYZE, spatial "
                    "REINDEX) and check the server load" % response)
            parts.append("connected in %.0f ms, probes %s" % (
                connect_ms, ", ".join("%s %.1f ms" % (k[:-3], v) for k, v in latency.items() if k.endswith("_ms"))
                or "skipped"))
            if latency.get("spatial_window_skipped"):
                parts.append("spatial window probe skipped: %s" % latency["spatial_window_skipped"])
            _check_connections(result, ctx, engine, parts)
            _check_disk(result, ctx, engine, parts)
            _check_indexes(result, ctx, engine, parts)
        finally:
            engine.close()
    except MissingLibraryError as exc:
        return result.missing_library(exc)
    except DatabaseError as exc:
        result.status = ERROR
        parts.insert(0, ctx.mask(exc))
        result.message = "; ".join(parts)
        return result
    if result.status == WARNING and not parts:
        parts.append("thresholds exceeded")
    result.message = "; ".join(parts)
    return result
