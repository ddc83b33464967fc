# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host-side checks: ``memory`` and ``system`` (from /proc and os; no psutil needed)."""

from __future__ import annotations

import os
import platform
import time

from ansible_collections.bim.wall_system.plugins.module_utils.common.meminfo import read_meminfo
from ansible_collections.bim.wall_system.plugins.module_utils.health.base import (
    AppMetricsError, CheckResult, ThresholdSpec, register_check)
from ansible_collections.bim.wall_system.plugins.module_utils.health.thresholds import evaluate

CPU_SAMPLE_SECONDS = 0.1


def memory_stats():
    """Host memory: total, free (available), used, usage fraction."""
    info = read_meminfo()
    if info is None:
        try:
            total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
            free = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            return None
        info = {"total": total, "free": free, "available": free}
    total = info["total"]
    used = total - info["available"]
    return {
        "total_bytes": total,
        "free_bytes": info["available"],
        "used_bytes": used,
        "usage_percent": round(used / total, 4) if total else None,
    }


def _cpu_times():
    with open("/proc/stat") as handle:
        fields = handle.readline().split()[1:]
    values = [int(v) for v in fields]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values), idle


def cpu_usage(sample_seconds=CPU_SAMPLE_SECONDS):
    """Fraction of CPU time busy over a short sample, or None where /proc/stat is missing."""
    try:
        total1, idle1 = _cpu_times()
        time.sleep(sample_seconds)
        total2, idle2 = _cpu_times()
    except (OSError, ValueError, IndexError):
        return None
    delta = total2 - total1
    if delta <= 0:
        return 0.0
    return round(1.0 - (idle2 - idle1) / delta, 4)


def uptime_seconds():
    try:
        with open("/proc/uptime") as handle:
            return round(float(handle.read().split()[0]), 1)
    except (OSError, ValueError, IndexError):
        return None


def system_statistics():
    """The seed's system statistics: CPU, load, cores, memory, uptime, platform."""
    try:
        load = [round(v, 2) for v in os.getloadavg()]
    except (OSError, AttributeError):
        load = None
    return {
        "cpu": {"usage": cpu_usage(), "load_average": load, "cores": os.cpu_count()},
        "memory": memory_stats(),
        "uptime_seconds": uptime_seconds(),
        "platform": platform.system().lower(),
        "platform_release": platform.release(),
        "hostname": platform.node(),
        "python_version": platform.python_version(),
    }


@register_check(
    "memory",
    thresholds={"memory_usage": ThresholdSpec(0.80, 0.95, metrics=("host_memory_usage", "heap_used_percent"),
                                              description="fraction of memory in use "
                                              "(host memory and the application heap)")},
    description="Host memory in use and the application's heap usage (when app_url is set).")
def check_memory(ctx):
    result = CheckResult("memory")
    stats = memory_stats()
    parts = []
    if stats is not None:
        result.metrics.update({
            "host_memory_total_bytes": stats["total_bytes"],
            "host_memory_used_bytes": stats["used_bytes"],
            "host_memory_usage": stats["usage_percent"],
        })
        evaluate(result, ctx, "host_memory_usage", stats["usage_percent"], "memory_usage")
        parts.append("host memory %.0f%% used" % (stats["usage_percent"] * 100))
    if ctx.app_url:
        try:
            heap = ctx.app_metrics().get("heap_used_percent")
        except AppMetricsError as exc:
            heap = None
            parts.append("application heap unknown (%s)" % ctx.mask(exc))
        if isinstance(heap, (int, float)):
            heap = heap / 100.0 if heap > 1 else float(heap)
            result.metrics["heap_used_percent"] = round(heap, 4)
            evaluate(result, ctx, "heap_used_percent", heap, "memory_usage")
            parts.append("application heap %.0f%% used" % (heap * 100))
    if not result.metrics:
        result.worsen("warning")
        parts.append("no memory figures available on this platform")
    if result.alerts:
        result.recommendations.append(
            "memory: usage is high; look for leaking or oversized processes and consider more memory")
    result.message = "; ".join(parts)
    return result


@register_check("system", description="System statistics: CPU, load, cores, memory, uptime, platform.")
def check_system(ctx):
    stats = system_statistics()
    result = CheckResult("system", metrics=stats)
    cpu = stats["cpu"]
    result.message = "%s cores, load %s, CPU %s busy" % (
        cpu["cores"], "/".join(str(v) for v in cpu["load_average"] or []) or "unknown",
        "unknown" if cpu["usage"] is None else "%.0f%%" % (cpu["usage"] * 100))
    return result
