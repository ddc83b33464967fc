# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""verify_backups on the fleet: sound backups pass; one flipped byte in one chunk fails the host,
naming the host, the backup and the chunk; the restore refuses before touching live data."""

from __future__ import annotations

import json
import os

import restore_helpers as rh
from conftest import PREREQUISITES

PLAYBOOK = "bim.wall_system.verify_backups"


def verify_vars(fleet, **extra):
    values = {"bim_verify_state_dir": fleet.state_dir + "/{{ inventory_hostname }}/restore-state"}
    values.update(extra)
    return values


def test_verify_backups_passes_on_both_schema_variants(fleet, run_playbook, tmp_path):
    """Restore-level verification of every BIM host: the copies' spatial indexes are the ones each
    schema has (walls_outline_gist on pg2, rtree_walls and no intersections R*Tree on lite2)."""
    hosts = ["pg1", "pg2", "lite1", "lite2"]
    rh.take_backups(run_playbook, tmp_path, hosts=":".join(hosts))
    result = run_playbook(PLAYBOOK, extra_vars=verify_vars(fleet), limit=hosts)
    assert result.rc == 0, str(result)
    with open(os.path.join(result.cwd, "bim-reports", "verify-summary.json"), encoding="utf-8") as handle:
        summary = json.load(handle)
    for host in hosts:
        entry = summary["hosts"][host]
        assert entry["status"] == "passed" and len(entry["restored"]) == 1, (host, entry)


def test_verify_backups_passes_then_names_the_flipped_chunk(fleet, run_playbook, tmp_path):
    host = "lite1"
    backup = rh.take_backup(fleet, run_playbook, tmp_path, host)
    result = run_playbook(PLAYBOOK, extra_vars=verify_vars(fleet), limit=host)
    assert result.rc == 0, str(result)

    from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import Repository
    repo = Repository(fleet.hosts[host]["backup_repository"])
    chunk_id = backup["streams"]["database"]["chunks"][0][0]
    path = repo.chunk_path(chunk_id)
    with open(path, "rb") as handle:
        original = handle.read()
    damaged = bytearray(original)
    damaged[len(damaged) // 2] ^= 0x01
    try:
        with open(path, "wb") as handle:
            handle.write(bytes(damaged))
        before = rh.live_digests(fleet, host)
        result = run_playbook(PLAYBOOK, extra_vars=verify_vars(fleet, bim_verify_restore_backups=[backup["id"]]),
                              limit=host)
        assert result.rc != 0
        assert host in result.stdout and backup["id"] in result.stdout and chunk_id in result.stdout, str(result)

        # The restore module refuses this backup and leaves the live database alone.
        restore = run_playbook(str(_restore_playbook(tmp_path)), limit=host,
                               extra_vars={"backup_id": backup["id"], "state_root": fleet.state_dir})
        assert restore.rc != 0 and chunk_id in restore.stdout, str(restore)
        assert rh.live_digests(fleet, host) == before
    finally:
        with open(path, "wb") as handle:
            handle.write(original)


def _restore_playbook(tmp_path):
    path = tmp_path / "restore.yml"
    path.write_text("""
- name: Restore one backup
  hosts: bim
  gather_facts: false
""" + PREREQUISITES + """  tasks:
    - name: Restore with swap
      bim.wall_system.restore:
        engine: "{{ bim_db_engine }}"
        sqlite_path: "{{ bim_sqlite_path | default(omit) }}"
        schema: "{{ bim_schema | default(omit) }}"
        db_socket_dir: "{{ bim_db_socket_dir | default(omit) }}"
        db_password: "{{ bim_db_password | default(omit) }}"
        repository: "{{ bim_backup_repository }}"
        backup_id: "{{ backup_id }}"
        state_dir: "{{ state_root }}/{{ inventory_hostname }}/restore-state"
""")
    return path
