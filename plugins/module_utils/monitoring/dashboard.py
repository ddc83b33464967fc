# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Grafana dashboard of the fleet: the guide's monitoring dashboard on Prometheus.

Rows: fleet overview (hosts by status, health per host over time), hosts (one table row per host
with its headline figures), checks (drill-down per check of the hosts picked in ``$host``), recovery
(backup age, recoverable window, last drill RTO and RPO) and the monitoring service itself. Every
query names metrics of the one renderer (``reporting/prometheus.py``) or recording rules of
``rules.py``; panel thresholds are the collection's thresholds, so colours change where alerts do.
"""

from __future__ import annotations

from ansible_collections.bim.wall_system.plugins.module_utils.reporting.prometheus import metric_name

UID = "bim-wall-system-fleet"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
HOSTS = 'host=~"$host"'
STATUS_MAPPINGS = [{"type": "value", "options": {
    "0": {"text": "healthy", "color": "green", "index": 0},
    "1": {"text": "degraded / warning", "color": "orange", "index": 1},
    "2": {"text": "unhealthy / error", "color": "red", "index": 2}}}]


def _target(expr, legend="{{host}}", ref="A", instant=False, table=False):
    target = {"refId": ref, "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
    if instant:
        target["instant"] = True
        target["range"] = False
    if table:
        target["format"] = "table"
    return target


def _steps(levels, divisor=1.0):
    """Grafana threshold steps (green, orange, red) of one collection threshold."""
    if not levels:
        return {"mode": "absolute", "steps": [{"color": "green", "value": None}]}
    warning = levels["warning"] / divisor
    critical = None if levels.get("critical") is None else levels["critical"] / divisor
    if levels.get("lower_is_worse"):
        steps = [{"color": "red", "value": None}] if critical is not None else [{"color": "orange", "value": None}]
        if critical is not None:
            steps.append({"color": "orange", "value": critical})
        steps.append({"color": "green", "value": warning})
    else:
        steps = [{"color": "green", "value": None}, {"color": "orange", "value": warning}]
        if critical is not None:
            steps.append({"color": "red", "value": critical})
    return {"mode": "absolute", "steps": steps}


class _Layout:
    """Panel ids and grid positions, row by row (24 columns)."""

    def __init__(self):
        self.panels = []
        self.next_id = 1
        self.y = 0
        self.x = 0
        self.row_height = 0

    def row(self, title):
        self.newline()
        self.panels.append({"type": "row", "title": title, "id": self._id(), "collapsed": False, "panels": [],
                            "gridPos": {"h": 1, "w": 24, "x": 0, "y": self.y}})
        self.y += 1

    def newline(self):
        self.y += self.row_height
        self.x = 0
        self.row_height = 0

    def _id(self):
        self.next_id += 1
        return self.next_id - 1

    def add(self, panel, w, h):
        if self.x + w > 24:
            self.newline()
        panel["id"] = self._id()
        panel["gridPos"] = {"h": h, "w": w, "x": self.x, "y": self.y}
        panel["datasource"] = DATASOURCE
        self.panels.append(panel)
        self.x += w
        self.row_height = max(self.row_height, h)


def _timeseries(title, targets, unit, thresholds=None, description=""):
    return {"type": "timeseries", "title": title, "description": description, "targets": targets,
            "fieldConfig": {"defaults": {"unit": unit, "thresholds": thresholds or _steps(None),
                                         "custom": {"thresholdsStyle": {"mode": "line" if thresholds else "off"}}},
                            "overrides": []},
            "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
                        "tooltip": {"mode": "multi", "sort": "none"}}}


def _status_timeline(title, expr, legend, description=""):
    return {"type": "state-timeline", "title": title, "description": description,
            "targets": [_target(expr, legend)],
            "fieldConfig": {"defaults": {"mappings": STATUS_MAPPINGS, "thresholds": {"mode": "absolute", "steps": [
                {"color": "green", "value": None}, {"color": "orange", "value": 1}, {"color": "red", "value": 2}]},
                "color": {"mode": "thresholds"}}, "overrides": []},
            "options": {"showValue": "never", "mergeValues": True, "rowHeight": 0.9,
                        "legend": {"displayMode": "list", "placement": "bottom", "showLegend": False}}}


def _stat(title, expr, legend, unit="none", thresholds=None, mappings=None):
    return {"type": "stat", "title": title, "targets": [_target(expr, legend, instant=True)],
            "fieldConfig": {"defaults": {"unit": unit, "thresholds": thresholds or _steps(None),
                                         "mappings": mappings or [], "color": {"mode": "thresholds"}},
                            "overrides": []},
            "options": {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                        "colorMode": "background", "graphMode": "none", "textMode": "value_and_name",
                        "orientation": "auto", "justifyMode": "auto"}}


def _hosts_table(thresholds):
    columns = [
        ("status", "bim_host:health_severity:max", "none"),
        ("DB response", "max by (host) (bim_database_response_time_seconds)", "s"),
        ("cache hit rate", "max by (host) (bim_cache_hit_rate)", "percentunit"),
        ("failure rate", "max by (host) (%s)" % metric_name("geometric_operations", "operation_failure_rate")[0],
         "percentunit"),
        ("log error rate", "max by (host) (bim_logs_error_rate)", "percentunit"),
        ("backup age", "bim_host:backup_age_seconds:live", "s"),
        ("recoverable window", "bim_host:recoverable_window_seconds:max", "s"),
        ("drill RTO", "max by (host) (bim_drill_rto_seconds)", "s"),
        ("drill RPO", "max by (host) (bim_drill_rpo_seconds)", "s"),
    ]
    targets, overrides, rename = [], [], {}
    for index, (title, expr, unit) in enumerate(columns):
        ref = chr(ord("A") + index)
        targets.append(_target(expr, "", ref, instant=True, table=True))
        rename["Value #%s" % ref] = title
        properties = [{"id": "unit", "value": unit}]
        if title == "status":
            properties += [{"id": "mappings", "value": STATUS_MAPPINGS},
                           {"id": "custom.cellOptions", "value": {"type": "color-background"}}]
        elif title == "cache hit rate":
            properties += [{"id": "thresholds", "value": _steps(thresholds.get("cache_hit_rate"))},
                           {"id": "custom.cellOptions", "value": {"type": "color-text"}}]
        overrides.append({"matcher": {"id": "byName", "options": title}, "properties": properties})
    return {"type": "table", "title": "Hosts", "description": "One row per host: its headline figures now.",
            "targets": targets,
            "transformations": [{"id": "merge", "options": {}},
                                {"id": "organize", "options": {"excludeByName": {"Time": True},
                                                               "renameByName": rename}}],
            "fieldConfig": {"defaults": {"custom": {"align": "auto"}}, "overrides": overrides},
            "options": {"showHeader": True, "cellHeight": "sm", "sortBy": [{"displayName": "status", "desc": True}]}}


def build_dashboard(thresholds, title="BIM Wall System fleet"):
    """The dashboard JSON model (a dict). ``thresholds``: merged thresholds (name -> levels)."""
    layout = _Layout()
    layout.row("Fleet overview")
    layout.add(_stat("Hosts by status", "bim:hosts_by_status:sum", "{{status}}"), 8, 5)
    layout.add(_stat("Firing BIM alerts", 'count(ALERTS{alertstate="firing", alertname=~"Bim.*"}) or vector(0)',
                     "firing", thresholds={"mode": "absolute", "steps": [{"color": "green", "value": None},
                                                                         {"color": "red", "value": 1}]}), 4, 5)
    layout.add(_stat("Textfile age", 'time() - max by (host) (bim_monitoring_last_cycle_timestamp_seconds{%s})' % HOSTS,
                     "{{host}}", unit="s", thresholds={"mode": "absolute", "steps": [
                         {"color": "green", "value": None}, {"color": "orange", "value": 60},
                         {"color": "red", "value": 120}]}), 12, 5)
    layout.add(_status_timeline("Health per host", "bim_host:health_severity:max{%s}" % HOSTS, "{{host}}",
                                "Overall status of every host over time (live monitoring)."), 24, 8)
    layout.row("Hosts")
    layout.add(_hosts_table(thresholds), 24, 9)
    layout.row("Checks of $host")
    layout.add(_status_timeline("Status per check", "bim_host_check:health_severity:max{%s}" % HOSTS,
                                "{{host}} {{check}}", "Each check of the hosts picked above."), 24, 10)
    panels = (
        ("Database response time", "database", "database_response_time_ms", "database_response_time_ms", "s"),
        ("Connections in use", "database", "connection_usage", "connection_usage", "percentunit"),
        ("Disk usage of the data folder", "database", "disk_usage", "disk_usage", "percentunit"),
        ("Cache hit rate", "cache", "cache_hit_rate", "cache_hit_rate", "percentunit"),
        ("Geometric operation failure rate", "geometric_operations", "operation_failure_rate",
         "operation_failure_rate", "percentunit"),
        ("Average offset time", "application", "average_offset_time_ms", "average_offset_time_ms", "s"),
        ("Application heap", "memory", "heap_used_percent", "memory_usage", "percentunit"),
        ("Host memory", "memory", "host_memory_usage", "memory_usage", "percentunit"),
        ("Log error rate", "logs", "error_rate", "error_rate", "percentunit"),
    )
    for title, check, metric, threshold, unit in panels:
        name, divisor = metric_name(check, metric)
        layout.add(_timeseries(title, [_target("%s{%s}" % (name, HOSTS))], unit,
                               _steps(thresholds.get(threshold), divisor)), 8, 7)
    layout.add(_timeseries("Throughput", [_target("bim_application_throughput_ops{%s}" % HOSTS)], "ops"), 8, 7)
    layout.add(_timeseries("Check durations", [_target("bim_health_check_duration_seconds{%s}" % HOSTS,
                                                       "{{host}} {{check}}")], "s"), 8, 7)
    layout.add(_timeseries("Log errors by category", [_target("bim_logs_errors_by_category{%s}" % HOSTS,
                                                              "{{host}} {{category}}")], "none"), 8, 7)
    layout.row("Recovery")
    layout.add(_timeseries("Backup age", [_target("bim_host:backup_age_seconds:live{%s}" % HOSTS)], "s"), 8, 7)
    layout.add(_timeseries("Recoverable window", [
        _target("bim_host:recoverable_window_seconds:max{%s}" % HOSTS, "{{host}} window"),
        _target("time() - max by (host) (bim_recoverable_window_latest_timestamp_seconds{%s})" % HOSTS,
                "{{host}} behind now", "B"),
        _target("max by (host) (bim_recoverable_window_earliest_timestamp_seconds{%s})" % HOSTS,
                "{{host}} earliest", "C")], "s",
        description="Length of the window a restore can reach, and how far its latest moment is behind now."), 8, 7)
    layout.add(_timeseries("Last drill RTO and RPO", [
        _target("bim_drill_rto_seconds{%s}" % HOSTS, "{{host}} RTO"),
        _target("bim_drill_rpo_seconds{%s}" % HOSTS, "{{host}} RPO", "B")], "s"), 8, 7)
    layout.add(_timeseries("Stored backup size", [_target("bim_backup_stored_bytes{%s}" % HOSTS)], "bytes"), 8, 7)
    return {
        "uid": UID,
        "title": title,
        "description": "Live health of the BIM Wall System fleet (bim.wall_system monitoring role).",
        "tags": ["bim", "bim.wall_system"],
        "editable": True,
        "graphTooltip": 1,
        "timezone": "utc",
        "refresh": "30s",
        "schemaVersion": 39,
        "version": 1,
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {},
        "links": [],
        "annotations": {"list": []},
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "templating": {"list": [
            {"type": "datasource", "name": "datasource", "label": "Prometheus", "query": "prometheus",
             "hide": 0, "refresh": 1, "options": []},
            {"type": "query", "name": "host", "label": "Host", "datasource": DATASOURCE,
             "query": {"query": "label_values(bim_health_status, host)", "refId": "host"},
             "refresh": 2, "multi": True,
             "includeAll": True, "allValue": ".*", "options": [], "sort": 1, "hide": 0},
        ]},
        "panels": layout.panels,
    }


def queries(dashboard):
    """Every PromQL expression of the dashboard (panel targets and template variables)."""
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets") or []:
            found.append(target["expr"])
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            found.append(variable["query"]["query"])
    return found
