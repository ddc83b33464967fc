# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Secrets inside URLs never reach the operator's screen: an ansible-playbook run (default and -v)
checks an application whose ``app_url`` holds credentials (answered, refused, unreachable) and
sends an alert to a Slack endpoint that echoes the secret webhook path in its reason phrase and
body. Real HTTP servers on loopback (BIM_SECRET_URLS_ADDRESS, default 127.0.0.1); no fleet."""

from __future__ import annotations

import base64
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import urllib.parse

import pytest

from conftest import DEFAULT_COLLECTIONS_PATH

ADDRESS = os.environ.get("BIM_SECRET_URLS_ADDRESS", "127.0.0.1")
APP_USER, APP_PASSWORD = "bim-monitor", "Pw-for-app:42/secret"
SLACK_PATH = "/services/T0SCENARIO/B0SCENARIO/slackTokenSecret9876"
SECRETS = (APP_PASSWORD, urllib.parse.quote(APP_PASSWORD, safe=""), "slackTokenSecret9876", "T0SCENARIO/B0SCENARIO")

CHECK = """
    - name: Check the application (credentials in app_url, {which})
      bim.wall_system.health_check:
        engine: sqlite
        sqlite_path: /nonexistent/bim.db
        app_url: "{{{{ app_url_{which} }}}}"
        checks: [application, memory]
      register: checked_{which}

    - name: Show what an operator reads ({which})
      ansible.builtin.debug:
        var: checked_{which}
"""

PLAYBOOK = """
- name: Application checks and an alert, with secrets inside URLs
  hosts: localhost
  gather_facts: false
  tasks:
{checks}
    - name: Alert through a Slack endpoint that echoes its path
      bim.wall_system.alert:
        results:
          pg1: {overall_status: degraded, checks: [{name: memory, status: warning, metrics: {heap_used_percent: 0.99}}]}
        rules:
          - name: High Memory Usage
            condition: {check: memory, metric: heap_used_percent, comparison: ">", threshold: 0.9}
            severity: critical
            channels: [slack]
        channels:
          slack:
            webhook_url: "{{ slack_url }}"
        state_file: "{{ state_file }}"
      register: alerted

    - name: Show the alert outcome
      ansible.builtin.debug:
        var: alerted
"""


class Servers:
    """The application (GET, basic auth required) and a careless Slack endpoint (POST: 404 whose
    reason phrase and body quote the request path), on one HTTP server."""

    def __init__(self):
        self.requests = []
        token = base64.b64encode(("%s:%s" % (APP_USER, APP_PASSWORD)).encode()).decode()
        servers = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self, code, body, reason=None):
                self.send_response(code, reason)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):  # noqa: N802 - http.server's name
                servers.requests.append(("GET", self.path, self.headers.get("Authorization")))
                if self.headers.get("Authorization") != "Basic " + token:
                    self._answer(401, b"who are you")
                elif self.path == "/metrics":
                    self._answer(200, json.dumps({"heap_used_percent": 0.4, "average_offset_time_ms": 10,
                                                  "throughput_ops": 5}).encode())
                else:
                    self._answer(200, b"ok")

            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                servers.requests.append(("POST", self.path, None))
                self._answer(404, json.dumps({"error": "no hook at %s" % self.path}).encode(), "no hook at " + self.path)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((ADDRESS, 0), Handler)
        self.base = "%s:%d" % (ADDRESS, self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def servers():
    handle = Servers()
    try:
        yield handle
    finally:
        handle.close()


def _closed_port():
    with socket.socket() as sock:
        sock.bind((ADDRESS, 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("verbosity", [[], ["-v"]], ids=["default", "-v"])
def test_no_secret_of_a_url_reaches_the_output(tmp_path, servers, verbosity):
    quoted = urllib.parse.quote(APP_PASSWORD, safe="")
    good = "http://%s:%s@%s" % (APP_USER, quoted, servers.base)
    wrong = "http://%s:%s@%s" % (APP_USER, quoted + "x", servers.base)
    unreachable = "http://%s:%s@%s:%d" % (APP_USER, quoted, ADDRESS, _closed_port())
    playbook = tmp_path / "secret_urls.yml"
    playbook.write_text(PLAYBOOK.replace("{checks}", "".join(CHECK.format(which=w) for w in ("good", "wrong", "unreachable"))))
    extra = {"app_url_good": good, "app_url_wrong": wrong, "app_url_unreachable": unreachable, "slack_url": "http://%s%s" % (servers.base, SLACK_PATH),
             "state_file": str(tmp_path / "alert-state.json")}
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
               ANSIBLE_COLLECTIONS_PATH=os.environ.get("ANSIBLE_COLLECTIONS_PATH", DEFAULT_COLLECTIONS_PATH))
    tool = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    cmd = [tool, "-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=%s" % sys.executable,
           "-e", json.dumps(extra)] + verbosity + [str(playbook)]
    proc = subprocess.run(cmd, cwd=str(tmp_path), env=env, text=True, capture_output=True, timeout=300,
                          stdin=subprocess.DEVNULL, check=False)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    # the things happened: credentials went as basic auth, the endpoint got (and echoed) the secret path
    assert ("GET", "/metrics", "Basic " + base64.b64encode(("%s:%s" % (APP_USER, APP_PASSWORD)).encode()).decode()) \
        in servers.requests
    assert ("POST", SLACK_PATH, None) in servers.requests
    assert "answered HTTP 401" in output and "slack: the endpoint answered HTTP 404" in output
    assert "http://********@%s" % servers.base in output
    for secret in SECRETS:
        assert secret not in output, secret
    with open(extra["state_file"], encoding="utf-8") as handle:
        state = handle.read()
    for secret in SECRETS:
        assert secret not in state
