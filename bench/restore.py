"""Restore benchmark: the restore module's library against pg_restore and zstd, ratios measured in
the same run on the same data, contenders alternated, medians compared.

Needs the 1M-wall data of the backup benchmark (PostgreSQL cluster on port 5499, database
``bimbench``, SQLite file /var/tmp/bimbench/walls.db; BIM_BENCH_DIR and BIM_BENCH_PORT as given to it)::

    PYTHONPATH=.cache/collections python bench/backup.py --setup --walls 1000000   # once
    PYTHONPATH=.cache/collections python bench/restore.py [--reps 3] [--fleet-inventory INV]
    PYTHONPATH=.cache/collections python bench/restore.py --skip-sqlite --reps 6 --against /work/main/.cache/collections

PostgreSQL: ``pg_dump -Fc`` of bimbench, then ``createdb`` + ``pg_restore -j2`` into a new database
(the baseline) against ``restore`` in swap mode with jobs=2 from a repository holding a backup of
the same database, with its default staging of the archive (in memory when it fits), verification
(rows and digests of every table, amcheck, GiST validity) and the swap included. SQLite: ``zstd
-d`` of the zstd-compressed file to a new file, fsynced, against ``restore`` in swap mode of a
backup the nightly ``verify_backups`` has restore-verified (``verification: auto``: the restored
image is proven identical to the one verified), and with ``verification: full`` (integrity
checks and digests again). With --fleet-inventory the wall time
of the recovery_drill playbook across that fleet is measured too. ``--against COLLECTIONS`` also
times the PostgreSQL swap restore of another build (its installed collections folder) in each
round, after the baseline, ours and it taking turns in coming first, each run after a CHECKPOINT
and a sync: an A/B of two versions on a shared machine. Each PostgreSQL run also records the
system-wide busy CPU-seconds (``/proc/stat``) it took: on two cores the restore is bound by total
CPU, so that is where a verification's extra work shows. Ours counts its child Python's start-up
(the imports, about 0.3-0.5 CPU-s), which its wall time (measured inside the child) leaves out.

``--keys`` instead compares the same swap restores from an unkeyed, an authenticated and an
encrypted repository holding a backup of the same data, alternated (issue 13: encryption <= 10%).

``--disaster-recovery`` instead times the ``disaster_recovery`` playbook end to end on one
PostgreSQL host of its own loopback fleet against createdb + pg_restore -j2, the application's
stop and start and one ping (issue 14: <= 1.5x); bench/restore_dr.py::

    python bench/restore.py --disaster-recovery [--walls 1000000] [--reps 3] [--dr-net 127.0.16]
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

# BIM_BENCH_DIR / BIM_BENCH_PORT: a private data folder and cluster port, so two people can bench at once.
BASE = os.environ.get("BIM_BENCH_DIR", "/var/tmp/bimbench")
PG_BIN = "/usr/lib/postgresql/15/bin"
PORT = int(os.environ.get("BIM_BENCH_PORT", "5499"))
DB = "bimbench"
SQLITE = os.path.join(BASE, "walls.db")
LIVE_DB = "bimbench_rs"
BASE_DB = "bimbench_rs_base"

CHILD = r"""
import json, sys, time
from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import ConnectionParams
from ansible_collections.bim.wall_system.plugins.module_utils.restore.runner import RestoreOptions, run_restore
cfg = json.loads(sys.argv[1])
started = time.monotonic()
# Restore points are kept (dropping the replaced database is not part of a restore); the
# benchmark drops them between runs, untimed.
result = run_restore(ConnectionParams(**cfg["params"]), cfg["repo"], RestoreOptions(
    "latest", mode=cfg.get("mode", "swap"), target_name=cfg.get("target"), jobs=2, keep_restore_points=1000,
    state_dir=cfg["state"], staging_dir=cfg.get("staging"), verification=cfg.get("verification", "auto"),
    repository_key=cfg.get("key")))
result["wall_s"] = time.monotonic() - started
import resource
usage = resource.getrusage(resource.RUSAGE_SELF)
result["cpu_self_s"] = usage.ru_utime + usage.ru_stime
print(json.dumps(result, default=str))
"""

VERIFY = r"""
import json, sys
from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import ConnectionParams
from ansible_collections.bim.wall_system.plugins.module_utils.restore.runner import verify_backups
r = verify_backups(sys.argv[2], ["latest"], level="restore", params=ConnectionParams(**json.loads(sys.argv[1])),
                   state_dir=sys.argv[3], repository_key=(sys.argv[4:] or [None])[0])
assert r["passed"], r
"""

BACKUP = r"""
import json, sys
from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import ConnectionParams
from ansible_collections.bim.wall_system.plugins.module_utils.repository.backup import run_backup
r = run_backup(ConnectionParams(**json.loads(sys.argv[1])), sys.argv[2],
               dict(json.loads(sys.argv[3]) if len(sys.argv) > 3 else {}, type="full"))
print(json.dumps({"backup_id": r["backup_id"], "source_bytes": r.get("source_bytes")}))
"""


def pg_env(db="postgres"):
    env = dict(os.environ)
    env.update(PGHOST="127.0.0.1", PGPORT=str(PORT), PGUSER="postgres", PGDATABASE=db)
    return env


def psql(sql, db="postgres"):
    subprocess.run([os.path.join(PG_BIN, "psql"), "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], env=pg_env(db),
                   check=True, stdout=subprocess.DEVNULL)


def busy_cpu_s():
    """System-wide busy CPU-seconds so far (/proc/stat: all but idle and iowait): on a host whose
    cores are the bottleneck, the extra work of a contender shows here even when its wall time hides it."""
    with open("/proc/stat") as handle:
        ticks = [int(x) for x in handle.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def timed(cmd, **kwargs):
    started = time.monotonic()
    proc = subprocess.run(cmd, check=True, **kwargs)
    return time.monotonic() - started, proc


def child(cfg, collections=None):
    """Run one restore in a child Python; ``collections``: the folder its collection is imported
    from (PYTHONPATH), else this environment's."""
    env = dict(os.environ, PYTHONPATH=collections) if collections else None
    _s, proc = timed([sys.executable, "-c", CHILD, json.dumps(cfg)], stdout=subprocess.PIPE, text=True, env=env)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def drop_restore_point(result):
    """Remove the SQLite restore point a run kept (with its side files), outside the timing."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        if result.get("restore_point") and os.path.exists(result["restore_point"] + suffix):
            os.unlink(result["restore_point"] + suffix)


def pg_params(db):
    return {"engine": "postgresql", "db_host": "127.0.0.1", "db_port": PORT, "db_user": "postgres", "db_name": db}


def bench_postgresql(work, reps, against=None):
    """The baseline and our swap restore, alternated; with ``against`` (another build's collections
    folder) its swap restore too, ours and its in turns right after the baseline (A/B of two versions)."""
    repo, state = os.path.join(work, "repo-pg"), os.path.join(work, "state")
    dump = os.path.join(work, "bimbench.fc")
    subprocess.run([sys.executable, "-c", BACKUP, json.dumps(pg_params(DB)), repo], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([os.path.join(PG_BIN, "pg_dump"), "-Fc", "-f", dump, DB], env=pg_env(), check=True)
    for name in (LIVE_DB, BASE_DB):
        psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)
    # The live database the swap replaces: a first restore in new mode (not timed).
    child({"params": pg_params(DB), "repo": repo, "mode": "new", "target": LIVE_DB, "state": state})
    runs = {"baseline": [], "ours": [], "against": []}
    cpu = {"baseline": [], "ours": [], "against": []}
    phases = {"ours": [], "against": []}
    for rep in range(reps):
        # --against: each version follows the baseline in every other round (what runs before a
        # restore, and the database dropped after it, weigh on the next), and every run starts
        # after a CHECKPOINT and a sync (untimed) instead of during the last run's writeback.
        pair = (["ours", "against"] if rep % 2 == 0 else ["against", "ours"]) if against else ["ours"]
        for who in ["baseline"] + pair:
            if against:
                psql("CHECKPOINT")
                os.sync()
            started_cpu = busy_cpu_s()
            if who == "baseline":
                runs[who].append(_baseline_restore(dump))
                cpu[who].append(busy_cpu_s() - started_cpu)
                continue
            result = child({"params": pg_params(LIVE_DB), "repo": repo, "state": state},
                           against if who == "against" else None)
            cpu[who].append(busy_cpu_s() - started_cpu)
            if result.get("restore_point"):
                psql("DROP DATABASE %s WITH (FORCE)" % result["restore_point"])
            runs[who].append(result["wall_s"])
            phases[who].append({k: result.get(k) for k in ("restore_s", "verify_s", "swap_s", "duration_s")})
    psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % LIVE_DB)
    found = {"baseline_s": runs["baseline"], "ours_s": runs["ours"], "phases": phases["ours"],
             "baseline_cpu_s": cpu["baseline"], "ours_cpu_s": cpu["ours"], "dump_bytes": os.path.getsize(dump)}
    if against:
        found.update(against_s=runs["against"], against_phases=phases["against"], against_cpu_s=cpu["against"])
    return found


def _baseline_restore(dump):
    """Seconds of createdb + pg_restore -j2 of ``dump`` (the database dropped afterwards, untimed)."""
    psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % BASE_DB)
    started = time.monotonic()
    subprocess.run([os.path.join(PG_BIN, "createdb"), BASE_DB], env=pg_env(), check=True)
    subprocess.run([os.path.join(PG_BIN, "pg_restore"), "-j", "2", "-d", BASE_DB, dump], env=pg_env(), check=True)
    took = time.monotonic() - started
    psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % BASE_DB)
    return took


def bench_sqlite(work, reps):
    repo, state = os.path.join(work, "repo-lite"), os.path.join(work, "state")
    live = os.path.join(work, "live", "walls.db")
    os.makedirs(os.path.dirname(live))
    shutil.copy(SQLITE, live)
    params = {"engine": "sqlite", "sqlite_path": live}
    subprocess.run([sys.executable, "-c", BACKUP, json.dumps(params), repo], check=True, stdout=subprocess.DEVNULL)
    packed = os.path.join(work, "walls.db.zst")
    subprocess.run(["zstd", "-q", "-3", "-f", SQLITE, "-o", packed], check=True)
    # What the nightly verify_backups run does: the latest backup restore-verified (not timed).
    subprocess.run([sys.executable, "-c", VERIFY, json.dumps(params), repo, state], check=True)
    base, ours, phases, full, full_phases = [], [], [], [], []
    for _rep in range(reps):
        out = os.path.join(work, "base.db")
        started = time.monotonic()
        subprocess.run(["zstd", "-q", "-d", "-f", packed, "-o", out], check=True)
        fd = os.open(out, os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
        base.append(time.monotonic() - started)
        os.unlink(out)
        result = child({"params": params, "repo": repo, "state": state})
        drop_restore_point(result)
        assert result["verification"] == "identity", result["verification"]
        ours.append(result["wall_s"])
        phases.append({k: result.get(k) for k in ("restore_s", "verify_s", "swap_s")})
        result = child({"params": params, "repo": repo, "state": state, "verification": "full"})
        drop_restore_point(result)
        full.append(result["wall_s"])
        full_phases.append({k: result.get(k) for k in ("restore_s", "verify_s", "swap_s")})
    return {"baseline_s": base, "ours_s": ours, "phases": phases, "full_s": full, "full_phases": full_phases,
            "file_bytes": os.path.getsize(SQLITE)}


KEY = "bench repository key 0123456789"
# (label, backup options, key of the restore)
KEY_MODES = (("unkeyed", {}, None),
             ("authenticated", {"repository_key": KEY, "repository_encryption": False}, KEY),
             ("encrypted", {"repository_key": KEY, "repository_encryption": True}, KEY))


def bench_keys(work, reps, engines):
    """Swap restores of the same data from an unkeyed, an authenticated and an encrypted repository."""
    state = os.path.join(work, "state")
    times = {}
    for engine in engines:
        if engine == "postgresql":
            params, live = pg_params(DB), pg_params(LIVE_DB)
            psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % LIVE_DB)
        else:
            path = os.path.join(work, "live", "walls.db")
            os.makedirs(os.path.dirname(path), exist_ok=True)
            shutil.copy(SQLITE, path)
            params = live = {"engine": "sqlite", "sqlite_path": path}
        repos = {}
        for label, options, key in KEY_MODES:
            repos[label] = os.path.join(work, "repo-%s-%s" % (engine, label))
            subprocess.run([sys.executable, "-c", BACKUP, json.dumps(params), repos[label], json.dumps(options)],
                           check=True, stdout=subprocess.DEVNULL)
            if engine == "sqlite":  # as the nightly verify_backups leaves it: verification auto = identity
                subprocess.run([sys.executable, "-c", VERIFY, json.dumps(params), repos[label], state] + (
                    [key] if key else []), check=True)
        if engine == "postgresql":  # the live database the swaps replace (not timed)
            child({"params": params, "repo": repos["unkeyed"], "mode": "new", "target": LIVE_DB, "state": state})
        times[engine] = {label: [] for label, _o, _k in KEY_MODES}
        cpu = {label: [] for label, _o, _k in KEY_MODES}
        for _rep in range(reps):
            for label, _options, key in KEY_MODES:
                result = child({"params": live, "repo": repos[label], "state": state, "key": key})
                if engine == "postgresql" and result.get("restore_point"):
                    psql("DROP DATABASE %s WITH (FORCE)" % result["restore_point"])
                else:
                    drop_restore_point(result)
                times[engine][label].append(result["wall_s"])
                cpu[label].append(result["cpu_self_s"])
        if engine == "postgresql":
            psql("DROP DATABASE IF EXISTS %s WITH (FORCE)" % LIVE_DB)
        print(json.dumps({engine: times[engine], "cpu_self_s": cpu}))
        for label, _options, _key in KEY_MODES[1:]:
            line("%s swap restore, %s vs unkeyed" % (engine, label), times[engine]["unkeyed"], times[engine][label],
                 "(target <= 1.10x)")
            line("  the same, CPU of the restoring process", cpu["unkeyed"], cpu[label])
    return times


def bench_drill(inventory, reps):
    times = []
    env = dict(os.environ)
    env.setdefault("ANSIBLE_CONFIG", os.path.join(os.path.dirname(inventory), "ansible.cfg"))
    for _rep in range(reps):
        started = time.monotonic()
        subprocess.run(["ansible-playbook", "-i", inventory, "bim.wall_system.recovery_drill", "-e",
                        json.dumps({"bim_recovery_drill_state_dir": "/var/tmp/bim-drill-bench-state",
                                    "bim_recovery_drill_report_dir": tempfile.mkdtemp(prefix="bim-drill-")})],
                       check=True, stdout=subprocess.DEVNULL, env=env)
        times.append(time.monotonic() - started)
    return times


def line(label, base, ours, extra=""):
    b, o = statistics.median(base), statistics.median(ours)
    print("%-52s baseline %7.2f s   ours %7.2f s   ratio %.2fx %s" % (label, b, o, o / b, extra))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--skip-postgresql", action="store_true")
    parser.add_argument("--skip-sqlite", action="store_true")
    parser.add_argument("--fleet-inventory", help="also time the recovery_drill playbook on this fleet")
    parser.add_argument("--against", metavar="COLLECTIONS",
                        help="PostgreSQL: also time the swap restore of the collection installed in this folder "
                             "(another build, e.g. main's .cache/collections), in turns with ours")
    parser.add_argument("--keys", action="store_true", help="only compare unkeyed, authenticated and encrypted")
    parser.add_argument("--disaster-recovery", action="store_true",
                        help="only time the disaster_recovery playbook end to end (bench/restore_dr.py)")
    parser.add_argument("--walls", type=int, default=1000000, help="walls of the --disaster-recovery host")
    parser.add_argument("--dr-net", default="127.0.16", help="loopback /24 of the --disaster-recovery fleet")
    parser.add_argument("--dr-state-dir", default="/var/tmp/bim-fleet-bench-dr")
    parser.add_argument("--keep", action="store_true", help="leave the --disaster-recovery fleet up")
    args = parser.parse_args()
    if args.disaster_recovery:
        from restore_dr import bench_disaster_recovery  # bench/restore_dr.py (needs the test fleet)
        bench_disaster_recovery(args)
        return
    work = tempfile.mkdtemp(prefix="bimbench-rs-", dir=BASE)
    os.chmod(work, 0o755)
    if args.keys:
        try:
            bench_keys(work, args.reps, [e for e in ("postgresql", "sqlite")
                                         if not getattr(args, "skip_" + e)])
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return
    try:
        if not args.skip_postgresql:
            pg = bench_postgresql(work, args.reps, args.against)
            print(json.dumps(pg))
            line("PostgreSQL swap restore (verified) vs pg_restore -j2", pg["baseline_s"], pg["ours_s"],
                 "(target <= 1.15x)")
            line("  the same, system-wide busy CPU-s", pg["baseline_cpu_s"], pg["ours_cpu_s"])
            cores = os.cpu_count()
            print("  the lowest ratio any schedule of this work reaches on %d cores, ours' busy CPU-s / (%d x the "
                  "baseline's time): %.2fx (a little lower in fact: the busy CPU-s count the child's start-up)"
                  % (cores, cores, statistics.median(pg["ours_cpu_s"]) / (cores * statistics.median(pg["baseline_s"]))))
            if args.against:
                line("  the same, the --against build", pg["baseline_s"], pg["against_s"])
        if not args.skip_sqlite:
            lite = bench_sqlite(work, args.reps)
            print(json.dumps(lite))
            line("SQLite swap restore of a restore-verified backup", lite["baseline_s"], lite["ours_s"],
                 "(target <= 1.5x)")
            line("SQLite restore phase only vs zstd -d", lite["baseline_s"], [p["restore_s"] for p in lite["phases"]])
            line("SQLite swap restore, verification: full", lite["baseline_s"], lite["full_s"])
        if args.fleet_inventory:
            times = bench_drill(args.fleet_inventory, args.reps)
            print("recovery_drill across the fleet: median %.2f s (%s)" % (
                statistics.median(times), ", ".join("%.2f" % t for t in times)))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
