#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fleet_report
short_description: Write the fleet report as JSON, a self-contained HTML page and Prometheus textfiles
version_added: 0.1.0
description:
  - Renders the fleet report on the controller from the health results of the play's hosts (as returned by
    M(bim.wall_system.health_check)) and, when the files exist, the backup, recovery drill and maintenance
    summaries that the roles write into the same reports folder.
  - Writes C(<dest>/<name>.json), C(<dest>/<name>.html) (one page, inline CSS, no external assets; one row per
    host with status colours, then per host its checks, metrics, alerts, recommendations, backup age and last
    drill result) and one Prometheus textfile per host (C(bim_<host>.prom)) for node_exporter's textfile
    collector. Every file is replaced atomically; the report files are 0600, the textfiles 0644.
  - Hosts of the play without a health result appear as C(unreachable).
  - Runs on the controller (an action plugin). Call it once per run, for example with C(run_once=true).
author:
  - BIM Wall System operations team (@bim-wall-system)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
options:
  results:
    description:
      - Health results, host name to health result. When omitted, each host's result is read from the host
        variable named by O(result_var).
    type: dict
  result_var:
    description: Host variable holding each host's health result when O(results) is omitted.
    type: str
    default: __bim_health_result
  hosts:
    description: Hosts the report covers. Default is every host of the play (C(ansible_play_hosts_all)).
    type: list
    elements: str
  dest:
    description: Reports folder (created 0700 when missing). A relative path is relative to the current directory.
    type: path
    default: bim-reports
  name:
    description: Base name of the report files.
    type: str
    default: fleet-report
  title:
    description: Title of the HTML page.
    type: str
    default: BIM Wall System fleet report
  backup_summary:
    description: Backup summary to read for the age of each host's last backup. Default C(<dest>/backup-summary.json); ignored when missing.
    type: path
  drill_summary:
    description: Recovery drill summary to read for each host's last drill result. Default C(<dest>/drill-summary.json); ignored when missing.
    type: path
  maintenance_summary:
    description: Maintenance summary to read. Default C(<dest>/maintenance-summary.json); ignored when missing.
    type: path
  prometheus:
    description: Write the per-host Prometheus textfiles.
    type: bool
    default: true
  prometheus_dir:
    description: Folder of the Prometheus textfiles. Default C(<dest>/prometheus).
    type: path
  prometheus_sections:
    description:
      - What the textfiles hold - V(health) (status, checks, metrics, alerts of the run) and V(recovery) (backup
        age and size, recoverable window, last drill).
      - Where role C(bim.wall_system.monitoring) runs, its service exports the live health of each host with the
        same names; keep only V(recovery) here so Prometheus does not get the same series from two places.
    type: list
    elements: str
    choices: [health, recovery]
    default: [health, recovery]
  html_template:
    description:
      - A Jinja2 template file replacing the built-in page; it receives the report as C(report) and the trend
        charts as C(trends) (a list of C([id, title, svg markup])).
    type: path
  history:
    description:
      - Keep the report's history in C(<dest>/<name>-history.json) (0600) and draw its trends on the page as inline
        SVG - health status per host, backup age and stored size, drill RTO and RPO, maintenance duration
        against its window.
    type: bool
    default: true
  history_runs:
    description: The history keeps at most this many runs (the newest).
    type: int
    default: 500
  history_days:
    description: The history keeps the runs of this many days.
    type: int
    default: 90
  stats:
    description:
      - Also hand where the report went and the fleet's and each host's status to AWX / ansible-runner
        as the custom stat of this name, as M(ansible.builtin.set_stats) would (aggregated, not per host), so that a play needs no
        separate C(set_stats) task. Unset hands nothing over.
    type: str
attributes:
  check_mode:
    support: full
    details: In check mode the report is built and nothing is written.
  diff_mode:
    support: none
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
  platform:
    support: full
    platforms: all
seealso:
  - module: bim.wall_system.health_check
  - module: bim.wall_system.alert
"""

EXAMPLES = r"""
- name: Write the fleet report into bim-reports/
  bim.wall_system.fleet_report:
    result_var: __bim_health_result
    dest: bim-reports
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
json_path:
  description: Absolute path of the JSON report.
  returned: always
  type: str
  sample: /home/ops/bim-reports/fleet-report.json
html_path:
  description: Absolute path of the HTML page.
  returned: always
  type: str
  sample: /home/ops/bim-reports/fleet-report.html
prometheus_files:
  description: Host name to the absolute path of its Prometheus textfile.
  returned: always
  type: dict
  sample: {pg1: /home/ops/bim-reports/prometheus/bim_pg1.prom}
fleet:
  description: Fleet roll-up - host count, worst status, hosts per status, number of threshold alerts.
  returned: always
  type: dict
  sample: {hosts: 3, overall_status: degraded, status_counts: {healthy: 2, degraded: 1}, alerts: 1}
hosts:
  description: Host name to overall status.
  returned: always
  type: dict
  sample: {pg1: healthy, pg2: degraded, lite1: healthy}
history_path:
  description: Absolute path of the history file (null without O(history)).
  returned: always
  type: str
  sample: /home/ops/bim-reports/fleet-report-history.json
summaries_used:
  description: The summaries found and merged into the report.
  returned: always
  type: list
  elements: str
  sample: [backup, drill]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.bim.wall_system.plugins.module_utils.reporting.report_files import fleet_report_argument_spec


def main():
    module = AnsibleModule(argument_spec=fleet_report_argument_spec(), supports_check_mode=True)
    module.fail_json(msg="bim.wall_system.fleet_report runs on the controller through its action plugin; "
                         "it cannot be executed as a module on a managed host")


if __name__ == "__main__":
    main()
