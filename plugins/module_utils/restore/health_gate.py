# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A disaster recovery's health gate inside the ``restore`` module's run (option ``health_gate``).

Right after the swap and the application's start command, the health checks of ``health/runner.py``
run until the host is no worse than ``fail_on``, at most ``retries`` + 1 times with ``delay`` seconds
between (as the ``until`` loop of a ``health_check`` task did: one module start-up less, and no
task of its own). A start command that failed fails the gate without checks: the host runs an
application that did not start. The gate only decides and records (``health_gate``, and ``done``
when it passed); it changes nothing. A failed gate is rolled back by the restore role (restore
point swapped back in, application started again), as after a gate run as a task.
"""

from __future__ import annotations

import time

from ansible_collections.bim.wall_system.plugins.module_utils.health.base import CheckContext, FAIL_ON_STATUSES, HealthError
from ansible_collections.bim.wall_system.plugins.module_utils.health.runner import (
    build_report, run_checks, select_checks, thresholds_for)
from ansible_collections.bim.wall_system.plugins.module_utils.restore.errors import RestoreError

# a gate that never fails would prove nothing: "never" is not offered
GATE_FAIL_ON = ("degraded", "unhealthy")
DEFAULTS = {"checks": ["database", "application"], "app_url": None, "fail_on": "unhealthy", "retries": 10,
            "delay": 3.0, "check_timeout": 15.0}


def gate_options_spec():
    """The module's ``health_gate`` suboptions (their defaults are the restore role's)."""
    return dict(
        checks=dict(type="list", elements="str", default=DEFAULTS["checks"]),
        app_url=dict(type="str"),
        fail_on=dict(type="str", default=DEFAULTS["fail_on"], choices=list(GATE_FAIL_ON)),
        retries=dict(type="int", default=DEFAULTS["retries"]),
        delay=dict(type="float", default=DEFAULTS["delay"]),
        check_timeout=dict(type="float", default=DEFAULTS["check_timeout"]),
    )


class HealthGate:
    """``conn``: the restored database's ``ConnectionParams``; ``option``: the ``health_gate`` option;
    ``data_dir``: the module's; ``secrets``: strings the records must not show."""

    def __init__(self, conn, option, data_dir=None, secrets=(), sleep=time.sleep):
        self.option = dict(DEFAULTS, **{k: v for k, v in (option or {}).items() if v is not None})
        self.conn = conn
        self.data_dir = data_dir
        self.secrets = [s for s in secrets if s]
        self.sleep = sleep
        if self.option["check_timeout"] <= 0 or self.option["retries"] < 0 or self.option["delay"] < 0:
            raise RestoreError("health_gate: check_timeout must be positive, retries and delay not negative")
        try:  # a wrong check name is refused before anything is restored, not found by a failed gate
            self.names = select_checks(self.option["checks"], self.option["app_url"])
        except HealthError as exc:
            raise RestoreError("health_gate: %s" % exc)

    def _context(self):
        # A new context per attempt: it caches the application's /metrics answer.
        return CheckContext(conn=self.conn, app_url=self.option["app_url"], data_dir=self.data_dir,
                            thresholds=thresholds_for(None), timeout=self.option["check_timeout"],
                            secrets=self.secrets)

    def run(self, start_problem=None):
        """``{passed, overall_status, problems, attempts, checks}``; ``start_problem``: the start
        command's failure (the gate fails without checks)."""
        if start_problem:
            return {"passed": False, "overall_status": None, "problems": [start_problem], "attempts": 0, "checks": []}
        bad = FAIL_ON_STATUSES[self.option["fail_on"]]
        attempts = self.option["retries"] + 1
        for attempt in range(1, attempts + 1):
            report = build_report(run_checks(self._context(), self.names))
            if report["overall_status"] not in bad or attempt == attempts:
                break
            self.sleep(self.option["delay"])
        return {"passed": report["overall_status"] not in bad, "overall_status": report["overall_status"],
                "problems": report["problems"], "attempts": attempt, "checks": report["checks"]}

    def run_and_record(self, log, result, start_problem=None):
        """``run``, then the ``health_gate`` record and, when it passed, the recovery's ``done``. A gate that
        cannot run at all has not passed."""
        try:
            gate = self.run(start_problem)
        except Exception as exc:  # pylint: disable=broad-except  # any failure to check is a failed gate
            gate = {"passed": False, "overall_status": None, "attempts": 0, "checks": [],
                    "problems": ["the health gate could not run: %s" % self._masked(exc)]}
        if log is not None:
            log.write("health_gate", "ok" if gate["passed"] else "failed",
                      {"overall_status": gate["overall_status"] or "unknown", "problems": gate["problems"]})
            if gate["passed"]:
                log.write("done", "ok", {"backup_id": result.get("backup_id"),
                                         "restore_point": result.get("restore_point")})
        return gate

    def _masked(self, exc):
        text = "%s: %s" % (type(exc).__name__, exc)
        for secret in self.secrets:
            text = text.replace(secret, "********")
        return text
