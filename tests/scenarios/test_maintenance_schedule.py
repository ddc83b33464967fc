# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scheduling as code: the cron variant installed for real on this controller, and the AWX playbook
checked with the awx.awx collection (no AWX instance runs here)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from conftest import DEFAULT_COLLECTIONS_PATH

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SEED = {  # job -> (minute hour day month weekday) of the seed guide
    "database_cleanup": "0 2 * * *",
    "cache_optimization": "0 3 * * *",
    "performance_analysis": "0 1 * * 0",
    "database_optimization": "0 2 * * 0",
    "full_system_check": "0 1 1 * *",
}


def tool(name):
    candidate = os.path.join(os.path.dirname(sys.executable), name)
    return candidate if os.path.exists(candidate) else shutil.which(name)


def env():
    merged = dict(os.environ)
    merged.setdefault("ANSIBLE_COLLECTIONS_PATH", DEFAULT_COLLECTIONS_PATH)
    merged["ANSIBLE_NOCOLOR"] = "1"
    return merged


def apply_role(tmp_path, cron_file, state="present"):
    playbook = tmp_path / "schedule.yml"
    playbook.write_text(
        "- name: Maintenance schedule on this controller\n"
        "  hosts: localhost\n"
        "  connection: local\n"
        "  gather_facts: false\n"
        "  roles:\n"
        "    - role: bim.wall_system.maintenance_schedule\n", encoding="utf-8")
    cmd = [tool("ansible-playbook"), "-i", "localhost,", str(playbook),
           "-e", "bim_maintenance_schedule_cron_file=%s" % cron_file,
           "-e", "bim_maintenance_schedule_log_dir=%s" % (tmp_path / "logs"),
           "-e", "bim_maintenance_schedule_workdir=%s" % (tmp_path / "work"),
           "-e", "bim_maintenance_schedule_inventory=/etc/bim/inventory.yml",
           "-e", "bim_maintenance_schedule_state=%s" % state,
           "-e", "ansible_python_interpreter=%s" % sys.executable]
    return subprocess.run(cmd, cwd=str(tmp_path), env=env(), capture_output=True, text=True, timeout=300, check=False)


def entries(cron_file):
    lines = open(cron_file, encoding="utf-8").read().splitlines()
    jobs = {}
    for comment, line in zip(lines, lines[1:]):
        if comment.startswith("#Ansible: bim.wall_system maintenance "):
            jobs[comment.split()[-1]] = line
    return jobs


def test_cron_variant_installs_the_seed_schedule_idempotently_and_removes_it(tmp_path):
    if not shutil.which("crontab"):
        pytest.skip("the cron package (crontab) is not installed")
    cron_file = str(tmp_path / "cron.d" / "bim-wall-system-maintenance")
    os.makedirs(os.path.dirname(cron_file))
    first = apply_role(tmp_path, cron_file)
    assert first.returncode == 0, first.stdout + first.stderr
    jobs = entries(cron_file)
    assert set(jobs) == set(SEED)
    for job, when in SEED.items():
        line = jobs[job]
        assert line.startswith(when + " root "), line
        assert "bim.wall_system.maintenance_window" in line and "-i /etc/bim/inventory.yml" in line
        assert '{"bim_maintenance_tasks": ["%s"]}' % job in line
        assert "bim_maintenance_window_end=" in line and "%" not in line  # % would end a cron command
    assert oct(os.stat(tmp_path / "logs").st_mode & 0o777) == "0o700"
    second = apply_role(tmp_path, cron_file)
    assert second.returncode == 0 and "changed=0" in second.stdout, second.stdout
    removed = apply_role(tmp_path, cron_file, state="absent")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert not os.path.exists(cron_file) or entries(cron_file) == {}


def test_awx_setup_passes_syntax_check_with_the_awx_collection(tmp_path):
    # kept between runs on one machine: the installer downloads the ansible wheel (about 54 MB) once
    dest = os.environ.get("BIM_AWX_COLLECTIONS", os.path.expanduser("~/.cache/bim-awx-collections"))
    install = subprocess.run([sys.executable, os.path.join(ROOT, "tests", "awx_collection.py"), "--dest", str(dest)],
                             capture_output=True, text=True, timeout=600, check=False)
    if install.returncode != 0:
        pytest.skip("awx.awx could not be fetched from PyPI here: %s" % install.stderr[-500:])
    merged = env()
    merged["ANSIBLE_COLLECTIONS_PATH"] = "%s:%s" % (dest, merged["ANSIBLE_COLLECTIONS_PATH"])
    check = subprocess.run([tool("ansible-playbook"), "--syntax-check", "-i", "localhost,",
                            os.path.join(ROOT, "playbooks", "awx_setup.yml")],
                           env=merged, capture_output=True, text=True, timeout=300, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    # without the collection the playbook cannot load: the dependency is real
    merged["ANSIBLE_COLLECTIONS_PATH"] = env()["ANSIBLE_COLLECTIONS_PATH"]
    merged["ANSIBLE_COLLECTIONS_PATH"] += ":%s" % (tmp_path / "empty")
    bare = subprocess.run([tool("ansible-playbook"), "--syntax-check", "-i", "localhost,",
                           os.path.join(ROOT, "playbooks", "awx_setup.yml")],
                          env=merged, capture_output=True, text=True, timeout=300, check=False)
    if os.path.isdir(os.path.expanduser("~/.ansible/collections/ansible_collections/awx/awx")):
        return  # found in the default path too: nothing to compare
    assert bare.returncode != 0 and "awx.awx" in bare.stdout + bare.stderr
