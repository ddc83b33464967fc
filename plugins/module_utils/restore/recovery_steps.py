# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A disaster recovery's restore as one run of the ``restore`` module: the application's stop
command right before the swap, the restore, the start command after it (and again after a failure
once stopped), then the health gate (``health_gate.py``), each step appended to the recovery log
(``recovery_log.py``). Without commands, gate or log it is the plain ``runner.run_restore``."""

from __future__ import annotations

import dataclasses

from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import MissingLibraryError
from ansible_collections.bim.wall_system.plugins.module_utils.restore import runner
from ansible_collections.bim.wall_system.plugins.module_utils.restore.errors import RestoreError
from ansible_collections.bim.wall_system.plugins.module_utils.restore.recovery_log import restore_detail


def restore_with_steps(params, repository, opts, app=None, log=None, gate=None):
    """``runner.run_restore`` with ``app`` (``AppCommands``, or None) around the swap, the health
    ``gate`` (``HealthGate``, or None) after the start command and the steps logged in ``log``
    (``RecoveryLog``, or None). Returns the result with ``app_commands``, ``recovery_log_records``
    and ``health_gate`` (with a gate); a failure raises RestoreError with them in its details. A
    failed gate is no failure here: the result says so, the caller rolls back."""
    if not opts.check_mode and opts.mode == "swap":
        opts = dataclasses.replace(opts, before_swap=app.stop) if app is not None else opts
    else:
        app = gate = None  # check mode swaps nothing; mode=new leaves live data and application alone
    if app is None and log is None and gate is None:
        return runner.run_restore(params, repository, opts)
    try:
        result = runner.run_restore(params, repository, opts)
    except Exception as exc:
        raise _failed(exc, app, log)
    if log is not None:
        log.write("restore", "ok", restore_detail(result), took_s=result.get("duration_s"))
    problem = app.start() if app is not None else None
    if problem:
        result.setdefault("warnings", []).append(problem)
    if gate is not None:
        result["health_gate"] = gate.run_and_record(log, result, start_problem=problem)
    return _with_steps(result, app, log)


def _failed(exc, app, log):
    """The restore failed (live data untouched, or rolled back): log it, start the application again
    if it was stopped, and say so in the error."""
    if log is None and app is None:
        return exc
    message = str(exc)
    if log is not None:
        log.write("restore", "failed", {"msg": message})
    problem = app.start() if app is not None else None
    details = dict(getattr(exc, "details", None) or {})
    details.update(_with_steps({}, app, log))
    if isinstance(exc, MissingLibraryError):
        return exc
    if problem:
        message += "; and %s" % problem
    elif app is not None and app.ran:
        message += "; the application was started again"
    error = RestoreError(message, **details)
    error.original = exc
    return error


def _with_steps(result, app, log):
    result["app_commands"] = list(app.ran) if app is not None else []
    result["recovery_log_records"] = list(log.records) if log is not None else []
    return result
