# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet-wide recovery drill: every host restores its latest backup beside the live database,
verifies it and reports RTO/RPO; the live data of every host is provably untouched."""

from __future__ import annotations

import json
import os

import restore_helpers as rh

PLAYBOOK = "bim.wall_system.recovery_drill"
HOSTS = ["pg1", "pg2", "lite1", "lite2"]  # both schema variants: pg2 and lite2 run the "site" one


def drill_vars(fleet, **extra):
    values = {"bim_recovery_drill_state_dir": fleet.state_dir + "/{{ inventory_hostname }}/restore-state"}
    values.update(extra)
    return values


def test_drill_across_the_fleet_leaves_live_data_unchanged(fleet, run_playbook, tmp_path):
    rh.take_backups(run_playbook, tmp_path)
    before = {h: rh.live_digests(fleet, h) for h in HOSTS}

    result = run_playbook(PLAYBOOK, extra_vars=drill_vars(fleet))
    assert result.rc == 0, str(result)

    after = {h: rh.live_digests(fleet, h) for h in HOSTS}
    assert after == before
    with open(os.path.join(result.cwd, "bim-reports", "drill-summary.json")) as handle:
        report = json.load(handle)
    for host in HOSTS:
        entry = report["hosts"][host]
        assert entry["status"] == "passed", entry
        assert float(entry["rto_s"]) > 0 and float(entry["rpo_s"]) >= 0
        assert entry["verified"] is True and entry["live_unchanged"] is True
        assert entry["max_rpo_s"] == 93600 and isinstance(entry["max_rpo_s"], int)  # the default, a number
    assert "bim_drill_summary" in result.stdout or result.rc == 0
    # No scratch copy is left behind.
    for host in HOSTS:
        params = rh.params_of(fleet, host)
        if params.engine == "sqlite":
            folder = os.path.dirname(params.sqlite_path)
            assert [n for n in os.listdir(folder) if ".drill-" in n] == []
        else:
            from ansible_collections.bim.wall_system.plugins.module_utils.restore.targets import make_target
            target = make_target(params, state_dir="/unused")
            assert [n for n in target.engine.databases_like("bim_walls__") if "__drill_" in n] == []


def test_drill_fails_hosts_whose_backup_is_too_old(fleet, run_playbook, tmp_path):
    rh.take_backups(run_playbook, tmp_path, hosts="lite1")
    # given as "-e bim_recovery_drill_max_rpo=0" gives it: a string
    result = run_playbook(PLAYBOOK, extra_vars=drill_vars(fleet, bim_recovery_drill_max_rpo="0"), limit="lite1")
    assert result.rc != 0
    assert "exceeds max_rpo" in result.stdout, str(result)
    with open(os.path.join(result.cwd, "bim-reports", "drill-summary.json")) as handle:
        report = json.load(handle)
    assert report["hosts"]["lite1"]["status"] == "failed"
    assert report["hosts"]["lite1"]["max_rpo_s"] == 0  # a number, as the default is
