# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The results the hosts of a play registered, as the fleet-wide actions (fleet_summary, alert,
fleet_report, monitoring_export) read them on the controller."""

from __future__ import annotations

from ansible_collections.bim.wall_system.plugins.module_utils.common.plain import to_plain


def host_results(task_vars, hosts, var_name):
    """Return (host -> its ``var_name`` as a plain non-empty dict, hosts without one), in order.

    A host that registered nothing, a skipped or unreachable host's empty result, a value that is
    not a dict, and a variable that cannot be resolved all count as "without a result": a fleet
    report names such hosts rather than failing on them.
    """
    found, missing = {}, []
    for host in hosts:
        value = _host_var(task_vars, host, var_name)
        value = to_plain(value) if value else None
        if isinstance(value, dict) and value:
            found[str(host)] = value
        else:
            missing.append(str(host))
    return found, missing


# Set by the prerequisites role on a host it stopped in check mode because the libraries are not
# installed yet (roles/prerequisites/tasks/install.yml); the text says what the install would do.
PREREQUISITES_PENDING_VAR = "bim_prerequisites_pending"
PREREQUISITES_PENDING = "prerequisites_pending"


def prerequisites_pending(task_vars, host):
    """What the prerequisites role would install on ``host`` before its modules can run, or None."""
    value = _host_var(task_vars, host, PREREQUISITES_PENDING_VAR)
    return str(value) if value else None


def _host_var(task_vars, host, var_name):
    """``host``'s ``var_name``, or None where the host, the variable or its value cannot be had."""
    hostvars = task_vars.get("hostvars") or {}
    try:
        return hostvars[host].get(var_name) if host in hostvars else None
    except Exception:  # an undefined or broken variable counts as none
        return None
