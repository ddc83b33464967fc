# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Role prerequisites on the fleet: verify-only mode, a clear list of what is missing, and a
virtualenv install that is a no-op the second time, survives a kill, and installs once when two
playbooks reach a host at the same moment. (The bare-host and air-gapped installs of the README
quick start are in test_quick_start.py.)"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import time

from conftest import _tool, ansible_env

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


def host_venv_python(fleet):
    return os.path.join(fleet.venv("lite1"), "bin", "python")


def small_venv(tmp_path):
    return {"bim_prerequisites_venv": str(tmp_path / "venv"), "bim_prerequisites_packages": ["redis"],
            "bim_prerequisites_imports": ["redis"], "bim_prerequisites_programs": []}


def stamps(venv):
    return [f for f in os.listdir(venv) if f.startswith(".bim-prerequisites-")] if os.path.isdir(venv) else []


def test_current_interpreter_with_everything_is_a_no_op(fleet, run_playbook, tmp_path, host_libraries):
    result = run_playbook(write_play(tmp_path), extra_vars={"bim_prerequisites_use_current_interpreter": True,
                                                            "ansible_python_interpreter": host_venv_python(fleet)})
    assert result.rc == 0, str(result)
    assert recap(result, "lite1")["changed"] == 0
    assert "interpreter=%s" % host_venv_python(fleet) in result.stdout


def test_current_interpreter_missing_library_fails_with_the_list(fleet, run_playbook, tmp_path, host_libraries):
    result = run_playbook(write_play(tmp_path), extra_vars={
        "bim_prerequisites_use_current_interpreter": True, "ansible_python_interpreter": host_venv_python(fleet),
        "bim_prerequisites_imports": ["psycopg", "bim_no_such_library", "redis"]})
    assert result.rc != 0
    output = result.stdout + result.stderr
    assert "lacks: bim_no_such_library (ModuleNotFoundError" in output, str(result)
    assert "psycopg (" not in output and "redis (" not in output


def test_virtualenv_install_then_no_op_and_check_mode_installs_nothing(fleet, run_playbook, tmp_path):
    extra = small_venv(tmp_path)
    venv = extra["bim_prerequisites_venv"]
    planned = run_playbook(write_play(tmp_path), extra_vars=extra, check=True)
    assert planned.rc == 0, str(planned)
    assert "would create %s" % venv in planned.stdout and not os.path.exists(venv)
    first = run_playbook(write_play(tmp_path), extra_vars=extra)
    assert first.rc == 0, str(first)
    assert recap(first, "lite1")["changed"] == 1
    assert "interpreter=%s/bin/python" % venv in first.stdout
    assert len(stamps(venv)) == 1
    second = run_playbook(write_play(tmp_path), extra_vars=extra)
    assert second.rc == 0, str(second)
    assert recap(second, "lite1")["changed"] == 0
    assert "interpreter=%s/bin/python" % venv in second.stdout
    # A new list of libraries (a new release) is a new install.
    newer = dict(extra, bim_prerequisites_packages=["redis", "six"], bim_prerequisites_imports=["redis", "six"])
    third = run_playbook(write_play(tmp_path), extra_vars=newer)
    assert third.rc == 0 and recap(third, "lite1")["changed"] == 1, str(third)
    assert len(stamps(venv)) == 1


def _start(fleet, tmp_path, extra, name):
    folder = tmp_path / name
    folder.mkdir()
    import json
    return subprocess.Popen([_tool("ansible-playbook"), "-i", fleet.inventory, "-e", json.dumps(extra),
                             write_play(tmp_path)], cwd=str(folder), env=ansible_env(fleet), text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_two_playbooks_at_once_install_once(fleet, tmp_path):
    extra = small_venv(tmp_path)
    runs = [_start(fleet, tmp_path, extra, "run%d" % i) for i in (1, 2)]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    installs = [re.search(r"Create the virtualenv.*?\n(ok|changed): \[lite1\]", out, re.S) for out in outputs]
    assert sorted(m.group(1) for m in installs) == ["changed", "ok"], outputs
    assert len(stamps(extra["bim_prerequisites_venv"])) == 1


def _installer_pids(venv):
    """The installer started for VENV (the test's own path) and its descendants."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as handle:
                cmdline = handle.read().replace(b"\0", b" ")
        except OSError:
            continue
        if b"install_venv.py" in cmdline and venv.encode() in cmdline:
            found.add(int(entry))
    children = set()
    for pid in found:
        children |= _descendants(pid)
    return found | children


def _descendants(pid):
    out = set()
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as handle:
            kids = [int(k) for k in handle.read().split()]
    except OSError:
        return out
    for kid in kids:
        out.add(kid)
        out |= _descendants(kid)
    return out


def test_install_killed_midway_is_redone_by_the_next_run(fleet, run_playbook, tmp_path):
    extra = small_venv(tmp_path)
    venv = extra["bim_prerequisites_venv"]
    run = _start(fleet, tmp_path, extra, "killed")
    deadline = time.time() + 300
    pids = set()
    while time.time() < deadline and not os.path.exists(os.path.join(venv, "pyvenv.cfg")):
        time.sleep(0.05)
    time.sleep(random.uniform(0.0, 0.5))  # somewhere in venv creation or pip install (seconds long)
    pids = _installer_pids(venv)
    assert pids, "the installer never started"
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    out = run.communicate(timeout=300)[0]
    assert run.returncode != 0, out
    assert stamps(venv) == []  # the stamp comes last: a killed install is not taken for done
    again = run_playbook(write_play(tmp_path), extra_vars=extra)
    assert again.rc == 0, str(again)
    assert recap(again, "lite1")["changed"] == 1 and len(stamps(venv)) == 1


PROBE_TASK = "TASK [bim.wall_system.prerequisites : Look for the virtualenv of the collection's libraries]"
INSTALL_TASK = "TASK [bim.wall_system.prerequisites : Create the virtualenv and install the libraries"


def lite1_status(tmp_path):
    with open(os.path.join(tmp_path, "bim-reports", "health-summary.json"), encoding="utf-8") as handle:
        return json.load(handle)["hosts"]["lite1"]["status"]


def test_health_check_installs_only_where_the_libraries_are_missing(fleet, run_playbook, tmp_path):
    """The health check does not probe first: it runs with the virtualenv's Python and runs the
    prerequisites role only on a host where that Python is missing or its stamp is not this release's.
    From a wheelhouse, so the install runs modules (copy) with the host's own Python again."""
    extra = dict(small_venv(tmp_path), bim_prerequisites_wheelhouse=str(tmp_path / "wheelhouse"))
    venv = extra["bim_prerequisites_venv"]
    first = run_playbook("bim.wall_system.health_check", extra_vars=extra, limit="lite1")
    assert first.rc == 0, str(first)
    assert PROBE_TASK in first.stdout and len(stamps(venv)) == 1  # no virtualenv: installed, then checked
    assert os.listdir(venv + ".wheelhouse"), "the install did not copy the wheels"
    assert lite1_status(tmp_path) == "healthy"
    second = run_playbook("bim.wall_system.health_check", extra_vars=extra, limit="lite1")
    assert second.rc == 0, str(second)
    assert PROBE_TASK not in second.stdout and recap(second, "lite1")["failed"] == 0
    assert lite1_status(tmp_path) == "healthy"
    # A new release's list of libraries has another stamp: the module stops at once, the role installs.
    newer = dict(extra, bim_prerequisites_packages=["redis", "six"], bim_prerequisites_imports=["redis", "six"])
    third = run_playbook("bim.wall_system.health_check", extra_vars=newer, limit="lite1")
    assert third.rc == 0, str(third)
    assert PROBE_TASK in third.stdout and recap(third, "lite1")["changed"] >= 1
    assert lite1_status(tmp_path) == "healthy"


def test_health_check_on_the_current_interpreter_lacking_a_library_fails_with_the_list(
        fleet, run_playbook, tmp_path, host_libraries):
    """bim_prerequisites_use_current_interpreter: a check that finds its library missing sends the
    host through the prerequisites role, which fails it with what is missing (nothing installed)."""
    system_python = "/usr/bin/python3"  # the bare host's own Python: no psycopg
    result = run_playbook("bim.wall_system.health_check", limit="pg1", extra_vars={
        "bim_prerequisites_use_current_interpreter": True, "ansible_python_interpreter": system_python})
    assert result.rc != 0
    output = result.stdout + result.stderr
    assert INSTALL_TASK not in output  # verify-only mode: nothing installed
    assert "lacks: psycopg" in output, str(result)
