# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks that read the application: ``application``, ``cache``, ``geometric_operations``.

All three read one ``GET {app_url}/metrics`` JSON document (fetched once per run by the
context). ``application`` also asks ``GET {app_url}/health``.
"""

from __future__ import annotations

from ansible_collections.bim.wall_system.plugins.module_utils.health.base import (
    ERROR, WARNING, AppMetricsError, CheckResult, ThresholdSpec, open_app, register_check)
from ansible_collections.bim.wall_system.plugins.module_utils.health.thresholds import evaluate


def _number(metrics, name):
    value = metrics.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _read_metrics(ctx, result):
    """The metrics dict, or None after marking ``result`` as error."""
    if not ctx.app_url:
        result.status = ERROR
        result.message = "app_url is not set: the application metrics cannot be read"
        return None
    try:
        return ctx.app_metrics()
    except AppMetricsError as exc:
        result.status = ERROR
        result.message = "application metrics unavailable: %s" % ctx.mask(exc)
        result.recommendations.append(
            "%s: check that the application is running and %s/metrics answers" % (result.name, ctx.app_url_shown))
        return None


def _missing(result, names):
    result.worsen(WARNING)
    return "not reported by /metrics: %s" % ", ".join(names)


def _health_endpoint(ctx):
    """(ok, detail) for ``GET {app_url}/health``: 200 means up."""
    # /health may answer plain text: only the status code matters, so read it raw
    import urllib.error

    try:
        with open_app(ctx.app_url + "/health", ctx.http_timeout) as response:
            return response.status == 200, "GET /health answered %s" % response.status
    except urllib.error.HTTPError as exc:
        return False, "GET /health answered HTTP %s" % exc.code
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return False, "GET /health failed: %s" % ctx.mask(getattr(exc, "reason", exc))


@register_check(
    "application", needs_app=True,
    thresholds={"average_offset_time_ms": ThresholdSpec(1000.0, None, description="average offset operation time")},
    description="Application up (/health) and its performance: average offset time, throughput.")
def check_application(ctx):
    result = CheckResult("application")
    metrics = _read_metrics(ctx, result)
    if metrics is None:
        return result
    ok, detail = _health_endpoint(ctx)
    result.metrics["up"] = ok
    parts = []
    if not ok:
        result.status = ERROR
        parts.append("application is down (%s)" % ctx.mask(detail))
        result.recommendations.append("application: restart the BIM application service and read its log")
    offset = _number(metrics, "average_offset_time_ms")
    throughput = _number(metrics, "throughput_ops")
    missing = [n for n, v in (("average_offset_time_ms", offset), ("throughput_ops", throughput)) if v is None]
    if offset is not None:
        result.metrics["average_offset_time_ms"] = offset
        if evaluate(result, ctx, "average_offset_time_ms", offset):
            result.recommendations.append(
                "application: offset operations are slow; check database latency and the host's CPU load")
        parts.append("average offset time %.0f ms" % offset)
    if throughput is not None:
        result.metrics["throughput_ops"] = throughput
        parts.append("throughput %.1f ops/s" % throughput)
    if missing:
        parts.append(_missing(result, missing))
    result.message = "; ".join(parts) if ok else ", ".join(parts)
    return result


def _redis_part(ctx, result, parts, have_app_rate):
    """Add the Redis statistics of ``ctx.cache_url`` to ``result``."""
    # imported only when a cache_url is given: importing redis-py costs ~0.1 s on every host
    # otherwise (Ansible still ships the file: it finds imports inside functions too)
    from ansible_collections.bim.wall_system.plugins.module_utils.cache import redis_cache

    try:
        stats = redis_cache.read_cache_stats(ctx.cache_url, timeout=ctx.http_timeout)
    except redis_cache.CacheError as exc:
        result.status = ERROR
        parts.insert(0, ctx.mask(exc))
        result.recommendations.append("cache: check that Redis is running and cache_url is right")
        return
    for key, metric in (("hit_rate", "redis_hit_rate"), ("used_memory", "redis_used_memory_bytes"),
                        ("max_memory", "redis_max_memory_bytes"), ("memory_ratio", "redis_memory_usage"),
                        ("evictions", "redis_evictions"), ("keys", "redis_keys"), ("response_ms", "redis_response_ms")):
        if stats.get(key) is not None:
            result.metrics[metric] = stats[key]
    if not have_app_rate and stats.get("hit_rate") is not None:
        if evaluate(result, ctx, "redis_hit_rate", stats["hit_rate"], "cache_hit_rate"):
            result.recommendations.append("cache: Redis hit rate %.2f is low; warm the cache or raise maxmemory"
                                          % stats["hit_rate"])
    if stats.get("memory_ratio") is not None:
        if evaluate(result, ctx, "redis_memory_usage", stats["memory_ratio"], "cache_memory_usage"):
            result.recommendations.append("cache: Redis memory %.0f%% of maxmemory; run cache_maintenance cleanup "
                                          "or raise maxmemory" % (stats["memory_ratio"] * 100))
    parts.append("Redis %s keys, %.1f MiB used%s" % (
        stats.get("keys"), (stats.get("used_memory") or 0) / 1048576.0,
        "" if stats.get("memory_ratio") is None else " (%.0f%% of maxmemory)" % (stats["memory_ratio"] * 100)))


@register_check(
    "cache", needs=("app_url", "cache_url"),
    thresholds={
        "cache_hit_rate": ThresholdSpec(0.70, 0.50, lower_is_worse=True,
                                        description="fraction of cache lookups that hit",
                                        fallback_metrics=("redis_hit_rate",)),
        "cache_memory_usage": ThresholdSpec(0.85, 0.95, description="Redis used_memory / maxmemory",
                                            metrics=("redis_memory_usage",)),
    },
    description="Cache hit rate reported by the application; Redis statistics when cache_url is set.")
def check_cache(ctx):
    result = CheckResult("cache")
    parts = []
    rate = None
    if ctx.app_url or not ctx.cache_url:
        metrics = _read_metrics(ctx, result)
        if metrics is None:
            parts.append(result.message)
        else:
            rate = _number(metrics, "cache_hit_rate")
            if rate is None:
                parts.append(_missing(result, ["cache_hit_rate"]))
            else:
                result.metrics["cache_hit_rate"] = rate
                if evaluate(result, ctx, "cache_hit_rate", rate):
                    result.recommendations.append(
                        "cache: hit rate %.2f is low; warm the cache or raise its size (see the cache_maintenance "
                        "module)" % rate)
                parts.append("cache hit rate %.2f" % rate)
    if ctx.cache_url:
        _redis_part(ctx, result, parts, rate is not None)
    result.message = "; ".join(parts)
    return result


@register_check(
    "geometric_operations", needs_app=True,
    thresholds={"operation_failure_rate": ThresholdSpec(0.05, 0.10, description="fraction of geometric "
                                                        "operations that failed")},
    description="Failure rate of geometric operations reported by the application.")
def check_geometric_operations(ctx):
    result = CheckResult("geometric_operations")
    metrics = _read_metrics(ctx, result)
    if metrics is None:
        return result
    rate = _number(metrics, "operation_failure_rate")
    if rate is None:
        result.message = _missing(result, ["operation_failure_rate"])
        return result
    result.metrics["operation_failure_rate"] = rate
    if evaluate(result, ctx, "operation_failure_rate", rate):
        result.recommendations.append(
            "geometric_operations: failure rate %.3f is high; look for invalid wall geometry in the "
            "application logs" % rate)
    result.message = "operation failure rate %.3f" % rate
    return result
