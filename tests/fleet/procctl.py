# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The test fleet's process control for a host service (there is no systemd on the test machine).

    procctl.py start RUN_DIR COMMAND...   start COMMAND in the background (no-op when it runs);
                                          returns once it has run for a moment without dying
    procctl.py stop RUN_DIR               SIGTERM, then SIGKILL after 15 s (no-op when stopped)
    procctl.py status RUN_DIR             exit 0 when running, 3 when stopped

RUN_DIR holds pid (the service's process id), log (its stdout and stderr) and cmdline. A role
gets "python procctl.py start RUN_DIR" as its start command and appends the service's command
line, the way systemd would run ExecStart.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time


def read_pid(run_dir):
    """The service's pid when that process is alive and is the one we started (same cmdline)."""
    try:
        with open(os.path.join(run_dir, "pid"), encoding="utf-8") as handle:
            pid = int(handle.read().strip())
        with open(os.path.join(run_dir, "cmdline"), "rb") as handle:
            expected = handle.read()
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            if handle.read() != expected:
                return None
        with open("/proc/%d/stat" % pid, encoding="utf-8") as handle:
            if handle.read().split(") ")[-1][:1] == "Z":
                return None
        return pid
    except (OSError, ValueError):
        return None


def start(run_dir, argv, settle=0.5):
    os.makedirs(run_dir, mode=0o755, exist_ok=True)
    if read_pid(run_dir):
        print("already running")
        return 0
    with open(os.path.join(run_dir, "log"), "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                                close_fds=True)
    with open(os.path.join(run_dir, "cmdline"), "wb") as handle:
        handle.write(b"\0".join(a.encode("utf-8") for a in argv) + b"\0")
    with open(os.path.join(run_dir, "pid"), "w", encoding="utf-8") as handle:
        handle.write("%d\n" % proc.pid)
    time.sleep(settle)
    if proc.poll() is not None:
        print("%s exited with %s at once (see %s)" % (argv[0], proc.returncode, os.path.join(run_dir, "log")),
              file=sys.stderr)
        return 1
    print("started %d" % proc.pid)
    return 0


def stop(run_dir, timeout=15.0):
    pid = read_pid(run_dir)
    if not pid:
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not read_pid(run_dir):
            return 0
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    return 0


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2 or argv[0] not in ("start", "stop", "status") or (argv[0] == "start" and len(argv) < 3):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "start":
        return start(argv[1], argv[2:])
    if argv[0] == "stop":
        return stop(argv[1])
    running = bool(read_pid(argv[1]))
    print("running" if running else "stopped")
    return 0 if running else 3


if __name__ == "__main__":
    sys.exit(main())
