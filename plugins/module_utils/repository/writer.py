# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stores streams as chunks: a small thread pool hashes and compresses (hashlib and zstandard
release the GIL), a bounded window of chunks in flight keeps memory flat whatever the size."""

from __future__ import annotations

import collections
import concurrent.futures
import threading

from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import (
    CorruptChunkError, zstandard,
)


DFAST_MIN_MATCH = 6


def chunk_compression_params(level):
    """The zstd parameters a backup compresses its chunks with at ``level``.

    The level's own parameters, not those zstd picks for a chunk-sized input (smaller match
    tables): 3% fewer stored bytes at the same CPU on the 1M-wall dump (docs/benchmarks.md);
    frames and their window size are the same to a reader."""
    params = zstandard.ZstdCompressionParameters.from_level(level, write_content_size=True)
    if params.strategy == zstandard.STRATEGY_DFAST:
        # Levels 3-4 look for matches of 5 bytes; 6 stores the 1M-wall dump 1.1% smaller at the
        # same CPU (docs/benchmarks.md, issue 14). Readers see ordinary frames.
        params = zstandard.ZstdCompressionParameters.from_level(level, write_content_size=True,
                                                                min_match=DFAST_MIN_MATCH)
    return params


class ChunkSession:
    """Writes the chunks of one backup into ``repo``; call while holding the repository lock.

    ``verify_reused``: re-read and hash-check every chunk this backup reuses (a full backup does),
    rewriting a corrupt one from the fresh data.
    """

    def __init__(self, repo, level=3, workers=2, verify_reused=False, in_flight=None):
        self.repo = repo
        self.level = level
        self.workers = max(1, workers)
        self.in_flight = in_flight or self.workers * 4
        self.verify_reused = verify_reused
        self.known = repo.list_chunks()
        self._claimed = set()
        self._verified = set()
        self._lock = threading.Lock()
        self._local = threading.local()
        self.stats = {"new_chunks": 0, "reused_chunks": 0, "new_stored_bytes": 0, "repaired_chunks": 0,
                      "verified_reused_chunks": 0}
        self.timings = {}
        self.chunk_sizes = {}  # chunk id -> stored (compressed) size of chunks this session touched

    def _compressor(self):
        comp = getattr(self._local, "comp", None)
        if comp is None:
            comp = zstandard.ZstdCompressor(compression_params=chunk_compression_params(self.level))
            self._local.comp = comp
        return comp

    def _store(self, chunk_id, data):
        compressed = self._compressor().compress(data)
        return self.repo.write_chunk(chunk_id, self.repo.codec.seal_chunk(chunk_id, compressed))

    def _process(self, data):
        chunk_id = self.repo.chunk_id(data)
        with self._lock:
            existing = chunk_id in self.known
            mine = not existing and chunk_id not in self._claimed
            if mine:
                self._claimed.add(chunk_id)
            check = existing and self.verify_reused and chunk_id not in self._verified
            if check:
                self._verified.add(chunk_id)
        if mine:
            size = self._store(chunk_id, data)
            with self._lock:
                self.known.add(chunk_id)
                self.stats["new_chunks"] += 1
                self.stats["new_stored_bytes"] += size
                self.chunk_sizes[chunk_id] = size
            return chunk_id, len(data)
        if check:
            try:
                self.repo.read_chunk(chunk_id, expected_length=len(data))
                with self._lock:
                    self.stats["verified_reused_chunks"] += 1
            except CorruptChunkError:
                size = self._store(chunk_id, data)
                with self._lock:
                    self.stats["repaired_chunks"] += 1
                    self.stats["new_stored_bytes"] += size
                    self.chunk_sizes[chunk_id] = size
        with self._lock:
            self.stats["reused_chunks"] += 1
        return chunk_id, len(data)

    def store_stream(self, chunks):
        """Store every chunk of the iterable ``chunks`` (bytes). Returns ``(chunk_list, size)``."""
        out = []
        size = 0
        window = collections.deque()
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.workers)
        try:
            for data in chunks:
                window.append(pool.submit(self._process, data))
                size += len(data)
                while len(window) >= self.in_flight:
                    out.append(list(window.popleft().result()))
            while window:
                out.append(list(window.popleft().result()))
        except BaseException:
            for future in window:
                future.cancel()
            raise
        finally:
            pool.shutdown(wait=True)
        return out, size
