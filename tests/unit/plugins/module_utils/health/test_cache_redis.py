# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cache check's Redis branch against the real Redis on 127.0.0.1:6379."""

from __future__ import annotations

import socket

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.health.base import CheckContext
from ansible_collections.bim.wall_system.plugins.module_utils.health.runner import (
    build_report, run_checks, select_checks, thresholds_for)

redis = pytest.importorskip("redis")
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="module", autouse=True)
def redis_up():
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.exceptions.RedisError as exc:
        pytest.skip("no Redis on 127.0.0.1:6379: %s" % exc)


def run(cache_url, overrides=None, secrets=()):
    ctx = CheckContext(cache_url=cache_url, thresholds=thresholds_for(overrides), timeout=5, secrets=secrets)
    report = build_report(run_checks(ctx, ["cache"]))
    return report, report["checks"][0]


def test_cache_runs_by_default_with_cache_url_only():
    assert "cache" in select_checks(None, None, REDIS_URL)
    assert "application" not in select_checks(None, None, REDIS_URL)


def test_redis_statistics_are_reported():
    _report, result = run(REDIS_URL)
    assert result["status"] in ("healthy", "warning"), result["message"]  # hit rate of a shared server varies
    assert result["metrics"]["redis_used_memory_bytes"] > 0
    assert "redis_keys" in result["metrics"] and "redis_response_ms" in result["metrics"]
    assert "Redis" in result["message"]


def test_unreachable_redis_is_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _report, result = run("redis://127.0.0.1:%d/0" % port)
    assert result["status"] == "error" and "cannot reach the cache" in result["message"]


def test_password_in_cache_url_never_shown():
    url = "redis://:Cache-Secret-42@127.0.0.1:6379/0"
    report, result = run(url, secrets=[url, "Cache-Secret-42"])
    # this Redis has no password: AUTH fails; whatever happens, the secret is not in the report
    assert "Cache-Secret-42" not in repr(report)
    assert result["status"] in ("error", "healthy", "warning")
