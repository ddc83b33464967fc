# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The monitoring service against a real SQLite database: cadence, textfile, faults that become
statuses, and the install from the collection's own module_utils (launcher run for real)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.health.runner import valid_check_names
from ansible_collections.bim.wall_system.plugins.module_utils.monitoring import install
from ansible_collections.bim.wall_system.plugins.module_utils.monitoring.config import MonitoringError, normalize
from ansible_collections.bim.wall_system.plugins.module_utils.monitoring.service import Service

parser = pytest.importorskip("prometheus_client.parser")


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def config(sqlite_conn_params, tmp_path, **extra):
    base = {"host": "lite9", "textfile": str(tmp_path / "text" / "bim_monitoring.prom"),
            "connection": {"engine": "sqlite", "sqlite_path": sqlite_conn_params.sqlite_path},
            "checks": ["database", "logs", "system"], "intervals": {"system": 300}}
    base.update(extra)
    return normalize(base, valid_check_names())


def samples(path):
    with open(path, encoding="utf-8") as handle:
        return {(s.name, tuple(sorted(s.labels.items()))): s.value
                for f in parser.text_string_to_metric_families(handle.read()) for s in f.samples}


def test_bad_configuration_is_a_clear_error(tmp_path):
    with pytest.raises(MonitoringError, match="connection.engine"):
        normalize({"host": "h", "textfile": "x.prom", "connection": {}}, valid_check_names())
    with pytest.raises(MonitoringError, match="unknown check"):
        normalize({"host": "h", "textfile": "x.prom", "connection": {"engine": "sqlite"}, "intervals": {"dbase": 5}},
                  valid_check_names())
    with pytest.raises(MonitoringError, match="positive"):
        normalize({"host": "h", "textfile": "x.prom", "connection": {"engine": "sqlite"}, "intervals": {"logs": 0}},
                  valid_check_names())


def test_cadence_textfile_and_a_database_that_goes_away(sqlite_conn_params, tmp_path):
    os.makedirs(tmp_path / "text")
    clock = Clock()
    logged = []
    service = Service(config(sqlite_conn_params, tmp_path), log=logged.append, clock=clock, wall_clock=clock)
    assert service.run_cycle() == ["database", "logs", "system"]  # everything is due at start
    clock.now += 30
    assert service.run_cycle() == ["database"]  # logs waits for its 60 s, system for its 300 s
    path = service.config["textfile"]
    values = samples(path)
    assert values[("bim_health_check_status", (("check", "database"), ("host", "lite9"), ("status", "healthy")))] == 1
    assert values[("bim_monitoring_check_interval_seconds", (("check", "system"), ("host", "lite9")))] == 300
    assert values[("bim_health_check_timestamp_seconds", (("check", "system"), ("host", "lite9")))] == 1000
    assert values[("bim_health_check_timestamp_seconds", (("check", "database"), ("host", "lite9")))] == 1030
    assert values[("bim_health_check_timestamp_seconds", (("check", "logs"), ("host", "lite9")))] == 1000
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    os.rename(sqlite_conn_params.sqlite_path, sqlite_conn_params.sqlite_path + ".away")
    try:
        clock.now += 30
        assert service.run_cycle() == ["database", "logs"]
    finally:
        os.rename(sqlite_conn_params.sqlite_path + ".away", sqlite_conn_params.sqlite_path)
    values = samples(path)
    assert values[("bim_health_check_status", (("check", "database"), ("host", "lite9"), ("status", "error")))] == 1
    assert values[("bim_health_check_status", (("check", "logs"), ("host", "lite9"), ("status", "error")))] == 1
    assert values[("bim_health_status", (("host", "lite9"), ("status", "unhealthy")))] == 1
    assert any("check database: healthy -> error" in line for line in logged)


def test_a_textfile_that_cannot_be_written_is_counted_not_fatal(sqlite_conn_params, tmp_path):
    clock = Clock()
    logged = []
    service = Service(config(sqlite_conn_params, tmp_path), log=logged.append, clock=clock, wall_clock=clock)
    service.run_cycle()  # the folder does not exist yet
    clock.now += 30
    service.run_cycle()
    assert service.write_errors == 2 and service.cycle_errors == 0
    assert len([line for line in logged if "not written" in line]) == 1  # said once, not every cycle
    os.makedirs(tmp_path / "text")
    clock.now += 30
    service.run_cycle()
    values = samples(service.config["textfile"])
    assert values[("bim_monitoring_textfile_write_errors_total", (("host", "lite9"),))] == 2
    assert values[("bim_monitoring_last_textfile_error_timestamp_seconds", (("host", "lite9"),))] == 1030
    assert any("written again after 2 failed" in line for line in logged)


def test_install_writes_the_collection_code_and_the_launcher_runs_it(sqlite_conn_params, tmp_path):
    sources = install.collection_sources()
    for needed in ("monitoring/service.py", "health/runner.py", "reporting/prometheus.py", "common/atomic.py"):
        assert any(rel.endswith(needed) for rel in sources), needed
    dest, config_path = str(tmp_path / "opt"), str(tmp_path / "etc" / "monitoring.json")
    cfg = config(sqlite_conn_params, tmp_path)
    planned = install.plan(dest, sys.executable, config_path, cfg, sources)
    assert planned["config"] and len(planned["code"]) == len(sources) + 1
    install.apply(dest, config_path, planned)
    assert stat.S_IMODE(os.stat(config_path).st_mode) == 0o600
    again = install.plan(dest, sys.executable, config_path, cfg, sources)
    assert again["code"] == [] and not again["config"] and again["stale"] == []
    assert again["digest"] == planned["digest"]
    # an older version's module left in lib/ is stale; the service's bytecode cache is not
    old = os.path.join(dest, "lib", "ansible_collections", "bim", "wall_system", "plugins", "module_utils", "gone.py")
    open(old, "w").close()
    os.makedirs(os.path.join(os.path.dirname(old), "__pycache__"), exist_ok=True)
    open(os.path.join(os.path.dirname(old), "__pycache__", "x.pyc"), "w").close()
    assert install.plan(dest, sys.executable, config_path, cfg, sources)["stale"] == [old]
    # the installed launcher imports only what was installed: run it in isolated mode, cwd elsewhere
    os.makedirs(tmp_path / "text")
    argv = install.command(dest, sys.executable, config_path)
    proc = subprocess.run(argv + ["--check"], capture_output=True, text=True, cwd="/", check=False,
                          env={"PATH": os.environ.get("PATH", "")})
    assert proc.returncode == 0, proc.stderr
    assert "host lite9" in proc.stdout
    proc = subprocess.run(argv + ["--once"], capture_output=True, text=True, cwd="/", check=False,
                          env={"PATH": os.environ.get("PATH", "")})
    assert proc.returncode == 0, proc.stderr
    assert samples(cfg["textfile"])[("bim_health_status", (("host", "lite9"), ("status", "healthy")))] == 1
    json.loads(open(config_path).read())  # valid JSON the service read
    assert install.remove(dest, config_path) and not os.path.exists(dest) and not os.path.exists(config_path)
