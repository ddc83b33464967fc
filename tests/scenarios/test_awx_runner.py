# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""AWX readiness: the health check playbook under ansible-runner (the runner AWX uses) with
extra vars shaped as a job template survey passes them; the set_stats data land in the runner's
artifacts (the ``playbook_on_stats`` event's ``artifact_data``), which is what AWX hands to the
next node of a workflow. And the execution environment definition passes ``ansible-builder create``.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import DEFAULT_COLLECTIONS_PATH

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BASE = ["pg1", "pg2", "lite1"]
VENV_BIN = os.path.dirname(sys.executable)

# What a survey sends: a multiple choice (str), an integer, a multi-select (list), a password.
SURVEY_EXTRA_VARS = {
    "bim_health_fail_on": "never",
    "bim_health_check_timeout": 20,
    "bim_health_checks": ["database", "memory", "application", "logs", "system"],
    "bim_health_report_dir": "bim-reports",
}


def tool(name):
    path = os.path.join(VENV_BIN, name)
    return path if os.path.exists(path) else shutil.which(name)


def private_data_dir(fleet, tmp_path):
    pdd = tmp_path / "runner"
    for sub in ("inventory", "env", "project"):
        (pdd / sub).mkdir(parents=True)
    shutil.copy(fleet.inventory, pdd / "inventory" / "hosts.yml")
    # the AWX project: a thin playbook importing the collection's playbook, and the project's ansible.cfg
    (pdd / "project" / "health_check.yml").write_text(
        "---\n- name: Health check of the BIM fleet (AWX job template)\n"
        "  ansible.builtin.import_playbook: bim.wall_system.health_check\n")
    shutil.copy(fleet.ansible_cfg, pdd / "project" / "ansible.cfg")
    (pdd / "env" / "extravars").write_text(json.dumps(SURVEY_EXTRA_VARS))
    envvars = {
        "ANSIBLE_COLLECTIONS_PATH": os.environ.get("ANSIBLE_COLLECTIONS_PATH", DEFAULT_COLLECTIONS_PATH),
        "ANSIBLE_CONFIG": str(pdd / "project" / "ansible.cfg"),
        "PATH": VENV_BIN + os.pathsep + os.environ.get("PATH", ""),
    }
    (pdd / "env" / "envvars").write_text(json.dumps(envvars))
    return pdd


def test_health_check_playbook_under_ansible_runner(fleet, tmp_path):
    runner = tool("ansible-runner")
    assert runner, "ansible-runner is required (tests/requirements.txt)"
    pdd = private_data_dir(fleet, tmp_path)
    env = dict(os.environ, PATH=VENV_BIN + os.pathsep + os.environ.get("PATH", ""))
    proc = subprocess.run([runner, "run", str(pdd), "-p", "health_check.yml", "--ident", "awx-job-1",
                           "--limit", ",".join(BASE)],
                          capture_output=True, text=True, env=env, timeout=900, stdin=subprocess.DEVNULL, check=False)
    artifacts = pdd / "artifacts" / "awx-job-1"
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert (artifacts / "rc").read_text().strip() == "0"
    assert (artifacts / "status").read_text().strip() == "successful"
    assert "PLAY RECAP" in (artifacts / "stdout").read_text()

    events = []
    for path in sorted(glob.glob(str(artifacts / "job_events" / "*.json"))):
        with open(path, encoding="utf-8") as handle:
            events.append(json.load(handle))
    stats = [e for e in events if e.get("event") == "playbook_on_stats"]
    assert len(stats) == 1
    artifact_data = stats[0]["event_data"]["artifact_data"]
    summary = artifact_data["bim_health_summary"]
    assert sorted(summary["hosts"]) == sorted(BASE) and summary["total"] == 3
    # the alert and fleet report actions hand their own outcome over (no set_stats task)
    assert set(artifact_data["bim_alerts"]) == {"firing", "notified", "suppressed", "resolved", "channel_errors"}
    report = artifact_data["bim_fleet_report"]
    assert sorted(report["hosts"]) == sorted(BASE) and os.path.isfile(os.path.join(pdd / "project", report["html"])), report
    # the survey's values reached the play: only the selected checks ran
    results = [e for e in events if e.get("event") == "runner_on_ok"
               and e["event_data"].get("task_action") == "bim.wall_system.health_check"]
    assert sorted(e["event_data"]["host"] for e in results) == sorted(BASE)
    for event in results:
        names = [c["name"] for c in event["event_data"]["res"]["checks"]]
        assert names == ["database", "memory", "application", "logs", "system"]
    # the playbook ran in the project folder: its reports are there, as on an AWX node
    assert (pdd / "project" / "bim-reports" / "health-summary.json").exists()


def test_execution_environment_definition_passes_ansible_builder(tmp_path):
    builder = tool("ansible-builder")
    assert builder, "ansible-builder is required (tests/requirements.txt)"
    definition = os.path.join(ROOT, "meta", "execution-environment.yml")
    if not os.path.exists(definition):
        pytest.fail("meta/execution-environment.yml is missing")
    context = tmp_path / "ee-context"
    proc = subprocess.run([builder, "create", "--file", definition, "--context", str(context)],
                          capture_output=True, text=True, timeout=300, cwd=os.path.join(ROOT, "meta"), check=False)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    # ansible-builder names the file after the container runtime (Dockerfile by default, Containerfile for podman)
    files = [context / n for n in ("Containerfile", "Dockerfile") if (context / n).exists()]
    assert len(files) == 1, sorted(os.listdir(context))
    text = files[0].read_text()
    assert "requirements.yml" in text and "ansible-galaxy" in text
    with open(context / "_build" / "requirements.yml", encoding="utf-8") as handle:
        assert "bim.wall_system" in handle.read()
