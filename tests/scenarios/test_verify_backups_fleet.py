# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""verify_backups on the fleet: sound backups pass; one flipped byte in one chunk fails the host,
naming the host, the backup and the chunk; the restore refuses before touching live data."""

from __future__ import annotations

import restore_helpers as rh
from conftest import PREREQUISITES

PLAYBOOK = "bim.wall_system.verify_backups"


def verify_vars(fleet, **extra):
    values = {"bim_verify_state_dir": fleet.state_dir + "/{{ inventory_hostname }}/restore-state"}
    values.update(extra)
    return values


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
        restore = run_playbook(str(_restore_playbook(tmp_path)), extra_vars={"backup_id": backup["id"]}, limit=host)
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
        db_socket_dir: "{{ bim_db_socket_dir | default(omit) }}"
        db_password: "{{ bim_db_password | default(omit) }}"
        repository: "{{ bim_backup_repository }}"
        backup_id: "{{ backup_id }}"
        state_dir: "/var/tmp/bim-fleet/{{ inventory_hostname }}/restore-state"
""")
    return path
