# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The operator's recovery time: ``disaster_recovery`` of one PostgreSQL host end to end, against
what an operator would do by hand on the same data in the same run.

Run by ``bench/restore.py --disaster-recovery`` (see there). On its own loopback fleet (own /24 and
state folder, removed at the end unless --keep), pg1 is refilled with ``--walls`` walls and backed
up once by the backup playbook. Then, alternated, ``--reps`` times:

- by hand: ``createdb`` + ``pg_restore -j2`` of a ``pg_dump -Fc`` of the same database, the
  application's stop and start commands, and one ``ansible -m ping`` of the host;
- ours: ``ansible-playbook bim.wall_system.disaster_recovery -e bim_restore_hosts=pg1`` (preflight,
  application stop, verified swap restore with a restore point, start, health gate).

Prints the medians, the ratio (issue 14 target: <= 1.5x) and the median time of each step of the
recovery, taken from the recovery log the play writes on the host: the seconds from the previous
record to the step's own (with the application's commands in the restore run, the gap before
``app_stop`` holds the restore into the copy and its verification, the one before ``restore`` the
swap and the configuration files).
"""

from __future__ import annotations

import datetime
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "tests", "fleet"))
from collections_root import collections_path  # noqa: E402 (tests/collections_root.py)
import generate  # noqa: E402 (tests/fleet/generate.py)

FLEET = os.path.join(ROOT, "tests", "fleet", "fleet.py")
PG_BIN = "/usr/lib/postgresql/15/bin"
HOST = "pg1"
BY_HAND_DB = "bim_dr_by_hand"


def _tool(name):
    candidate = os.path.join(os.path.dirname(sys.executable), name)
    return candidate if os.path.exists(candidate) else name


def _run(cmd, env=None, timed=False):
    started = time.monotonic()
    proc = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        sys.exit("benchmark command failed (rc=%s): %s\n%s\n%s"
                 % (proc.returncode, " ".join(cmd), proc.stdout[-3000:], proc.stderr[-2000:]))
    return time.monotonic() - started if timed else proc


def _host_vars(state_dir):
    import yaml
    with open(os.path.join(state_dir, "inventory.yml"), encoding="utf-8") as handle:
        inventory = yaml.safe_load(handle)
    return inventory["all"]["children"]["bim"]["children"]["bim_postgresql"]["hosts"][HOST]


def _pg_env(host_vars):
    return dict(os.environ, PGHOST=str(host_vars["bim_db_host"]), PGPORT=str(host_vars["bim_db_port"]),
                PGUSER=host_vars["bim_db_user"], PGPASSWORD=host_vars["bim_db_password"])


def _refill(host_vars, walls):
    """pg1's database with ``walls`` walls of the seed schema (the fleet builds 2000)."""
    env = _pg_env(host_vars)
    name = host_vars["bim_db_name"]
    _run([os.path.join(PG_BIN, "psql"), "-X", "-q", "-d", "postgres", "-c",
          "DROP DATABASE IF EXISTS %s WITH (FORCE)" % name, "-c", "CREATE DATABASE %s" % name], env=env)
    conninfo = "host=%s port=%s user=%s password=%s dbname=%s" % (
        env["PGHOST"], env["PGPORT"], env["PGUSER"], env["PGPASSWORD"], name)
    generate.populate_postgresql(conninfo, walls)


def _by_hand(host_vars, dump, ansible_env, inventory):
    """createdb + pg_restore -j2, the application's stop and start, one ping: seconds of each."""
    env = _pg_env(host_vars)
    restore_s = _run([os.path.join(PG_BIN, "createdb"), BY_HAND_DB], env=env, timed=True)
    restore_s += _run([os.path.join(PG_BIN, "pg_restore"), "-j2", "-d", BY_HAND_DB, dump], env=env, timed=True)
    _run([os.path.join(PG_BIN, "dropdb"), BY_HAND_DB], env=env)
    app_s = _run(shlex.split(host_vars["bim_app_stop_command"]), timed=True)
    app_s += _run(shlex.split(host_vars["bim_app_start_command"]), timed=True)
    ping_s = _run([_tool("ansible"), "-i", inventory, HOST, "-m", "ansible.builtin.ping"], env=ansible_env, timed=True)
    return restore_s, app_s, ping_s


def _utc_now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def _steps(log_file, offset, launched, finished):
    """Seconds per step of the recovery log entries written after ``offset`` bytes, plus the time
    from the launch of ansible-playbook to the first entry and from the last entry to its exit."""
    with open(log_file, encoding="utf-8") as handle:
        handle.seek(offset)
        entries = [json.loads(line) for line in handle if line.strip()]
    times = [datetime.datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%S.%fZ") for e in entries]
    steps = {"(play start)": (times[0] - launched).total_seconds()}
    steps.update({entry["step"]: (times[i] - times[i - 1]).total_seconds()
                  for i, entry in enumerate(entries) if i > 0})
    steps["(summary, exit)"] = (finished - times[-1]).total_seconds()
    return steps


def _ours(ansible_env, inventory, log_file, work):
    offset = os.path.getsize(log_file) if os.path.exists(log_file) else 0
    launched = _utc_now()
    wall = _run([_tool("ansible-playbook"), "-i", inventory, "bim.wall_system.disaster_recovery",
                 "-e", json.dumps({"bim_restore_hosts": HOST, "bim_restore_log": log_file,
                                   "bim_restore_state_dir": os.path.join(work, "restore-state")})],
                env=ansible_env, timed=True)
    return wall, _steps(log_file, offset, launched, _utc_now())


def bench_disaster_recovery(args):
    state_dir = args.dr_state_dir
    fleet_env = dict(os.environ, BIM_FLEET_NET=args.dr_net)
    _run([sys.executable, FLEET, "--state-dir", state_dir, "up", "--net", args.dr_net], env=fleet_env)
    work = tempfile.mkdtemp(prefix="bim-bench-dr-", dir="/var/tmp")
    try:
        inventory = os.path.join(state_dir, "inventory.yml")
        ansible_env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(state_dir, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
        ansible_env.setdefault("ANSIBLE_COLLECTIONS_PATH", collections_path())
        host_vars = _host_vars(state_dir)
        _refill(host_vars, args.walls)
        _run([_tool("ansible-playbook"), "-i", inventory, "bim.wall_system.backup", "--limit", HOST], env=ansible_env)
        dump = os.path.join(work, "pg1.dump")
        _run([os.path.join(PG_BIN, "pg_dump"), "-Fc", "-f", dump, host_vars["bim_db_name"]], env=_pg_env(host_vars))
        log_file = os.path.join(work, "recovery.log")
        by_hand, ours, steps = [], [], []
        for _rep in range(args.reps):
            by_hand.append(_by_hand(host_vars, dump, ansible_env, inventory))
            wall, step_s = _ours(ansible_env, inventory, log_file, work)
            ours.append(wall)
            steps.append(step_s)
        _report(args, by_hand, ours, steps)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if not args.keep:
            subprocess.run([sys.executable, FLEET, "--state-dir", state_dir, "down"], env=fleet_env,
                           stdout=subprocess.DEVNULL, check=False)


def _report(args, by_hand, ours, steps):
    restore_s = statistics.median(r for r, _a, _p in by_hand)
    app_s = statistics.median(a for _r, a, _p in by_hand)
    ping_s = statistics.median(p for _r, _a, p in by_hand)
    baseline = statistics.median(sum(parts) for parts in by_hand)
    ours_s = statistics.median(ours)
    print("disaster_recovery of one PostgreSQL host, %d walls, %d reps (median), load %s:"
          % (args.walls, args.reps, " ".join("%.1f" % v for v in os.getloadavg())))
    print("  by hand: createdb + pg_restore -j2          %7.2f s" % restore_s)
    print("           application stop + start         %7.2f s" % app_s)
    print("           ansible -m ping                   %7.2f s" % ping_s)
    print("           together                         %7.2f s" % baseline)
    print("  ansible-playbook disaster_recovery          %7.2f s   (runs: %s)"
          % (ours_s, ", ".join("%.2f" % v for v in ours)))
    print("  ratio                                        %6.2fx (target <= 1.5x)" % (ours_s / baseline))
    print("  steps of the recovery (median s, from the recovery log):")
    for step in steps[0]:
        print("    %-12s %6.2f" % (step, statistics.median(s.get(step, 0.0) for s in steps)))
    print(json.dumps({"walls": args.walls, "by_hand_s": [list(p) for p in by_hand], "ours_s": ours,
                      "steps": steps, "ratio": round(ours_s / baseline, 2)}))
