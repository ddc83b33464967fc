# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The README quick start, as a new operator runs it, on bare hosts.

The hosts start with nothing but their system Python (the fleet names no interpreter; each
host's virtualenv is removed first), one of them air-gapped (its pip sees no configuration and
an index that refuses every connection: it installs from the controller's wheelhouse). Then the
README's commands, in the README's order, with nothing but the inventory: prerequisites,
health_check (every host healthy), backup, verify_backups, recovery_drill and the disaster
recovery of one host whose database is gone. Runs first (conftest: ``first_contact``), so the
virtualenvs it builds are the ones every later scenario uses.
"""

from __future__ import annotations

import json
import os

import pytest

import restore_helpers as rh
from fleet import UNREACHABLE_INDEX, WHEELHOUSE_HOST

pytestmark = pytest.mark.first_contact


def summary(result, kind):
    with open(os.path.join(result.cwd, "bim-reports", "%s-summary.json" % kind), encoding="utf-8") as handle:
        return json.load(handle)


def bim_hosts(fleet):
    return sorted(n for n, h in fleet.hosts.items() if h["kind"] in ("postgresql", "sqlite"))


def test_readme_quick_start_on_bare_hosts(fleet, run_playbook, tmp_path):
    hosts = bim_hosts(fleet)
    fleet.make_bare()
    for name in hosts:
        assert not os.path.exists(fleet.venv(name)), name

    # 0. A first look with --check installs nothing and fails nothing: each host says what the
    # prerequisites would install (the health check reaches them through its rescue).
    for playbook in ("bim.wall_system.health_check", "bim.wall_system.backup"):
        looked = run_playbook(playbook, check=True)
        assert looked.rc == 0, str(looked)
        for name in hosts:
            assert "would create %s with " % fleet.venv(name) in looked.stdout, (playbook, name, str(looked))
            assert not os.path.exists(fleet.venv(name)), (playbook, name)

    # 1. The prerequisites: every host gets its virtualenv; the air-gapped one from the wheelhouse.
    first = run_playbook("bim.wall_system.prerequisites")
    assert first.rc == 0, str(first)
    for name in hosts:
        stamps = [f for f in os.listdir(fleet.venv(name)) if f.startswith(".bim-prerequisites-")]
        assert len(stamps) == 1, (name, os.listdir(fleet.venv(name)))
    assert os.listdir(fleet.venv(WHEELHOUSE_HOST) + ".wheelhouse"), "the air-gapped host got no wheels"
    assert not os.path.exists(fleet.venv(hosts[0]) + ".wheelhouse")  # the others used their index
    again = run_playbook("bim.wall_system.prerequisites")
    assert again.rc == 0 and "changed=0" in again.stdout and "changed=1" not in again.stdout, str(again)

    # 2. health_check: every host healthy.
    health = run_playbook("bim.wall_system.health_check")
    assert health.rc == 0, str(health)
    assert summary(health, "health")["counts"] == {"healthy": len(hosts)}, summary(health, "health")["problems"]

    # 3. backup, 4. verify_backups, 5. recovery_drill: every host ok.
    backup = run_playbook("bim.wall_system.backup")
    assert backup.rc == 0, str(backup)
    assert summary(backup, "backup")["counts"] == {"ok": len(hosts)}
    verify = run_playbook("bim.wall_system.verify_backups")
    assert verify.rc == 0, str(verify)
    assert summary(verify, "verify")["counts"] == {"passed": len(hosts)}
    drill = run_playbook("bim.wall_system.recovery_drill")
    assert drill.rc == 0, str(drill)
    assert summary(drill, "drill")["counts"] == {"passed": len(hosts)}

    # 6. disaster_recovery of one host whose database is gone: planned first, then brought back.
    # lite2 has the operator's own schema (other R*Tree and column names, no intersections R*Tree).
    host = "lite2"
    manifest = rh.latest_manifest(fleet, host)
    expected = rh.manifest_digests(manifest)
    database = fleet.hosts[host]["sqlite_path"]
    os.unlink(database)
    try:
        plan = run_playbook("bim.wall_system.disaster_recovery", extra_vars={"bim_restore_hosts": host}, check=True)
        assert plan.rc == 0, str(plan)
        assert not os.path.exists(database)
        recovered = run_playbook("bim.wall_system.disaster_recovery", extra_vars={"bim_restore_hosts": host})
        assert recovered.rc == 0, str(recovered)
        assert rh.live_digests(fleet, host, like=manifest) == expected
    finally:
        fleet.reset(host)


def test_an_index_install_really_needs_the_index(fleet, run_playbook, tmp_path):
    """The control of the air-gapped host: the same pip environment without the wheelhouse fails,
    with the installer's message, and leaves no stamp (so the wheelhouse test could fail)."""
    venv = str(tmp_path / "venv")
    result = run_playbook("bim.wall_system.prerequisites", limit=WHEELHOUSE_HOST, extra_vars={
        "bim_prerequisites_venv": venv, "bim_prerequisites_wheelhouse": "",
        "bim_prerequisites_environment": {"PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": UNREACHABLE_INDEX}})
    assert result.rc != 0
    assert "Installing the libraries into %s on %s failed: pip install" % (venv, WHEELHOUSE_HOST) in result.stdout, \
        str(result)
    assert not [f for f in os.listdir(venv) if f.startswith(".bim-prerequisites-")]
