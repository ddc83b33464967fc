# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pieces every health check shares: the result type, the context, the check registry.

A check is a plain function ``check(ctx) -> CheckResult`` registered with ``register_check``.
It reads what it needs from ``ctx`` (connection parameters, application metrics, thresholds)
and never raises on purpose: the runner turns an exception or a timeout into an ``error``
result anyway, so one broken check never stops the others.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import threading
import time

from ansible_collections.bim.wall_system.plugins.module_utils.common.urls import (
    basic_auth_header, mask_text, redact_url, split_credentials, url_secrets)

HEALTHY = "healthy"
WARNING = "warning"
ERROR = "error"
CHECK_STATUSES = (HEALTHY, WARNING, ERROR)

OVERALL_HEALTHY = "healthy"
OVERALL_DEGRADED = "degraded"
OVERALL_UNHEALTHY = "unhealthy"
OVERALL_STATUSES = (OVERALL_HEALTHY, OVERALL_DEGRADED, OVERALL_UNHEALTHY)
# fail_on level -> the overall statuses that fail it (the health_check module's option, the
# restore's health gate)
FAIL_ON_STATUSES = {"never": (), "degraded": (OVERALL_DEGRADED, OVERALL_UNHEALTHY), "unhealthy": (OVERALL_UNHEALTHY,)}

# check name -> CheckSpec, in registration order (the order checks are reported in)
REGISTRY = collections.OrderedDict()


class HealthError(Exception):
    """Bad input to the health library (unknown check or threshold name); the message is safe to show."""


@dataclasses.dataclass
class Alert:
    """A metric beyond its warning or critical threshold."""

    check: str
    metric: str
    value: float
    threshold: float
    severity: str  # "warning" or "critical"

    def as_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass
class CheckResult:
    """What one check found. ``duration_ms`` is filled in by the runner."""

    name: str
    status: str = HEALTHY
    message: str = ""
    metrics: dict = dataclasses.field(default_factory=dict)
    alerts: list = dataclasses.field(default_factory=list)
    recommendations: list = dataclasses.field(default_factory=list)
    duration_ms: float = 0.0
    # Set by missing_library(): the host lacks a library of the collection, which the
    # prerequisites role installs (the health_check role runs it then, and checks again).
    library_missing: bool = False

    def worsen(self, status):
        """Raise the status to ``status`` if that is worse than the current one."""
        if CHECK_STATUSES.index(status) > CHECK_STATUSES.index(self.status):
            self.status = status

    def fail(self, message):
        """The check could not look at what it checks: ``error`` with ``message``; returns itself."""
        self.status = ERROR
        self.message = message
        return self

    def missing_library(self, exc):
        """The check cannot run on this host: a library of the collection is missing there."""
        self.library_missing = True
        return self.fail("%s on the managed host (run the bim.wall_system.prerequisites role)" % exc)

    def as_dict(self):
        return {
            "name": self.name,
            "status": self.status,
            "message": self.message,
            "metrics": self.metrics,
            "duration_ms": round(self.duration_ms, 3),
        }


@dataclasses.dataclass(frozen=True)
class ThresholdSpec:
    """Default warning/critical levels of one threshold name. ``critical`` may be None.

    ``metrics``: the metrics of the owning check the threshold is evaluated on (default: the
    threshold's own name); ``fallback_metrics``: metrics it is evaluated on only when none of
    ``metrics`` is reported. The Prometheus rules are generated from these declarations.
    """

    warning: float
    critical: float | None = None
    lower_is_worse: bool = False
    description: str = ""
    metrics: tuple = ()
    fallback_metrics: tuple = ()


@dataclasses.dataclass(frozen=True)
class CheckSpec:
    name: str
    func: object
    thresholds: dict
    needs: tuple
    description: str

    @property
    def needs_app(self):
        return "app_url" in self.needs


def register_check(name, thresholds=None, needs_app=False, description="", needs=None):
    """Decorator: register ``func(ctx) -> CheckResult`` as check ``name``.

    ``thresholds`` maps threshold names this check evaluates to their ``ThresholdSpec``
    defaults; users may override them through the module's ``thresholds`` option.
    ``needs`` names context inputs (``"app_url"``, ``"cache_url"``) of which at least one must
    be set for the check to run by default; ``needs_app=True`` is short for ``needs=("app_url",)``.
    """
    if needs is None:
        needs = ("app_url",) if needs_app else ()

    def decorator(func):
        REGISTRY[name] = CheckSpec(name, func, dict(thresholds or {}), tuple(needs), description)
        return func
    return decorator


class AppMetricsError(Exception):
    """The application metrics endpoint could not be read; the message is safe to show."""


class CheckContext:
    """Everything a check may read. Shared by the checks running concurrently.

    ``conn``: ``ConnectionParams`` (or None), ``app_url``, ``cache_url``, ``data_dir``, ``archive_dir``,
    ``thresholds`` (merged), ``timeout`` (seconds per check), ``secrets`` (strings to mask in
    messages). ``app_metrics()`` fetches ``GET {app_url}/metrics`` once for all checks.
    """

    def __init__(self, conn=None, app_url=None, cache_url=None, data_dir=None, thresholds=None,
                 timeout=15.0, secrets=(), options=None, archive_dir=None):
        self.conn = conn
        # Folder of the continuous archive's descriptor when archiving is set up on the host, else None.
        self.archive_dir = archive_dir
        self.app_url = app_url.rstrip("/") if app_url else app_url
        # what messages may show: the URL with its userinfo masked
        self.app_url_shown = redact_url(self.app_url) if self.app_url else self.app_url
        self.cache_url = cache_url
        self.data_dir = data_dir
        self.thresholds = thresholds or {}
        self.timeout = timeout
        self.secrets = [s for s in list(secrets) + url_secrets(self.app_url) if s]
        self.options = dict(options or {})
        self._lock = threading.Lock()
        self._app_metrics = None
        self._app_error = None

    @property
    def http_timeout(self):
        """Seconds for one HTTP request: inside the check timeout, so a silent application is
        reported as "failed: timed out" by the checks rather than as a check timeout."""
        return max(0.2, self.timeout * 0.8)

    def mask(self, text):
        """``text`` with every secret replaced by ********."""
        text = str(text)
        for secret in self.secrets:
            text = text.replace(secret, "********")
        return text

    def app_metrics(self):
        """The application's /metrics JSON as a dict; raises ``AppMetricsError``. Fetched once."""
        with self._lock:
            if self._app_metrics is None and self._app_error is None:
                try:
                    self._app_metrics = fetch_json(self.app_url + "/metrics", self.http_timeout)
                except AppMetricsError as exc:
                    self._app_error = exc
            if self._app_error is not None:
                raise self._app_error
            return self._app_metrics


def open_app(url, timeout):
    """Open ``GET url`` (no proxy: the application is reached directly); the caller closes it.

    Credentials in the URL (``http://user:password@host``) are sent as basic authentication,
    never as part of the request line.
    """
    # imported here so the library loads without touching the network stack until needed
    import urllib.request

    clean, username, password = split_credentials(url)
    request = urllib.request.Request(clean)
    if username is not None or password is not None:
        request.add_header("Authorization", basic_auth_header(username, password))
    return urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=timeout)


def fetch_json(url, timeout):
    """GET ``url`` and decode a JSON object. Messages name the URL with its userinfo masked."""
    import urllib.error

    shown = redact_url(url)
    try:
        with open_app(url, timeout) as response:
            body = response.read(1024 * 1024)
    except urllib.error.HTTPError as exc:
        raise AppMetricsError("GET %s answered HTTP %s" % (shown, exc.code))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise AppMetricsError("GET %s failed: %s" % (shown, mask_text(getattr(exc, "reason", exc), url_secrets(url))))
    try:
        data = json.loads(body.decode("utf-8"))
    except ValueError:
        raise AppMetricsError("GET %s did not answer JSON" % shown)
    if not isinstance(data, dict):
        raise AppMetricsError("GET %s answered JSON that is not an object" % shown)
    return data


def now():
    """Monotonic seconds, for durations."""
    return time.monotonic()
