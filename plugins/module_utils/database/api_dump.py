# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Archive/dump: the interface an engine implements for ``repository/backup.py``.

A backup reads the database once, in one consistent state, as one stream the repository chunks,
and takes the table digests of exactly that state. How (pg_dump in an exported snapshot, an
online copy of a SQLite file) is the engine's; how the bytes are chunked and stored is the
repository's, handed in as ``store``.
"""

from __future__ import annotations

import abc
import queue
import sys
import threading
import time

from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError


class ScratchError(DatabaseError):
    """A scratch copy a dump writes in the repository's scratch folder failed: ``action`` says
    what was done, ``os_error`` is the file system's error when it raised one."""

    def __init__(self, action, os_error=None):
        super().__init__("%s failed: %s" % (action, os_error if os_error else "no space left on device"))
        self.action = action
        self.os_error = os_error


class DigestsAlongside:
    """Table digests taken on a thread of their own (``take()`` returns them) while the dump is
    stored; ``with`` waits for them, ``digests()`` returns them or raises what they raised.
    Disabled: no thread, no digests."""

    def __init__(self, take, timings, enabled=True):
        self.take = take
        self.timings = timings
        self.enabled = enabled
        self.found = {}
        self.errors = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        begun = time.monotonic()
        try:
            self.found.update(self.take())
        except Exception as exc:  # reported by digests()
            self.errors.append(exc)
        self.timings["digests_s"] = round(time.monotonic() - begun, 3)

    def __enter__(self):
        if self.enabled:
            self.thread.start()
        return self

    def __exit__(self, *exc_info):
        if self.enabled:
            self.thread.join()

    def digests(self):
        if self.errors:
            raise self.errors[0]
        return self.found


# The GIL switch interval while a DigestTee runs (see its __enter__).
SWITCH_INTERVAL_S = 0.0005


class DigestTee:
    """A reader over ``raw`` (a binary file) that hands every block it reads to ``consume(block)``
    on a thread of its own, so the digests of a stream come from the read that stores it.
    ``with`` waits for the thread at the end; ``error`` is what ``consume`` raised (it then sees
    no more blocks) and ``seconds`` the time it worked. Blocks are batched up to ``BATCH`` bytes;
    a bounded queue keeps memory flat when the consumer is slower than the stream."""

    BATCH = 1024 * 1024

    def __init__(self, raw, consume, depth=64):
        self.raw = raw
        self.consume = consume
        self.error = None
        self.seconds = 0.0
        self._queue = queue.Queue(depth)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def readinto(self, buffer):
        count = self.raw.readinto(buffer)
        if count:
            self._queue.put(bytes(buffer[:count]))
        return count

    def read(self, size=-1):
        block = self.raw.read(size)
        if block:
            self._queue.put(bytes(block))
        return block

    def _run(self):
        while True:
            block = self._queue.get()
            if block is None:
                return
            pending = [block]
            size = len(block)
            while size < self.BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._feed(pending)
                    return
                pending.append(more)
                size += len(more)
            self._feed(pending)

    def _feed(self, pending):
        if self.error is not None:
            return
        begun = time.monotonic()
        try:
            self.consume(b"".join(pending))
        except Exception as exc:  # reported through ``error``
            self.error = exc
        self.seconds += time.monotonic() - begun

    def __enter__(self):
        # The consumer holds the GIL for long runs of small C calls; at the default 5 ms switch
        # interval the reading thread, which needs the GIL after every pipe read, would wait
        # behind it and pg_dump would stall on a full pipe.
        self._interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._queue.put(None)
        self._thread.join()
        sys.setswitchinterval(self._interval)


class Dumps(abc.ABC):
    """Archive/dump domain of an engine."""

    @abc.abstractmethod
    def dump_database(self, store, scratch_dir, name, with_digests=True, timings=None):
        """Back up this engine's database: one consistent read handed to ``store(reader,
        page_size=None)`` (returns ``(chunks, size, chunker parameters)``; a ``page_size`` asks
        for fixed-size chunks of that size, else content-defined ones). ``scratch_dir`` (and
        ``name``, unique per backup) may hold a scratch copy meanwhile (``ScratchError`` when it
        cannot be written). ``timings`` receives the phases' seconds.

        Returns ``(stream, digests)``: the manifest's database stream record (``kind``, ``size``,
        ``chunks``, ``chunker`` and what a restore of this engine needs) and the table digests
        of exactly the state read (``{}`` without ``with_digests``)."""
