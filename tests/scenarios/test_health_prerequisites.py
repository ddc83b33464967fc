# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role prerequisites on the fleet: verify-only mode, a clear list of what is missing, and a
virtualenv install that is a no-op the second time and becomes the interpreter of later tasks."""

from __future__ import annotations

import os
import re

PLAY = """
- name: Prerequisites, then a module through the interpreter they leave behind
  hosts: lite1
  gather_facts: false
  roles:
    - role: bim.wall_system.prerequisites
  tasks:
    - name: Ask the Python that runs modules now
      ansible.builtin.setup:
        gather_subset: [min]
      register: after
    - name: Show it
      ansible.builtin.debug:
        msg: "interpreter={{ after.ansible_facts.ansible_python.executable }}"
"""


def recap(result, host):
    match = re.search(r"^%s\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)" % host,
                      result.stdout, re.M)
    assert match, str(result)
    return dict(zip(("ok", "changed", "unreachable", "failed"), map(int, match.groups())))


def write_play(tmp_path):
    path = tmp_path / "prereq.yml"
    path.write_text(PLAY)
    return str(path)


def test_current_interpreter_with_everything_is_a_no_op(fleet, run_playbook, tmp_path):
    result = run_playbook(write_play(tmp_path), extra_vars={"bim_prerequisites_use_current_interpreter": True})
    assert result.rc == 0, str(result)
    assert recap(result, "lite1")["changed"] == 0
    assert "interpreter=" in result.stdout and "/opt/bim-wall-system" not in result.stdout


def test_current_interpreter_missing_library_fails_with_the_list(fleet, run_playbook, tmp_path):
    result = run_playbook(write_play(tmp_path), extra_vars={
        "bim_prerequisites_use_current_interpreter": True,
        "bim_prerequisites_imports": ["psycopg", "bim_no_such_library", "redis"]})
    assert result.rc != 0
    output = result.stdout + result.stderr
    assert "lacks: bim_no_such_library (ModuleNotFoundError" in output, str(result)
    assert "psycopg (" not in output and "redis (" not in output


def test_virtualenv_install_then_no_op(fleet, run_playbook, tmp_path):
    venv = str(tmp_path / "venv")
    extra = {
        "bim_prerequisites_venv": venv,
        "bim_prerequisites_packages": ["redis"],
        "bim_prerequisites_imports": ["redis"],
        "bim_prerequisites_os_packages": [],
        "bim_prerequisites_virtualenv_command": "%s -m venv" % fleet_python(fleet),
    }
    first = run_playbook(write_play(tmp_path), extra_vars=extra)
    assert first.rc == 0, str(first)
    assert recap(first, "lite1")["changed"] == 1
    assert os.path.exists(os.path.join(venv, "bin", "python"))
    assert "interpreter=%s/bin/python" % venv in first.stdout
    second = run_playbook(write_play(tmp_path), extra_vars=extra)
    assert second.rc == 0, str(second)
    assert recap(second, "lite1")["changed"] == 0
    assert "interpreter=%s/bin/python" % venv in second.stdout


def fleet_python(fleet):
    """The interpreter the fleet inventory gives Ansible (it can build a venv)."""
    with open(fleet.inventory, encoding="utf-8") as handle:
        match = re.search(r"ansible_python_interpreter:\s*(\S+)", handle.read())
    return match.group(1) if match else "python3"
