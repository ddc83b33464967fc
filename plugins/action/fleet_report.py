# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of ``bim.wall_system.fleet_report``: JSON + HTML fleet report and per-host
Prometheus textfiles. Documentation: plugins/modules/fleet_report.py."""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.bim.wall_system.plugins.module_utils.common.custom_stats import custom_stat
from ansible_collections.bim.wall_system.plugins.module_utils.common.plain import to_plain
from ansible_collections.bim.wall_system.plugins.module_utils.reporting.report_files import (
    ReportError, fleet_report_argument_spec, read_summary, write_report)
from ansible_collections.bim.wall_system.plugins.plugin_utils.host_results import host_results


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        result.pop("invocation", None)
        _validation, args = self.validate_argument_spec(argument_spec=fleet_report_argument_spec())

        hosts = args.get("hosts") or task_vars.get("ansible_play_hosts_all") or []
        results = args.get("results")
        if results is None:  # host_results gives plain dicts
            results, _missing = host_results(task_vars, hosts, args["result_var"])
        else:
            results = {str(h): to_plain(v) for h, v in results.items()}

        dest = args["dest"]
        summary_paths = {}
        for kind in ("backup", "drill", "maintenance"):
            path = args.get("%s_summary" % kind) or os.path.join(dest, "%s-summary.json" % kind)
            summary_paths[kind] = path
        template = None
        try:
            summaries = {kind: read_summary(path) for kind, path in summary_paths.items()}
            if args.get("html_template"):
                with open(args["html_template"], "r", encoding="utf-8") as handle:
                    template = handle.read()
            written = write_report(
                results, dest, name=args["name"], title=args["title"], hosts=[str(h) for h in hosts],
                backup_summary=summaries["backup"], drill_summary=summaries["drill"],
                maintenance_summary=summaries["maintenance"], prometheus=args["prometheus"],
                prometheus_dir=args.get("prometheus_dir"), template=template, check_mode=bool(self._task.check_mode),
                prometheus_sections=args["prometheus_sections"], history=args["history"],
                history_runs=args["history_runs"], history_days=args["history_days"])
        except (ReportError, OSError) as exc:
            raise AnsibleActionFail(str(exc))

        report = written["report"]
        result.update(
            changed=True,
            json_path=written["json_path"],
            html_path=written["html_path"],
            prometheus_files=written["prometheus_files"],
            history_path=written["history_path"],
            fleet=report["fleet"],
            hosts={row["host"]: row["overall_status"] for row in report["hosts"]},
            summaries_used=sorted(k for k, v in summaries.items() if v is not None),
            msg="fleet report of %d host(s) (%s)%s: %s" % (
                report["fleet"]["hosts"], report["fleet"]["overall_status"],
                " would be written" if self._task.check_mode else "", written["html_path"]),
        )
        if args["stats"]:
            result["ansible_stats"] = custom_stat(args["stats"], {
                "html": result["html_path"], "json": result["json_path"], "fleet": result["fleet"], "hosts": result["hosts"]})
        return result
