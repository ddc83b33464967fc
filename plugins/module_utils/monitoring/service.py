# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The live monitoring service: the ``health_check`` module's checks, again and again, on the
guide's cadence, into a Prometheus textfile for node_exporter.

It is the health library the module runs (registry, runner, thresholds, checks) and the one
Prometheus renderer, imported, not copied. One process, one loop: each cycle runs the checks that
are due (concurrently, each with its timeout), keeps the latest result of every check, rolls them
up as the module does and replaces the textfile atomically.

What it survives, by design: a database that is down or an application that hangs is a check
result (``error`` with the reason), like in the module; a check whose earlier run is still stuck
is not started again (one thread, not one more per cycle); a textfile that cannot be written (full
disk, missing folder) is logged and counted, the old file stays as it was, and the next write that
succeeds carries the count; any other error of a cycle is logged and counted and the loop goes on.

    python -I .../bin/bim-monitoring --config /etc/bim-wall-system/monitoring.json [--once | --check]
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time

from ansible_collections.bim.wall_system.plugins.module_utils.common.atomic import atomic_write
from ansible_collections.bim.wall_system.plugins.module_utils.common.urls import url_secrets
from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import ConnectionParams
from ansible_collections.bim.wall_system.plugins.module_utils.health.base import CheckContext, HealthError
from ansible_collections.bim.wall_system.plugins.module_utils.health.runner import (
    build_report, run_checks, select_checks, thresholds_for, valid_check_names)
from ansible_collections.bim.wall_system.plugins.module_utils.monitoring import config as config_lib
from ansible_collections.bim.wall_system.plugins.module_utils.reporting.prometheus import render_host


def _log(message):
    sys.stderr.write("bim-monitoring: %s\n" % message)
    sys.stderr.flush()


class Service:
    """The state of one monitored host between cycles."""

    def __init__(self, config, log=_log, wall_clock=time.time, clock=time.monotonic):
        self.config = config
        self.log = log
        self.wall_clock = wall_clock
        self.clock = clock
        conn = dict(config["connection"])
        self.conn = ConnectionParams.from_params(conn)
        self.secrets = [conn.get("db_password"), config.get("cache_url")] + url_secrets(config.get("app_url"))
        self.thresholds = thresholds_for(config["thresholds"])
        self.names = select_checks(config["checks"], config["app_url"], config["cache_url"])
        self.intervals = {name: config["intervals"][name] for name in self.names}
        self.next_due = {name: 0.0 for name in self.names}
        self.latest = {}
        self.ran_at = {}
        self.abandoned = {}
        self.started_at = wall_clock()
        self.write_errors = 0
        self.cycle_errors = 0
        self.last_write_error_at = None
        self.last_write_error = None
        self.last_cycle_at = None

    # ------------------------------------------------------------------ one cycle
    def due(self):
        now = self.clock()
        return [name for name in self.names if self.next_due[name] <= now]

    def seconds_to_next(self):
        return max(0.0, min(self.next_due.values()) - self.clock())

    def run_cycle(self, names=None):
        """Run the checks that are due (or ``names``), then write the textfile. Never raises."""
        names = self.due() if names is None else names
        try:
            if names:
                self._run(names)
            self.last_cycle_at = self.wall_clock()
            self.write()
        except Exception as exc:  # pylint: disable=broad-except
            # a bug must not end live monitoring: it is logged, counted and the loop goes on
            self.cycle_errors += 1
            self.log("cycle failed: %s: %s" % (type(exc).__name__, self._mask(exc)))
        return names

    def _run(self, names):
        ctx = CheckContext(conn=self.conn, app_url=self.config["app_url"], cache_url=self.config["cache_url"],
                           data_dir=self.config["data_dir"], thresholds=self.thresholds,
                           timeout=self.config["check_timeout"], secrets=self.secrets,
                           options=self.config["check_options"])
        started = self.clock()
        for result in run_checks(ctx, names, abandoned=self.abandoned):
            previous = self.latest.get(result.name)
            if previous is None or previous.status != result.status:
                self.log("check %s: %s%s: %s" % (result.name, "" if previous is None else previous.status + " -> ",
                                                 result.status, result.message))
            self.latest[result.name] = result
            self.ran_at[result.name] = self.wall_clock()
            self.next_due[result.name] = started + self.intervals[result.name]

    def _mask(self, text):
        text = str(text)
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "********")
        return text

    # ------------------------------------------------------------------ textfile
    def content(self):
        results = [self.latest[name] for name in self.names if name in self.latest]
        report = build_report(results)
        extra = [
            ("bim_monitoring_started_timestamp_seconds", "When the monitoring service started (Unix time).", {},
             self.started_at, "gauge"),
            ("bim_monitoring_last_cycle_timestamp_seconds", "When the monitoring service last wrote this file "
             "(Unix time); it stops moving when the file cannot be written.", {}, self.last_cycle_at, "gauge"),
            ("bim_monitoring_textfile_write_errors_total", "Textfile writes that failed (full disk, missing "
             "folder) since the service started.", {}, self.write_errors, "counter"),
            ("bim_monitoring_cycle_errors_total", "Monitoring cycles that failed unexpectedly since the service "
             "started.", {}, self.cycle_errors, "counter"),
            ("bim_monitoring_last_textfile_error_timestamp_seconds", "When a textfile write last failed (Unix "
             "time).", {}, self.last_write_error_at, "gauge"),
        ]
        for name, seconds in self.intervals.items():
            extra.append(("bim_monitoring_check_interval_seconds", "Cadence of the health check in the monitoring "
                          "service.", {"check": name}, seconds, "gauge"))
        return render_host(dict(report, host=self.config["host"]), sections=("health",), check_times=self.ran_at,
                           extra=extra)

    def write(self):
        path = self.config["textfile"]
        try:
            atomic_write(path, self.content(), mode=self.config["textfile_mode"])
        except OSError as exc:
            self.write_errors += 1
            self.last_write_error_at = self.wall_clock()
            message = "textfile %s not written (the previous one stays): %s" % (path, exc.strerror or exc)
            if message != self.last_write_error:
                self.log(message)
            self.last_write_error = message
            return False
        if self.last_write_error is not None:
            self.log("textfile %s written again after %d failed write(s)" % (path, self.write_errors))
            self.last_write_error = None
        return True

    # ------------------------------------------------------------------ loop
    def run_forever(self, stop):
        """Cycle until ``stop`` (a ``threading.Event``) is set."""
        self.log("monitoring %s: checks %s, textfile %s" % (
            self.config["host"], ", ".join("%s every %gs" % (n, self.intervals[n]) for n in self.names),
            self.config["textfile"]))
        while not stop.is_set():
            self.run_cycle()
            stop.wait(max(0.2, self.seconds_to_next()))
        self.log("stopped")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="bim-monitoring", description="BIM Wall System live health monitoring")
    parser.add_argument("--config", required=True, help="JSON configuration written by the monitoring role")
    parser.add_argument("--once", action="store_true", help="run every check once, write the textfile, exit")
    parser.add_argument("--check", action="store_true", help="read the configuration and exit (0 when usable)")
    args = parser.parse_args(argv)
    try:
        config = config_lib.load(args.config, valid_check_names())
        service = Service(config)
    except (config_lib.MonitoringError, HealthError) as exc:
        _log("cannot start: %s" % exc)
        return 2
    if args.check:
        sys.stdout.write("configuration %s: host %s, checks %s\n" % (args.config, config["host"], ", ".join(service.names)))
        return 0
    if args.once:
        service.run_cycle(service.names)
        return 0 if service.last_write_error is None and not service.cycle_errors else 1
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    service.run_forever(stop)
    return 0
