# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A reader that hands the stream it reads to a consumer in a child process.

PostgreSQL's ``copy-rows`` digests do about half a microsecond of Python work per row (the
rows of the 1M-wall data: about 3 CPU-s). On a thread that work holds the GIL, and the backup's
own Python work (reading the pipe, cutting chunks, handing them to the compressors) waits behind
it; in a process of its own it runs beside them on another core. The child is forked before the
dump starts (no other thread is running then) and leaves with ``os._exit`` (multiprocessing's),
so nothing of the parent's (the database connection) is touched by it.
"""

from __future__ import annotations

import multiprocessing
import time


def _child(conn, make_consumer):
    """In the child: feed every block received to a new consumer; send back its ``result()``."""
    begun = time.process_time()
    try:
        consumer = make_consumer()
        while True:
            block = conn.recv_bytes()
            if not block:
                break
            consumer.feed(block)
        conn.send(("ok", consumer.result(), time.process_time() - begun))
    except Exception as exc:  # reported to the parent, which falls back
        conn.send(("error", "%s: %s" % (type(exc).__name__, exc), time.process_time() - begun))
    finally:
        conn.close()


class DigestProcess:
    """A reader whose blocks a consumer made by ``make_consumer()`` (``feed(block)``,
    ``result()``) reads in a forked child: ``start()`` forks, ``reading(raw)`` returns the reader
    over ``raw`` (a binary file), ``finish()`` hands over the rest and waits for the result, and
    ``stop()`` always ends the child. Then ``result`` is the consumer's result, or ``error``
    says why there is none (the child failed or died); ``seconds`` is the child's CPU time.
    Blocks go to the child in batches of ``BATCH`` bytes; the pipe's buffer bounds what waits."""

    BATCH = 1024 * 1024

    def __init__(self, make_consumer):
        self.make_consumer = make_consumer
        self.raw = None
        self.result = None
        self.error = None
        self.seconds = 0.0
        self._pending = []
        self._size = 0
        self._conn = None
        self._process = None

    def start(self):
        context = multiprocessing.get_context("fork")
        self._conn, child_end = context.Pipe()
        self._process = context.Process(target=_child, args=(child_end, self.make_consumer), daemon=True)
        self._process.start()
        child_end.close()
        return self

    def reading(self, raw):
        self.raw = raw
        return self

    def readinto(self, buffer):
        count = self.raw.readinto(buffer)
        if count:
            self._keep(bytes(buffer[:count]))
        return count

    def read(self, size=-1):
        block = self.raw.read(size)
        if block:
            self._keep(bytes(block))
        return block

    def _keep(self, block):
        self._pending.append(block)
        self._size += len(block)
        if self._size >= self.BATCH:
            self._send()

    def _send(self):
        data, self._pending, self._size = b"".join(self._pending), [], 0
        if self.error is None and data:
            try:
                self._conn.send_bytes(data)
            except OSError as exc:
                self.error = "the digest process stopped: %s" % exc

    def finish(self):
        """The stream has ended: hand over the rest and take the child's answer."""
        self._send()
        if self.error is not None:
            return
        try:
            self._conn.send_bytes(b"")
            status, value, seconds = self._conn.recv()
        except (OSError, EOFError) as exc:
            self.error = "the digest process stopped: %s" % (exc or "no answer")
            return
        self.seconds = seconds
        if status == "ok":
            self.result = value
        else:
            self.error = value

    def stop(self):
        if self._conn is not None:
            self._conn.close()
        if self._process is not None:
            if self._process.is_alive():
                self._process.kill()
            self._process.join()
