# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the playbook scenarios: the loopback fleet and a way to run playbooks against it.

    fleet          session: the fleet of tests/fleet/fleet.py, brought up once if it is not up
                   (never torn down here: the test command runs `fleet.py down` at the end).
                   .inventory .ansible_cfg .state_dir .hosts (name -> info) .password and
                   set_app_metrics(host, **values), set_app_health(host, ok), stop_db(host),
                   start_db(host), stop_sshd(host), start_sshd(host), stop_app(host),
                   start_app(host), reset(host).
    run_playbook   run_playbook(playbook, extra_vars=None, limit=None, check=False, env=None)
                   -> result with .rc .stdout .stderr .cmd .cwd (a fresh folder per test, so a
                   playbook's bim-reports/ lands in result.cwd / "bim-reports").
    run_ansible    run_ansible(pattern, module, args=None, env=None) -> result of an ad-hoc run;
                   result.hosts maps each host to "ok", "changed", "failed" or "unreachable".
                   A module of this collection runs with the host's virtualenv (built first by
                   the role prerequisites if needed), as an operator's ad-hoc command would with
                   -e ansible_python_interpreter=/opt/bim-wall-system/venv/bin/python.
    PREREQUISITES  the play header that a test's own playbook starts with when it calls the
                   collection's modules directly: the role prerequisites, as docs/health.md says.

The hosts are bare (tests/fleet/fleet.py): the shipped playbooks bring their libraries.

Environment: BIM_FLEET_STATE_DIR (default /var/tmp/bim-fleet), BIM_FLEET_WALLS (default 2000),
ANSIBLE_COLLECTIONS_PATH (default: tests/collections_root.py, the tree's own build).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
FLEET_DIR = os.path.join(os.path.dirname(HERE), "fleet")
sys.path.insert(0, FLEET_DIR)
sys.path.insert(0, os.path.dirname(HERE))

import fleet as fleet_lib  # noqa: E402
from collections_root import collections_path  # noqa: E402

DEFAULT_COLLECTIONS_PATH = collections_path()

# Scenario tests may import the collection's plain-Python libraries (ansible_collections.bim...):
# the collection under test is the one ANSIBLE_COLLECTIONS_PATH names, for Python too.
for _path in os.environ.get("ANSIBLE_COLLECTIONS_PATH", DEFAULT_COLLECTIONS_PATH).split(os.pathsep):
    if _path and os.path.isdir(os.path.join(_path, "ansible_collections")) and _path not in sys.path:
        sys.path.append(_path)


def pytest_configure(config):
    config.addinivalue_line("markers", "first_contact: runs before every other scenario (it starts from bare hosts)")


def pytest_collection_modifyitems(items):
    """The scenarios marked first_contact run first: they prove what a bare host goes through,
    and every later scenario then finds the hosts as those playbooks left them."""
    items.sort(key=lambda item: item.get_closest_marker("first_contact") is None)


def _tool(name):
    """The Ansible CLI next to the running Python (the venv), else the one on PATH."""
    candidate = os.path.join(os.path.dirname(sys.executable), name)
    return candidate if os.path.exists(candidate) else (shutil.which(name) or name)


@dataclasses.dataclass
class Result:
    rc: int
    stdout: str
    stderr: str
    cmd: list
    cwd: str
    hosts: dict = dataclasses.field(default_factory=dict)

    def __str__(self):
        return "rc=%s\ncmd=%s\n--- stdout\n%s\n--- stderr\n%s" % (
            self.rc, " ".join(self.cmd), self.stdout[-8000:], self.stderr[-4000:])


def ansible_env(fleet, env=None):
    merged = dict(os.environ)
    merged.setdefault("ANSIBLE_COLLECTIONS_PATH", DEFAULT_COLLECTIONS_PATH)
    merged.update({
        "ANSIBLE_CONFIG": fleet.ansible_cfg,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_DEPRECATION_WARNINGS": "0",
        "PATH": os.path.dirname(sys.executable) + os.pathsep + merged.get("PATH", ""),
    })
    if env:
        merged.update(env)
    return merged


@pytest.fixture(scope="session")
def fleet():
    state_dir = os.environ.get("BIM_FLEET_STATE_DIR", fleet_lib.DEFAULT_STATE_DIR)
    walls = int(os.environ.get("BIM_FLEET_WALLS", "2000"))
    handle = fleet_lib.Fleet(state_dir)
    handle.ensure_up(walls=walls)
    return handle


@pytest.fixture
def run_playbook(fleet, tmp_path):
    def run(playbook, extra_vars=None, limit=None, check=False, env=None, timeout=900, while_running=None):
        """``while_running(proc)``: called once the play is started (a fault test's kill), before its end."""
        cmd = [_tool("ansible-playbook"), "-i", fleet.inventory]
        if extra_vars:
            cmd += ["-e", json.dumps(extra_vars)]
        if limit:
            cmd += ["--limit", limit if isinstance(limit, str) else ",".join(limit)]
        if check:
            cmd.append("--check")
        if os.path.exists(playbook) or os.sep in playbook:
            playbook = os.path.abspath(playbook)
        cmd.append(playbook)
        if while_running is None:
            proc = subprocess.run(cmd, cwd=str(tmp_path), env=ansible_env(fleet, env), text=True,
                                  stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False)
            return Result(proc.returncode, proc.stdout, proc.stderr, cmd, str(tmp_path))
        with subprocess.Popen(cmd, cwd=str(tmp_path), env=ansible_env(fleet, env), text=True, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
            try:
                while_running(proc)
            finally:
                stdout, stderr = proc.communicate(timeout=timeout)
        return Result(proc.returncode, stdout, stderr, cmd, str(tmp_path))

    return run


# A test's own play that calls the collection's modules directly starts with this role.
PREREQUISITES = """  roles:
    - role: bim.wall_system.prerequisites
"""

PREREQUISITES_PLAY = """
- name: The collection's libraries on the BIM hosts
  hosts: bim
  gather_facts: false
""" + PREREQUISITES


# An ad-hoc run of one of the collection's modules names the host's virtualenv (-e of ansible).
HOST_VENV_PYTHON = "ansible_python_interpreter={{ bim_prerequisites_venv }}/bin/python"


@pytest.fixture(scope="session")
def host_libraries(fleet, tmp_path_factory):
    """The role prerequisites has run on every BIM host (a no-op when it has): for ad-hoc module
    runs, which run no role."""
    folder = tmp_path_factory.mktemp("prerequisites")
    (folder / "prerequisites.yml").write_text(PREREQUISITES_PLAY)
    proc = subprocess.run([_tool("ansible-playbook"), "-i", fleet.inventory, str(folder / "prerequisites.yml")],
                          cwd=str(folder), env=ansible_env(fleet), text=True, stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


@pytest.fixture
def run_ansible(fleet, tmp_path, request):
    def run(pattern, module, args=None, env=None, timeout=300):
        cmd = [_tool("ansible"), "-i", fleet.inventory, pattern, "-m", module]
        if module.startswith("bim.wall_system."):
            request.getfixturevalue("host_libraries")
            cmd += ["-e", HOST_VENV_PYTHON]
        if args:
            cmd += ["-a", args if isinstance(args, str) else json.dumps(args)]
        proc = subprocess.run(cmd, cwd=str(tmp_path), env=ansible_env(fleet, env), text=True,
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False)
        result = Result(proc.returncode, proc.stdout, proc.stderr, cmd, str(tmp_path))
        # the default callback's ad-hoc lines: "pg1 | SUCCESS => {", "pg2 | UNREACHABLE! => {"
        words = {"SUCCESS": "ok", "CHANGED": "changed", "FAILED!": "failed", "UNREACHABLE!": "unreachable"}
        for host, word in re.findall(r"^(\S+) \| (SUCCESS|CHANGED|FAILED!|UNREACHABLE!)",
                                     proc.stdout + "\n" + proc.stderr, re.M):
            result.hosts[host] = words[word]
        return result

    return run


def fingerprint(public_key_file):
    """SHA256:... of a public key file, as ssh-keygen -l prints it."""
    out = subprocess.check_output(["ssh-keygen", "-l", "-E", "sha256", "-f", public_key_file], text=True)
    return out.split()[1]


@pytest.fixture
def storage_key(fleet):
    """storage1's host key files; the original ones are put back (and its sshd restarted) afterwards."""
    key = fleet.hdir("storage1", "ssh", "ssh_host_ed25519_key")
    saved = key + ".scenario-saved"
    for name in (key, key + ".pub"):
        shutil.copy2(name, name.replace(key, saved))
    try:
        yield key
    finally:
        for name in (key, key + ".pub"):
            shutil.copy2(name.replace(key, saved), name)
            os.unlink(name.replace(key, saved))
        fleet.stop_sshd("storage1")
        fleet.start_sshd("storage1")


def replace_storage_host_key(fleet, key):
    """A new host key on storage1 (someone answers in its place, or it was reinstalled)."""
    for name in (key, key + ".pub"):
        os.unlink(name)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "not-storage1", "-f", key], check=True)
    # stop_sshd kills the pid in storage1's pid file (and the sessions it serves), nothing else
    fleet.stop_sshd("storage1")
    fleet.start_sshd("storage1")
