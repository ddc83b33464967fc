# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers of the restore, drill and verify scenarios: backups on fleet hosts, live digests read
the way an operator would (straight from each host's database), recovery log lines."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess

from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import ConnectionParams
from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine
from conftest import PREREQUISITES

BACKUP_PLAYBOOK = """
- name: Take a backup on the BIM hosts
  hosts: "{{ backup_hosts | default('bim') }}"
  gather_facts: false
  # the collection's one mapping of bim_db_* (role prerequisites), as a user's own play would set it
  module_defaults:
    group/bim.wall_system.database: "{{ __bim_db_connection }}"
""" + PREREQUISITES + """  tasks:
    - name: Backup
      bim.wall_system.backup:
        repository: "{{ bim_backup_repository }}"
        type: full
        include_paths: "{{ backup_include_paths | default([]) }}"
        copy_to: "{{ backup_copy_to | default([]) }}"
      register: taken

    - name: Hand the backup id to the test
      ansible.builtin.copy:
        content: "{{ taken | to_json }}"
        dest: "{{ backup_result_dir }}/{{ inventory_hostname }}.json"
        mode: "0600"
      delegate_to: localhost
"""


def take_backups(run_playbook, tmp_path, hosts="bim", extra=None):
    path = tmp_path / "take_backup.yml"
    path.write_text(BACKUP_PLAYBOOK)
    out = tmp_path / "taken"
    out.mkdir(exist_ok=True)
    extra_vars = {"backup_hosts": hosts, "backup_result_dir": str(out)}
    extra_vars.update(extra or {})
    result = run_playbook(str(path), extra_vars=extra_vars)
    assert result.rc == 0, str(result)
    return {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}


def take_backup(fleet, run_playbook, tmp_path, host, extra=None):
    """One backup of ``host``; returns its manifest (other runs may add backups meanwhile)."""
    taken = take_backups(run_playbook, tmp_path, hosts=host, extra=extra)
    from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import Repository
    return Repository(fleet.hosts[host]["backup_repository"]).load_manifest(taken[host]["backup_id"])


def params_of(fleet, name, db_name="bim_walls"):
    info = fleet.hosts[name]
    if info["kind"] == "sqlite":
        return ConnectionParams(engine="sqlite", sqlite_path=info["sqlite_path"], connect_timeout=5)
    return ConnectionParams(engine="postgresql", db_socket_dir=info["db_socket_dir"], db_port=5432, db_user="postgres",
                            db_password=fleet.password, db_name=db_name, connect_timeout=5)


def live_digests(fleet, name, like=None):
    """Table digests of the host's live database; None when it does not exist. ``like``: a
    manifest whose digests they are compared with (then taken in its forms, as a verification
    takes them, and given as ``manifest_digests`` gives the manifest's)."""
    params = params_of(fleet, name)
    if params.engine == "sqlite":
        if not os.path.exists(params.sqlite_path):
            return None
    else:
        admin = open_engine(dataclasses.replace(params, db_name="postgres"))
        if not admin.database_exists(params.db_name):
            return None
    with open_engine(params) as eng:
        return digests_like(eng, like)


def digests_like(eng, manifest=None):
    """``eng``'s table digests, in the forms ``manifest`` records when one is given."""
    if manifest is None:
        return eng.table_digests()
    tables = manifest["tables"]
    found = eng.table_digests(tuple(tables), forms={t: e.get("digest_form") for t, e in tables.items()}, recorded=tables)
    return manifest_digests({"tables": found})


def latest_manifest(fleet, name):
    from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import Repository
    return Repository(fleet.hosts[name]["backup_repository"]).resolve("latest")


def manifest_digests(manifest):
    """The manifest's digests as ``live_digests`` returns them (PostgreSQL's name their form)."""
    fields = ("rows", "digest", "digest_form")
    return {t: {k: v[k] for k in fields if k in v} for t, v in manifest["tables"].items()}


def restore_points(fleet, name, state_dir):
    from ansible_collections.bim.wall_system.plugins.module_utils.restore.targets import make_target
    return make_target(params_of(fleet, name), state_dir=state_dir).restore_points()


def drop_restore_points(fleet, name, state_dir):
    from ansible_collections.bim.wall_system.plugins.module_utils.restore.targets import make_target
    target = make_target(params_of(fleet, name), state_dir=state_dir)
    for point in target.restore_points():
        target.drop(point)


def recovery_log(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def app_pid_running(fleet, name):
    """True when the application stand-in answers /health (200 or 503)."""
    import appctl  # tests/fleet is on sys.path through the scenarios' conftest
    return appctl.health_answers(appctl.load_config(fleet.hdir(name, "app")))


def drop_pg_database(fleet, name):
    params = params_of(fleet, name)
    admin = open_engine(dataclasses.replace(params, db_name="postgres"))
    admin.drop_database(params.db_name)


def mount_tmpfs(path, size):
    os.makedirs(path, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s" % size, "tmpfs", path], check=False).returncode == 0


def umount(path):
    subprocess.run(["umount", "-l", path], check=False)
    shutil.rmtree(path, ignore_errors=True)
