# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: cleanup of N old log rows while the application keeps inserting.

For each engine (PostgreSQL on 127.0.0.1:5432 in a database bimtest_mt_bench, SQLite in a temp
file) and each method:
  - batched: the collection's cleanup (db_maintenance cleanup_logs, batches of --batch rows);
  - plain:   one ``DELETE FROM logs WHERE created_at < cutoff`` statement (what one would type);
a writer thread inserts one log row every --interval-ms through its own connection and records
the latency of every insert made while the cleanup runs. Prints the writer's worst and p99 insert
latency and the cleanup's rows/s, and the ratio batched/plain of rows/s.

    PYTHONPATH=.cache/collections python bench/maintenance/bench_cleanup.py --rows 1000000
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time

import psycopg

from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import ConnectionParams
from ansible_collections.bim.wall_system.plugins.module_utils.maintenance.operations import run_maintenance

DB = "bimtest_mt_bench"
PG = dict(host="127.0.0.1", port=5432, user="postgres")
LOGS_PG = """
CREATE TABLE logs (id bigserial PRIMARY KEY, created_at timestamptz NOT NULL, level text NOT NULL,
                   category text NOT NULL, message text NOT NULL);
CREATE INDEX idx_logs_created_at ON logs (created_at);
"""
LOGS_SQLITE = """
PRAGMA journal_mode = WAL;
CREATE TABLE logs (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL, level TEXT NOT NULL,
                   category TEXT NOT NULL, message TEXT NOT NULL);
CREATE INDEX idx_logs_created_at ON logs (created_at);
"""
MESSAGE = "offset operation finished for wall %s in project 42 (details of the geometry kernel)"


class Writer(threading.Thread):
    """Inserts one row every ``interval`` seconds; keeps (start, latency) of each insert."""

    def __init__(self, insert, interval):
        super().__init__(daemon=True)
        self.insert = insert
        self.interval = interval
        self.samples = []
        self.stop = threading.Event()

    def run(self):
        n = 0
        while not self.stop.is_set():
            started = time.monotonic()
            self.insert(n)
            self.samples.append((started, time.monotonic() - started))
            n += 1
            time.sleep(max(0.0, self.interval - (time.monotonic() - started)))

    def during(self, start, end):
        return [lat for (at, lat) in self.samples if start <= at <= end or (at < start and at + lat > start)]


def pg_setup(rows):
    with psycopg.connect(dbname="postgres", autocommit=True, **PG) as admin:
        admin.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % DB)
        admin.execute('CREATE DATABASE "%s"' % DB)
    with psycopg.connect(dbname=DB, autocommit=True, **PG) as conn:
        conn.execute(LOGS_PG)
        conn.execute("INSERT INTO logs (created_at, level, category, message)"
                     " SELECT now() - interval '60 days' + mod(g, 86400) * interval '1 second', 'info', 'geometry',"
                     " format(%s, g) FROM generate_series(1, %s) g", [MESSAGE, rows])
        conn.execute("INSERT INTO logs (created_at, level, category, message)"
                     " SELECT now() - mod(g, 86400) * interval '1 second', 'info', 'api', 'recent' FROM generate_series(1, 10000) g")
        conn.execute("VACUUM ANALYZE logs")


def pg_drop():
    with psycopg.connect(dbname="postgres", autocommit=True, **PG) as admin:
        admin.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % DB)


def pg_writer(interval):
    conn = psycopg.connect(dbname=DB, autocommit=True, **PG)

    def insert(n):
        conn.execute("INSERT INTO logs (created_at, level, category, message) VALUES (now(), 'info', 'api', %s)",
                     ["writer %d" % n])
    return Writer(insert, interval), conn


def sqlite_setup(path, rows):
    for suffix in ("", "-wal", "-shm", "-maintenance.lock"):
        if os.path.exists(path + suffix):
            os.unlink(path + suffix)
    conn = sqlite3.connect(path)
    conn.executescript(LOGS_SQLITE)
    base = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=60)
    fmt = "%Y-%m-%d %H:%M:%S"
    conn.executemany("INSERT INTO logs (created_at, level, category, message) VALUES (?, 'info', 'geometry', ?)",
                     (((base + datetime.timedelta(seconds=i % 86400)).strftime(fmt), MESSAGE % i) for i in range(rows)))
    now = datetime.datetime.now(datetime.timezone.utc)
    conn.executemany("INSERT INTO logs (created_at, level, category, message) VALUES (?, 'info', 'api', 'recent')",
                     (((now - datetime.timedelta(seconds=i % 86400)).strftime(fmt),) for i in range(10000)))
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def sqlite_writer(path, interval):
    conn = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)

    def insert(n):
        conn.execute("INSERT INTO logs (created_at, level, category, message) VALUES (datetime('now'), 'info', 'api', ?)",
                     ("writer %d" % n,))
    return Writer(insert, interval), conn


def measure(start_writer, cleanup):
    writer, conn = start_writer()
    writer.start()
    time.sleep(0.5)  # the writer's steady state before the cleanup starts
    started = time.monotonic()
    deleted = cleanup()
    ended = time.monotonic()
    time.sleep(0.2)
    writer.stop.set()
    writer.join()
    conn.close()
    lat = sorted(writer.during(started, ended))
    seconds = ended - started
    return dict(deleted=deleted, seconds=round(seconds, 3), rows_per_s=round(deleted / seconds) if seconds else None,
                writer_inserts=len(lat), writer_max_ms=round(max(lat) * 1000, 1) if lat else None,
                writer_p99_ms=round(lat[int(len(lat) * 0.99) - 1] * 1000, 1) if len(lat) > 1 else None,
                writer_median_ms=round(statistics.median(lat) * 1000, 2) if lat else None)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000000)
    parser.add_argument("--batch", type=int, default=None, help="rows per batch (default: the engine default)")
    parser.add_argument("--pause-ms", type=int, default=None, help="batch_pause_ms of the batched cleanup")
    parser.add_argument("--interval-ms", type=float, default=10.0)
    parser.add_argument("--engines", default="postgresql,sqlite")
    parser.add_argument("--json", help="write the results here as JSON")
    args = parser.parse_args(argv)
    interval = args.interval_ms / 1000.0
    results = {}
    state = tempfile.mkdtemp(prefix="bimtest_mt_bench_")
    cutoff_sql = "now() - interval '30 days'"
    try:
        if "postgresql" in args.engines:
            params = ConnectionParams(engine="postgresql", db_host=PG["host"], db_port=PG["port"], db_user=PG["user"],
                                      db_name=DB)

            def batched():
                opts = dict(state_dir=state, batch_size=args.batch, batch_pause_ms=args.pause_ms)
                out = run_maintenance(params, ["cleanup_logs"], opts)
                return out["results"][0]["details"]["deleted"]

            def plain():
                with psycopg.connect(dbname=DB, autocommit=True, **PG) as conn:
                    return conn.execute("DELETE FROM logs WHERE created_at < %s" % cutoff_sql).rowcount

            for name, fn in (("batched", batched), ("plain", plain)):
                pg_setup(args.rows)
                results["postgresql_" + name] = measure(lambda: pg_writer(interval), fn)
                print("postgresql", name, results["postgresql_" + name], flush=True)
            pg_drop()
        if "sqlite" in args.engines:
            path = os.path.join(state, "bench.db")
            params = ConnectionParams(engine="sqlite", sqlite_path=path)

            def batched_lite():
                opts = dict(state_dir=state, batch_size=args.batch, batch_pause_ms=args.pause_ms)
                out = run_maintenance(params, ["cleanup_logs"], opts)
                return out["results"][0]["details"]["deleted"]

            def plain_lite():
                conn = sqlite3.connect(path, timeout=60, isolation_level=None)
                try:
                    cut = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=30)).strftime(
                        "%Y-%m-%d %H:%M:%S")
                    return conn.execute("DELETE FROM logs WHERE created_at < ?", (cut,)).rowcount
                finally:
                    conn.close()

            for name, fn in (("batched", batched_lite), ("plain", plain_lite)):
                sqlite_setup(path, args.rows)
                results["sqlite_" + name] = measure(lambda: sqlite_writer(path, interval), fn)
                print("sqlite", name, results["sqlite_" + name], flush=True)
    finally:
        import shutil
        shutil.rmtree(state, ignore_errors=True)
    for engine in ("postgresql", "sqlite"):
        if engine + "_batched" in results:
            b, p = results[engine + "_batched"], results[engine + "_plain"]
            results[engine + "_ratio_rows_per_s"] = round(b["rows_per_s"] / p["rows_per_s"], 3)
    print(json.dumps(dict(rows=args.rows, batch=args.batch, interval_ms=args.interval_ms, results=results), indent=1))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(dict(rows=args.rows, batch=args.batch, results=results), handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
