# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The systemd unit role monitoring ships for real hosts, rendered by Ansible and read by systemd.

The test machine runs no systemd, but ``systemd-analyze verify`` loads a unit file the way the
manager would and reports every setting it cannot use; the unit must load without one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import DEFAULT_COLLECTIONS_PATH

UNIT = "bim-monitoring.service"


def render(tmp_path, engine, extra=None):
    collections = os.environ.get("ANSIBLE_COLLECTIONS_PATH", DEFAULT_COLLECTIONS_PATH).split(os.pathsep)[0]
    template = os.path.join(collections, "ansible_collections", "bim", "wall_system", "roles", "monitoring",
                            "templates", "bim-monitoring.service.j2")
    launcher = tmp_path / "opt" / "bin" / "bim-monitoring"
    launcher.parent.mkdir(parents=True)
    launcher.write_text("")
    variables = {"bim_db_engine": engine, "bim_sqlite_path": str(tmp_path / "data" / "walls.db"),
                 "bim_monitoring_user": "root", "bim_monitoring_group": "root",
                 "bim_monitoring_memory_max": "256M", "bim_monitoring_cpu_quota": "20%",
                 "bim_monitoring_textfile": "/var/lib/prometheus/node-exporter/bim_monitoring.prom",
                 "__bim_monitoring_install": {"command": [sys.executable, "-I", str(launcher), "--config",
                                                          "/etc/bim-wall-system/monitoring.json"]}}
    variables.update(extra or {})
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    dest = tmp_path / "units" / UNIT
    dest.parent.mkdir()
    ansible = os.path.join(os.path.dirname(sys.executable), "ansible")
    proc = subprocess.run([ansible, "localhost", "-c", "local", "-m", "ansible.builtin.template", "-a",
                           "src=%s dest=%s" % (template, dest), "-e", "@%s" % (tmp_path / "vars.json")],
                          capture_output=True, text=True, check=False, timeout=300,
                          env=dict(os.environ, ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dest


def verify(unit):
    if not shutil.which("systemd-analyze"):
        pytest.fail("systemd-analyze (Debian package systemd) is required")
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True,
                          check=False, timeout=120, cwd=str(unit.parent))
    # only what systemd says about this unit (the machine's other units are not ours)
    return proc.returncode, [line for line in (proc.stdout + proc.stderr).splitlines() if UNIT in line]


def test_unit_loads_in_systemd_without_a_complaint(tmp_path):
    unit = render(tmp_path, "sqlite")
    text = unit.read_text()
    assert "ExecStart=%s -I " % sys.executable in text
    assert "ReadWritePaths=%s\n" % (tmp_path / "data") in text  # SQLite's -shm file beside the database
    rc, complaints = verify(unit)
    assert rc == 0 and complaints == [], complaints


def test_verify_reports_a_bad_setting(tmp_path):
    """The check can fail: a CPU quota systemd cannot read is reported."""
    unit = render(tmp_path, "postgresql", {"bim_monitoring_cpu_quota": "a lot"})
    _rc, complaints = verify(unit)
    assert any("CPU quota" in line for line in complaints), complaints
