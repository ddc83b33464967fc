# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stand-in for the BIM wall application: the HTTP contract the collection reads.

    GET /health   -> 200 {"status": "ok"}, or 503 {"status": "unhealthy"} when the state says so
    GET /metrics  -> JSON metrics; /metrics?format=prometheus -> the same as Prometheus gauges

The state file (JSON) is read on every request, so a test changes the application by rewriting
it. Keys: ``healthy`` (bool), ``delay_ms`` (answer this much later: a slow application), ``hang``
(bool: accept the connection and answer nothing until the state says otherwise, at most 10
minutes: a hung application), and the metric values; any other numeric key is published as an
extra metric.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

DEFAULT_METRICS = {
    "cache_hit_rate": 0.92,
    "operation_failure_rate": 0.01,
    "average_offset_time_ms": 120,
    "heap_used_percent": 0.45,
    "throughput_ops": 850,
}
CONTROL_KEYS = ("healthy", "delay_ms", "hang")
HANG_LIMIT_S = 600.0

HELP = {
    "cache_hit_rate": "Share of geometry cache lookups served from the cache (0..1).",
    "operation_failure_rate": "Share of geometric operations that failed (0..1).",
    "average_offset_time_ms": "Average wall offset operation time in milliseconds.",
    "heap_used_percent": "Used share of the application heap (0..1).",
    "throughput_ops": "Geometric operations per second.",
}


def read_state(path):
    """The state file merged over the defaults; a missing or half-written file means defaults."""
    state = dict(DEFAULT_METRICS, healthy=True, delay_ms=0)
    try:
        with open(path, encoding="utf-8") as handle:
            loaded = json.load(handle)
        if isinstance(loaded, dict):
            state.update(loaded)
    except (OSError, ValueError):
        pass
    return state


def metrics_of(state):
    return {k: v for k, v in state.items()
            if k not in CONTROL_KEYS and isinstance(v, (int, float)) and not isinstance(v, bool)}


def prometheus_text(metrics):
    lines = []
    for name in sorted(metrics):
        lines.append("# HELP %s %s" % (name, HELP.get(name, "BIM application metric %s." % name)))
        lines.append("# TYPE %s gauge" % name)
        lines.append("%s %s" % (name, float(metrics[name])))
    return "\n".join(lines) + "\n"


class Handler(BaseHTTPRequestHandler):
    server_version = "bim-wall-app-standin/1.0"
    state_file = None

    def log_message(self, format, *args):  # noqa: A002 - keep stderr quiet
        pass

    def _send(self, code, body, content_type="application/json"):
        data = body.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802 - http.server API
        state = read_state(self.state_file)
        hung_since = time.monotonic()
        while state.get("hang") and time.monotonic() - hung_since < HANG_LIMIT_S:
            time.sleep(0.1)  # re-read: a test that lifts the hang ends it for waiting requests too
            state = read_state(self.state_file)
        delay = state.get("delay_ms") or 0
        if isinstance(delay, (int, float)) and delay > 0:
            time.sleep(delay / 1000.0)
        url = urlsplit(self.path)
        if url.path == "/health":
            if state.get("healthy", True):
                self._send(200, json.dumps({"status": "ok"}))
            else:
                self._send(503, json.dumps({"status": "unhealthy"}))
        elif url.path == "/metrics":
            metrics = metrics_of(state)
            if parse_qs(url.query).get("format", [""])[0] == "prometheus":
                self._send(200, prometheus_text(metrics), "text/plain; version=0.0.4")
            else:
                self._send(200, json.dumps(metrics, sort_keys=True))
        else:
            self._send(404, json.dumps({"error": "not found", "path": url.path}))


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main(argv=None):
    parser = argparse.ArgumentParser(description="BIM application stand-in")
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--state-file", required=True)
    parser.add_argument("--pid-file", required=True)
    args = parser.parse_args(argv)

    Handler.state_file = args.state_file
    httpd = Server((args.address, args.port), Handler)
    tmp = "%s.%d.tmp" % (args.pid_file, os.getpid())
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write("%d\n" % os.getpid())
    os.replace(tmp, args.pid_file)

    def stop(signum, frame):
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        httpd.server_close()
        try:
            with open(args.pid_file, encoding="utf-8") as handle:
                if handle.read().strip() == str(os.getpid()):
                    os.unlink(args.pid_file)
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
