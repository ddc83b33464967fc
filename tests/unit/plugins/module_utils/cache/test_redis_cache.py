# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cache statistics and cleanup against the real Redis on 127.0.0.1:6379 (keys ``bimtest:mt:*`` only)."""

from __future__ import annotations

import os
import time
import uuid

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.cache import redis_cache
from ansible_collections.bim.wall_system.plugins.module_utils.cache.redis_cache import (
    CacheError,
    cleanup_cache,
    memory_purge,
    read_cache_stats,
)

redis = pytest.importorskip("redis")
URL = os.environ.get("BIM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def prefix():
    """A unique key prefix under bimtest:mt:, every key of it removed afterwards."""
    client = redis.Redis.from_url(URL)
    try:
        client.ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis at %s" % URL)
    name = "bimtest:mt:%s:" % uuid.uuid4().hex[:8]
    try:
        yield name
    finally:
        keys = list(client.scan_iter(match=name + "*"))
        if keys:
            client.delete(*keys)
        client.close()


def test_stats_count_hits_misses_and_prefix(prefix):
    client = redis.Redis.from_url(URL)
    before = read_cache_stats(URL, prefix=prefix)
    for i in range(10):
        client.set(prefix + "k%d" % i, "v" * 100)
    for i in range(10):
        client.get(prefix + "k%d" % i)      # 10 hits
    for i in range(5):
        client.get(prefix + "missing%d" % i)  # 5 misses
    after = read_cache_stats(URL, prefix=prefix)
    assert after["keyspace_hits"] - before["keyspace_hits"] >= 10
    assert after["keyspace_misses"] - before["keyspace_misses"] >= 5
    assert after["prefix_keys"] == 10
    assert 0.0 <= after["hit_rate"] <= 1.0
    for key in ("used_memory", "evictions", "expired_keys", "keys"):
        assert isinstance(after[key], int)
    assert after["max_memory"] is None or after["max_memory"] > 0


def test_cleanup_removes_only_idle_keys_under_the_prefix(prefix):
    client = redis.Redis.from_url(URL)
    outside = "bimtest:mt:outside:%s" % uuid.uuid4().hex[:6]
    for i in range(30):
        client.set(prefix + "old%d" % i, "x" * 2000)
    client.set(prefix + "old-ttl", "x", ex=3600)
    client.set(outside, "x")
    try:
        time.sleep(3.2)  # let the old keys age (Redis idle clock has 1 s resolution)
        for i in range(5):
            client.set(prefix + "fresh%d" % i, "y")
        check = cleanup_cache(URL, prefix, max_idle=1, check_mode=True)
        assert check["removed"] == 31 and check["scanned"] == 36 and check["freed_bytes"] == 0
        assert client.exists(prefix + "old0")
        # keys with a TTL follow max_idle, keys without one follow no_ttl_max_idle
        only_ttl = cleanup_cache(URL, prefix, max_idle=1, no_ttl_max_idle=10 ** 6, check_mode=True)
        assert only_ttl["removed"] == 1
        done = cleanup_cache(URL, prefix, max_idle=1)
        assert done["removed"] == 31 and done["removed_bytes_estimate"] > 30 * 2000
        assert done["freed_bytes"] > 0
        left = sorted(k.decode() for k in client.scan_iter(match=prefix + "*"))
        assert left == sorted(prefix + "fresh%d" % i for i in range(5))
        assert client.exists(outside)
        assert cleanup_cache(URL, prefix, max_idle=1)["removed"] == 0
    finally:
        client.delete(outside)


def test_cleanup_refuses_without_prefix_or_policy():
    with pytest.raises(CacheError, match="prefix"):
        cleanup_cache(URL, "", max_idle=1)
    with pytest.raises(CacheError, match="max_idle"):
        cleanup_cache(URL, "bimtest:mt:", max_idle=None)


def test_glob_characters_in_prefix_are_literal(prefix):
    client = redis.Redis.from_url(URL)
    client.set(prefix + "a", "1")
    client.set(prefix + "*b", "1")
    assert read_cache_stats(URL, prefix=prefix + "*")["prefix_keys"] == 1


def test_purge_and_unreachable_cache():
    res = memory_purge(URL)
    assert res["supported"] is False or res["purged"] is True
    with pytest.raises(CacheError, match="cannot reach"):
        read_cache_stats("redis://:secretpw@127.0.0.1:1/0", timeout=1)
    try:
        read_cache_stats("redis://:secretpw@127.0.0.1:1/0", timeout=1)
    except CacheError as exc:
        assert "secretpw" not in str(exc)


def test_missing_library_message(monkeypatch):
    monkeypatch.setattr(redis_cache, "HAS_REDIS", False)
    with pytest.raises(CacheError, match="redis-py"):
        read_cache_stats(URL)
