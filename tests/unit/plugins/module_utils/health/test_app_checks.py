# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""application / cache / geometric_operations / memory against a real HTTP server on 127.0.15.1."""

from __future__ import annotations

import base64
import http.server
import json
import socket
import threading
import urllib.parse

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.health.base import CheckContext
from ansible_collections.bim.wall_system.plugins.module_utils.health.runner import (
    build_report, run_checks, thresholds_for)

ADDRESS = "127.0.15.1"
APP_CHECKS = ("application", "cache", "geometric_operations", "memory")
HEALTHY_METRICS = {"cache_hit_rate": 0.92, "operation_failure_rate": 0.01, "average_offset_time_ms": 120.0,
                   "heap_used_percent": 0.41, "throughput_ops": 55.5}


class FakeApp:
    """A stand-in BIM application: /health and /metrics whose answers the test sets."""

    def __init__(self):
        self.metrics = dict(HEALTHY_METRICS)
        self.health_code = 200
        self.metrics_body = None
        self.silent = threading.Event()  # set: accept the request, never answer (until released)
        self.release = threading.Event()
        self.requests = []
        self.authorization = None  # set: the Authorization header every request must carry, else 401
        app = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                app.requests.append(self.path)
                if app.authorization is not None and self.headers.get("Authorization") != app.authorization:
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if app.silent.is_set():
                    app.release.wait(30)
                    return
                if self.path == "/health":
                    code, body = app.health_code, b"ok"
                elif self.path == "/metrics":
                    code = 200
                    body = app.metrics_body if app.metrics_body is not None else json.dumps(app.metrics).encode()
                else:
                    code, body = 404, b"no"
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((ADDRESS, 0), Handler)
        self.url = "http://%s:%d" % (ADDRESS, self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def app():
    try:
        fake = FakeApp()
    except OSError as exc:  # pragma: no cover - a loopback alias missing on some systems
        pytest.skip("cannot listen on %s: %s" % (ADDRESS, exc))
    try:
        yield fake
    finally:
        fake.close()


def run(app_url, overrides=None, names=APP_CHECKS, timeout=5):
    ctx = CheckContext(app_url=app_url, thresholds=thresholds_for(overrides), timeout=timeout)
    report = build_report(run_checks(ctx, list(names)))
    return report, {c["name"]: c for c in report["checks"]}


def test_healthy_application(app):
    report, checks = run(app.url)
    assert report["overall_status"] == "healthy", report["problems"]
    assert checks["application"]["metrics"] == {"up": True, "average_offset_time_ms": 120.0, "throughput_ops": 55.5}
    assert checks["cache"]["metrics"] == {"cache_hit_rate": 0.92}
    assert checks["geometric_operations"]["metrics"] == {"operation_failure_rate": 0.01}
    assert checks["memory"]["metrics"]["heap_used_percent"] == 0.41
    assert report["alerts"] == []
    # one /metrics fetch shared by the four checks
    assert app.requests.count("/metrics") == 1


def test_low_cache_hit_rate_degrades_with_alert(app):
    app.metrics["cache_hit_rate"] = 0.6
    report, checks = run(app.url)
    assert report["overall_status"] == "degraded"
    assert checks["cache"]["status"] == "warning"
    assert report["alerts"] == [{"check": "cache", "metric": "cache_hit_rate", "value": 0.6,
                                 "threshold": 0.7, "severity": "warning"}]
    assert any(r.startswith("cache:") for r in report["recommendations"])
    assert all(c["status"] == "healthy" for n, c in checks.items() if n != "cache")


def test_critical_levels_make_unhealthy(app):
    app.metrics.update(cache_hit_rate=0.3, operation_failure_rate=0.2, average_offset_time_ms=2500,
                       heap_used_percent=97)
    report, checks = run(app.url)
    assert report["overall_status"] == "unhealthy"
    assert checks["cache"]["status"] == "error"
    assert checks["geometric_operations"]["status"] == "error"
    assert checks["application"]["status"] == "warning"  # offset time has a warning level only
    assert checks["memory"]["status"] == "error"  # heap given in percent is read as a fraction
    severities = {(a["metric"], a["severity"]) for a in report["alerts"]}
    assert {("cache_hit_rate", "critical"), ("operation_failure_rate", "critical"),
            ("average_offset_time_ms", "warning"), ("heap_used_percent", "critical")} <= severities


def test_user_threshold_changes_verdict(app):
    app.metrics["cache_hit_rate"] = 0.6
    report, _checks = run(app.url, {"cache_hit_rate": {"warning": 0.55}})
    assert report["overall_status"] == "healthy"


def test_application_down_is_error_but_metrics_still_read(app):
    app.health_code = 503
    report, checks = run(app.url)
    assert checks["application"]["status"] == "error"
    assert "503" in checks["application"]["message"]
    assert checks["cache"]["status"] == "healthy"


def test_missing_metric_warns(app):
    del app.metrics["cache_hit_rate"]
    _report, checks = run(app.url)
    assert checks["cache"]["status"] == "warning"
    assert "cache_hit_rate" in checks["cache"]["message"]


def test_not_json_is_error(app):
    app.metrics_body = b"<html>"
    _report, checks = run(app.url)
    assert checks["cache"]["status"] == "error" and "JSON" in checks["cache"]["message"]


def test_silent_application_is_reported_by_the_checks(app):
    app.silent.set()
    report, checks = run(app.url, timeout=1)
    for name in ("application", "cache", "geometric_operations"):
        assert checks[name]["status"] == "error"
        # the HTTP timeout fires inside the check timeout: the message says what happened
        assert "timed out" in checks[name]["message"] and "did not finish" not in checks[name]["message"], checks[name]
    assert checks["memory"]["status"] == "healthy"
    assert report["overall_status"] == "unhealthy"


def test_unreachable_app_url_errors_app_checks_only():
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind((ADDRESS, 0))
        port = sock.getsockname()[1]
    report, checks = run("http://%s:%d" % (ADDRESS, port), names=APP_CHECKS + ("system",))
    assert report["overall_status"] == "unhealthy"
    for name in ("application", "cache", "geometric_operations"):
        assert checks[name]["status"] == "error"
        assert "refused" in checks[name]["message"].lower() or "failed" in checks[name]["message"]
    assert checks["memory"]["status"] == "healthy"
    assert "heap unknown" in checks["memory"]["message"]
    assert checks["system"]["status"] == "healthy"


def test_no_app_url_explicit_check_is_error():
    report, checks = run(None, names=["cache"])
    assert checks["cache"]["status"] == "error" and "app_url" in checks["cache"]["message"]
    assert report["overall_status"] == "unhealthy"


APP_USER, APP_PASSWORD = "bim-monitor", "Ap9-pass:word/s3cret"


def _with_credentials(url, password=APP_PASSWORD):
    scheme, rest = url.split("://", 1)
    return "%s://%s:%s@%s" % (scheme, APP_USER, urllib.parse.quote(password, safe=""), rest)


def _assert_no_credentials(report):
    text = json.dumps(report)
    for secret in (APP_PASSWORD, urllib.parse.quote(APP_PASSWORD, safe=""), APP_USER + ":"):
        assert secret not in text


def test_credentials_in_app_url_are_sent_as_basic_auth_and_never_shown(app):
    token = base64.b64encode(("%s:%s" % (APP_USER, APP_PASSWORD)).encode()).decode()
    app.authorization = "Basic " + token
    report, checks = run(_with_credentials(app.url))
    assert report["overall_status"] == "healthy", report["problems"]
    assert checks["application"]["metrics"]["up"] is True
    assert app.requests == ["/metrics", "/health"]  # the request line carries no userinfo
    _assert_no_credentials(report)


def test_failures_with_credentials_in_app_url_show_the_url_masked(app):
    app.authorization = "Basic wrong"
    report, checks = run(_with_credentials(app.url))
    assert "401" in checks["application"]["message"]
    assert any("http://********@%s" % app.url.split("://", 1)[1] in r for r in report["recommendations"])
    _assert_no_credentials(report)
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind((ADDRESS, 0))
        closed = "http://%s:%d" % (ADDRESS, sock.getsockname()[1])
    report, checks = run(_with_credentials(closed), timeout=2)
    assert checks["application"]["status"] == "error"
    _assert_no_credentials(report)
