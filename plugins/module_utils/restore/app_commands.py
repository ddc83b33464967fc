# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The application's stop and start commands around a restore's swap (``restore`` module
options ``app_stop_command``/``app_start_command``, the restore role's ``bim_app_stop_command``/
``bim_app_start_command``).

The stop command runs right before the swap, after the restored copy (and the configuration files)
are verified and staged; the start command after the swap and the files, or again after any failure
once the application was stopped (the live data is then untouched or rolled back). Each command that
ran is returned and written to the recovery log (``app_stop``, ``app_start``).
"""

from __future__ import annotations

import time

from ansible_collections.bim.wall_system.plugins.module_utils.common.process import failure_text
from ansible_collections.bim.wall_system.plugins.module_utils.restore.errors import RestoreError

OUTPUT_KEPT = 2000  # characters of a command's output kept in the result


class AppCommands:
    """``run(cmd) -> (rc, stdout, stderr)`` runs one command without a shell (the module's
    ``run_command``); ``log`` is a ``RecoveryLog``."""

    def __init__(self, run, stop_command, start_command, log):
        self.run = run
        self.commands = {"stop": stop_command, "start": start_command}
        self.log = log
        self.ran = []
        self.stopped = False

    def _run(self, action):
        started = time.monotonic()
        rc, out, err = self.run(self.commands[action])
        item = {"action": action, "cmd": self.commands[action], "rc": rc, "stdout": (out or "")[-OUTPUT_KEPT:],
                "stderr": (err or "")[-OUTPUT_KEPT:], "duration_s": round(time.monotonic() - started, 3)}
        self.ran.append(item)
        detail = {"cmd": item["cmd"], "rc": rc, "duration_s": item["duration_s"]}
        if rc != 0:
            detail["msg"] = (err or out or "").strip()[-500:]
        self.log.write("app_" + action, "ok" if rc == 0 else "failed", detail, took_s=item["duration_s"])
        return item

    def stop(self):
        """Before the swap; a failing command raises (the restore then swaps nothing)."""
        item = self._run("stop")
        if item["rc"] != 0:
            self.stopped = True  # it may have stopped half-way: start it again with the live data
            raise RestoreError(failure_text("the application's stop command %r" % item["cmd"], item["rc"],
                                            item["stderr"] or item["stdout"]))
        self.stopped = True

    def start(self):
        """After the swap, or after a failure once stopped. Returns the problem, or None."""
        if not self.stopped:
            return None
        self.stopped = False
        item = self._run("start")
        if item["rc"] != 0:
            return failure_text("the application's start command %r" % item["cmd"], item["rc"],
                                item["stderr"] or item["stdout"])
        return None

    def start_failed(self):
        return any(item["action"] == "start" and item["rc"] != 0 for item in self.ran)
