#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: monitoring_service
short_description: Install the live health monitoring service of a BIM Wall System host
version_added: 0.1.0
description:
  - Writes the code, the launcher and the configuration of the monitoring service that runs the
    M(bim.wall_system.health_check) checks on their own cadence and keeps a Prometheus textfile for
    node_exporter's textfile collector up to date. It does not start or stop the service; role
    C(bim.wall_system.monitoring) does (systemd, or the inventory's start and stop commands).
  - The code is the collection's own C(module_utils), byte for byte the files this module was
    shipped with by Ansible (the health checks, thresholds, roll-up and Prometheus renderer that
    M(bim.wall_system.health_check) runs), written under O(dest)C(/lib); nothing is downloaded.
  - The configuration (connection, checks, thresholds, cadence, textfile) is a JSON file, mode 0600
    because it may hold the database password.
  - After an install that changed something, the launcher is run once with C(--check) under O(python)
    so a wrong interpreter or configuration fails here, not later in the background.
author:
  - BIM Wall System operations team (@bim-wall-system)
extends_documentation_fragment:
  - bim.wall_system.connection
  - bim.wall_system.attributes
attributes:
  check_mode:
    support: full
    details: Reports what would be written or removed; writes nothing.
  diff_mode:
    support: none
options:
  state:
    description:
      - V(present) installs or updates the service files, V(absent) removes O(dest) and O(config_path).
    type: str
    choices: [present, absent]
    default: present
  dest:
    description: Folder of the service's code (C(lib/)) and launcher (C(bin/bim-monitoring)).
    type: path
    default: /opt/bim-wall-system/monitoring
  config_path:
    description: Path of the service's configuration file (JSON, 0600).
    type: path
    default: /etc/bim-wall-system/monitoring.json
  python:
    description:
      - Interpreter that runs the service; it needs the libraries of the health checks (psycopg for
        PostgreSQL, redis with O(cache_url)), as the C(bim.wall_system.prerequisites) virtualenv has.
      - Default is the interpreter running this module (C(ansible_python_interpreter), which role
        C(bim.wall_system.prerequisites) points at its virtualenv).
    type: path
  host:
    description:
      - Value of the C(host) label of every series in the textfile (the role passes C(inventory_hostname)).
      - Required with O(state=present).
    type: str
  textfile:
    description:
      - Path of the Prometheus textfile, in the folder node_exporter's C(--collector.textfile.directory)
        reads; name it C(*.prom). It is replaced atomically after every cycle.
      - Required with O(state=present).
    type: path
  textfile_mode:
    description: Permissions of O(textfile); the default lets node_exporter, another user, read it.
    type: raw
    default: '0644'
  app_url:
    description: Base URL of the BIM application (inventory variable C(bim_app_url)); see M(bim.wall_system.health_check).
    type: str
  cache_url:
    description: Redis URL of the application cache; see M(bim.wall_system.health_check). Never logged.
    type: str
  data_dir:
    description: Folder whose file system holds the database files (inventory variable C(bim_data_dir)).
    type: path
  checks:
    description: Checks to run; default every check whose inputs are set, as in M(bim.wall_system.health_check).
    type: list
    elements: str
  thresholds:
    description: Threshold overrides, as in M(bim.wall_system.health_check).
    type: dict
    default: {}
  check_options:
    description: Settings of individual checks, as in M(bim.wall_system.health_check).
    type: dict
    default: {}
  check_timeout:
    description:
      - Seconds each check may run; keep it below the shortest interval so a hung application cannot
        delay the next cycle by more than one.
    type: float
    default: 8
  intervals:
    description:
      - Seconds between two runs of a check, by check name. Defaults are the guide's cadence -
        C(application), C(cache), C(geometric_operations), C(memory) 10; C(database) 30; C(logs) 60;
        C(system) 300.
    type: dict
    default: {}
seealso:
  - module: bim.wall_system.health_check
'''

EXAMPLES = r'''
- name: Install the monitoring service of a PostgreSQL host
  bim.wall_system.monitoring_service:
    engine: postgresql
    db_host: 127.0.0.1
    db_password: "{{ vault_bim_db_password }}"
    app_url: http://127.0.0.1:8080
    host: "{{ inventory_hostname }}"
    textfile: /var/lib/prometheus/node-exporter/bim_monitoring.prom
  register: monitoring

- name: Faster cadence for the database check only
  bim.wall_system.monitoring_service:
    engine: sqlite
    sqlite_path: /var/lib/bim/walls.db
    host: "{{ inventory_hostname }}"
    textfile: /var/lib/prometheus/node-exporter/bim_monitoring.prom
    intervals:
      database: 10

- name: Remove the service's files
  bim.wall_system.monitoring_service:
    state: absent
    engine: postgresql
'''

RETURN = r'''
command:
  description: The service's command line; systemd's C(ExecStart) or the inventory's start command runs it.
  returned: state is present
  type: list
  elements: str
  sample: [/opt/bim-wall-system/venv/bin/python, -I, /opt/bim-wall-system/monitoring/bin/bim-monitoring,
           --config, /etc/bim-wall-system/monitoring.json]
code_changed:
  description: Code files were (or would be) written or removed; a running service must restart.
  returned: always
  type: bool
  sample: true
config_changed:
  description: The configuration file was (or would be) written; a running service must restart.
  returned: always
  type: bool
  sample: false
code_digest:
  description: SHA-256 over the installed code files (paths and contents).
  returned: state is present
  type: str
  sample: 3f0c8f0c2b5b7e4c9d2b8d3c1c9a6e2a4f7b1e0d9c8b7a6f5e4d3c2b1a0f9e8d
files:
  description: Number of code files under O(dest) (the launcher included).
  returned: state is present
  type: int
  sample: 41
checks:
  description: The checks the service runs, each with its interval in seconds.
  returned: state is present
  type: dict
  sample: {database: 30, memory: 10, application: 10, cache: 10, geometric_operations: 10, logs: 60, system: 300}
thresholds:
  description: The thresholds in force (the defaults with O(thresholds) merged in), for the Prometheus rules.
  returned: state is present
  type: dict
  sample: {cache_hit_rate: {warning: 0.7, critical: 0.5, lower_is_worse: true}}
'''

import os
import subprocess
import sys

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.bim.wall_system.plugins.module_utils.common.urls import url_secrets
from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import (
    database_argument_spec, database_required_if)
from ansible_collections.bim.wall_system.plugins.module_utils.health.base import HealthError
from ansible_collections.bim.wall_system.plugins.module_utils.health.options import health_options_spec
from ansible_collections.bim.wall_system.plugins.module_utils.health.runner import (
    select_checks, thresholds_for, valid_check_names)
from ansible_collections.bim.wall_system.plugins.module_utils.monitoring import install
from ansible_collections.bim.wall_system.plugins.module_utils.monitoring.config import (
    CONNECTION_KEYS, DEFAULT_CHECK_TIMEOUT, MonitoringError, normalize)
# Imported so that Ansible ships the service, and everything it imports, with this module.
from ansible_collections.bim.wall_system.plugins.module_utils.monitoring import service  # noqa: F401 pylint: disable=unused-import


def service_config(params):
    """The service's configuration from the module's parameters (validated)."""
    config = normalize({
        "host": params["host"],
        "connection": {k: params[k] for k in CONNECTION_KEYS if params.get(k) is not None},
        "app_url": params["app_url"],
        "cache_url": params["cache_url"],
        "data_dir": params["data_dir"],
        "checks": params["checks"],
        "thresholds": params["thresholds"],
        "check_options": params["check_options"],
        "check_timeout": params["check_timeout"],
        "intervals": params["intervals"],
        "textfile": params["textfile"],
        "textfile_mode": params["textfile_mode"],
    }, valid_check_names())
    thresholds_for(config["thresholds"])  # unknown names and bad levels fail here, not in the service
    names = select_checks(config["checks"], config["app_url"], config["cache_url"])
    return config, {name: config["intervals"][name] for name in names}


def self_check(module, argv):
    """Run the installed launcher with --check: imports, configuration and interpreter are sound."""
    try:
        proc = subprocess.run(argv + ["--check"], capture_output=True, text=True, timeout=60, check=False)
    except OSError as exc:
        module.fail_json(msg="cannot run the monitoring service with %s: %s" % (argv[0], exc.strerror or exc),
                         cmd=argv + ["--check"], changed=True)
        return
    if proc.returncode != 0:
        module.fail_json(msg="the installed monitoring service does not start: %s" % (
            proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "exit %d" % proc.returncode),
            rc=proc.returncode, stderr=proc.stderr, cmd=argv + ["--check"], changed=True)


def main():
    argument_spec = database_argument_spec()
    argument_spec.update(health_options_spec())
    argument_spec.update(
        state=dict(type="str", default="present", choices=["present", "absent"]),
        dest=dict(type="path", default="/opt/bim-wall-system/monitoring"),
        config_path=dict(type="path", default="/etc/bim-wall-system/monitoring.json"),
        python=dict(type="path"),
        host=dict(type="str"),
        textfile=dict(type="path"),
        textfile_mode=dict(type="raw", default="0644"),
        check_timeout=dict(type="float", default=DEFAULT_CHECK_TIMEOUT),
        intervals=dict(type="dict", default={}),
    )
    module = AnsibleModule(argument_spec=argument_spec,
                           required_if=database_required_if() + [("state", "present", ("host", "textfile"))],
                           supports_check_mode=True)
    params = module.params
    # credentials inside app_url (http://user:password@host) are masked in every output of the module
    module.no_log_values.update(url_secrets(params["app_url"]))
    dest, config_path = params["dest"], params["config_path"]

    if params["state"] == "absent":
        present = os.path.exists(dest) or os.path.exists(config_path)
        if present and not module.check_mode:
            try:
                install.remove(dest, config_path)
            except install.InstallError as exc:
                module.fail_json(msg=str(exc))
        module.exit_json(changed=present, code_changed=present, config_changed=present)

    try:
        config, intervals = service_config(params)
        sources = install.collection_sources()
    except (MonitoringError, HealthError, install.InstallError) as exc:
        module.fail_json(msg=str(exc))
    python = params["python"] or sys.executable
    planned = install.plan(dest, python, config_path, config, sources)
    code_changed = bool(planned["code"] or planned["stale"])
    changed = code_changed or planned["config"]
    argv = install.command(dest, python, config_path)
    if changed and not module.check_mode:
        try:
            install.apply(dest, config_path, planned)
        except install.InstallError as exc:
            module.fail_json(msg=str(exc))
        self_check(module, argv)
    module.exit_json(changed=changed, code_changed=code_changed, config_changed=planned["config"], command=argv,
                     code_digest=planned["digest"], files=len(planned["files"]), checks=intervals,
                     thresholds=thresholds_for(config["thresholds"]))


if __name__ == "__main__":
    main()
