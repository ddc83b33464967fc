#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: fleet_summary
short_description: Summarize per-host results of a fleet run on the controller
version_added: 0.1.0
description:
  - Controller-side action (runs on the controller only; no connection to the hosts).
  - Builds a fleet summary from one small result per host (at least a status), counts hosts per
    status, lists every host not in O(ok_statuses) with its reasons, and writes the summary as JSON to
    C(<report_dir>/<kind>-summary.json) plus a timestamped copy, both atomically.
  - A host of O(hosts) without any result (unreachable before the task ran, or failed earlier) is
    counted as V(unreachable), never dropped. A registered result of an unreachable host (tasks with
    C(ignore_unreachable=true)) is V(unreachable) as well.
  - A host where the prerequisites role found, in check mode, that the libraries are not installed yet
    is V(prerequisites_pending), with what the install would do as its reason (its modules could not
    plan anything there).
  - Fails, after writing the summary, only when the share of hosts in a status is above its limit in
    O(max_percent).
  - Generic; used by the health check role, and meant for the backup, maintenance and drill roles.
author:
  - BIM Wall System operations team (@bim-wall-system)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  check_mode:
    support: full
    details: The summary is built and returned; no file is written.
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
options:
  kind:
    description:
      - What was run (V(health), V(backup), ...); names the report files.
      - Letters, digits, C(_), C(.) and C(-) only.
    type: str
    required: true
  results:
    description:
      - "Per-host results as C({host: {status: ..., reasons: [...]}}), for example built with a Jinja
        expression over C(hostvars) and C(ansible_play_hosts_all)."
      - Mutually exclusive with O(fact); one of them is required.
    type: dict
  fact:
    description:
      - Name of a host variable (a registered result or a fact) holding each host's result.
      - Read for every host in O(hosts) from C(hostvars).
    type: str
  hosts:
    description:
      - Every host that should have a result. Default is C(ansible_play_hosts_all).
    type: list
    elements: str
  status_key:
    description:
      - Key of a host's result holding its status.
    type: str
    default: status
  reasons_key:
    description:
      - Key of a host's result holding the reasons (a list of strings or a string) for its status.
    type: str
    default: reasons
  include_keys:
    description:
      - Other keys of a host's result to copy into its entry of the summary.
    type: list
    elements: str
    default: []
  ok_statuses:
    description:
      - Statuses that are not problems.
    type: list
    elements: str
    default: [healthy, ok, success, succeeded, passed, verified, skipped]
  report_dir:
    description:
      - Folder (created 0700 when missing) for the JSON files. A relative path is relative to the
        directory C(ansible-playbook) runs in.
    type: path
    default: bim-reports
  write:
    description:
      - Write the JSON files. V(false) only returns the summary.
    type: bool
    default: true
  keep_copies:
    description:
      - How many timestamped copies of this O(kind) stay in O(report_dir); older ones are removed after
        each write (only files named C(<kind>-summary-<time>.json)). At least one, the one just written, stays.
    type: int
    default: 100
  max_percent:
    description:
      - "Fleet thresholds as C({status: percent}); the task fails when more than that share of the hosts
        is in that status, for example C({unhealthy: 20, unreachable: 50}). Empty never fails."
    type: dict
    default: {}
  stats:
    description:
      - Also hand the summary to AWX / ansible-runner as the custom stat of this name, as
        M(ansible.builtin.set_stats) would (aggregated, not per host), so that a play needs no
        separate C(set_stats) task. Unset hands nothing over.
    type: str
notes:
  - Run it once per play, on the controller (C(run_once=true), C(delegate_to=localhost)).
'''

EXAMPLES = r'''
- name: Summarize the health check of the play's hosts
  bim.wall_system.fleet_summary:
    kind: health
    fact: __bim_health_result
    status_key: overall_status
    reasons_key: problems
    report_dir: "{{ lookup('ansible.builtin.env', 'PWD') }}/bim-reports"
    stats: bim_health_summary
    max_percent:
      unhealthy: 20
      unreachable: 50
  run_once: true
  delegate_to: localhost

- name: Summarize backups from a dict built in the role
  bim.wall_system.fleet_summary:
    kind: backup
    results: >-
      {{ dict(ansible_play_hosts_all | zip(ansible_play_hosts_all | map('extract', hostvars, 'backup_status'))) }}
    ok_statuses: [success]
  run_once: true
  delegate_to: localhost
'''

RETURN = r'''
summary:
  description: The fleet summary (also the content of the JSON file).
  returned: always
  type: dict
  sample:
    kind: health
    generated_at: "2026-11-27T12:00:00Z"
    total: 3
    counts: {healthy: 1, degraded: 1, unreachable: 1}
    percent: {healthy: 33.3, degraded: 33.3, unreachable: 33.3}
    hosts:
      pg1: {status: unreachable, reasons: ["Failed to connect to the host via ssh"]}
      pg2: {status: healthy, reasons: []}
      lite1: {status: degraded, reasons: ["cache: warning: cache hit rate 0.60"]}
    problems:
      - {host: pg1, status: unreachable, reasons: ["Failed to connect to the host via ssh"]}
      - {host: lite1, status: degraded, reasons: ["cache: warning: cache hit rate 0.60"]}
report_file:
  description: Path of C(<kind>-summary.json).
  returned: when written
  type: str
  sample: /home/ops/bim-reports/health-summary.json
report_files:
  description: Both files written, the latest and the timestamped copy.
  returned: when written
  type: list
  elements: str
  sample: [/home/ops/bim-reports/health-summary.json, /home/ops/bim-reports/health-summary-20261127T120000Z.json]
pruned_copies:
  description: The older timestamped copies removed (see O(keep_copies)).
  returned: when written
  type: list
  elements: str
  sample: [/home/ops/bim-reports/health-summary-20261120T120000Z.json]
violations:
  description: One message per exceeded O(max_percent) limit (empty when none is exceeded).
  returned: always
  type: list
  elements: str
  sample: ["2 of 3 hosts (66.7%) are unhealthy, more than the allowed 20%: pg1, pg2"]
msg:
  description: Counts per status, or which fleet threshold was exceeded by which hosts.
  returned: always
  type: str
  sample: "fleet health threshold exceeded: 2 of 3 hosts (66.7%) are unhealthy, more than the allowed 20%: pg1, pg2"
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.bim.wall_system.plugins.module_utils.reporting.fleet_summary import (
    FLEET_SUMMARY_MUTUALLY_EXCLUSIVE, FLEET_SUMMARY_REQUIRED_ONE_OF, fleet_summary_argument_spec)


def main():
    module = AnsibleModule(argument_spec=fleet_summary_argument_spec(), supports_check_mode=True,
                           mutually_exclusive=FLEET_SUMMARY_MUTUALLY_EXCLUSIVE,
                           required_one_of=FLEET_SUMMARY_REQUIRED_ONE_OF)
    module.fail_json(msg="bim.wall_system.fleet_summary runs on the controller through its action plugin; "
                         "it cannot be executed as a module on a managed host")


if __name__ == "__main__":
    main()
