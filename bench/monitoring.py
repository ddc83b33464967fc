# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cost of the monitoring service per host, against what an operator would otherwise run.

    BIM_FLEET_NET=127.0.16 BIM_FLEET_STATE_DIR=/var/tmp/bim-fleet-16 \\
    ANSIBLE_COLLECTIONS_PATH=.cache/collections .venv/bin/python bench/monitoring.py --seconds 330

For each BIM host of the running test fleet (pg1: PostgreSQL, lite1: SQLite) it runs the service at
the guide's cadence (application, cache, geometric operations, memory 10 s; database 30 s; logs
60 s; system 300 s) for ``--seconds`` and reads its CPU time and peak memory from /proc. Beside it,
in the same window:

* node_exporter with Debian's default collectors, scraped every 15 s (the exporter every host with
  the service runs anyway);
* the same checks started as a fresh process per cycle, as a timer or cron job would (``--once``
  with the 10-second group of checks, six times a minute), measured per run.

Ratios: node_exporter CPU / service CPU, timer CPU / service CPU (per minute of monitoring).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "fleet"))

import fleet as fleet_lib  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
APP_GROUP = ["memory", "application", "cache", "geometric_operations"]


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid, encoding="utf-8") as handle:
        fields = handle.read().split(") ")[-1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def peak_rss_mib(pid):
    with open("/proc/%d/status" % pid, encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return None


def host_config(fleet, host, folder, checks=None):
    with open(fleet.inventory, encoding="utf-8") as handle:
        inventory = yaml.safe_load(handle)
    groups = inventory["all"]["children"]["bim"]["children"]
    hv = next(g["hosts"][host] for g in groups.values() if host in (g.get("hosts") or {}))
    keys = ("db_host", "db_port", "db_name", "db_user", "db_password", "db_socket_dir", "sqlite_path")
    connection = {k: hv.get("bim_" + k) for k in keys if hv.get("bim_" + k) is not None}
    connection["engine"] = hv["bim_db_engine"]
    config = {"host": host, "connection": connection, "app_url": hv["bim_app_url"], "data_dir": hv["bim_data_dir"],
              "textfile": os.path.join(folder, "bim_%s.prom" % host), "checks": checks or []}
    path = os.path.join(folder, "%s%s.json" % (host, "-" + "-".join(checks) if checks else ""))
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(config, handle)
    os.chmod(path, 0o600)
    return path


def service_argv(config):
    return [sys.executable, "-c", "import sys; from ansible_collections.bim.wall_system.plugins.module_utils."
            "monitoring.service import main; sys.exit(main(sys.argv[1:]))", "--config", config]


def child_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def once_cost(config, runs):
    """CPU seconds of one fresh-process run of the checks, mean of ``runs``."""
    before = child_cpu()
    for _run in range(runs):
        subprocess.run(service_argv(config) + ["--once"], check=False, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    return (child_cpu() - before) / runs


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--seconds", type=float, default=330.0)
    parser.add_argument("--hosts", nargs="+", default=["pg1", "lite1"])
    parser.add_argument("--once-runs", type=int, default=10)
    args = parser.parse_args()
    fleet = fleet_lib.Fleet(os.environ.get("BIM_FLEET_STATE_DIR", fleet_lib.DEFAULT_STATE_DIR))
    if not fleet.status()["up"]:
        sys.exit("the test fleet is not up (tests/fleet/fleet.py up)")
    net = fleet.load_meta()["net"]
    folder = tempfile.mkdtemp(prefix="bim-bench-monitoring-")
    services = {host: subprocess.Popen(service_argv(host_config(fleet, host, folder)), stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL) for host in args.hosts}
    exporter_address = "%s.8:9101" % net
    exporter = subprocess.Popen(["prometheus-node-exporter", "--web.listen-address=%s" % exporter_address,
                                 "--collector.textfile.directory=%s" % folder, "--log.level=error"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    started = time.monotonic()
    start_cpu = {}
    time.sleep(1.0)
    start_cpu = {host: cpu_seconds(proc.pid) for host, proc in services.items()}
    exporter_start = cpu_seconds(exporter.pid)
    measured_from = time.monotonic()
    next_scrape = measured_from
    try:
        while time.monotonic() - started < args.seconds:
            if time.monotonic() >= next_scrape:
                try:
                    opener.open("http://%s/metrics" % exporter_address, timeout=5).read()
                except OSError:
                    pass
                next_scrape += 15.0
            time.sleep(0.5)
        elapsed = time.monotonic() - measured_from
        results = {}
        for host, proc in services.items():
            results[host] = {"cpu": cpu_seconds(proc.pid) - start_cpu[host], "rss": peak_rss_mib(proc.pid)}
        exporter_cpu = cpu_seconds(exporter.pid) - exporter_start
        exporter_rss = peak_rss_mib(exporter.pid)
    finally:
        for proc in list(services.values()) + [exporter]:
            proc.terminate()
            proc.wait(timeout=15)
    print("load before timer runs: %s" % open("/proc/loadavg").read().strip())
    for host in args.hosts:
        results[host]["once"] = once_cost(host_config(fleet, host, folder, APP_GROUP), args.once_runs)
    per_min = 60.0 / elapsed
    print("\nmonitoring service at the guide's cadence, %.0f s measured (%s)" % (elapsed, ", ".join(args.hosts)))
    header = ("host", "CPU s/min", "CPU % core", "peak RSS", "node_exporter/svc", "timer/svc (CPU)")
    print("%-8s %14s %12s %12s %18s %18s" % header)
    for host in args.hosts:
        cpu_min = results[host]["cpu"] * per_min
        timer_min = results[host]["once"] * 6
        print("%-8s %14.3f %11.2f%% %9.1f MiB %17.2fx %17.1fx" % (
            host, cpu_min, cpu_min / 60.0 * 100, results[host]["rss"], exporter_cpu * per_min / cpu_min, timer_min / cpu_min))
    print("node_exporter (default collectors, scraped every 15 s): %.3f CPU s/min, peak RSS %.1f MiB"
          % (exporter_cpu * per_min, exporter_rss))
    print("fresh process per 10-s cycle (the 10-s group of checks): %s CPU s per run"
          % ", ".join("%s %.3f" % (h, results[h]["once"]) for h in args.hosts))
    print("load after: %s" % open("/proc/loadavg").read().strip())


if __name__ == "__main__":
    main()
