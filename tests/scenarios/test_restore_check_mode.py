# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check mode of restore, backup_verify and the three playbooks built on them changes nothing:
live digests, restore points, verification records and the repository stay as they were."""

from __future__ import annotations

import hashlib
import os

import restore_helpers as rh

HOSTS = ["pg1", "pg2", "lite1", "lite2"]


def repo_fingerprint(path):
    digest = hashlib.sha256()
    for root, dirs, files in sorted(os.walk(path)):
        dirs.sort()
        for name in sorted(files):
            if name in ("lock", "lock.guard"):
                continue
            full = os.path.join(root, name)
            digest.update(full.encode())
            with open(full, "rb") as handle:
                digest.update(handle.read())
    return digest.hexdigest()


def test_check_mode_of_every_restore_module_changes_nothing(fleet, run_playbook, tmp_path):
    rh.take_backups(run_playbook, tmp_path)
    state = fleet.state_dir + "/{{ inventory_hostname }}/restore-state"
    before = {h: rh.live_digests(fleet, h) for h in HOSTS}
    points = {h: rh.restore_points(fleet, h, os.path.join(fleet.state_dir, h, "restore-state")) for h in HOSTS}
    repos = {h: repo_fingerprint(fleet.hosts[h]["backup_repository"]) for h in HOSTS}

    runs = [
        ("bim.wall_system.verify_backups", {"bim_verify_state_dir": state}),
        ("bim.wall_system.recovery_drill", {"bim_recovery_drill_state_dir": state}),
        ("bim.wall_system.disaster_recovery", {"bim_restore_hosts": "bim", "bim_restore_state_dir": state,
                                               "bim_restore_log": fleet.state_dir + "/{{ inventory_hostname }}/recovery/check.log"}),
    ]
    for playbook, extra in runs:
        result = run_playbook(playbook, extra_vars=extra, check=True)
        assert result.rc == 0, str(result)
        assert {h: rh.live_digests(fleet, h) for h in HOSTS} == before, playbook
        assert {h: rh.restore_points(fleet, h, os.path.join(fleet.state_dir, h, "restore-state")) for h in HOSTS} == points
        assert {h: repo_fingerprint(fleet.hosts[h]["backup_repository"]) for h in HOSTS} == repos, playbook
    for host in HOSTS:
        assert not os.path.exists(os.path.join(fleet.state_dir, host, "recovery", "check.log"))
