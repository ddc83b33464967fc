# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fleet report as one self-contained HTML page (inline CSS, no scripts, no external assets).

The Jinja2 template is a string constant here rather than a file: the collection is installed
from its tarball, where ``module_utils`` is importable but data files beside it are not
reliably located; a constant travels with the code. Rendered on the controller only.
"""

from __future__ import annotations

import json

TEMPLATE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="{{ report.generator }}">
<title>{{ report.title }} - {{ report.generated_at }}</title>
<style>
:root { --ok:#1e7e34; --warn:#b26a00; --bad:#c62828; --gone:#6d4c41; --unk:#616161; --line:#d0d7de; }
* { box-sizing: border-box; }
body { font-family: -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; margin: 0; color: #1f2328; background: #f6f8fa; }
header { background: #24292f; color: #fff; padding: 16px 24px; }
header h1 { margin: 0 0 4px 0; font-size: 22px; }
header p { margin: 0; color: #c9d1d9; font-size: 13px; }
main { padding: 16px 24px 40px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 8px 0 20px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 10px 16px; min-width: 120px; }
.card .n { font-size: 26px; font-weight: 600; }
.card .l { font-size: 12px; color: #57606a; text-transform: uppercase; letter-spacing: .04em; }
table { border-collapse: collapse; width: 100%; background: #fff; border: 1px solid var(--line); }
th, td { text-align: left; padding: 7px 10px; border-bottom: 1px solid var(--line); vertical-align: top; font-size: 14px; }
th { background: #eaeef2; font-weight: 600; }
.badge { display: inline-block; padding: 2px 9px; border-radius: 10px; color: #fff; font-size: 12px; font-weight: 600; }
.s-healthy, .s-ok, .s-passed { background: var(--ok); }
.s-degraded, .s-warning { background: var(--warn); }
.s-unhealthy, .s-error, .s-critical, .s-failed { background: var(--bad); }
.s-unreachable, .s-failed { background: var(--gone); }
.s-unknown { background: var(--unk); }
tr.host-row td:first-child { border-left: 6px solid var(--unk); font-weight: 600; }
tr.status-healthy td:first-child { border-left-color: var(--ok); }
tr.status-degraded td:first-child { border-left-color: var(--warn); }
tr.status-unhealthy td:first-child { border-left-color: var(--bad); }
tr.status-unreachable td:first-child, tr.status-failed td:first-child { border-left-color: var(--gone); }
section.host-detail { background: #fff; border: 1px solid var(--line); border-radius: 6px; margin: 22px 0; padding: 12px 16px; }
section.host-detail h2 { font-size: 18px; margin: 4px 0 10px; }
section.host-detail h3 { font-size: 15px; margin: 14px 0 6px; }
.metrics { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12px; color: #3d444d; }
.muted { color: #57606a; }
ul { margin: 4px 0; padding-left: 20px; }
a { color: #0969da; }
footer { color: #57606a; font-size: 12px; padding: 0 24px 24px; }
#trends { background: #fff; border: 1px solid var(--line); border-radius: 6px; margin: 22px 0; padding: 12px 16px; }
#trends h2 { font-size: 18px; margin: 4px 0 10px; }
figure.trend { margin: 10px 0 18px; }
figure.trend figcaption { font-weight: 600; font-size: 14px; margin-bottom: 4px; }
svg.trend { max-width: 100%; height: auto; }
</style>
</head>
<body>
<header>
  <h1>{{ report.title }}</h1>
  <p>Generated {{ report.generated_at }} by {{ report.generator }} &middot; {{ report.fleet.hosts }} host(s) &middot;
     fleet status <span class="badge s-{{ report.fleet.overall_status }}" id="fleet-status">{{ report.fleet.overall_status }}</span></p>
</header>
<main>
<div class="cards">
  <div class="card"><div class="n">{{ report.fleet.hosts }}</div><div class="l">hosts</div></div>
  {% for status, count in report.fleet.status_counts | dictsort %}
  <div class="card"><div class="n"><span class="badge s-{{ status }}">{{ count }}</span></div><div class="l">{{ status }}</div></div>
  {% endfor %}
  <div class="card"><div class="n">{{ report.fleet.alerts }}</div><div class="l">threshold alerts</div></div>
</div>

<table id="hosts">
  <thead>
    <tr><th>Host</th><th>Status</th><th>Checks</th><th>Alerts</th><th>Last backup</th><th>Last drill</th><th>Maintenance</th></tr>
  </thead>
  <tbody>
  {% for h in report.hosts %}
    <tr class="host-row status-{{ h.overall_status }}" data-host="{{ h.host }}" data-status="{{ h.overall_status }}">
      <td><a href="#host-{{ h.host }}">{{ h.host }}</a></td>
      <td><span class="badge s-{{ h.overall_status }} status">{{ h.overall_status }}</span></td>
      <td>{% for c in h.checks %}<span class="badge s-{{ c.status }}" title="{{ c.message }}">{{ c.name }}</span>
          {% else %}<span class="muted">none</span>{% endfor %}</td>
      <td>{{ h.alerts | length }}</td>
      <td>{% if h.backup %}{% if h.backup.age_hours is not none %}{{ h.backup.age_hours | age }} ago{% else %}<span class="muted">time unknown</span>{% endif %}
          {% if h.backup.ok is sameas false %}<span class="badge s-failed">failed</span>{% endif %}
          {% if h.backup.type %}<span class="muted">({{ h.backup.type }})</span>{% endif %}{% else %}<span class="muted">unknown</span>{% endif %}</td>
      <td>{% if h.drill %}<span class="badge s-{{ h.drill.ok | outcome('passed') }}">
          {{- h.drill.result or h.drill.ok | outcome('passed') }}</span>
          {% if h.drill.rto_seconds is not none %}<span class="muted">RTO {{ h.drill.rto_seconds | seconds }}</span>&ensp;{% endif %}
          {% if h.drill.rpo_seconds is not none %}<span class="muted">RPO {{ h.drill.rpo_seconds | seconds }}</span>{% endif %}
          {% if h.drill.at %}<div class="muted">{{ h.drill.at }}</div>{% endif %}{% else %}<span class="muted">unknown</span>{% endif %}</td>
      <td>{% if h.maintenance %}<span class="badge s-{{ h.maintenance.ok | outcome('ok') }}">
          {{- h.maintenance.ok | outcome('ok') }}</span>
          {% if h.maintenance.at %}<span class="muted">{{ h.maintenance.at }}</span>{% endif %}{% else %}<span class="muted">unknown</span>{% endif %}</td>
    </tr>
  {% endfor %}
  </tbody>
</table>

{% if trends %}
<section id="trends">
  <h2>Trends <span class="muted" style="font-size:12px">{{ report.history.runs }} run(s) since {{ report.history.since }}</span></h2>
  {% for id, title, svg in trends %}
  <figure class="trend" data-chart="{{ id }}"><figcaption>{{ title }}</figcaption>{{ svg | safe }}</figure>
  {% endfor %}
</section>
{% endif %}

{% for h in report.hosts %}
<section class="host-detail" id="host-{{ h.host }}" data-host="{{ h.host }}">
  <h2>{{ h.host }} <span class="badge s-{{ h.overall_status }}">{{ h.overall_status }}</span>
    {% if h.checked_at %}<span class="muted" style="font-size:12px">checked {{ h.checked_at }}</span>{% endif %}</h2>
  {% if h.checks %}
  <table class="checks">
    <thead><tr><th>Check</th><th>Status</th><th>Message</th><th>Duration</th><th>Metrics</th></tr></thead>
    <tbody>
    {% for c in h.checks %}
      <tr class="check-row" data-check="{{ c.name }}" data-status="{{ c.status }}">
        <td>{{ c.name }}</td>
        <td><span class="badge s-{{ c.status }}">{{ c.status }}</span></td>
        <td>{{ c.message }}</td>
        <td>{% if c.duration_ms is not none %}{{ '%.0f' | format(c.duration_ms) }} ms{% endif %}</td>
        <td class="metrics">{% for k, v in c.metrics | dictsort %}{{ k }}={{ v | value }}<br>{% endfor %}</td>
      </tr>
    {% endfor %}
    </tbody>
  </table>
  {% endif %}
  <h3>Alerts</h3>
  {% if h.alerts %}<ul class="alerts">{% for a in h.alerts %}
    <li><span class="badge s-{{ a.severity }}">{{ a.severity }}</span>
      {{ a.check }}.{{ a.metric }} = {{ a.value | value }} (threshold {{ a.threshold | value }})</li>
  {% endfor %}</ul>{% else %}<p class="muted">none</p>{% endif %}
  <h3>Recommendations</h3>
  {% if h.recommendations %}
  <ul class="recommendations">{% for r in h.recommendations %}<li>{{ r }}</li>{% endfor %}</ul>
  {% else %}<p class="muted">none</p>{% endif %}
  {% if h.backup or h.drill %}
  <h3>Recovery</h3>
  <ul>
    {% if h.backup %}<li>Last backup: {{ h.backup.last_backup_at or 'unknown' }}
      {%- if h.backup.backup_id %} ({{ h.backup.backup_id }}){% endif %}
      {%- if h.backup.message %} &ndash; {{ h.backup.message }}{% endif %}</li>{% endif %}
    {% if h.drill %}<li>Last drill: {{ h.drill.result or 'unknown' }}
      {%- if h.drill.at %} at {{ h.drill.at }}{% endif %}
      {%- if h.drill.message %} &ndash; {{ h.drill.message }}{% endif %}</li>{% endif %}
  </ul>
  {% endif %}
  {% if h.system and not (h.checks | selectattr('name', 'equalto', 'system') | list) %}
  <h3>System</h3>
  <p class="metrics">{% for k, v in h.system | dictsort %}{{ k }}={{ v | value }} {% endfor %}</p>
  {% endif %}
</section>
{% endfor %}
</main>
<footer>bim.wall_system fleet report, format version {{ report.version }}. The same data is in the JSON file beside this page.</footer>
</body>
</html>
"""


def _value(value):
    if isinstance(value, float):
        return "%.4g" % value
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return value


def _age(hours):
    hours = float(hours)
    if hours < 1:
        return "%d min" % round(hours * 60)
    if hours < 48:
        return "%.1f h" % hours
    return "%.1f days" % (hours / 24.0)


def _outcome(ok, good):
    """Badge text/class of a True/False/None outcome: ``good``, ``failed`` or ``unknown``."""
    if ok is True:
        return good
    if ok is False:
        return "failed"
    return "unknown"


def _seconds(value):
    value = float(value)
    if value < 120:
        return "%.1f s" % value
    return "%.1f min" % (value / 60.0)


# The built-in template's name in Jinja2's bytecode cache: compiling it is about a third of the
# report's cost, paid on every health check; the cache keys its entry by this name and the
# template's checksum, so a changed template is compiled again.
BUILTIN_TEMPLATE_NAME = "bim.wall_system/fleet-report.html"


def _bytecode_cache():
    """Jinja2's per-user cache folder (created 0700 and checked for its owner), or None where it
    cannot be had: the page is then compiled as before."""
    from jinja2 import FileSystemBytecodeCache
    try:
        return FileSystemBytecodeCache()
    except (OSError, RuntimeError):
        return None


def render_html(report, template=None, trends=()):
    """The page for ``report`` (``report_json.build_report`` output). ``template`` overrides the built-in one.

    ``trends``: ``[(id, title, svg markup)]`` from ``report_svg.trend_charts`` (the markup is escaped there).
    """
    from jinja2 import ChainableUndefined, DictLoader
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(autoescape=True, undefined=ChainableUndefined, trim_blocks=True, lstrip_blocks=True,
                               loader=DictLoader({BUILTIN_TEMPLATE_NAME: TEMPLATE}),
                               bytecode_cache=None if template else _bytecode_cache())
    env.filters["value"] = _value
    env.filters["age"] = _age
    env.filters["seconds"] = _seconds
    env.filters["outcome"] = _outcome
    page = env.from_string(template) if template else env.get_template(BUILTIN_TEMPLATE_NAME)
    return page.render(report=report, trends=trends)
