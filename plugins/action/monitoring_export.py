# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of ``bim.wall_system.monitoring_export``. Documentation: plugins/modules/monitoring_export.py."""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.bim.wall_system.plugins.module_utils.alerting.rules import RuleError
from ansible_collections.bim.wall_system.plugins.module_utils.common.plain import to_plain
from ansible_collections.bim.wall_system.plugins.module_utils.health.base import HealthError
from ansible_collections.bim.wall_system.plugins.module_utils.health.runner import thresholds_for
from ansible_collections.bim.wall_system.plugins.module_utils.monitoring.export import (
    ExportError, build_files, monitoring_export_argument_spec, write_files)
from ansible_collections.bim.wall_system.plugins.plugin_utils.host_results import host_results


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = False

    def _host_thresholds(self, args, task_vars):
        """host -> merged thresholds: given, or each host's monitoring_service result."""
        if args["thresholds"] is not None:
            return {str(h): thresholds_for(t) for h, t in args["thresholds"].items()}
        hosts = args["hosts"] if args["hosts"] is not None else list(task_vars.get("ansible_play_hosts_all") or [])
        results, _missing = host_results(task_vars, hosts, args["result_var"])
        found = {host: value["thresholds"] for host, value in results.items() if isinstance(value.get("thresholds"), dict)}
        return found or {"default": thresholds_for()}

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        result.pop("invocation", None)
        _validation, args = self.validate_argument_spec(argument_spec=monitoring_export_argument_spec())
        args = to_plain(args)
        try:
            host_thresholds = self._host_thresholds(args, task_vars)
            files, skipped = build_files(host_thresholds, args["alert_rules"], alert_for=args["alert_for"],
                                         stale_after=args["stale_after"], interval=args["evaluation_interval"],
                                         dashboard_title=args["dashboard_title"])
            changed = write_files(args["dest"], files, check_mode=bool(self._task.check_mode))
        except (ExportError, HealthError, RuleError) as exc:
            raise AnsibleActionFail(str(exc))
        dest = os.path.abspath(args["dest"])
        left_out = "; alert rules left out: %s" % "; ".join("%s (%s)" % kv for kv in skipped.items()) if skipped else ""
        result.update(
            changed=bool(changed),
            files={name: os.path.join(dest, name) for name in files},
            written=changed,
            skipped_rules=skipped,
            hosts=sorted(host_thresholds),
            msg="monitoring files in %s: %s%s" % (dest, ", ".join(changed) or "unchanged", left_out),
        )
        if skipped:
            result["warnings"] = ["alert rule %s has no Prometheus form: %s" % kv for kv in skipped.items()]
        return result
