# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a PostgreSQL backup's CPU goes: one full backup of the benchmark database (see
bench/backup.py --setup) in this process, with the CPU (``time.thread_time``) and wall seconds of
each step summed over the threads that run it: the digest of the rows, zstd, the chunk files, the
chunk names, the pipe reads, and the main thread waiting for the pool.

    PYTHONPATH=.cache/collections python bench/backup_profile.py /var/tmp/bimbench/profile-repo [--no-digests]

Use a repository path that does not exist yet and remove it afterwards: creating chunk files
next to thousands deleted seconds before costs ext4 (without a journal) far more CPU.
"""

from __future__ import annotations

import concurrent.futures
import os
import resource
import sys
import threading
import time

from ansible_collections.bim.wall_system.plugins.module_utils.database import api_dump
from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import ConnectionParams
from ansible_collections.bim.wall_system.plugins.module_utils.repository import backup, repository, writer

PORT = int(os.environ.get("BIM_BENCH_PORT", "5499"))
_TOTALS = {}
_LOCK = threading.Lock()


def _timed(name, func):
    def wrapper(*args, **kwargs):
        wall, cpu = time.monotonic(), time.thread_time()
        try:
            return func(*args, **kwargs)
        finally:
            with _LOCK:
                total = _TOTALS.setdefault(name, [0.0, 0.0, 0])
                total[0] += time.monotonic() - wall
                total[1] += time.thread_time() - cpu
                total[2] += 1
    return wrapper


def _instrument():
    repository.Repository.write_chunk = _timed("chunk files (write_chunk)", repository.Repository.write_chunk)
    repository.Repository.chunk_id = _timed("chunk names (chunk_id)", repository.Repository.chunk_id)
    compressor = writer.ChunkSession._compressor

    def timed_compressor(self):
        real = compressor(self)
        return type("Timed", (), {"compress": staticmethod(_timed("zstd", real.compress))})
    writer.ChunkSession._compressor = timed_compressor
    api_dump.DigestTee.readinto = _timed("pipe reads (main thread)", api_dump.DigestTee.readinto)
    api_dump.DigestTee._feed = _timed("row digests (digest thread)", api_dump.DigestTee._feed)
    concurrent.futures.Future.result = _timed("main thread waits for the pool", concurrent.futures.Future.result)


def main():
    repo = sys.argv[1]
    if os.path.exists(repo):
        sys.exit("%s exists; give a new path" % repo)
    _instrument()
    params = ConnectionParams(engine="postgresql", db_host="127.0.0.1", db_port=PORT, db_user="postgres",
                              db_name="bimbench")
    started = time.monotonic()
    result = backup.run_backup(params, repo, {"type": "full", "table_digests": "--no-digests" not in sys.argv})
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime
    print("wall %.2f s, CPU %.2f s, %d chunks, timings %s"
          % (time.monotonic() - started, cpu, result["new_chunks"], result["timings"]))
    for name, (wall, cpu, calls) in sorted(_TOTALS.items()):
        print("  %-32s CPU %5.2f s  wall %5.2f s  calls %d" % (name, cpu, wall, calls))


if __name__ == "__main__":
    main()
