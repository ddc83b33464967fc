# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The application's Redis cache: statistics and cleanup (redis-py).

Public functions (plain Python, no Ansible types):

``read_cache_stats(url, prefix=None, password=None, timeout=5.0) -> dict``
    Used by the ``cache_maintenance`` module and by the health check's cache check.
``cleanup_cache(url, prefix, max_idle, ...) -> dict``
    Removes the application's stale entries under ``prefix`` (SCAN, never KEYS).
``memory_purge(url, ...) -> dict``
    ``MEMORY PURGE`` (jemalloc only) and the memory it gave back.

Errors raise ``CacheError`` whose message is safe to show (no password).
"""

from __future__ import annotations

import time

try:
    import redis
    HAS_REDIS = True
    REDIS_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - depends on the managed host
    redis = None
    HAS_REDIS = False
    REDIS_IMPORT_ERROR = exc


class CacheError(Exception):
    """A cache operation failed; the message never holds a password."""


def _safe_url(url):
    """``url`` without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return "%s://***@%s" % (scheme, rest.rsplit("@", 1)[1])
    return url


def connect(url, password=None, timeout=5.0):
    """Open a redis-py client for ``url`` (redis://host:port/db) and check it answers."""
    if not HAS_REDIS:
        raise CacheError("the Python library redis (redis-py) is required")
    try:
        kwargs = dict(socket_timeout=timeout, socket_connect_timeout=timeout, decode_responses=False)
        if password:
            kwargs["password"] = password
        client = redis.Redis.from_url(url, **kwargs)
        client.ping()
        return client
    except redis.exceptions.RedisError as exc:
        raise CacheError("cannot reach the cache at %s: %s" % (_safe_url(url), _safe_message(exc, password)))
    except ValueError as exc:
        raise CacheError("invalid cache URL %s: %s" % (_safe_url(url), exc))


def _safe_message(exc, password):
    text = str(exc)
    if password:
        text = text.replace(password, "***")
    return text


def _stats_from_info(info):
    hits = int(info.get("keyspace_hits", 0))
    misses = int(info.get("keyspace_misses", 0))
    used = int(info.get("used_memory", 0))
    max_memory = int(info.get("maxmemory", 0)) or None
    return dict(
        hit_rate=(float(hits) / (hits + misses)) if (hits + misses) else None,
        keyspace_hits=hits,
        keyspace_misses=misses,
        used_memory=used,
        used_memory_rss=int(info.get("used_memory_rss", 0)),
        max_memory=max_memory,
        memory_ratio=(float(used) / max_memory) if max_memory else None,
        maxmemory_policy=info.get("maxmemory_policy"),
        mem_fragmentation_ratio=float(info.get("mem_fragmentation_ratio", 0) or 0),
        evictions=int(info.get("evicted_keys", 0)),
        expired_keys=int(info.get("expired_keys", 0)),
        mem_allocator=info.get("mem_allocator"),
        redis_version=info.get("redis_version"),
    )


def _count_prefix(client, prefix, scan_count=1000):
    count = 0
    for _key in client.scan_iter(match=_match_pattern(prefix), count=scan_count):
        count += 1
    return count


def _match_pattern(prefix):
    """SCAN MATCH pattern for keys starting with ``prefix`` (glob characters escaped)."""
    escaped = "".join("\\" + c if c in "*?[]\\" else c for c in prefix)
    return escaped + "*"


def read_cache_stats(url, prefix=None, password=None, timeout=5.0, client=None):
    """Statistics of the cache at ``url``.

    Returns a dict with ``hit_rate`` (keyspace_hits / (hits + misses), None before any
    lookup), ``keyspace_hits``, ``keyspace_misses``, ``used_memory`` and ``max_memory``
    (bytes; ``max_memory`` None when unlimited), ``memory_ratio`` (used / max or None),
    ``evictions`` (evicted_keys), ``expired_keys``, ``keys`` (keys in the selected db),
    ``prefix_keys`` (keys under ``prefix``, counted with SCAN; None without prefix),
    ``maxmemory_policy``, ``mem_fragmentation_ratio``, ``mem_allocator``, ``redis_version``
    and ``response_ms`` (time of the INFO call). Raises ``CacheError``.
    """
    own = client is None
    if own:
        client = connect(url, password=password, timeout=timeout)
    try:
        started = time.monotonic()
        info = client.info()
        response_ms = (time.monotonic() - started) * 1000.0
        stats = _stats_from_info({k: (v.decode() if isinstance(v, bytes) else v) for k, v in info.items()})
        stats["response_ms"] = round(response_ms, 3)
        stats["keys"] = int(client.dbsize())
        stats["prefix"] = prefix
        stats["prefix_keys"] = _count_prefix(client, prefix) if prefix else None
        return stats
    except redis.exceptions.RedisError as exc:
        raise CacheError("cannot read statistics of the cache at %s: %s" % (_safe_url(url), _safe_message(exc, password)))
    finally:
        if own:
            client.close()


def _delete_keys(client, keys):
    """UNLINK ``keys``; return how many existed."""
    if not keys:
        return 0
    return int(client.unlink(*keys))


def cleanup_cache(url, prefix, max_idle=None, no_ttl_max_idle=None, check_mode=False,
                  password=None, timeout=5.0, scan_count=500, batch_size=500):
    """Remove the application's stale entries under ``prefix``.

    Policy (a key must start with ``prefix``; an empty prefix is refused so the cleanup can
    never sweep a shared Redis):

    - a key idle (OBJECT IDLETIME) longer than ``max_idle`` seconds is removed;
    - a key with no TTL (it would never expire on its own) idle longer than
      ``no_ttl_max_idle`` seconds is removed (defaults to ``max_idle``).

    In check mode nothing is removed; ``removed`` counts what would be. Returns
    ``{scanned, removed, removed_bytes_estimate, freed_bytes, used_memory_before,
    used_memory_after, policy}``; ``freed_bytes`` is the drop of used_memory (0 when nothing
    was removed or in check mode), ``removed_bytes_estimate`` the sum of MEMORY USAGE of the
    removed keys.
    """
    if not prefix:
        raise CacheError("a key prefix is required: the cleanup only touches the application's keys")
    if max_idle is None and no_ttl_max_idle is None:
        raise CacheError("set max_idle and/or no_ttl_max_idle: without an age policy nothing is stale")
    if no_ttl_max_idle is None:
        no_ttl_max_idle = max_idle
    client = connect(url, password=password, timeout=timeout)
    try:
        before = int(client.info("memory").get("used_memory", 0))
        scanned = 0
        removed = 0
        removed_bytes = 0
        pending = []
        for key in client.scan_iter(match=_match_pattern(prefix), count=scan_count):
            scanned += 1
            pipe = client.pipeline(transaction=False)
            pipe.object("idletime", key)
            pipe.ttl(key)
            pipe.memory_usage(key)
            idle, ttl, usage = pipe.execute(raise_on_error=False)
            if isinstance(idle, Exception) or idle is None:
                continue  # gone meanwhile, or idle time not available (LFU policy)
            limit = no_ttl_max_idle if ttl == -1 else max_idle
            if limit is None or int(idle) <= int(limit):
                continue
            removed_bytes += int(usage or 0) if not isinstance(usage, Exception) else 0
            if check_mode:
                removed += 1
                continue
            pending.append(key)
            if len(pending) >= batch_size:
                removed += _delete_keys(client, pending)
                pending = []
        if not check_mode:
            removed += _delete_keys(client, pending)
        after = int(client.info("memory").get("used_memory", 0))
        return dict(
            scanned=scanned,
            removed=removed,
            removed_bytes_estimate=removed_bytes,
            freed_bytes=max(0, before - after) if (removed and not check_mode) else 0,
            used_memory_before=before,
            used_memory_after=after,
            policy=dict(prefix=prefix, max_idle=max_idle, no_ttl_max_idle=no_ttl_max_idle),
        )
    except redis.exceptions.RedisError as exc:
        raise CacheError("cache cleanup under prefix %r failed: %s" % (prefix, _safe_message(exc, password)))
    finally:
        client.close()


def memory_purge(url, check_mode=False, password=None, timeout=5.0):
    """Ask the allocator to give dirty pages back (MEMORY PURGE, jemalloc only).

    Returns ``{purged, supported, rss_before, rss_after, freed_bytes, message}``; freed bytes
    are the drop of used_memory_rss. Not supported (other allocator) is not an error.
    """
    client = connect(url, password=password, timeout=timeout)
    try:
        info = client.info("memory")
        allocator = str(info.get("mem_allocator", ""))
        rss_before = int(info.get("used_memory_rss", 0))
        supported = allocator.startswith("jemalloc")
        if not supported:
            return dict(purged=False, supported=False, rss_before=rss_before, rss_after=rss_before,
                        freed_bytes=0, message="MEMORY PURGE needs jemalloc; allocator is %s" % allocator)
        if check_mode:
            return dict(purged=False, supported=True, rss_before=rss_before, rss_after=rss_before,
                        freed_bytes=0, message="check mode: MEMORY PURGE would run")
        client.execute_command("MEMORY", "PURGE")
        rss_after = int(client.info("memory").get("used_memory_rss", 0))
        return dict(purged=True, supported=True, rss_before=rss_before, rss_after=rss_after,
                    freed_bytes=max(0, rss_before - rss_after), message="MEMORY PURGE done")
    except redis.exceptions.RedisError as exc:
        raise CacheError("MEMORY PURGE failed: %s" % _safe_message(exc, password))
    finally:
        client.close()
