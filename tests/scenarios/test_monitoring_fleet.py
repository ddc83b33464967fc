# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Live monitoring on the fleet, with Debian's real Prometheus and node_exporter on loopback.

One node_exporter per BIM host (textfile collector only) on ADDRESS:9100 of the host, one for the
fleet report's textfiles and Prometheus (1 s scrape and evaluation) on NET.8 - all on the fleet's
own /24, started and stopped here by PID. The role runs the service under the fleet's process
control (tests/fleet/procctl.py); the checks run every 2 s instead of the guide's 10-300 s.

The operator's story: apply the role, then - with no playbook run after it - Prometheus holds every
host's health, a host whose cache hit rate drops to 0.6 raises the cache alert, a stopped database,
a hung application and a full textfile disk are reported while the service keeps running.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest
import yaml

from prometheus_client.parser import text_string_to_metric_families

HERE = os.path.dirname(os.path.abspath(__file__))
PROCCTL = os.path.join(os.path.dirname(HERE), "fleet", "procctl.py")
BIM = ["pg1", "pg2", "lite1"]
ALERT_FOR = "20s"
PLAYBOOK = """---
- name: Live monitoring
  hosts: bim
  gather_facts: false
  roles:
    - role: bim.wall_system.monitoring
"""
REPORT_PLAYBOOK = """---
- name: Health check and fleet report
  hosts: bim
  gather_facts: false
  roles:
    - role: bim.wall_system.health_check
    - role: bim.wall_system.alerting
"""


def get_json(url, timeout=5):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as response:
        return json.loads(response.read().decode("utf-8"))


def wait_for(predicate, deadline_s, what, step=0.5):
    """predicate()'s truthy value, polled until ``deadline_s`` seconds have passed."""
    deadline = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(step)
    pytest.fail("not within %ss: %s (last: %r)" % (deadline_s, what, last))


class Stack:
    """Prometheus and the node_exporters of one test module; every process is ours, by PID."""

    def __init__(self, fleet, root):
        self.fleet = fleet
        self.root = root
        net = fleet.load_meta()["net"]
        self.address = "%s.8" % net
        self.url = "http://%s:9090" % self.address
        self.procs = []
        self.textfile_dirs = {h: fleet.hdir(h, "textfile") for h in BIM}
        self.report_dir = os.path.join(root, "report-textfiles")
        self.rules_dir = os.path.join(root, "rules")

    def start(self):
        os.makedirs(self.report_dir, exist_ok=True)
        os.makedirs(self.rules_dir, exist_ok=True)
        targets = []
        for host in BIM:
            os.makedirs(self.textfile_dirs[host], exist_ok=True)
            address = "%s:9100" % self.fleet.host(host)["address"]
            self._exporter(address, self.textfile_dirs[host])
            targets.append(address)
        report_exporter = "%s:9100" % self.address
        self._exporter(report_exporter, self.report_dir)
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
            "rule_files": [os.path.join(self.rules_dir, "*.yml")],
            "scrape_configs": [{"job_name": "bim_hosts", "static_configs": [{"targets": targets}]},
                               {"job_name": "bim_report", "static_configs": [{"targets": [report_exporter]}]}],
        }
        config_file = os.path.join(self.root, "prometheus.yml")
        with open(config_file, "w", encoding="utf-8") as handle:
            yaml.safe_dump(config, handle)
        self.prometheus = self._spawn(["prometheus", "--config.file=%s" % config_file,
                                       "--storage.tsdb.path=%s" % os.path.join(self.root, "tsdb"),
                                       "--web.listen-address=%s:9090" % self.address,
                                       "--storage.tsdb.retention.time=1h", "--log.level=warn"], "prometheus")
        wait_for(self._ready, 60, "Prometheus ready on %s" % self.url)

    def _ready(self):
        try:
            return get_json(self.url + "/api/v1/status/buildinfo")["status"] == "success"
        except OSError:
            return False

    def _exporter(self, address, folder):
        self._spawn(["prometheus-node-exporter", "--collector.disable-defaults", "--collector.textfile",
                     "--collector.textfile.directory=%s" % folder, "--web.listen-address=%s" % address,
                     "--log.level=warn"], "node-exporter-" + address.replace(":", "_"))

    def _spawn(self, argv, name):
        log = open(os.path.join(self.root, name + ".log"), "ab")
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        log.close()
        self.procs.append(proc)
        return proc

    def load_rules(self, path):
        shutil.copy(path, os.path.join(self.rules_dir, os.path.basename(path)))
        self.prometheus.send_signal(signal.SIGHUP)
        wait_for(self.rule_groups, 30, "Prometheus loaded the rules")

    def rule_groups(self):
        return get_json(self.url + "/api/v1/rules")["data"]["groups"]

    def query(self, expr):
        url = self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        body = get_json(url)
        assert body["status"] == "success", body
        return body["data"]["result"]

    def alerts(self):
        return get_json(self.url + "/api/v1/alerts")["data"]["alerts"]

    def stop(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def role_vars(fleet, export_dir, state="present"):
    """The role's variables for the test fleet: one service per host under the fleet's own process control."""
    state_dir = fleet.state_dir
    host_dir = state_dir + "/{{ inventory_hostname }}"
    procctl = "%s %s" % (sys.executable, PROCCTL)
    return {
        "bim_monitoring_state": state,
        "bim_monitoring_dir": host_dir + "/monitoring",
        "bim_monitoring_config_path": host_dir + "/monitoring/monitoring.json",
        "bim_monitoring_textfile": host_dir + "/textfile/bim_monitoring.prom",
        "bim_monitoring_intervals": {name: 2 for name in ("database", "memory", "application", "cache",
                                                          "geometric_operations", "logs", "system")},
        "bim_monitoring_check_timeout": 1.5,
        # a day's window: the generator's recent log entries stay in it however old the fleet is; a
        # 30-day baseline: the generator writes nothing 24-48 h old, so the default 24 h baseline is
        # empty on a young fleet and every error would be an "anomaly" (the host degraded)
        "bim_monitoring_check_options": {"logs_window_minutes": 1440, "logs_baseline_hours": 720},
        "bim_monitoring_start_command": "%s start %s/monitoring/run" % (procctl, host_dir),
        "bim_monitoring_stop_command": "%s stop %s/monitoring/run" % (procctl, host_dir),
        "bim_monitoring_export_dir": export_dir,
        "bim_monitoring_alert_for": ALERT_FOR,
        "bim_monitoring_stale_after": "10s",
    }


@pytest.fixture(scope="module")
def stack(fleet, tmp_path_factory):
    if not shutil.which("prometheus") or not shutil.which("prometheus-node-exporter"):
        pytest.fail("Debian's prometheus and prometheus-node-exporter are required (tests/run.sh installs them)")
    handle = Stack(fleet, str(tmp_path_factory.mktemp("prometheus")))
    handle.start()
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def monitored(fleet, stack, tmp_path_factory):
    """The role applied to the BIM hosts once for the module; removed (state absent) at the end."""
    work = tmp_path_factory.mktemp("monitoring-role")
    playbook = work / "monitoring.yml"
    playbook.write_text(PLAYBOOK)
    export_dir = str(work / "export")
    env = dict(os.environ, ANSIBLE_CONFIG=fleet.ansible_cfg, ANSIBLE_NOCOLOR="1")

    def run(state="present"):
        cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", fleet.inventory,
               "--limit", ",".join(BIM), "-e", json.dumps(role_vars(fleet, export_dir, state)), str(playbook)]
        return subprocess.run(cmd, cwd=str(work), env=env, text=True, capture_output=True, check=False, timeout=600)

    first = run()
    finished = time.monotonic()
    assert first.returncode == 0, first.stdout[-6000:] + first.stderr[-3000:]
    rules = os.path.join(export_dir, "bim-rules.yml")
    check = subprocess.run(["promtool", "check", "rules", rules], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    stack.load_rules(rules)
    yield {"first": first, "finished": finished, "run": run, "export_dir": export_dir}
    removed = run("absent")
    assert removed.returncode == 0, removed.stdout[-4000:]
    for host in BIM:
        assert not os.path.exists(fleet.hdir(host, "textfile", "bim_monitoring.prom"))


def service_pid(fleet, host):
    proc = subprocess.run([sys.executable, PROCCTL, "status", fleet.hdir(host, "monitoring", "run")],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return None
    with open(fleet.hdir(host, "monitoring", "run", "pid"), encoding="utf-8") as handle:
        return int(handle.read())


def textfile_samples(fleet, host):
    with open(fleet.hdir(host, "textfile", "bim_monitoring.prom"), encoding="utf-8") as handle:
        text = handle.read()
    return {(s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "host"))): s.value
            for f in text_string_to_metric_families(text) for s in f.samples}


def check_status(fleet, host, check):
    samples = textfile_samples(fleet, host)
    for status in ("healthy", "warning", "error"):
        if samples.get(("bim_health_check_status", (("check", check), ("status", status)))) == 1:
            return status
    return None


def service_log(fleet, host):
    with open(fleet.hdir(host, "monitoring", "run", "log"), encoding="utf-8") as handle:
        return handle.read()


def test_prometheus_sees_every_host_and_the_cache_alert_without_another_run(fleet, stack, monitored):
    first = monitored["first"]
    recap = first.stdout.split("PLAY RECAP")[-1]
    for host in BIM:
        assert service_pid(fleet, host), service_log(fleet, host)
        assert re.search(r"^%s\s.*failed=0" % host, recap, re.M), recap
    groups = {g["name"] for g in stack.rule_groups()}
    assert groups == {"bim-thresholds", "bim-guide-alerts", "bim-monitoring", "bim-recording"}

    # within 90 s of the role's run, Prometheus holds bim_health_status for every host
    def every_host():
        found = {r["metric"]["host"] for r in stack.query('bim_health_status{status="healthy"} == 1')}
        return found >= set(BIM) and found
    wait_for(every_host, 90 - (time.monotonic() - monitored["finished"]), "bim_health_status healthy for %s" % BIM)

    # a degraded host: its cache alert is pending or firing within the rule's for:
    fleet.set_app_metrics("lite1", cache_hit_rate=0.6)
    try:
        def cache_alert():
            return [a for a in stack.alerts() if a["labels"].get("alertname") == "BimCacheHitRate"
                    and a["labels"].get("host") == "lite1" and a["labels"].get("severity") == "warning"
                    and a["state"] in ("pending", "firing")]
        alert = wait_for(cache_alert, 20, "BimCacheHitRate for lite1 pending or firing")[0]
        assert alert["labels"]["level"] == "0.7" and float(alert["value"]) == 0.6
        assert stack.query('bim_health_status{host="lite1",status="degraded"} == 1')
        # no other host is affected
        assert not [a for a in stack.alerts() if a["labels"].get("alertname") == "BimCacheHitRate"
                    and a["labels"].get("host") != "lite1"]
        wait_for(lambda: [a for a in stack.alerts() if a["labels"].get("alertname") == "BimCacheHitRate"
                          and a["labels"].get("host") == "lite1" and a["state"] == "firing"], 40,
                 "BimCacheHitRate firing after %s" % ALERT_FOR)
    finally:
        fleet.reset("lite1")

    # a second run changes nothing: same code, same configuration, the services keep running
    pids = {h: service_pid(fleet, h) for h in BIM}
    second = monitored["run"]()
    assert second.returncode == 0, second.stdout[-4000:]
    for host in BIM:
        assert re.search(r"^%s\s.*changed=0" % host, second.stdout.split("PLAY RECAP")[-1], re.M), second.stdout[-3000:]
    assert {h: service_pid(fleet, h) for h in BIM} == pids


def test_faults_are_statuses_and_the_service_keeps_running(fleet, stack, monitored):
    pids = {h: service_pid(fleet, h) for h in BIM}
    assert all(pids.values())
    mount_point = fleet.hdir("pg1", "textfile")
    mounted = False
    try:
        # database down
        fleet.stop_db("pg2")
        wait_for(lambda: check_status(fleet, "pg2", "database") == "error", 20, "pg2 database check error")
        assert check_status(fleet, "pg2", "logs") == "error"
        wait_for(lambda: stack.query('bim_health_check_status{host="pg2",check="database",status="error"} == 1'), 20,
                 "Prometheus sees pg2's database error")

        # application hangs (accepts connections, answers nothing)
        fleet.set_app("lite1", {"hang": True})
        wait_for(lambda: check_status(fleet, "lite1", "application") == "error", 30, "lite1 application check error")
        assert "timed out" in service_log(fleet, "lite1")

        # full disk under the textfile: a 64 KiB tmpfs, filled up
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", mount_point], check=True)
        mounted = True
        wait_for(lambda: os.path.exists(os.path.join(mount_point, "bim_monitoring.prom")), 20, "pg1 textfile on tmpfs")
        filler = os.open(os.path.join(mount_point, "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(filler, b"\0" * 4096)
        except OSError:  # ENOSPC: the file system is full
            pass
        finally:
            os.close(filler)
        wait_for(lambda: "No space left on device" in service_log(fleet, "pg1"), 20, "pg1 logs the full disk")
        os.unlink(os.path.join(mount_point, "filler"))
        wait_for(lambda: textfile_samples(fleet, "pg1").get(("bim_monitoring_textfile_write_errors_total", ()), 0) >= 1,
                 20, "pg1's textfile counts the failed writes once there is room again")

        # every service still runs, the same process as before
        assert {h: service_pid(fleet, h) for h in BIM} == pids
        wait_for(lambda: stack.query('bim_monitoring_textfile_write_errors_total{host="pg1"} >= 1'), 20,
                 "Prometheus sees pg1's failed writes")
    finally:
        if mounted:
            subprocess.run(["umount", mount_point], check=False)
        fleet.reset("pg2")
        fleet.reset("lite1")
    wait_for(lambda: check_status(fleet, "pg2", "database") == "healthy", 20, "pg2 healthy again")
    wait_for(lambda: check_status(fleet, "lite1", "application") == "healthy", 30, "lite1 healthy again")


def seed_recovery_summaries(report_dir):
    """Backup and drill summaries as roles backup and recovery_drill write them, with a recoverable window."""
    from ansible_collections.bim.wall_system.plugins.module_utils.reporting.fleet_summary import (
        build_summary, write_summary)

    now = datetime.datetime.now(datetime.timezone.utc)
    stamp = (now - datetime.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    window = {"earliest": (now - datetime.timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ"),
              "latest": (now - datetime.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}
    backup = build_summary("backup", BIM, {h: {"status": "ok", "reasons": [], "backup_id": "%s-full-1" % h, "type": "full",
                                               "finished_at": stamp, "referenced_bytes": 1000000 + i,
                                               "recoverable_window": window}
                                           for i, h in enumerate(BIM)})
    drill = build_summary("drill", BIM, {h: {"status": "passed", "reasons": [], "rto_s": 40.0 + i, "rpo_s": 60}
                                         for i, h in enumerate(BIM)})
    write_summary(report_dir, backup)
    write_summary(report_dir, drill)


def test_every_dashboard_query_answers_from_prometheus(fleet, stack, monitored, run_playbook, tmp_path):
    """The dashboard's queries name metrics the textfiles really export: each one returns data."""
    seed_recovery_summaries(str(tmp_path / "bim-reports"))
    playbook = tmp_path / "report.yml"
    playbook.write_text(REPORT_PLAYBOOK)
    result = run_playbook(str(playbook), limit=BIM, extra_vars={
        "bim_alerting_report_prometheus_dir": stack.report_dir,
        # the live service exports the health; the report adds the recovery figures
        "bim_alerting_report_prometheus_sections": ["recovery"]})
    assert result.rc == 0, str(result)
    # the health series come from the hosts' services only, the recovery figures from the report
    assert stack.query('bim_health_status{job="bim_hosts"}')
    assert not stack.query('bim_health_status{job="bim_report"}')
    wait_for(lambda: len(stack.query("bim_recoverable_window_latest_timestamp_seconds")) == len(BIM), 30,
             "the report's recovery figures in Prometheus")
    wait_for(lambda: stack.query("bim_host:backup_age_seconds:live"), 30, "recording rules evaluated")

    from ansible_collections.bim.wall_system.plugins.module_utils.monitoring.dashboard import queries

    dashboard = json.loads(open(os.path.join(monitored["export_dir"], "bim-wall-system-dashboard.json")).read())
    empty = []
    for expr in queries(dashboard):
        if expr.startswith("label_values("):
            metric = re.match(r"label_values\((\w+)", expr).group(1)
            hosts = {r["metric"]["host"] for r in stack.query(metric)}
            assert hosts >= set(BIM), expr
            continue
        promql = expr.replace("$host", ".*")
        if not stack.query(promql):
            empty.append(expr)
    assert empty == [], "dashboard queries without data: %s" % empty
