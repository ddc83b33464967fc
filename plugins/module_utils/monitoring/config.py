# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The monitoring service's configuration: one JSON file written by ``bim.wall_system.monitoring_service``.

It holds what the ``health_check`` module gets as options (connection, application URL, checks,
threshold overrides, check options, timeout), the host label, the textfile and the cadence of
each check. It may hold the database password: the file is 0600.
"""

from __future__ import annotations

import dataclasses
import json
import math

from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import ENGINES, ConnectionParams

CONFIG_VERSION = 1

# The guide's cadence (seconds): health every 30 s, application and performance metrics every
# 10 s, system statistics every 5 minutes, log analysis with its pattern check every minute.
DEFAULT_INTERVALS = {
    "database": 30,
    "memory": 10,
    "application": 10,
    "cache": 10,
    "geometric_operations": 10,
    "logs": 60,
    "system": 300,
}
# A check the guide does not name runs with the health checks
HEALTH_INTERVAL = 30
# Inside the shortest interval, so a hung application never delays the next cycle by more than one.
DEFAULT_CHECK_TIMEOUT = 8.0
# The service connects as the module would: every field of ConnectionParams (the schema override too).
CONNECTION_KEYS = tuple(field.name for field in dataclasses.fields(ConnectionParams))


class MonitoringError(Exception):
    """The monitoring configuration is unusable; the message is safe to show (no secrets)."""


def _positive(value, what):
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise MonitoringError("%s must be a number of seconds, got %r" % (what, value))
    if math.isnan(number) or number <= 0:
        raise MonitoringError("%s must be a positive number of seconds, got %r" % (what, value))
    return number


def normalize(config, known_checks):
    """A validated copy of ``config`` with the defaults filled in; raises ``MonitoringError``."""
    if not isinstance(config, dict):
        raise MonitoringError("the monitoring configuration must be a JSON object")
    connection = dict(config.get("connection") or {})
    unknown = sorted(set(connection) - set(CONNECTION_KEYS))
    if unknown:
        raise MonitoringError("unknown connection key(s) %s; valid keys are: %s"
                              % (", ".join(unknown), ", ".join(CONNECTION_KEYS)))
    if connection.get("engine") not in ENGINES:
        raise MonitoringError("connection.engine must be %s" % " or ".join(ENGINES))
    if not config.get("host"):
        raise MonitoringError("host (the value of the textfile's host label) is required")
    if not config.get("textfile"):
        raise MonitoringError("textfile (the path node_exporter reads) is required")
    intervals = {name: DEFAULT_INTERVALS.get(name, HEALTH_INTERVAL) for name in known_checks}
    given = config.get("intervals") or {}
    if not isinstance(given, dict):
        raise MonitoringError("intervals must be a mapping of check name -> seconds")
    unknown = sorted(set(given) - set(known_checks))
    if unknown:
        raise MonitoringError("intervals name unknown check(s) %s; valid checks are: %s"
                              % (", ".join(unknown), ", ".join(known_checks)))
    for name, seconds in given.items():
        intervals[name] = _positive(seconds, "intervals.%s" % name)
    mode = config.get("textfile_mode", "0644")
    try:
        mode = mode if isinstance(mode, int) else int(str(mode), 8)
    except ValueError:
        raise MonitoringError("textfile_mode must be an octal mode such as '0644', got %r" % (mode,))
    return {
        "version": CONFIG_VERSION,
        "host": str(config["host"]),
        "connection": connection,
        "app_url": config.get("app_url") or None,
        "cache_url": config.get("cache_url") or None,
        "data_dir": config.get("data_dir") or None,
        "checks": list(config.get("checks") or []),
        "thresholds": dict(config.get("thresholds") or {}),
        "check_options": dict(config.get("check_options") or {}),
        "check_timeout": _positive(config.get("check_timeout", DEFAULT_CHECK_TIMEOUT), "check_timeout"),
        "intervals": intervals,
        "textfile": str(config["textfile"]),
        "textfile_mode": mode,
    }


def load(path, known_checks):
    """Read and validate the configuration file at ``path``."""
    try:
        with open(path, "r", encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise MonitoringError("cannot read the monitoring configuration %s: %s" % (path, exc.strerror or exc))
    except ValueError as exc:
        raise MonitoringError("the monitoring configuration %s is not valid JSON: %s" % (path, exc))
    return normalize(data, known_checks)
