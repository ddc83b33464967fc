# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Chunkers: content-defined (FastCDC 2020) for dump streams, fixed page-aligned for SQLite files.

Chunk boundaries only affect deduplication, never correctness: a reader concatenates the chunks
a manifest lists. The parameters are recorded in the manifest all the same.
"""

from __future__ import annotations

try:
    import pyfastcdc
    HAS_FASTCDC = True
    FASTCDC_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - checked by the modules
    pyfastcdc = None
    HAS_FASTCDC = False
    FASTCDC_IMPORT_ERROR = exc

# 256 KiB average: about 1,150 chunks for the 353 MiB benchmark dump. Measured against 128 and
# 512 KiB (docs/benchmarks.md, issue 14): each chunk is a file, and creating it cost the backup
# more CPU than its hashing (ext4); 256 KiB halves that and stores 0.6% less (zstd sees more of
# the data at once), while a contiguous 1% change still stores 0.7% of the full backup (512 KiB:
# 0.9%, too near the 1% target). SQLite files: 256 KiB fixed chunks (a multiple of every page size).
CDC_MIN = 64 * 1024
CDC_AVG = 256 * 1024
CDC_MAX = 1024 * 1024
CDC_NORMALIZATION = 1
FIXED_SIZE = 256 * 1024
# No chunker writes a larger chunk (a fixed chunk is at most FIXED_SIZE, its page size at most
# 64 KiB): a reader refuses any chunk, or manifest entry, that claims more, so a forged repository
# cannot make it allocate more than this per chunk.
MAX_CHUNK_SIZE = max(CDC_MAX, FIXED_SIZE)


def cdc_parameters():
    return {"name": "fastcdc2020", "min_size": CDC_MIN, "avg_size": CDC_AVG, "max_size": CDC_MAX,
            "normalization": CDC_NORMALIZATION, "seed": 0}


def cdc_chunks(stream):
    """Yield the chunks (bytes) of a binary stream with content-defined boundaries."""
    cdc = pyfastcdc.FastCDC(CDC_AVG, min_size=CDC_MIN, max_size=CDC_MAX, normalized_chunking=CDC_NORMALIZATION)
    for chunk in cdc.cut_stream(stream):
        # chunk.data is only valid until the next chunk: copy it.
        yield bytes(chunk.data)


def fixed_parameters(page_size):
    size = FIXED_SIZE
    if page_size and size % page_size:
        size = max(page_size, (size // page_size) * page_size)
    return {"name": "fixed", "size": size, "page_size": page_size}


def fixed_chunks(stream, size):
    """Yield chunks of exactly ``size`` bytes (the last may be shorter) from a binary stream."""
    while True:
        data = stream.read(size)
        if not data:
            return
        while len(data) < size:
            more = stream.read(size - len(data))
            if not more:
                break
            data += more
        yield data
