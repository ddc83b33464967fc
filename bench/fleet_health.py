# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wall time of `ansible-playbook bim.wall_system.health_check` against `ansible -m ansible.builtin.ping`.

Both run on the same loopback fleet (tests/fleet/fleet.py), inventory, ansible.cfg and forks; each
is repeated, interleaved, and the medians are compared. Then the playbook's wall time at 3, 10 and
30 BIM hosts (extra SQLite hosts) with forks 10.

    bench/fleet_health [--reps 5] [--sizes 3,10,30] [--forks 10] [--net 127.0.14]
                       [--state-dir /var/tmp/bim-fleet-bench] [--keep]

Uses its own fleet (own loopback /24 and state folder) so it never disturbs a test fleet, and
removes it at the end unless --keep. Run it with the dev venv's Python (it has psycopg and
Ansible); bench/fleet_health picks $BIM_PYTHON, .venv/bin/python, then $BIM_VENV/bin/python, then python3.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from collections_root import collections_path  # noqa: E402 (tests/collections_root.py)
FLEET = os.path.join(ROOT, "tests", "fleet", "fleet.py")
BASE_BIM_HOSTS = 4  # pg1, pg2, lite1, lite2


def tool(name):
    candidate = os.path.join(os.path.dirname(sys.executable), name)
    return candidate if os.path.exists(candidate) else (shutil.which(name) or name)


def fleet(args, *command):
    cmd = [sys.executable, FLEET, "--state-dir", args.state_dir] + list(command)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=dict(os.environ, BIM_FLEET_NET=args.net))


def timed(cmd, env, cwd):
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit("benchmark command failed (rc=%s): %s\n%s\n%s"
                 % (proc.returncode, " ".join(cmd), proc.stdout[-3000:], proc.stderr[-2000:]))
    return elapsed


def commands(args):
    inventory = os.path.join(args.state_dir, "inventory.yml")
    ping = [tool("ansible"), "-i", inventory, "bim", "-f", str(args.forks), "-m", "ansible.builtin.ping"]
    play = [tool("ansible-playbook"), "-i", inventory, "-f", str(args.forks), "bim.wall_system.health_check"]
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(args.state_dir, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", collections_path())
    return ping, play, env


def measure(args, reps, cwd):
    ping, play, env = commands(args)
    timed(ping, env, cwd)  # warm-up: SSH control masters, page cache
    timed(play, env, cwd)
    pings, plays = [], []
    for _rep in range(reps):
        pings.append(timed(ping, env, cwd))
        plays.append(timed(play, env, cwd))
    return statistics.median(pings), statistics.median(plays), pings, plays


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--sizes", default="3,10,30")
    parser.add_argument("--forks", type=int, default=10)
    parser.add_argument("--net", default="127.0.14")
    # its own fleet (removed at the end): never the developer's BIM_FLEET_STATE_DIR
    parser.add_argument("--state-dir", default=os.environ.get("BIM_BENCH_STATE_DIR") or "/var/tmp/bim-fleet-bench")
    parser.add_argument("--keep", action="store_true", help="leave the benchmark fleet up")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    cwd = tempfile.mkdtemp(prefix="bim-bench-health-")
    results = {"forks": args.forks, "reps": args.reps, "scale": {}}
    try:
        fleet(args, "up", "--sqlite-hosts", "0", "--net", args.net)
        ping_s, play_s, pings, plays = measure(args, args.reps, cwd)
        results.update(ping_median_s=round(ping_s, 3), playbook_median_s=round(play_s, 3),
                       ratio=round(play_s / ping_s, 2), ping_runs=[round(v, 3) for v in pings],
                       playbook_runs=[round(v, 3) for v in plays])
        print("fleet of %d BIM hosts, forks %d, %d reps (median):" % (BASE_BIM_HOSTS, args.forks, args.reps))
        print("  ansible -m ansible.builtin.ping       %6.2f s" % ping_s)
        print("  ansible-playbook health_check         %6.2f s" % play_s)
        print("  ratio health_check / ping             %6.2f x (target <= 1.5)" % (play_s / ping_s))
        print("scale (playbook median of %d, forks %d):" % (max(1, args.reps // 2), args.forks))
        for size in sizes:
            fleet(args, "up", "--sqlite-hosts", str(max(0, size - BASE_BIM_HOSTS)), "--net", args.net)
            ping_s, play_s = measure(args, max(1, args.reps // 2), cwd)[:2]
            results["scale"][size] = {"playbook_s": round(play_s, 3), "ping_s": round(ping_s, 3),
                                      "ratio": round(play_s / ping_s, 2)}
            print("  %3d hosts: health_check %6.2f s   ping %6.2f s   ratio %.2f"
                  % (size, play_s, ping_s, play_s / ping_s))
        print(json.dumps(results))
    finally:
        shutil.rmtree(cwd, ignore_errors=True)
        if not args.keep:
            fleet(args, "down")


if __name__ == "__main__":
    main()
