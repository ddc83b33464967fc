# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What stored bytes cost in backup time: zstd settings on the backup's own chunks of the 1M-wall
dump, each printed as its stored size against the ``pg_dump -Fc`` file and as the lowest ratio to
the ``pg_dump -Fc -Z0`` floor that a backup compressing that way could reach on this host's cores.

Issue 14 sets both targets: stored <= 1.0x the ``-Fc`` file and backup <= 1.3x the floor. This
script shows, in one run on the same data, which settings reach the first and what each does to
the second. It needs the data of bench/backup.py::

    PYTHONPATH=.cache/collections python bench/backup.py --setup --walls 1000000   # once
    PYTHONPATH=.cache/collections python bench/compression.py [--reps 3] [--sweep]

How the bound is found: full backups at the default setting (``--reps`` of them, alternated with
the floor) are timed with the system-wide busy CPU-seconds each took (``/proc/stat``: pg_dump, its
server and our process), and the medians are taken. A setting changes only
the compression's share of that work, measured here on one thread over the same chunks; so the
backup's work with that setting is the measured work minus the default's compression plus the
setting's, and no schedule finishes it faster than that work divided by the cores.
"""

from __future__ import annotations

import argparse
import io
import itertools
import os
import statistics
import sys
import tempfile
import time

import zstandard

from ansible_collections.bim.wall_system.plugins.module_utils.repository import chunker, writer
from backup import DB, PG_BIN, mib, our_backup, pg_dump_floor, pg_env, run, timed_s  # bench/backup.py, beside this script
from restore import busy_cpu_s, pg_params  # bench/restore.py

# The cheapest setting ``--sweep`` found to reach 1.0x on this data (docs/benchmarks.md).
LAZY2 = dict(strategy=zstandard.STRATEGY_LAZY2, window_log=18, hash_log=18, chain_log=18, search_log=1,
             min_match=6, target_length=4)


def settings():
    """(label, factory of (compressor, bytes stored once per repository)): the default first."""
    def level(n):
        return lambda chunks: (zstandard.ZstdCompressor(
            compression_params=zstandard.ZstdCompressionParameters.from_level(n, write_content_size=True)), 0)

    def trained(size):
        def build(chunks):
            # Trained on every 7th chunk, as a repository would train on its first backup; the
            # dictionary itself is stored too.
            dictionary = zstandard.train_dictionary(size, chunks[::7], level=3)
            return zstandard.ZstdCompressor(dict_data=dictionary, compression_params=writer.chunk_compression_params(3)), \
                len(dictionary.as_bytes())
        return build

    return [
        ("level 3, min_match %d (the default)" % writer.DFAST_MIN_MATCH, lambda chunks: (zstandard.ZstdCompressor(
            compression_params=writer.chunk_compression_params(3)), 0)),
        ("level 4", level(4)),
        ("level 5", level(5)),
        ("level 6", level(6)),
        ("level 7", level(7)),
        ("lazy2 w18 h18 c18 s1 min_match 6 target 4", lambda chunks: (zstandard.ZstdCompressor(
            compression_params=zstandard.ZstdCompressionParameters(write_content_size=True, **LAZY2)), 0)),
        ("default + 112 KiB dictionary per repository", trained(112 * 1024)),
        ("default + 1 MiB dictionary per repository", trained(1024 * 1024)),
    ]


def sweep(chunks, fc_bytes):
    """The grid behind LAZY2, on every third chunk: each setting's stored size and CPU, then the
    settings no other beats on both (the cheapest for each size)."""
    sample = chunks[::3]
    scale = float(len(chunks)) / len(sample)
    rows = []
    for (strategy, name), hash_chain, search, min_match, target in itertools.product(
            ((zstandard.STRATEGY_GREEDY, "greedy"), (zstandard.STRATEGY_LAZY, "lazy"), (zstandard.STRATEGY_LAZY2, "lazy2")),
            ((16, 16), (16, 18), (18, 16), (18, 18)), (1, 2), (5, 6), (0, 4, 16)):
        params = zstandard.ZstdCompressionParameters(
            write_content_size=True, strategy=strategy, window_log=18, hash_log=hash_chain[0], chain_log=hash_chain[1],
            search_log=search, min_match=min_match, target_length=target)
        stored, cpu = compress_chunks(zstandard.ZstdCompressor(compression_params=params), sample)
        rows.append((cpu * scale, stored * scale / fc_bytes, "%s h%d c%d s%d min_match %d target %d" % (
            name, hash_chain[0], hash_chain[1], search, min_match, target)))
    print("settings no other beats on both size and CPU (of %d, window log 18, every third chunk):" % len(rows))
    smallest = None
    for cpu, ratio, label in sorted(rows):
        if smallest is None or ratio < smallest:
            smallest = ratio
            print("  %-40s %7.3fx %6.2f CPU-s" % (label, ratio, cpu))


def compress_chunks(compressor, chunks):
    """(stored bytes, CPU-s on this thread) of compressing each chunk on its own, as a backup does."""
    started = time.thread_time()
    stored = sum(len(compressor.compress(chunk)) for chunk in chunks)
    return stored, time.thread_time() - started


def whole_stream(data):
    """The dump as one zstd-3 stream with a 128 MiB long-distance window: what independent chunks cost."""
    params = zstandard.ZstdCompressionParameters.from_level(3, enable_ldm=True, window_log=27)
    started = time.thread_time()
    stored = len(zstandard.ZstdCompressor(compression_params=params).compress(data))
    return stored, time.thread_time() - started


def measure_backup(work, reps):
    """The ``-Fc`` bytes, then ``reps`` rounds of the floor and a default full backup alternated
    (warm caches): medians of the floor's seconds, the backup's seconds and its busy CPU-s."""
    fc_file = os.path.join(work, "fc.dump")
    run([os.path.join(PG_BIN, "pg_dump"), "-Fc", "-f", fc_file], env=pg_env())
    fc_bytes = os.path.getsize(fc_file)
    os.unlink(fc_file)
    floors, walls, busies, stored = [], [], [], None
    for rep in range(reps):
        floors.append(timed_s(pg_dump_floor))
        before = busy_cpu_s()
        backup = our_backup(pg_params(DB), os.path.join(work, "repo-%d" % rep), {"type": "full"})
        busies.append(busy_cpu_s() - before)
        walls.append(backup["wall_s"])
        stored = backup["new_stored_bytes"]
        run(["sync"])
    return fc_bytes, statistics.median(floors), statistics.median(walls), statistics.median(busies), stored


def dump_chunks(work):
    """The backup's own chunks of a ``pg_dump -Fc -Z0`` of the data, and the dump itself."""
    z0_file = os.path.join(work, "z0.dump")
    run([os.path.join(PG_BIN, "pg_dump"), "-Fc", "-Z0", "-f", z0_file], env=pg_env())
    with open(z0_file, "rb") as handle:
        data = handle.read()
    return list(chunker.cdc_chunks(io.BytesIO(data))), data


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3, help="rounds of the floor and the default backup")
    parser.add_argument("--sweep", action="store_true", help="also search 144 greedy and lazy settings (about 3 min)")
    args = parser.parse_args()
    cores = os.cpu_count()
    with tempfile.TemporaryDirectory(prefix="bim-bench-compression-", dir="/var/tmp") as work:
        chunks, data = dump_chunks(work)  # also warms the page cache for the timed runs
        fc_bytes, floor_s, backup_s, busy, stored = measure_backup(work, args.reps)
    print("pg_dump -Fc -Z0 floor %.2f s; -Fc file %s; %d chunks of the -Z0 dump (%s); medians of %d rounds"
          % (floor_s, mib(fc_bytes), len(chunks), mib(len(data)), args.reps))
    print("default full backup %.2f s (%.2fx the floor), %.2f busy CPU-s system-wide, stored %s (%.3fx)"
          % (backup_s, backup_s / floor_s, busy, mib(stored), stored / fc_bytes))
    print("%-46s %10s %8s %8s %s" % ("setting (each chunk on its own)", "stored", "/ -Fc", "CPU-s",
                                     "lowest backup / floor on %d cores" % cores))
    default_cpu = None
    for label, build in settings():
        started = time.monotonic()
        compressor, once = build(chunks)
        setup_s = time.monotonic() - started
        stored, cpu = compress_chunks(compressor, chunks)
        stored += once
        if default_cpu is None:
            default_cpu = cpu
        bound = (busy - default_cpu + cpu) / (cores * floor_s)
        note = " (dictionary trained in %.1f s)" % setup_s if once else ""
        print("%-46s %10s %7.3fx %8.2f %.2fx%s" % (label, mib(stored), stored / fc_bytes, cpu, bound, note))
    stored, cpu = whole_stream(data)
    print("%-46s %10s %7.3fx %8.2f (no chunks: no deduplication)" % (
        "whole dump, one level-3 stream, long window", mib(stored), stored / fc_bytes, cpu))
    if args.sweep:
        sweep(chunks, fc_bytes)
    print("targets: stored <= 1.0x the -Fc file and backup <= 1.3x the floor (issue 14)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
