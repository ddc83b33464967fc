#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: monitoring_export
short_description: Write the Prometheus rules, an Alertmanager fragment and the Grafana dashboard of the fleet
version_added: 0.1.0
description:
  - Generates, on the controller, the files the Prometheus side of live monitoring needs, from the
    collection's thresholds (the guide's defaults with each host's overrides) and alert rules.
  - C(bim-rules.yml) - alerting rules for every threshold, level and metric it applies to (hosts with other
    levels get rules of their own), the alert rules of role C(bim.wall_system.alerting) (a C(condition), or
    a C(promql) key; other rules are reported in RV(skipped_rules)), rules on the monitoring service
    (stale textfile, write errors) and the hosts' overall status, and recording rules for the headline
    figures. Check it with C(promtool check rules).
  - C(bim-alertmanager-routes.yml) - a C(route) and C(inhibit_rules) fragment for C(alertmanager.yml) - the
    alert rules' cooldowns as C(repeat_interval), critical inhibits warning of the same alert and host.
  - C(bim-wall-system-dashboard.json) - the Grafana dashboard (fleet overview, one row per host, checks
    per host, recovery - backup age, recoverable window, last drill RTO and RPO).
  - Each file is replaced atomically, and only when its content changes.
author:
  - BIM Wall System operations team (@bim-wall-system)
extends_documentation_fragment:
  - bim.wall_system.attributes
  - bim.wall_system.attributes.action
options:
  dest:
    description: Folder of the files (created 0755). A relative path is relative to the current directory.
    type: path
    default: bim-reports/monitoring
  thresholds:
    description:
      - "Threshold overrides per host, host name to C({name: {warning, critical}}) as in
        M(bim.wall_system.health_check). When omitted, each host's thresholds are read from the result of
        M(bim.wall_system.monitoring_service) in the host variable named by O(result_var)."
    type: dict
  result_var:
    description: Host variable holding each host's M(bim.wall_system.monitoring_service) result.
    type: str
    default: __bim_monitoring_install
  hosts:
    description: Hosts whose thresholds count. Default is every host of the play.
    type: list
    elements: str
  alert_rules:
    description: Alert rules as M(bim.wall_system.alert) takes them (role C(bim.wall_system.alerting)'s C(bim_alerting_rules)).
    type: list
    elements: dict
    default: []
  alert_for:
    description: The rules' C(for) - how long a condition must hold before the alert fires.
    type: str
    default: 1m
  stale_after:
    description: A monitoring textfile older than three cycles and than this is reported stale.
    type: str
    default: 2m
  evaluation_interval:
    description: C(interval) of every rule group; default is Prometheus's global evaluation interval.
    type: str
  dashboard_title:
    description: Title of the Grafana dashboard.
    type: str
    default: BIM Wall System fleet
attributes:
  check_mode:
    support: full
    details: Reports which files would change; writes nothing.
  diff_mode:
    support: none
seealso:
  - module: bim.wall_system.monitoring_service
"""

EXAMPLES = r"""
- name: Write the Prometheus rules and the Grafana dashboard
  bim.wall_system.monitoring_export:
    dest: /etc/prometheus/rules.d/bim
    thresholds:
      pg1: {}
      lite1: {cache_hit_rate: {warning: 0.8}}
  run_once: true
  delegate_to: localhost
"""

RETURN = r"""
files:
  description: File name to absolute path of every file (written or already up to date).
  returned: always
  type: dict
  sample: {bim-rules.yml: /home/ops/bim-reports/monitoring/bim-rules.yml}
written:
  description: Names of the files written (or that would be written in check mode).
  returned: always
  type: list
  elements: str
  sample: [bim-rules.yml]
skipped_rules:
  description: Alert rules without a Prometheus form, rule name to reason.
  returned: always
  type: dict
  sample: {Unhealthy pg hosts: "its expression is Jinja2; give the rule a promql key to alert in Prometheus"}
hosts:
  description: Hosts whose thresholds the rules hold.
  returned: always
  type: list
  elements: str
  sample: [lite1, pg1, pg2]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.bim.wall_system.plugins.module_utils.monitoring.export import monitoring_export_argument_spec


def main():
    module = AnsibleModule(argument_spec=monitoring_export_argument_spec(), supports_check_mode=True)
    module.fail_json(msg="bim.wall_system.monitoring_export runs on the controller through its action plugin; "
                         "it cannot be executed as a module on a managed host")


if __name__ == "__main__":
    main()
