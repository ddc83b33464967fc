# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runner: concurrency, per-check timeout, failures, roll-up, selection."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.health import base
from ansible_collections.bim.wall_system.plugins.module_utils.health.base import (
    CheckContext, CheckResult, HealthError, register_check)
from ansible_collections.bim.wall_system.plugins.module_utils.health.runner import (
    build_report, overall_status, run_checks, select_checks, thresholds_for, valid_check_names)


@pytest.fixture
def temp_checks():
    """Register test-only checks; removed afterwards so the real registry stays as shipped."""
    added = []

    def add(name, func, **kwargs):
        register_check(name, **kwargs)(func)
        added.append(name)
        return name

    try:
        yield add
    finally:
        for name in added:
            base.REGISTRY.pop(name, None)


def test_default_checks_and_selection():
    names = valid_check_names()
    for name in ("database", "memory", "application", "cache", "geometric_operations", "system"):
        assert name in names
    without_app = select_checks(None, None)
    assert "database" in without_app and "system" in without_app and "application" not in without_app
    # archiving runs by default only where continuous archiving is set up (its folder is known)
    assert select_checks(None, "http://127.0.0.1:1") == [n for n in names if n != "archiving"]
    assert select_checks(None, "http://127.0.0.1:1", archive_dir="/var/lib/bim-wall-system/archiving") == names
    assert select_checks(["system", "database"], None) == ["database", "system"]


def test_unknown_check_lists_valid_ones():
    with pytest.raises(HealthError) as info:
        select_checks(["database", "disk"], None)
    assert "disk" in str(info.value)
    for name in valid_check_names():
        assert name in str(info.value)


def test_hung_and_raising_checks_are_errors_and_others_finish(temp_checks):
    release = threading.Event()
    ok_ran = threading.Event()

    def hangs(ctx):
        release.wait(60)  # really hangs until the test lets it go
        return CheckResult("t_hangs")

    def sleeps(ctx):
        time.sleep(30)
        return CheckResult("t_sleeps")

    def raises(ctx):
        raise RuntimeError("boom with secret-pw inside")

    def fine(ctx):
        ok_ran.set()
        return CheckResult("t_fine", message="all good", metrics={"x": 1})

    def bad_type(ctx):
        return {"status": "healthy"}

    for name, func in (("t_hangs", hangs), ("t_sleeps", sleeps), ("t_raises", raises), ("t_fine", fine),
                       ("t_bad_type", bad_type)):
        temp_checks(name, func)
    ctx = CheckContext(thresholds=thresholds_for(), timeout=0.5, secrets=["secret-pw"])
    try:
        results = run_checks(ctx, ["t_hangs", "t_sleeps", "t_raises", "t_fine", "t_bad_type"])
    finally:
        release.set()
    by_name = {r.name: r for r in results}
    assert [r.name for r in results] == ["t_hangs", "t_sleeps", "t_raises", "t_fine", "t_bad_type"]
    assert by_name["t_hangs"].status == "error" and "did not finish" in by_name["t_hangs"].message
    assert by_name["t_sleeps"].status == "error" and "timed out" in by_name["t_sleeps"].message
    assert by_name["t_raises"].status == "error"
    assert "RuntimeError" in by_name["t_raises"].message and "boom" in by_name["t_raises"].message
    assert "secret-pw" not in by_name["t_raises"].message
    assert by_name["t_bad_type"].status == "error"
    assert ok_ran.is_set() and by_name["t_fine"].status == "healthy" and by_name["t_fine"].metrics == {"x": 1}
    report = build_report(results)
    assert report["overall_status"] == "unhealthy"
    assert len(report["problems"]) == 4


def test_process_exits_without_waiting_for_a_hung_check(tmp_path):
    """The module must return while a check thread is still stuck (daemon threads)."""
    script = tmp_path / "hang.py"
    script.write_text(textwrap.dedent("""
        import time
        from ansible_collections.bim.wall_system.plugins.module_utils.health.base import CheckContext, register_check
        from ansible_collections.bim.wall_system.plugins.module_utils.health.runner import run_checks

        @register_check("t_forever")
        def forever(ctx):
            time.sleep(3600)

        results = run_checks(CheckContext(timeout=0.2), ["t_forever", "system"])
        print(",".join("%s=%s" % (r.name, r.status) for r in results))
    """))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    # a hang here would mean the interpreter waits for the stuck thread; 120 s is a hang detector,
    # not a timing requirement
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "t_forever=error,system=healthy"


@pytest.mark.parametrize("statuses, expected", [
    (["healthy", "healthy"], "healthy"),
    (["healthy", "warning"], "degraded"),
    (["warning", "error", "healthy"], "unhealthy"),
    ([], "healthy"),
])
def test_roll_up(statuses, expected):
    assert overall_status([CheckResult("c%d" % i, status=s) for i, s in enumerate(statuses)]) == expected


def test_report_collects_alerts_recommendations_and_system(temp_checks):
    def warm(ctx):
        from ansible_collections.bim.wall_system.plugins.module_utils.health.thresholds import evaluate
        result = CheckResult("t_cache")
        evaluate(result, ctx, "cache_hit_rate", 0.6)
        result.recommendations.append("warm the cache")
        return result

    def dup(ctx):
        return CheckResult("t_dup", recommendations=["warm the cache"])

    temp_checks("t_cache", warm)
    temp_checks("t_dup", dup)
    ctx = CheckContext(thresholds=thresholds_for(), timeout=10)
    report = build_report(run_checks(ctx, ["t_cache", "t_dup", "system"]))
    assert report["overall_status"] == "degraded"
    assert report["alerts"] == [{"check": "t_cache", "metric": "cache_hit_rate", "value": 0.6,
                                 "threshold": 0.7, "severity": "warning"}]
    assert report["recommendations"] == ["warm the cache"]
    assert report["system"]["cpu"]["cores"] >= 1
    assert report["system"]["memory"]["total_bytes"] > 0
    assert report["system"]["platform"]
    check = report["checks"][0]
    assert set(check) == {"name", "status", "message", "metrics", "duration_ms"}
    assert check["duration_ms"] >= 0


def test_a_stuck_check_is_not_started_again_while_its_thread_hangs(temp_checks):
    """The monitoring service's case: run after run, a hung check costs one thread, not one per run."""
    release = threading.Event()
    started = []

    def hangs(ctx):
        started.append(1)
        release.wait(60)
        return CheckResult("t_stuck")

    temp_checks("t_stuck", hangs)
    ctx = CheckContext(timeout=0.2)
    abandoned = {}
    try:
        first = run_checks(ctx, ["t_stuck"], abandoned=abandoned)[0]
        second = run_checks(ctx, ["t_stuck"], abandoned=abandoned)[0]
        third = run_checks(ctx, ["t_stuck"], abandoned=abandoned)[0]
    finally:
        release.set()
    assert first.status == "error" and "abandoned" in first.message
    assert second.status == third.status == "error" and "still stuck (not started again)" in second.message
    assert len(started) == 1
    abandoned["t_stuck"].join(5)
    fourth = run_checks(ctx, ["t_stuck"], abandoned=abandoned)[0]  # the thread ended: the check runs again
    assert fourth.status == "healthy" and len(started) == 2


def test_a_missing_library_marks_the_report_for_the_prerequisites_role():
    fine = CheckResult("memory")
    lacking = CheckResult("database").missing_library(ImportError("psycopg is required"))
    assert build_report([fine])["prerequisites_missing"] is False
    report = build_report([fine, lacking])
    assert report["prerequisites_missing"] is True
    assert "run the bim.wall_system.prerequisites role" in report["problems"][0]
