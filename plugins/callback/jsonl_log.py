# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: jsonl_log
type: notification
short_description: Append every task result as a JSON line to a log folder on the controller
version_added: 0.1.0
description:
  - Writes one JSON object per line for every task result (ok, changed, failed, skipped, unreachable) and one
    line with the play recap, into C(<log_folder>/bim-ansible-YYYY-MM-DD.jsonl) (UTC date), for log
    aggregation tools (Loki, Elasticsearch, Splunk, Vector, Fluent Bit).
  - Every line carries a C(run_id) shared by all lines of one C(ansible-playbook) run, the playbook, play,
    task, action, host, status and the task's result.
  - Secrets are removed - results of C(no_log) tasks are replaced by a censored marker, and values of keys
    whose names say password, token, secret, webhook URL, headers or credentials are masked.
  - Lines are appended with C(O_APPEND) under an C(fcntl) lock, so parallel runs interleave whole lines.
    The folder is created 0700, the files 0600.
  - Enable it with C(ANSIBLE_CALLBACKS_ENABLED=bim.wall_system.jsonl_log) or C(callbacks_enabled) in ansible.cfg.
requirements:
  - enabled in the callbacks_enabled setting
options:
  log_folder:
    description: Folder of the log files; a relative path is relative to the current directory.
    type: path
    default: bim-reports/logs
    env:
      - name: BIM_JSONL_LOG_FOLDER
    ini:
      - section: callback_bim_jsonl_log
        key: log_folder
  max_string_length:
    description: Longer strings in results (command output, for example) are cut to this many characters.
    type: int
    default: 16384
    env:
      - name: BIM_JSONL_LOG_MAX_STRING
    ini:
      - section: callback_bim_jsonl_log
        key: max_string_length
"""

import datetime
import json
import os
import uuid

from ansible.plugins.callback import CallbackBase

from ansible_collections.bim.wall_system.plugins.module_utils.alerting.scrub import scrub
from ansible_collections.bim.wall_system.plugins.module_utils.common.locking import file_lock
from ansible_collections.bim.wall_system.plugins.module_utils.common.plain import to_plain

CENSORED = "the output has been hidden due to the fact that 'no_log: true' was specified for this result"


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "bim.wall_system.jsonl_log"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display=None):
        super().__init__(display=display)
        self.run_id = uuid.uuid4().hex
        self.playbook = None
        self.play = None
        self.task_starts = {}
        self.folder = None
        self.limit = 16384

    def set_options(self, task_keys=None, var_options=None, direct=None):
        super().set_options(task_keys=task_keys, var_options=var_options, direct=direct)
        self.folder = os.path.abspath(self.get_option("log_folder"))
        self.limit = int(self.get_option("max_string_length") or 0)

    # --- writing ---------------------------------------------------------------------------
    def _write(self, record):
        now = datetime.datetime.now(datetime.timezone.utc)
        record = dict({"time": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "run_id": self.run_id,
                       "playbook": self.playbook}, **record)
        line = json.dumps(to_plain(scrub(record), self.limit), sort_keys=True, default=str) + "\n"
        try:
            os.makedirs(self.folder, mode=0o700, exist_ok=True)
            path = os.path.join(self.folder, "bim-ansible-%s.jsonl" % now.strftime("%Y-%m-%d"))
            # the log file is its own lock: concurrent runs append whole lines
            with file_lock(path) as fd:
                os.lseek(fd, 0, os.SEEK_END)
                os.write(fd, line.encode("utf-8"))
        except OSError as exc:
            self._display.warning("bim.wall_system.jsonl_log: cannot write to %s: %s" % (self.folder, exc))

    def _task_record(self, result, status):
        task = result._task
        host = result._host.get_name() if result._host else None
        raw = result._result or {}
        if raw.get("_ansible_no_log") or getattr(task, "no_log", False):
            body = {"censored": CENSORED}
        else:
            body = {k: v for k, v in raw.items() if not str(k).startswith("_ansible")}
        started = self.task_starts.get(task._uuid)
        record = {
            "event": "task_result",
            "play": self.play,
            "task": task.get_name(),
            "task_uuid": task._uuid,
            "action": task.action,
            "host": host,
            "status": status,
            "changed": bool(raw.get("changed", False)),
            "result": body,
        }
        delegated = raw.get("_ansible_delegated_vars", {}) or {}
        if delegated.get("ansible_host"):
            record["delegated_to"] = delegated.get("ansible_host")
        if started is not None:
            record["duration_ms"] = round((datetime.datetime.now(datetime.timezone.utc) - started).total_seconds() * 1000.0, 3)
        return record

    # --- events ----------------------------------------------------------------------------
    def v2_playbook_on_start(self, playbook):
        self.playbook = os.path.basename(playbook._file_name)
        self._write({"event": "playbook_start", "playbook_path": playbook._file_name})

    def v2_playbook_on_play_start(self, play):
        self.play = play.get_name()

    def v2_playbook_on_task_start(self, task, is_conditional):
        self.task_starts[task._uuid] = datetime.datetime.now(datetime.timezone.utc)

    def v2_playbook_on_handler_task_start(self, task):
        self.task_starts[task._uuid] = datetime.datetime.now(datetime.timezone.utc)

    def v2_runner_on_ok(self, result):
        self._write(self._task_record(result, "changed" if result._result.get("changed") else "ok"))

    def v2_runner_on_failed(self, result, ignore_errors=False):
        record = self._task_record(result, "failed")
        record["ignore_errors"] = bool(ignore_errors)
        self._write(record)

    def v2_runner_on_skipped(self, result):
        self._write(self._task_record(result, "skipped"))

    def v2_runner_on_unreachable(self, result):
        self._write(self._task_record(result, "unreachable"))

    def v2_playbook_on_stats(self, stats):
        hosts = sorted(stats.processed.keys())
        summary = {h: stats.summarize(h) for h in hosts}
        self._write({"event": "playbook_stats", "stats": summary, "custom": stats.custom or {}})
