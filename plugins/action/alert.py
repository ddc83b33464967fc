# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of ``bim.wall_system.alert``: evaluate alert rules over the fleet's health
results, send notifications with cooldowns kept in a state file. Documentation: plugins/modules/alert.py."""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.bim.wall_system.plugins.module_utils.alerting.notify import run_alerts
from ansible_collections.bim.wall_system.plugins.module_utils.alerting.rules import RuleError
from ansible_collections.bim.wall_system.plugins.module_utils.alerting.scrub import collect_secrets, scrub
from ansible_collections.bim.wall_system.plugins.module_utils.alerting.spec import alert_argument_spec, channel_config
from ansible_collections.bim.wall_system.plugins.module_utils.alerting.state import StateError
from ansible_collections.bim.wall_system.plugins.module_utils.common.custom_stats import custom_stat
from ansible_collections.bim.wall_system.plugins.module_utils.common.plain import to_plain
from ansible_collections.bim.wall_system.plugins.plugin_utils.host_results import host_results


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        result.pop("invocation", None)
        validation, args = self.validate_argument_spec(argument_spec=alert_argument_spec())
        secrets = set(str(v) for v in getattr(validation, "_no_log_values", ()) if v and len(str(v)) >= 4)
        channels = to_plain(channel_config(args.get("channels")))
        secrets |= collect_secrets(channels)

        results = args.get("results")
        if results is None:  # host_results gives plain, non-empty dicts
            hosts = args.get("hosts") or task_vars.get("ansible_play_hosts_all") or []
            results, missing = host_results(task_vars, hosts, args["result_var"])
        else:
            missing = sorted(h for h, v in results.items() if not isinstance(v, dict) or not v)
            results = {str(h): to_plain(v) for h, v in results.items() if isinstance(v, dict) and v}

        state_file = args["state_file"]
        if not os.path.isabs(state_file):
            state_file = os.path.abspath(state_file)
        try:
            outcome = run_alerts(
                to_plain(args["rules"]), results, channels, state_file,
                send_resolved=args["send_resolved"], check_mode=bool(self._task.check_mode),
                history_limit=args["history_limit"], lock_timeout=args["lock_timeout"], extra_secrets=secrets,
            )
        except RuleError as exc:
            raise AnsibleActionFail("invalid alert rule: %s" % exc)
        except StateError as exc:
            raise AnsibleActionFail(scrub(str(exc), secrets))

        result.update(outcome)
        result["hosts_evaluated"] = sorted(results)
        result["hosts_without_results"] = sorted(missing)
        errors = outcome["channel_errors"]
        if self._task.check_mode:
            sent = "%d notification(s) planned" % len(outcome["notifications"])
        else:
            delivered = sum(1 for n in outcome["notifications"]
                            if any(c.get("status") == "sent" for c in n["channels"].values()))
            sent = "%d notification(s) delivered" % delivered
        result["msg"] = "%d rule(s) firing, %s, %d suppressed by cooldown, %d resolved, %d channel error(s)" % (
            len(outcome["firing"]), sent, len(outcome["suppressed"]), len(outcome["resolved"]), len(errors))
        if errors:
            result.setdefault("warnings", []).extend(
                "alert rule %r: channel %s failed: %s" % (e["rule"], e["channel"], e["error"]) for e in errors)
            if args["fail_on_channel_error"]:
                result["failed"] = True
        if args["stats"]:
            result["ansible_stats"] = custom_stat(args["stats"], {
                "firing": outcome["firing"], "channel_errors": errors,
                "notified": [n["rule"] for n in outcome["notifications"]],
                "suppressed": [s["rule"] for s in outcome["suppressed"]],
                "resolved": [r["rule"] for r in outcome["resolved"]]})
        for entry in outcome["rule_errors"]:
            result.setdefault("warnings", []).append(
                "alert rule %r could not be evaluated on %s: %s" % (entry["rule"], entry["host"], entry["error"]))
        return scrub(result, secrets, mask_keys=False)
