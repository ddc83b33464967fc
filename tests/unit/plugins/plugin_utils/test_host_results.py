# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How the fleet-wide actions read the hosts' registered results (plugin_utils/host_results.py)."""

from __future__ import annotations

from ansible_collections.bim.wall_system.plugins.plugin_utils.host_results import host_results, prerequisites_pending


class BrokenVars(dict):
    """A host whose variables fail to resolve, as an undefined template does in hostvars."""

    def get(self, key, default=None):
        raise ValueError("'bim_x' is undefined")


def test_results_in_host_order_and_hosts_without_one_named():
    task_vars = {"hostvars": {
        "pg1": {"r": {"overall_status": "healthy"}},
        "pg2": {"r": {}},                       # a skipped or unreachable host's empty result
        "lite1": {"r": "not a dict"},
        "lite2": BrokenVars(),
        "other": {"r": {"overall_status": "unhealthy"}},  # not asked for
    }}
    found, missing = host_results(task_vars, ["lite2", "pg1", "pg2", "lite1", "gone"], "r")
    assert found == {"pg1": {"overall_status": "healthy"}}
    assert missing == ["lite2", "pg2", "lite1", "gone"]


def test_no_hostvars_means_every_host_is_missing():
    assert host_results({}, ["pg1"], "r") == ({}, ["pg1"])


def test_prerequisites_pending_is_the_roles_text_or_none():
    task_vars = {"hostvars": {
        "pg1": {"bim_prerequisites_pending": "would create /opt/v and install psycopg"},
        "pg2": {"bim_prerequisites_pending": ""},
        "lite2": BrokenVars(),
    }}
    assert prerequisites_pending(task_vars, "pg1") == "would create /opt/v and install psycopg"
    assert prerequisites_pending(task_vars, "pg2") is None
    assert prerequisites_pending(task_vars, "lite2") is None
    assert prerequisites_pending(task_vars, "gone") is None
