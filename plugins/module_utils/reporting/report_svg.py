# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet report's trends as inline SVG: no scripts, no external assets, readable in any browser
and in a mail attachment.

Four charts from the bounded history (``history.py``): health status per host over time, backup
age and stored size, drill RTO and RPO, maintenance duration against its window. Every text is
escaped here; the page embeds the returned markup as is.
"""

from __future__ import annotations

import datetime
from html import escape

WIDTH = 900
LEFT = 110
RIGHT = 20
STATUS_COLOURS = {"healthy": "#1e7e34", "degraded": "#b26a00", "unhealthy": "#c62828", "unreachable": "#6d4c41"}
SERIES_COLOURS = ("#0969da", "#8250df", "#bf3989", "#1a7f37", "#9a6700", "#cf222e", "#116329", "#0550ae")


def _time(value):
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    parsed = datetime.datetime.fromisoformat(text)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)).timestamp()


def _day(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M")


class _Axis:
    """Time -> x over [first, last] of the history and the events it names (a drill older than the
    first run is still drawn inside the chart); a single run gets a span of one hour."""

    def __init__(self, entries):
        times = [_time(e["at"]) for e in entries]
        for entry in entries:
            for item in entry["hosts"].values():
                times.extend(_time(item[k]) for k in ("backup_at", "drill_at", "maintenance_at") if item.get(k))
        self.first, self.last = min(times), max(times)
        if self.last - self.first < 3600:
            self.first = self.last - 3600

    def x(self, epoch):
        return LEFT + (epoch - self.first) / (self.last - self.first) * (WIDTH - LEFT - RIGHT)

    def labels(self, y):
        return ('<text x="%d" y="%d" class="axis">%s</text><text x="%d" y="%d" class="axis" text-anchor="end">%s</text>'
                % (LEFT, y, _day(self.first), WIDTH - RIGHT, y, _day(self.last)))


def _svg(kind, title, height, body):
    return ('<svg xmlns="http://www.w3.org/2000/svg" class="trend" data-chart="%s" role="img" width="%d" height="%d" '
            'viewBox="0 0 %d %d"><title>%s</title>'
            '<style>.axis{font:11px sans-serif;fill:#57606a}.lbl{font:12px sans-serif;fill:#1f2328}</style>%s</svg>'
            % (kind, WIDTH, height, WIDTH, height, escape(title), body))


def status_chart(entries, hosts):
    """One row per host, one band per run coloured by the host's overall status."""
    axis = _Axis(entries)
    row_h = 18
    parts = []
    for index, host in enumerate(hosts):
        y = 10 + index * (row_h + 6)
        parts.append('<g data-host="%s"><text x="%d" y="%d" class="lbl" text-anchor="end">%s</text>'
                     % (escape(host, quote=True), LEFT - 8, y + 13, escape(host)))
        for position, entry in enumerate(entries):
            state = (entry["hosts"].get(host) or {}).get("status")
            if state is None:
                continue
            start = axis.x(_time(entry["at"]))
            end = axis.x(_time(entries[position + 1]["at"])) if position + 1 < len(entries) else WIDTH - RIGHT
            parts.append('<rect class="run" data-status="%s" x="%.1f" y="%d" width="%.1f" height="%d" fill="%s">'
                         '<title>%s %s: %s</title></rect>'
                         % (escape(state, quote=True), start, y, max(end - start, 2.0), row_h,
                            STATUS_COLOURS.get(state, "#616161"), escape(host), escape(entry["at"]), escape(state)))
        parts.append("</g>")
    height = 10 + len(hosts) * (row_h + 6) + 20
    parts.append(axis.labels(height - 6))
    return _svg("status", "Health status per host over time", height, "".join(parts))


def line_chart(kind, title, series, unit_text, formatter, axis):
    """Lines with points, one per label of ``series`` ({label: [(epoch, value)]}); empty series are left out."""
    series = {label: points for label, points in series.items() if points}
    height = 194 + 14 * ((len(series) - 1) // 6 if series else 0)
    top, bottom = 14, 146
    values = [v for points in series.values() for _t, v in points]
    if not values:
        return _svg(kind, title, 40, '<text x="%d" y="24" class="lbl">%s: no data yet</text>' % (LEFT, escape(title)))
    high = max(values) or 1.0

    def y(value):
        return bottom - (value / high) * (bottom - top)

    parts = ['<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#d0d7de"/>' % (LEFT, bottom, WIDTH - RIGHT, bottom),
             '<text x="%d" y="%d" class="axis" text-anchor="end">%s</text>' % (LEFT - 8, top + 8, escape(formatter(high))),
             '<text x="%d" y="%d" class="axis" text-anchor="end">0</text>' % (LEFT - 8, bottom),
             '<text x="8" y="%d" class="axis">%s</text>' % (top + 24, escape(unit_text))]
    for index, (label, points) in enumerate(sorted(series.items())):
        colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        coords = " ".join("%.1f,%.1f" % (axis.x(t), y(v)) for t, v in points)
        parts.append('<g class="series" data-series="%s"><polyline points="%s" fill="none" stroke="%s" stroke-width="2"/>'
                     % (escape(label, quote=True), coords, colour))
        for t, v in points:
            parts.append('<circle class="point" cx="%.1f" cy="%.1f" r="3" fill="%s"><title>%s %s: %s</title></circle>'
                         % (axis.x(t), y(v), colour, escape(label), _day(t), escape(formatter(v))))
        column, row = index % 6, index // 6
        parts.append('<text x="%d" y="%d" class="lbl" fill="%s">&#9632; %s</text></g>'
                     % (LEFT + column * 128, bottom + 34 + row * 14, colour, escape(label)))
    parts.append(axis.labels(bottom + 14))
    return _svg(kind, title, height, "".join(parts))


def maintenance_chart(entries, hosts, axis):
    """Per maintenance run a bar of its duration and a tick at its window; a bar past its window is red."""
    runs = []
    for host in hosts:
        seen = set()
        for entry in entries:
            item = entry["hosts"].get(host) or {}
            at, duration = item.get("maintenance_at"), item.get("maintenance_duration_seconds")
            if at and duration is not None and at not in seen:
                seen.add(at)
                runs.append((host, _time(at), float(duration), item.get("maintenance_window_seconds")))
    title = "Maintenance duration against its window"
    if not runs:
        return _svg("maintenance", title, 40, '<text x="%d" y="24" class="lbl">%s: no data yet</text>'
                    % (LEFT, escape(title)))
    height, top, bottom = 190, 14, 146
    high = max(max(d, w or 0.0) for _h, _t, d, w in runs) or 1.0
    parts = ['<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#d0d7de"/>' % (LEFT, bottom, WIDTH - RIGHT, bottom),
             '<text x="%d" y="%d" class="axis" text-anchor="end">%s</text>' % (LEFT - 8, top + 8, escape(_seconds(high))),
             '<text x="8" y="%d" class="axis">duration</text>' % ((top + bottom) // 2)]
    offsets = {host: index for index, host in enumerate(hosts)}
    for host, t, duration, window in runs:
        x = axis.x(t) + offsets[host] * 7 - 3
        h = duration / high * (bottom - top)
        over = window is not None and duration > window
        parts.append('<rect class="bar" data-host="%s" data-over="%s" x="%.1f" y="%.1f" width="6" height="%.1f" fill="%s">'
                     '<title>%s %s: %s of %s</title></rect>'
                     % (escape(host, quote=True), "true" if over else "false", x, bottom - h, h,
                        "#c62828" if over else "#0969da", escape(host), _day(t), _seconds(duration),
                        _seconds(window) if window is not None else "no window"))
        if window is not None:
            wy = bottom - window / high * (bottom - top)
            parts.append('<line class="window" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#1f2328" stroke-width="2"/>'
                         % (x - 2, wy, x + 8, wy))
    parts.append('<text x="%d" y="%d" class="lbl">&#9632; duration (red: past its window) &#8212; window</text>'
                 % (LEFT, height - 24))
    parts.append(axis.labels(height - 6))
    return _svg("maintenance", title, height, "".join(parts))


def _seconds(value):
    value = float(value)
    return "%.0f s" % value if value < 120 else ("%.1f min" % (value / 60) if value < 7200 else "%.1f h" % (value / 3600))


def _bytes(value):
    value = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return "%.1f %s" % (value, unit)
        value /= 1024.0
    return "%.1f TiB" % value


def _series(entries, hosts, key, at_key=None, scale=1.0):
    """{host: [(epoch, value)]}: per run, or once per event (``at_key``: the event's own time)."""
    out = {}
    for host in hosts:
        points, seen = [], set()
        for entry in entries:
            item = entry["hosts"].get(host) or {}
            value = item.get(key)
            if value is None:
                continue
            if at_key:
                at = item.get(at_key)
                if not at or at in seen:
                    continue
                seen.add(at)
                points.append((_time(at), float(value) * scale))
            else:
                points.append((_time(entry["at"]), float(value) * scale))
        out[host] = sorted(points)
    return out


def trend_charts(entries):
    """``[(chart id, title, svg markup)]`` of the history (oldest entry first); [] without entries."""
    if not entries:
        return []
    hosts = sorted({h for e in entries for h in e["hosts"]})
    axis = _Axis(entries)
    rto = {"%s RTO" % h: p for h, p in _series(entries, hosts, "drill_rto_seconds", "drill_at").items()}
    rpo = {"%s RPO" % h: p for h, p in _series(entries, hosts, "drill_rpo_seconds", "drill_at").items()}
    age = _series(entries, hosts, "backup_age_hours")
    size = _series(entries, hosts, "backup_stored_bytes", "backup_at")
    return [
        ("status", "Health status per host", status_chart(entries, hosts)),
        ("backup-age", "Backup age", line_chart("backup-age", "Backup age", age, "hours", _hours, axis)),
        ("backup-size", "Stored backup size", line_chart("backup-size", "Stored backup size", size, "stored", _bytes,
                                                         axis)),
        ("drill", "Drill RTO and RPO", line_chart("drill", "Drill RTO and RPO", dict(rto, **rpo), "seconds", _seconds,
                                                  axis)),
        ("maintenance", "Maintenance duration against its window", maintenance_chart(entries, hosts, axis)),
    ]


def _hours(value):
    return "%.1f h" % value
