# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bim.wall_system.jsonl_log callback: every task result as one JSON line, secrets removed.

Runs a small playbook on the controller itself (no fleet needed) with the callback enabled the
way an operator enables it: ANSIBLE_CALLBACKS_ENABLED.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

from conftest import DEFAULT_COLLECTIONS_PATH

SECRET = "jsonl-Secret-Value-6612"
PLAYBOOK = """---
- name: Tasks of every outcome
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: A changed command
      ansible.builtin.command: echo hello
      changed_when: true
    - name: A no_log task
      ansible.builtin.command: echo {secret}
      changed_when: false
      no_log: true
    - name: A fact with a password-named key
      ansible.builtin.set_fact:
        app_config:
          db_password: "{secret}"
          webhook_url: "https://hooks.example.test/{secret}"
          port: 5432
    - name: A skipped task
      ansible.builtin.debug:
        msg: never
      when: false
    - name: A failure that is tolerated
      ansible.builtin.fail:
        msg: expected failure
      ignore_errors: true
""".format(secret=SECRET)


def test_every_task_result_is_one_json_line_without_secrets(tmp_path):
    playbook = tmp_path / "outcomes.yml"
    playbook.write_text(PLAYBOOK)
    log_dir = tmp_path / "logs"
    env = dict(os.environ, ANSIBLE_CALLBACKS_ENABLED="bim.wall_system.jsonl_log", BIM_JSONL_LOG_FOLDER=str(log_dir),
               ANSIBLE_COLLECTIONS_PATH=os.environ.get("ANSIBLE_COLLECTIONS_PATH", DEFAULT_COLLECTIONS_PATH),
               ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    tool = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    cmd = [tool, "-i", "localhost,", "-e", "ansible_python_interpreter=%s" % sys.executable, str(playbook)]
    proc = subprocess.run(cmd, cwd=str(tmp_path), env=env, text=True, capture_output=True, timeout=300,
                          stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    files = sorted(log_dir.iterdir())
    assert len(files) == 1 and files[0].name.startswith("bim-ansible-") and files[0].suffix == ".jsonl"
    assert stat.S_IMODE(os.stat(files[0]).st_mode) == 0o600 and stat.S_IMODE(os.stat(log_dir).st_mode) == 0o700
    raw = files[0].read_text()
    assert SECRET not in raw
    lines = [json.loads(line) for line in raw.splitlines()]
    assert len({line["run_id"] for line in lines}) == 1
    results = {line["task"]: line for line in lines if line["event"] == "task_result"}
    assert results["A changed command"]["status"] == "changed" and results["A changed command"]["result"]["stdout"] == "hello"
    assert results["A changed command"]["host"] == "localhost" and results["A changed command"]["playbook"] == "outcomes.yml"
    assert "censored" in results["A no_log task"]["result"]
    config = results["A fact with a password-named key"]["result"]["ansible_facts"]["app_config"]
    assert config["db_password"] == "********" and config["webhook_url"] == "********" and config["port"] == 5432
    assert results["A skipped task"]["status"] == "skipped"
    failed = results["A failure that is tolerated"]
    assert failed["status"] == "failed" and failed["ignore_errors"] is True and failed["result"]["msg"] == "expected failure"
    stats = [line for line in lines if line["event"] == "playbook_stats"]
    assert len(stats) == 1 and stats[0]["stats"]["localhost"]["ignored"] == 1
