# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Maintenance deadlines: parse the window end and estimate how long an operation takes.

An estimate is ``(overhead + work / rate) * SAFETY``: ``work`` is bytes (or rows for a
cleanup), ``rate`` the slowest rate of this database's last runs (history kept on the host) or,
before any run, a conservative default, ``overhead`` a fixed cost per operation (REINDEX CONCURRENTLY
waits for every transaction that could use the index, so it costs at least
``REINDEX_OVERHEAD_S`` per index whatever its size).
"""

from __future__ import annotations

import datetime
import re
import time

SAFETY = 1.5
# Default rates (work units per second) before a database has history; deliberately low.
DEFAULT_RATES = {
    "cleanup_logs": 5000.0,        # rows/s
    "cleanup_temp": 5000.0,        # rows/s
    "vacuum": 50e6,                # bytes/s
    "vacuum_full": 20e6,
    "analyze": 100e6,
    "reindex": 10e6,
    "bloat_report": 100e6,
    "integrity_check": 50e6,
    "quick_check": 100e6,
    "foreign_key_check": 100e6,
    "optimize": 200e6,
    "performance_report": 1e9,
}
# Fixed seconds per operation (per index for reindex).
OVERHEAD_S = {
    "reindex": 30.0,
    "vacuum_full": 10.0,
}
DEFAULT_OVERHEAD_S = 1.0
REINDEX_OVERHEAD_S = OVERHEAD_S["reindex"]

_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?$")


class DeadlineError(ValueError):
    """The deadline value cannot be understood."""


def parse_deadline(value, now=None):
    """Absolute deadline (epoch seconds) of ``value``, or None when ``value`` is empty.

    - a number (int, or a string of digits): seconds from now;
    - ``HH:MM`` or ``HH:MM:SS``: the next time the local clock shows it (within 24 hours);
    - an ISO 8601 date and time (``2026-11-28T04:00:00+01:00``; without offset: local time).
    """
    if value is None or value == "":
        return None
    now = time.time() if now is None else now
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return now + float(value)
    text = str(value).strip()
    if re.match(r"^\d+(\.\d+)?$", text):
        return now + float(text)
    match = _HHMM.match(text)
    if match:
        local_now = datetime.datetime.fromtimestamp(now)
        target = local_now.replace(hour=int(match.group(1)), minute=int(match.group(2)),
                                   second=int(match.group(3) or 0), microsecond=0)
        if target.timestamp() <= now:
            target += datetime.timedelta(days=1)
        return target.timestamp()
    try:
        parsed = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise DeadlineError("deadline %r is neither seconds, HH:MM nor an ISO 8601 time" % (value,)) from None
    return parsed.timestamp()


def describe(epoch):
    return datetime.datetime.fromtimestamp(epoch).astimezone().isoformat(timespec="seconds")


def estimate_seconds(operation, work, units=1, history_rate=None):
    """``(seconds, basis)`` for ``operation`` over ``work`` (bytes or rows) on ``units`` objects."""
    default = DEFAULT_RATES.get(operation, 50e6)
    rate = history_rate or default
    overhead = OVERHEAD_S.get(operation, DEFAULT_OVERHEAD_S) * max(1, units)
    seconds = (overhead + float(work or 0) / rate) * SAFETY
    basis = "%s units of work at %.0f/s (%s) + %.0f s overhead, x%.1f safety" % (
        int(work or 0), rate, "earlier runs" if history_rate else "default rate",
        overhead, SAFETY)
    return seconds, basis
