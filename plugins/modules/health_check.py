#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: health_check
short_description: Check the health of one BIM Wall System installation
version_added: 0.1.0
description:
  - Runs the health checks of a BIM Wall System host concurrently, each with its own timeout,
    and rolls them up into V(healthy), V(degraded) or V(unhealthy).
  - C(database) measures connect time, bounded query latency (a key lookup and a spatial window
    query, never a full scan), connections in use against the server limit, disk usage of the
    data folder, and checks that the spatial indexes are present and valid.
  - C(memory) reads the host memory in use and the application's heap usage.
  - C(application), C(cache) and C(geometric_operations) read C(GET {app_url}/metrics)
    (average offset time, throughput, cache hit rate, operation failure rate);
    C(application) also asks C(GET {app_url}/health).
  - C(logs) reads the application's C(logs) table (error rate per category in the last window,
    the most repeated errors, and an anomaly flag against the trailing baseline).
  - C(archiving) runs where M(bim.wall_system.continuous_archiving) set archiving up (its descriptor is in
    O(archive_dir)). PostgreSQL (pgBackRest) - V(error) when C(pg_stat_archiver) shows a failure newer than the
    last archived segment (archive_command failing now) or archive_mode is not on; C(archive_delay_ratio), the
    seconds WAL written after the last archived segment has waited divided by C(archive_timeout), against its
    threshold (an idle server switches no segment, so an old last archive alone is no problem). SQLite
    (Litestream) - V(error) when the daemon does not run; C(replica_lag_s) against its threshold. Its metrics
    carry the recoverable window (C(recoverable_window) with C(earliest) / C(latest), ISO-8601 UTC) and the
    physical backups.
  - C(system) reports CPU usage (sampled for 0.1 s), load average, cores, memory, uptime and platform.
  - A check that fails or does not finish within O(check_timeout) is reported as V(error);
    the other checks still run and are reported.
  - The module only reads; the optional Prometheus textfile is the only thing it writes.
author:
  - BIM Wall System operations team (@bim-wall-system)
extends_documentation_fragment:
  - bim.wall_system.connection
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Every check runs (they only read); the Prometheus textfile is not written.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  app_url:
    description:
      - Base URL of the BIM application, for example C(http://127.0.0.1:8080).
      - Usually the inventory variable C(bim_app_url).
      - Credentials in it (C(http://user:password@host:8080)) are sent as HTTP basic authentication and
        never shown; results and messages name the URL as C(http://********@host:8080).
      - When it is not set, the checks that read the application are left out unless named in O(checks).
    type: str
  cache_url:
    description:
      - Redis URL of the application cache (C(redis://[:password@]host:port/db)).
      - When set, the C(cache) check also reads the Redis statistics (hit rate, memory in use against
        C(maxmemory), evictions, keys) and runs even without O(app_url). The hit rate threshold is
        applied to the application's figure, or to the Redis keyspace hit rate when the application
        does not report one.
      - Needs the C(redis) Python library on the managed host.
      - May hold a password, so it is never logged.
    type: str
  data_dir:
    description:
      - Folder whose file system holds the database files, for the disk usage figure
        (inventory variable C(bim_data_dir)).
      - Default for PostgreSQL is the server's C(data_directory) when the user may read it and it
        exists on this host; for SQLite the folder of O(sqlite_path).
    type: path
  checks:
    description:
      - Names of the checks to run, in any order.
      - Default is every check (the application checks only when O(app_url) is set).
      - Valid names are V(database), V(memory), V(application), V(cache), V(geometric_operations),
        V(logs), V(archiving), V(system); an unknown name fails with the list.
    type: list
    elements: str
  thresholds:
    description:
      - "Overrides of the alert thresholds, as C({name: {warning: N, critical: N}}); a partial
        dict changes only the levels it names, a bare number sets the warning level."
      - Defaults (warning/critical) are C(database_response_time_ms) 1000/5000,
        C(connection_usage) 0.80/0.95, C(disk_usage) 0.85/0.95, C(memory_usage) 0.80/0.95,
        C(cache_hit_rate) 0.70/0.50 (lower is worse), C(operation_failure_rate) 0.05/0.10,
        C(average_offset_time_ms) 1000/none, C(cache_memory_usage) 0.85/0.95 (Redis, with O(cache_url)),
        C(error_rate) 0.05/0.10 (C(logs) check), C(archive_delay_ratio) 2/10 and C(replica_lag_s) 5/60
        (C(archiving) check).
      - A warning turns the check into V(warning), a critical level into V(error).
      - An unknown name fails with the list of valid ones.
    type: dict
    default: {}
  check_options:
    description:
      - Settings of individual checks, for example the C(logs) check's C(logs_window_minutes) (60),
        C(logs_baseline_hours) (24), C(logs_anomaly_factor) (3.0), C(logs_min_errors) (5),
        C(logs_top_messages) (5). Keys a check does not know are ignored.
    type: dict
    default: {}
  archive_dir:
    description:
      - Folder of the archiving files (inventory C(bim_archiving_dir)). When it holds the descriptor of
        M(bim.wall_system.continuous_archiving), the C(archiving) check runs by default.
    type: path
    default: /var/lib/bim-wall-system/archiving
  check_timeout:
    description:
      - Seconds each check may run; one still running then is reported as V(error) and abandoned.
    type: float
    default: 15
  fail_on:
    description:
      - Fail the task when the overall status is at least this bad. V(never) only reports.
    type: str
    choices: [never, degraded, unhealthy]
    default: never
  prometheus_textfile:
    description:
      - Path of a Prometheus textfile (for node_exporter's textfile collector, name it C(*.prom)) to
        write the results to, atomically. Its folder must exist.
    type: path
  prometheus_textfile_mode:
    description:
      - Permissions of O(prometheus_textfile). The default lets node_exporter, running as another
        user, read it; the file holds no secret.
    type: raw
    default: '0644'
  prometheus_host:
    description:
      - Value of the C(host) label of every series in O(prometheus_textfile); the fleet report and the
        C(bim.wall_system.monitoring) service label the same host the same way.
      - Default is the host's name (C(socket.gethostname())); role C(bim.wall_system.health_check)
        passes C(inventory_hostname).
    type: str
  prerequisites_stamp:
    description:
      - File the C(bim.wall_system.prerequisites) role writes into its virtualenv once this release's
        libraries are installed there. When set and absent, the module fails at once, before any
        check, with RV(prerequisites_missing) true; role C(bim.wall_system.health_check) passes it
        and then runs the prerequisites role and checks again.
    type: path
notes:
  - The CPU figure is sampled for 0.1 s; the checks run concurrently, so this adds 0.1 s at most.
seealso:
  - module: bim.wall_system.cache_maintenance
'''

EXAMPLES = r'''
- name: Check a PostgreSQL host
  bim.wall_system.health_check:
    engine: postgresql
    db_host: 127.0.0.1
    db_name: bim_walls
    db_user: bim
    db_password: "{{ vault_bim_db_password }}"
    app_url: http://127.0.0.1:8080
  register: health

- name: Check a SQLite host, fail when unhealthy, write Prometheus metrics
  bim.wall_system.health_check:
    engine: sqlite
    sqlite_path: /var/lib/bim/walls.db
    app_url: http://127.0.0.1:8080
    thresholds:
      cache_hit_rate:
        warning: 0.8
    fail_on: unhealthy
    prometheus_textfile: /var/lib/node_exporter/textfile/bim_health.prom

- name: Only the database and system checks, with a short timeout
  bim.wall_system.health_check:
    engine: sqlite
    sqlite_path: /var/lib/bim/walls.db
    checks: [database, system]
    check_timeout: 5
'''

RETURN = r'''
prerequisites_missing:
  description:
    - V(true) when the host lacks a library of the collection (a check could not run for it) or
      O(prerequisites_stamp) is absent; the C(bim.wall_system.prerequisites) role installs them.
  returned: always
  type: bool
  sample: false
overall_status:
  description: V(healthy) when every check is healthy, V(degraded) when one warns, V(unhealthy) when one errors.
  returned: always
  type: str
  sample: degraded
checks:
  description: One entry per check, in report order.
  returned: always
  type: list
  elements: dict
  sample:
    - name: cache
      status: warning
      message: cache hit rate 0.60
      metrics: {cache_hit_rate: 0.6}
      duration_ms: 3.2
  contains:
    name:
      description: Check name.
      type: str
      sample: database
    status:
      description: V(healthy), V(warning) or V(error).
      type: str
      sample: healthy
    message:
      description: What the check found, in words.
      type: str
      sample: connected in 3 ms, probes key_lookup 0.4 ms, spatial_window 1.1 ms; 4/100 connections
    metrics:
      description: Figures the check measured (names depend on the check).
      type: dict
      sample: {connect_time_ms: 3.1, database_response_time_ms: 3.1, disk_usage: 0.41}
    duration_ms:
      description: How long the check ran, in milliseconds.
      type: float
      sample: 12.5
alerts:
  description: Metrics beyond a threshold.
  returned: always
  type: list
  elements: dict
  sample:
    - check: cache
      metric: cache_hit_rate
      value: 0.6
      threshold: 0.7
      severity: warning
recommendations:
  description: What an operator should do about the problems found.
  returned: always
  type: list
  elements: str
  sample:
    - "database: index idx_walls_geometry on walls is invalid (interrupted concurrent build?); run REINDEX INDEX CONCURRENTLY idx_walls_geometry"
problems:
  description: "One line per check that is not healthy, as C(check: status: message); used by fleet summaries."
  returned: always
  type: list
  elements: str
  sample: ["cache: warning: cache hit rate 0.60"]
system:
  description: System statistics of the host (empty when the C(system) check was not run).
  returned: always
  type: dict
  sample:
    cpu: {usage: 0.12, load_average: [0.5, 0.4, 0.3], cores: 2}
    memory: {total_bytes: 25769803776, free_bytes: 20000000000, used_bytes: 5769803776, usage_percent: 0.2239}
    uptime_seconds: 86400.0
    platform: linux
    platform_release: 6.1.0
    hostname: pg1
    python_version: 3.11.2
thresholds:
  description: The thresholds in force after merging O(thresholds) into the defaults.
  returned: always
  type: dict
  sample: {cache_hit_rate: {warning: 0.7, critical: 0.5, lower_is_worse: true}}
prometheus_textfile:
  description: Path of the Prometheus textfile written (or that would be written in check mode).
  returned: when O(prometheus_textfile) is set
  type: str
  sample: /var/lib/node_exporter/textfile/bim_health.prom
'''

import os
import socket
import urllib.parse

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.bim.wall_system.plugins.module_utils.common.atomic import atomic_write
from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import (
    ConnectionParams, database_argument_spec, database_required_if)
from ansible_collections.bim.wall_system.plugins.module_utils.database.schema import SchemaOverrideError
from ansible_collections.bim.wall_system.plugins.module_utils.health.base import CheckContext, FAIL_ON_STATUSES, HealthError
from ansible_collections.bim.wall_system.plugins.module_utils.health.options import health_options_spec
from ansible_collections.bim.wall_system.plugins.module_utils.health.runner import (
    run_checks, build_report, select_checks, thresholds_for)
from ansible_collections.bim.wall_system.plugins.module_utils.reporting.prometheus import render_host
from ansible_collections.bim.wall_system.plugins.module_utils.common.urls import url_secrets


def url_password(url):
    try:
        return urllib.parse.urlsplit(url).password if url else None
    except ValueError:
        return None


def file_mode(module, mode):
    if isinstance(mode, int):
        return mode
    try:
        return int(str(mode), 8)
    except ValueError:
        module.fail_json(msg="prometheus_textfile_mode must be an octal mode such as '0644', got %r" % (mode,))
        return None


def write_textfile(module, path, content, mode):
    """(changed, error) for writing ``content`` to ``path``; check mode only compares."""
    try:
        with open(path, "r") as handle:
            if handle.read() == content and (os.stat(path).st_mode & 0o7777) == mode:
                return False
    except (OSError, UnicodeDecodeError):
        pass
    if module.check_mode:
        return True
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        module.fail_json(msg="cannot write prometheus_textfile %s: its folder does not exist" % path)
    try:
        atomic_write(path, content, mode=mode)
    except OSError as exc:
        module.fail_json(msg="cannot write prometheus_textfile %s: %s" % (path, exc.strerror or exc))
    return True


def main():
    argument_spec = database_argument_spec()
    argument_spec.update(health_options_spec())
    argument_spec.update(
        check_timeout=dict(type="float", default=15.0),
        fail_on=dict(type="str", default="never", choices=list(FAIL_ON_STATUSES)),
        prometheus_textfile=dict(type="path"),
        prometheus_textfile_mode=dict(type="raw", default="0644"),
        prometheus_host=dict(type="str"),
        archive_dir=dict(type="path", default="/var/lib/bim-wall-system/archiving"),
        prerequisites_stamp=dict(type="path"),
    )
    module = AnsibleModule(argument_spec=argument_spec, required_if=database_required_if(),
                           supports_check_mode=True)
    params = module.params
    if params["prerequisites_stamp"] and not os.path.exists(params["prerequisites_stamp"]):
        module.fail_json(msg="the collection's libraries are not installed for this release (no %s): run the "
                         "bim.wall_system.prerequisites role" % params["prerequisites_stamp"], prerequisites_missing=True)
    # credentials inside app_url (http://user:password@host) are masked in every output of the module
    module.no_log_values.update(url_secrets(params["app_url"]))
    if params["check_timeout"] <= 0:
        module.fail_json(msg="check_timeout must be a positive number of seconds")
    mode = file_mode(module, params["prometheus_textfile_mode"])

    archive_dir = params["archive_dir"] if os.path.isfile(os.path.join(params["archive_dir"], "archiving.json")) else None
    try:
        thresholds = thresholds_for(params["thresholds"])
        names = select_checks(params["checks"], params["app_url"], archive_dir=archive_dir)
    except HealthError as exc:
        module.fail_json(msg=str(exc))

    try:
        conn = ConnectionParams.from_params(params)
    except SchemaOverrideError as exc:
        module.fail_json(msg=str(exc))
    ctx = CheckContext(
        conn=conn,
        app_url=params["app_url"],
        cache_url=params["cache_url"],
        data_dir=params["data_dir"],
        thresholds=thresholds,
        timeout=params["check_timeout"],
        secrets=[params["db_password"], params["cache_url"], url_password(params["cache_url"])],
        options=params["check_options"],
        archive_dir=archive_dir or params["archive_dir"],
    )
    report = build_report(run_checks(ctx, names))
    report["thresholds"] = thresholds

    changed = False
    if params["prometheus_textfile"]:
        host = params["prometheus_host"] or socket.gethostname()
        content = render_host(dict(report, host=host), sections=("health",))
        changed = write_textfile(module, params["prometheus_textfile"], content, mode)
        report["prometheus_textfile"] = params["prometheus_textfile"]

    if report["overall_status"] in FAIL_ON_STATUSES[params["fail_on"]]:
        module.fail_json(msg="overall status is %s (fail_on=%s): %s" % (
            report["overall_status"], params["fail_on"], "; ".join(report["problems"])), changed=changed, **report)
    module.exit_json(changed=changed, **report)


if __name__ == "__main__":
    main()
