# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Writing the fleet report: JSON, HTML and per-host Prometheus textfiles, each atomically.

Also the argument spec of ``bim.wall_system.fleet_report`` (shared by its action plugin and its
documentation module).
"""

from __future__ import annotations

import datetime
import json
import os

from ansible_collections.bim.wall_system.plugins.module_utils.alerting.scrub import scrub
from ansible_collections.bim.wall_system.plugins.module_utils.common.atomic import atomic_write
from ansible_collections.bim.wall_system.plugins.module_utils.reporting import history as history_lib
from ansible_collections.bim.wall_system.plugins.module_utils.reporting.report_html import render_html
from ansible_collections.bim.wall_system.plugins.module_utils.reporting.report_json import build_report, parse_time
from ansible_collections.bim.wall_system.plugins.module_utils.reporting.report_svg import trend_charts
from ansible_collections.bim.wall_system.plugins.module_utils.reporting.prometheus import host_file_name, render_host

DEFAULT_DEST = "bim-reports"


class ReportError(Exception):
    """The report cannot be written; the message is safe to show."""


def fleet_report_argument_spec():
    return dict(
        results=dict(type="dict"),
        result_var=dict(type="str", default="__bim_health_result"),
        hosts=dict(type="list", elements="str"),
        dest=dict(type="path", default=DEFAULT_DEST),
        name=dict(type="str", default="fleet-report"),
        title=dict(type="str", default="BIM Wall System fleet report"),
        backup_summary=dict(type="path"),
        drill_summary=dict(type="path"),
        maintenance_summary=dict(type="path"),
        prometheus=dict(type="bool", default=True),
        prometheus_dir=dict(type="path"),
        prometheus_sections=dict(type="list", elements="str", default=["health", "recovery"],
                                 choices=["health", "recovery"]),
        html_template=dict(type="path"),
        history=dict(type="bool", default=True),
        history_runs=dict(type="int", default=history_lib.DEFAULT_RUNS),
        history_days=dict(type="int", default=history_lib.DEFAULT_DAYS),
        stats=dict(type="str"),
    )


def read_summary(path):
    """The parsed summary file, or None when it does not exist. A broken file raises ``ReportError``."""
    if not path or not os.path.exists(path):
        return None
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError) as exc:
        raise ReportError("cannot read summary %s: %s" % (path, exc))


def write_report(results, dest, name="fleet-report", title="BIM Wall System fleet report", hosts=None,
                 backup_summary=None, drill_summary=None, maintenance_summary=None, prometheus=True,
                 prometheus_dir=None, template=None, generated_at=None, check_mode=False, secrets=(),
                 prometheus_sections=("health", "recovery"), history=True, history_runs=history_lib.DEFAULT_RUNS,
                 history_days=history_lib.DEFAULT_DAYS):
    """Build and write the report; return ``{report, json_path, html_path, prometheus_files, history_path}``.

    With ``history``, the run is added to ``<dest>/<name>-history.json`` (the last ``history_runs``
    runs of the last ``history_days`` days) and the page draws the trends from it.
    """
    report = build_report(results, backup_summary=backup_summary, drill_summary=drill_summary,
                          maintenance_summary=maintenance_summary, hosts=hosts, generated_at=generated_at, title=title)
    report = scrub(report, secrets)
    json_path = os.path.join(dest, "%s.json" % name)
    html_path = os.path.join(dest, "%s.html" % name)
    history_path = os.path.join(dest, "%s-history.json" % name)
    entries = []
    if history:
        if not check_mode:
            try:
                os.makedirs(dest, mode=0o700, exist_ok=True)
            except OSError as exc:
                raise ReportError("cannot write the fleet report into %s: %s" % (dest, exc.strerror or exc))
        try:
            entries = history_lib.record(history_path, report, runs=history_runs, days=history_days,
                                         check_mode=check_mode)
        except OSError as exc:
            raise ReportError("cannot update the report history %s: %s" % (history_path, exc.strerror or exc))
    report["history"] = {"runs": len(entries), "since": entries[0]["at"] if entries else None}
    html = render_html(report, template, trends=trend_charts(entries))
    json_text = json.dumps(report, indent=2, sort_keys=True, default=str) + "\n"
    prom_dir = prometheus_dir or os.path.join(dest, "prometheus")
    epoch = parse_time(report["generated_at"]).timestamp()
    prom_files = {}
    if prometheus:
        for row in report["hosts"]:
            prom_files[row["host"]] = (os.path.join(prom_dir, host_file_name(row["host"])),
                                       render_host(row, epoch, sections=prometheus_sections))
    if not check_mode:
        try:
            os.makedirs(dest, mode=0o700, exist_ok=True)
            # Every run writes these anew from the results, so they are replaced atomically (a reader
            # never sees half a file) but not fsynced: a crash can at worst cost the last run's
            # report, which the next run writes again; the two fsyncs of each file took about 5 ms on the
            # test machine, on every health check. The history, which no run can rebuild, is fsynced.
            atomic_write(json_path, json_text, mode=0o600, fsync=False)
            atomic_write(html_path, html, mode=0o600, fsync=False)
            if prometheus:
                os.makedirs(prom_dir, mode=0o700, exist_ok=True)
                for path, text in prom_files.values():
                    # node_exporter usually runs as another user: textfiles are world-readable
                    atomic_write(path, text, mode=0o644, fsync=False)
        except OSError as exc:
            raise ReportError("cannot write the fleet report into %s: %s" % (dest, exc.strerror or exc))
    return {
        "report": report,
        "json_path": os.path.abspath(json_path),
        "html_path": os.path.abspath(html_path),
        "prometheus_files": {h: os.path.abspath(pair[0]) for h, pair in prom_files.items()},
        "history_path": os.path.abspath(history_path) if history else None,
    }


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)
