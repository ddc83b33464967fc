# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Start / stop / query one host's BIM application stand-in (app_server.py).

    appctl.py start APP_DIR    start it (no-op when running); returns once /health answers
    appctl.py stop APP_DIR     stop it (no-op when stopped); returns once the port is closed
    appctl.py status APP_DIR   exit 0 when running, 3 when stopped
    appctl.py set APP_DIR JSON merge JSON into the state file (metrics, healthy, delay_ms)
    appctl.py reset APP_DIR    state file back to the healthy defaults

APP_DIR holds config.json (address, port, state_file, pid_file, log_file) written by fleet.py.
These are the commands the inventory gives as bim_app_start_command / bim_app_stop_command.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(HERE, "app_server.py")


def load_config(app_dir):
    with open(os.path.join(app_dir, "config.json"), encoding="utf-8") as handle:
        return json.load(handle)


def read_pid(cfg):
    try:
        with open(cfg["pid_file"], encoding="utf-8") as handle:
            pid = int(handle.read().strip())
        os.kill(pid, 0)
        # a pid file left by a server that died may name an unrelated, newer process
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            if cfg["pid_file"].encode("utf-8") not in handle.read():
                return None
        return pid
    except (OSError, ValueError):
        return None


def port_open(address, port):
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False


def health_answers(cfg):
    url = "http://%s:%s/health" % (cfg["address"], cfg["port"])
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # 503 is an answer: the application is up but reports itself unhealthy
    except (OSError, ValueError):
        return False


def read_state_file(cfg):
    """The raw state file (only what tests set; app_server.py adds the defaults)."""
    try:
        with open(cfg["state_file"], encoding="utf-8") as handle:
            state = json.load(handle)
        return state if isinstance(state, dict) else {}
    except (OSError, ValueError):
        return {}


def write_state(cfg, state):
    tmp = cfg["state_file"] + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(state, handle, sort_keys=True)
    os.replace(tmp, cfg["state_file"])


def start(cfg, timeout=15.0):
    if read_pid(cfg) and health_answers(cfg):
        return 0
    if not os.path.exists(cfg["state_file"]):
        write_state(cfg, {})
    with open(cfg["log_file"], "ab") as log:
        subprocess.Popen(
            [sys.executable, SERVER, "--address", cfg["address"], "--port", str(cfg["port"]),
             "--state-file", cfg["state_file"], "--pid-file", cfg["pid_file"]],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True, close_fds=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if health_answers(cfg):
            return 0
        time.sleep(0.05)
    print("application on %s:%s did not answer /health within %ss"
          % (cfg["address"], cfg["port"], timeout), file=sys.stderr)
    return 1


def stop(cfg, timeout=15.0):
    pid = read_pid(cfg)
    if pid:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not port_open(cfg["address"], cfg["port"]) and (not pid or not _alive(pid)):
            return 0
        time.sleep(0.05)
    if pid and _alive(pid):
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    return 0 if not port_open(cfg["address"], cfg["port"]) else 1


def _alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:  # a zombie child of ours counts as gone
        with open("/proc/%d/stat" % pid, encoding="utf-8") as handle:
            return handle.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return False


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2 or argv[0] not in ("start", "stop", "status", "set", "reset"):
        print(__doc__, file=sys.stderr)
        return 2
    cfg = load_config(argv[1])
    if argv[0] == "start":
        return start(cfg)
    if argv[0] == "stop":
        return stop(cfg)
    if argv[0] == "status":
        running = bool(read_pid(cfg)) and health_answers(cfg)
        print("running" if running else "stopped")
        return 0 if running else 3
    if argv[0] == "set":
        state = read_state_file(cfg)
        state.update(json.loads(argv[2]))
        write_state(cfg, state)
        return 0
    write_state(cfg, {})
    return 0


if __name__ == "__main__":
    sys.exit(main())
