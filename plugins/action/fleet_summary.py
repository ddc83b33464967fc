# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of ``bim.wall_system.fleet_summary``. Documentation: plugins/modules/fleet_summary.py."""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.bim.wall_system.plugins.module_utils.common.custom_stats import custom_stat
from ansible_collections.bim.wall_system.plugins.module_utils.common.plain import to_plain
from ansible_collections.bim.wall_system.plugins.module_utils.reporting.fleet_summary import (
    FLEET_SUMMARY_MUTUALLY_EXCLUSIVE, FLEET_SUMMARY_REQUIRED_ONE_OF, SummaryError, build_summary,
    fleet_summary_argument_spec, host_entry, threshold_violations, write_summary)
from ansible_collections.bim.wall_system.plugins.plugin_utils.host_results import (
    PREREQUISITES_PENDING, host_results, prerequisites_pending)


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        result.pop("invocation", None)
        _validation, args = self.validate_argument_spec(
            argument_spec=fleet_summary_argument_spec(), mutually_exclusive=FLEET_SUMMARY_MUTUALLY_EXCLUSIVE,
            required_one_of=FLEET_SUMMARY_REQUIRED_ONE_OF)

        hosts = args["hosts"] if args["hosts"] is not None else list(task_vars.get("ansible_play_hosts_all") or [])
        hosts = [str(h) for h in hosts]
        opts = dict(status_key=args["status_key"], reasons_key=args["reasons_key"], include_keys=args["include_keys"])
        entries = {}
        if args["results"] is not None:
            for host, value in to_plain(args["results"]).items():
                entries[host] = host_entry(value, **opts)
        else:
            results, _missing = host_results(task_vars, hosts, args["fact"])
            for host in hosts:
                # a check-mode host without the libraries: its result, if any, is the module's failure to start
                pending = prerequisites_pending(task_vars, host)
                entries[host] = (host_entry(results.get(host), **opts) if pending is None
                                 else {"status": PREREQUISITES_PENDING, "reasons": [pending]})

        try:
            summary = build_summary(args["kind"], hosts, entries, ok_statuses=args["ok_statuses"])
            violations = threshold_violations(summary, to_plain(args["max_percent"]))
        except SummaryError as exc:
            raise AnsibleActionFail(str(exc))

        result["summary"] = summary
        result["violations"] = violations
        if args["stats"]:
            result["ansible_stats"] = custom_stat(args["stats"], summary)
        result["changed"] = False
        if args["write"] and not self._task.check_mode:
            report_dir = os.path.abspath(args["report_dir"])
            try:
                latest, stamped, pruned = write_summary(report_dir, summary, keep_copies=args["keep_copies"])
            except OSError as exc:
                raise AnsibleActionFail("cannot write the %s summary to %s: %s"
                                        % (args["kind"], report_dir, exc.strerror or exc))
            result["changed"] = True
            result["report_file"] = latest
            result["report_files"] = [latest, stamped]
            result["pruned_copies"] = pruned
        if violations:
            result["failed"] = True
            result["msg"] = "fleet %s threshold exceeded: %s" % (args["kind"], "; ".join(violations))
        else:
            counts = ", ".join("%s %d" % (s, n) for s, n in sorted(summary["counts"].items()))
            result["msg"] = "%s summary of %d hosts: %s" % (args["kind"], summary["total"], counts or "none")
        return result
