"""Point-in-time recovery benchmark: the collection's pgBackRest driving against pgBackRest run by hand,
ratios measured in the same run on the same 1M-wall cluster, contenders alternated, medians compared.

    PYTHONPATH=.cache/collections python bench/pitr.py --setup --walls 1000000   # once: cluster + data
    PYTHONPATH=.cache/collections python bench/pitr.py [--reps 2] [--load-minutes 4]

A cluster of its own (socket only, in /var/tmp/bim-bench-pitr) holds the BIM data; the
``continuous_archiving`` library sets up pgBackRest (stanza, asynchronous archive-push, archive_timeout 60 s).

1. physical full backup: ``backup`` ``method: physical`` (plan, pgbackrest backup, the new backup read back
   from pgBackRest's info) against ``pgbackrest --type=full backup`` run by hand;
2. point-in-time restore of the latest moment with verification: ``restore`` ``target_time: latest``,
   ``mode: new`` (pgbackrest restore into a new data directory, start, recovery, promotion, amcheck of every
   btree index, GiST validity, every BIM table counted, the copy dropped) against ``pgbackrest restore`` run
   by hand into a new data directory plus the recovery (pg_ctl start, wait until promoted, stop);
3. archiving under a write load at archive_timeout 60 s: a marker a second and a batch of walls updated every
   second for ``--load-minutes``; the archive's delay (seconds WAL waits for the archive) sampled every 15 s
   must not grow.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time

PG_BIN = "/usr/lib/postgresql/15/bin"
DB = "bim_walls"
HERE = os.path.dirname(os.path.abspath(__file__))
LAST = {}


def use_folder(base, port):
    """The bench's own folder and port (--base, --port): two engineers measuring at once keep apart."""
    global BASE, PORT, DATA, RUN, ARCHIVE  # pylint: disable=global-statement
    BASE, PORT = base, port
    DATA, RUN, ARCHIVE = (os.path.join(base, name) for name in ("data", "run", "archiving"))


use_folder("/var/tmp/bim-bench-pitr", 5515)


def as_postgres(cmd, check=True, timeout=3600):
    return subprocess.run(["runuser", "-u", "postgres", "--"] + cmd, check=check, capture_output=True, text=True,
                          timeout=timeout)


def params():
    from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import ConnectionParams
    return ConnectionParams(engine="postgresql", db_socket_dir=RUN, db_port=PORT, db_user="postgres", db_name=DB)


def setup(walls):
    sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "fleet"))
    import generate
    if os.path.exists(BASE):
        as_postgres([os.path.join(PG_BIN, "pg_ctl"), "-D", DATA, "-m", "immediate", "stop"], check=False)
        shutil.rmtree(BASE)
    os.makedirs(RUN)
    os.chmod(BASE, 0o755)
    os.makedirs(DATA, mode=0o700)
    for folder in (RUN, DATA):
        shutil.chown(folder, "postgres", None)
    as_postgres([os.path.join(PG_BIN, "initdb"), "-D", DATA, "-U", "postgres", "--no-sync", "--no-instructions"])
    with open(os.path.join(DATA, "postgresql.conf"), "a", encoding="utf-8") as handle:
        handle.write("listen_addresses = ''\nport = %d\nunix_socket_directories = '%s'\nshared_buffers = 256MB\n"
                     "max_wal_size = 4GB\n" % (PORT, RUN))
    start()
    as_postgres(["psql", "-h", RUN, "-p", str(PORT), "-c", "CREATE DATABASE %s" % DB])
    stats = generate.populate_postgresql("host=%s port=%d user=postgres dbname=%s" % (RUN, PORT, DB), walls)
    as_postgres(["psql", "-h", RUN, "-p", str(PORT), "-d", DB, "-c", "CREATE EXTENSION IF NOT EXISTS amcheck"])
    from ansible_collections.bim.wall_system.plugins.module_utils.archiving.configure import configure
    result = configure(params(), ARCHIVE, {"archive_timeout": 60, "retention": {"keep_last": 100}})
    print(json.dumps({"populated": stats, "archiving": result}, default=str, indent=1))


def start():
    as_postgres([os.path.join(PG_BIN, "pg_ctl"), "-D", DATA, "-l", os.path.join(RUN, "postgresql.log"), "-w",
                 "start"], check=False)


def tool():
    from ansible_collections.bim.wall_system.plugins.module_utils.archiving.common import load_descriptor
    d = load_descriptor(ARCHIVE)
    return ["runuser", "-u", "postgres", "--", "pgbackrest", "--config=" + d["config"], "--stanza=" + d["stanza"]]


def timed(fn):
    started = time.monotonic()
    fn()
    return time.monotonic() - started


def by_hand_backup():
    subprocess.run(tool() + ["--type=full", "backup"], check=True, capture_output=True)


def ours_backup():
    from ansible_collections.bim.wall_system.plugins.module_utils.archiving.physical import run_physical_backup
    run_physical_backup(params(), ARCHIVE, "full")


def by_hand_restore():
    """pgbackrest restore into a new data directory plus the recovery: start, wait for promotion, stop."""
    target = os.path.join(BASE, "by-hand")
    shutil.rmtree(target, ignore_errors=True)
    os.makedirs(target, mode=0o700)
    shutil.chown(target, "postgres", None)
    sock = os.path.join(BASE, "by-hand-socket")
    os.makedirs(sock, exist_ok=True)
    shutil.chown(sock, "postgres", None)
    subprocess.run(tool() + ["--pg1-path=" + target, "--type=default", "--archive-mode=off", "--process-max=2",
                             "restore"], check=True, capture_output=True)
    with open(os.path.join(target, "postgresql.auto.conf"), "a", encoding="utf-8") as handle:
        handle.write("port = %d\nunix_socket_directories = '%s'\n" % (PORT + 1, sock))
    as_postgres([os.path.join(PG_BIN, "pg_ctl"), "-D", target, "-l", os.path.join(RUN, "by-hand.log"), "-w", "start"])
    while as_postgres(["psql", "-h", sock, "-p", str(PORT + 1), "-Atc", "SELECT pg_is_in_recovery()"],
                      check=False).stdout.strip() != "f":
        time.sleep(0.5)
    as_postgres([os.path.join(PG_BIN, "pg_ctl"), "-D", target, "-m", "fast", "-w", "stop"])
    shutil.rmtree(target)


def ours_restore():
    from ansible_collections.bim.wall_system.plugins.module_utils.archiving.pitr import run_pitr_restore
    result = run_pitr_restore(params(), ARCHIVE, "latest", mode="new", keep_target=False,
                              state_dir=os.path.join(BASE, "restore-state"))
    assert result["verified"], result
    LAST.update(result)
    return result


def compare(label, by_hand, ours, reps):
    hand_s, our_s = [], []
    for _rep in range(reps):
        hand_s.append(timed(by_hand))
        our_s.append(timed(ours))
    hand, our = statistics.median(hand_s), statistics.median(our_s)
    print("%-48s by hand %7.2f s   collection %7.2f s   ratio %.2fx   (runs: %s | %s)" % (
        label, hand, our, our / hand, " ".join("%.1f" % t for t in hand_s), " ".join("%.1f" % t for t in our_s)))
    return our / hand


def archiving_under_load(minutes):
    """A marker a second and 200 walls updated a second; the archive's delay sampled every 15 s."""
    from ansible_collections.bim.wall_system.plugins.module_utils.archiving.archives import open_archive
    from ansible_collections.bim.wall_system.plugins.module_utils.archiving.markers import write_markers
    from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine
    seconds = minutes * 60
    stop = time.monotonic() + seconds
    markers = threading.Thread(target=write_markers, args=(params(), ARCHIVE, seconds, 1.0, "bench"), daemon=True)
    markers.start()

    def updates():
        import psycopg
        with psycopg.connect(host=RUN, port=PORT, user="postgres", dbname=DB, autocommit=True) as conn:
            offset = 0
            while time.monotonic() < stop:
                conn.execute("UPDATE walls SET updated_at = now() WHERE id IN "
                             "(SELECT id FROM walls WHERE id > %s ORDER BY id LIMIT 200)", (offset,))
                offset = (offset + 200) % 1000000
                time.sleep(1)

    writer = threading.Thread(target=updates, daemon=True)
    writer.start()
    with open_engine(params()) as eng:
        eng.wake_checkpointer()
    archive = open_archive(params(), ARCHIVE)
    samples = []
    while time.monotonic() < stop:
        time.sleep(15)
        health = archive.info()["archive_health"]
        samples.append((round(seconds - (stop - time.monotonic())), health["archive_delay_s"], health["ready_segments"],
                        health["failed_count"]))
    markers.join()
    writer.join()
    delays = [s[1] for s in samples]
    half = len(delays) // 2
    print("archiving under load, archive_timeout 60 s, %d min: delay samples (s) %s; max %.1f s; max of the second "
          "half %.1f s vs first half %.1f s; .ready segments at most %d; failures %s" % (
              minutes, " ".join("%.0f" % d for d in delays), max(delays), max(delays[half:]), max(delays[:half]),
              max(s[2] for s in samples), samples[-1][3]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--setup", action="store_true")
    parser.add_argument("--walls", type=int, default=1000000)
    parser.add_argument("--base", default="/var/tmp/bim-bench-pitr", help="the bench's own folder (cluster, archive)")
    parser.add_argument("--port", type=int, default=5515, help="the bench cluster's port (socket only); the copy +1")
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--load-minutes", type=float, default=4)
    parser.add_argument("--only", choices=["backup", "restore", "load"], action="append",
                        help="run only these parts (default: all three)")
    args = parser.parse_args()
    use_folder(os.path.abspath(args.base), args.port)
    if args.setup:
        setup(args.walls)
        return
    start()
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip())
    parts = args.only or ["backup", "restore", "load"]
    if "backup" in parts:
        compare("physical full backup", by_hand_backup, ours_backup, args.reps)
    if "restore" in parts:
        compare("point-in-time restore (latest) + verification", by_hand_restore, ours_restore, args.reps)
        print("  collection's last restore: restore %(restore_s)s s, verification %(verify_s)s s, whole %(duration_s)s s"
              % LAST)
    if "load" in parts:
        archiving_under_load(args.load_minutes)
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip())


if __name__ == "__main__":
    main()
