# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run the checks concurrently with a per-check timeout and roll the results up.

Each check runs in its own *daemon* thread. Not ``concurrent.futures.ThreadPoolExecutor``:
its workers are joined by an interpreter-exit hook even after ``shutdown(wait=False)``
(Python >= 3.9), so one hung check (a database that never answers) would keep the module
process alive past its result. A daemon thread that is still running when the module exits
is simply dropped; the timed-out check has already been reported as an error.
"""

from __future__ import annotations

import threading

from ansible_collections.bim.wall_system.plugins.module_utils.health.base import (
    ERROR, HEALTHY, OVERALL_DEGRADED, OVERALL_HEALTHY, OVERALL_UNHEALTHY, WARNING, CheckResult, HealthError, now)
from ansible_collections.bim.wall_system.plugins.module_utils.health.gates import maintenance_blockers
from ansible_collections.bim.wall_system.plugins.module_utils.health.registry import checks as registered_checks
from ansible_collections.bim.wall_system.plugins.module_utils.health.thresholds import (
    default_thresholds, merge_thresholds)


def valid_check_names():
    return list(registered_checks())


def select_checks(names=None, app_url=None, cache_url=None, archive_dir=None):
    """The checks to run. Default: all, less those whose inputs (``app_url``, ``archive_dir`` of a
    host where archiving is set up...) are not set."""
    available = registered_checks()
    if not names:
        given = {"app_url": app_url, "cache_url": cache_url, "archive_dir": archive_dir}
        return [n for n, spec in available.items() if not spec.needs or any(given.get(k) for k in spec.needs)]
    unknown = sorted(set(names) - set(available))
    if unknown:
        raise HealthError("unknown check(s) %s; valid checks are: %s"
                          % (", ".join(unknown), ", ".join(available)))
    return [n for n in available if n in set(names)]


def thresholds_for(overrides=None):
    """Seed defaults of every registered check merged with the user's ``overrides``."""
    return merge_thresholds(default_thresholds(registered_checks()), overrides)


class _CheckThread(threading.Thread):
    def __init__(self, name, func, ctx):
        super().__init__(name="bim-health-%s" % name, daemon=True)
        self.check_name = name
        self.func = func
        self.ctx = ctx
        self.result = None
        self.error = None
        self.started = now()
        self.finished = None

    def run(self):
        try:
            self.result = self.func(self.ctx)
        except Exception as exc:  # pylint: disable=broad-except
            self.error = exc
        self.finished = now()


def run_checks(ctx, names, timeout=None, abandoned=None):
    """Run ``names`` concurrently; return their ``CheckResult`` in order.

    A check that raises, returns something else than a ``CheckResult``, or is still running
    ``timeout`` seconds after it started is reported as ``error``; the others are unaffected.

    ``abandoned`` (a dict the caller keeps between runs, check name -> thread) is for a process
    that runs the checks again and again (the monitoring service): a check whose abandoned thread
    of an earlier run is still stuck is reported as ``error`` without starting another thread, so a
    database that never answers costs one thread, not one more every cycle.
    """
    timeout = ctx.timeout if timeout is None else timeout
    available = registered_checks()
    threads = []
    stuck = {}
    for name in names:
        previous = abandoned.get(name) if abandoned is not None else None
        if previous is not None and previous.is_alive():
            stuck[name] = previous
            continue
        thread = _CheckThread(name, available[name].func, ctx)
        thread.start()
        threads.append(thread)
    results = []
    for name in names:
        if name in stuck:
            result = CheckResult(name, status=ERROR, message="check did not finish within %s s: its run from %.0f s "
                                 "ago is still stuck (not started again)" % (timeout, now() - stuck[name].started))
            result.duration_ms = 0.0
            results.append(result)
            continue
        thread = threads.pop(0)
        thread.join(max(0.0, thread.started + timeout - now()))
        if thread.is_alive():
            if abandoned is not None:
                abandoned[thread.check_name] = thread
            result = CheckResult(thread.check_name, status=ERROR,
                                 message="check did not finish within %s s (timed out; abandoned)" % timeout)
            result.duration_ms = timeout * 1000.0
            results.append(result)
            continue
        duration_ms = (thread.finished - thread.started) * 1000.0
        if thread.error is not None:
            result = CheckResult(thread.check_name, status=ERROR, message="check failed: %s: %s" % (
                type(thread.error).__name__, ctx.mask(thread.error)))
        elif not isinstance(thread.result, CheckResult):
            result = CheckResult(thread.check_name, status=ERROR,
                                 message="check returned %s instead of a CheckResult" % type(thread.result).__name__)
        else:
            result = thread.result
            result.name = thread.check_name
            if result.status not in (HEALTHY, WARNING, ERROR):
                result.message = "%s (check reported unknown status %r)" % (result.message, result.status)
                result.status = ERROR
        result.duration_ms = duration_ms
        results.append(result)
    return results


def overall_status(results):
    """unhealthy if any check errors, degraded if any warns, else healthy."""
    statuses = {r.status for r in results}
    if ERROR in statuses:
        return OVERALL_UNHEALTHY
    if WARNING in statuses:
        return OVERALL_DEGRADED
    return OVERALL_HEALTHY


def build_report(results):
    """The module's result body from the check results."""
    alerts = [a.as_dict() for r in results for a in r.alerts]
    recommendations = []
    for r in results:
        for text in r.recommendations:
            if text not in recommendations:
                recommendations.append(text)
    system = next((r.metrics for r in results if r.name == "system" and r.status != ERROR), {})
    problems = ["%s: %s: %s" % (r.name, r.status, r.message) for r in results if r.status != HEALTHY]
    return {
        "maintenance_blockers": maintenance_blockers(results),
        "overall_status": overall_status(results),
        "checks": [r.as_dict() for r in results],
        "alerts": alerts,
        "recommendations": recommendations,
        "problems": problems,
        "system": system,
        "prerequisites_missing": any(r.library_missing for r in results),
    }


def run_health(ctx, names=None):
    """Select, run and roll up: the whole health check for one host."""
    selected = select_checks(names, ctx.app_url, ctx.cache_url, ctx.archive_dir)
    return build_report(run_checks(ctx, selected))
