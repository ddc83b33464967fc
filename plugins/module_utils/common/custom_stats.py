# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Custom stats for AWX / ansible-runner straight from an action's result."""

from __future__ import annotations


def custom_stat(name, data):
    """What ``ansible.builtin.set_stats`` returns for ``{name: data}`` (aggregated, not per host):
    the strategy records ``ansible_stats`` from any task's result, so the controller-side actions
    (fleet_summary, alert, fleet_report) hand over their outcome without a set_stats task."""
    return {"data": {name: data}, "per_host": False, "aggregate": True}
