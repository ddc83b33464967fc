# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Digests of a table's rows as COPY text: the order-independent multiset of its lines
(``RowMultiset``, which also hashes them in the order they come).

Each row is its COPY text line with the newline that ends it (byte-exact: ``1.0`` and ``1.00``
are different lines). Its SHA-256 digest is read as a 256-bit little-endian number and the
numbers are added modulo 2**256 - 1; the digest is that sum as 64 hex digits, and the row count
is kept beside it. The same rows in any order give the same digest, so neither a backup's own
archive (the rows in the dump's order) nor a restored copy (read in its physical order) needs an
ORDER BY to be compared: a verification falls back to it when the rows came in another order.

Why modulo 2**256 - 1: the digests of a batch are joined into one number with one digest per
256-bit lane, and 2**256 is 1 modulo 2**256 - 1, so the lanes' sum is found by adding the number's
halves (``_fold``): a few big-number additions per batch instead of one Python step per row. The
per-row work is two C calls (OpenSSL's SHA-256 and its digest), about 0.5 us per row.

This is a checksum against any accidental difference (a lost, doubled or changed row has odds of
about 2**-256 of going unnoticed); it is not a signature: who may write the repository is decided
by its key (docs/security.md).
"""

from __future__ import annotations

import hashlib

LANE_BITS = 256
MODULUS = (1 << LANE_BITS) - 1
_SHA256_DIGEST = type(hashlib.sha256()).digest
# COPY text's end-of-data line.
END_OF_DATA = b"\\.\n"


def _fold(number):
    """``number`` modulo 2**256 - 1, by adding halves cut at a multiple of 256 bits."""
    while number >> LANE_BITS:
        shift = max(LANE_BITS, (number.bit_length() // (2 * LANE_BITS)) * LANE_BITS)
        number = (number & ((1 << shift) - 1)) + (number >> shift)
    return 0 if number == MODULUS else number


class RowMultiset:
    """Accumulates rows (``add_rows``: lines that each end with their newline, or ``add_text``:
    COPY text made of whole lines); ``rows`` and ``hexdigest()`` are the figures."""

    def __init__(self):
        self.rows = 0
        self._sum = 0
        # The rows in the order they came, as one stream: a restored copy read in the same order
        # proves equal by this alone (``ordered_hexdigest``), without the per-row work.
        self._ordered = hashlib.sha256()

    def add_rows(self, rows):
        """Add a list of rows, each one line ending with ``\\n``."""
        if not rows:
            return
        self._ordered.update(b"".join(rows))
        joined = b"".join(map(_SHA256_DIGEST, map(hashlib.sha256, rows)))
        self._sum = _fold(self._sum + _fold(int.from_bytes(joined, "little")))
        self.rows += len(rows)

    def add_text(self, text):
        """Add COPY text made of whole lines (empty, or ending with ``\\n``)."""
        if not text:
            return
        if not text.endswith(b"\n"):
            raise ValueError("COPY text does not end with a whole line")
        if b"\r" in text:
            # splitlines() would also cut at a carriage return, which COPY always escapes.
            lines = text.split(b"\n")
            self.add_rows([line + b"\n" for line in lines[:-1]])
            return
        self.add_rows(text.splitlines(keepends=True))

    def hexdigest(self):
        return "%064x" % self._sum

    def ordered_hexdigest(self):
        """SHA-256 of the rows as one stream, in the order they were added."""
        return self._ordered.hexdigest()

    def figures(self):
        """(rows, multiset digest, ordered digest)."""
        return self.rows, self.hexdigest(), self.ordered_hexdigest()


def multiset_lines():
    """A ``LineBuffer`` feeding a new ``RowMultiset``: the per-row digest of a COPY text stream."""
    return LineBuffer(RowMultiset())


class LineBuffer:
    """Cuts a byte stream into whole lines for a ``RowMultiset``: ``feed`` any blocks, ``close``
    at the end (a last line without its newline is an error: COPY ends every row with one).

    A line ``\\.`` is COPY's end-of-data marker (pg_dump writes it after a table's rows, then
    blank lines); no row prints so (COPY escapes a backslash in data as ``\\\\``), so the rows end
    there and only blank lines may follow."""

    def __init__(self, multiset):
        self.multiset = multiset
        self._partial = b""
        self.ended = False

    def feed(self, block):
        if not block:
            return
        cut = block.rfind(b"\n")
        if cut < 0:
            self._partial += block
            return
        self._whole(self._partial + block[:cut + 1])
        self._partial = block[cut + 1:]

    def _whole(self, text):
        if self.ended:
            self._after_end(text)
            return
        if text.startswith(END_OF_DATA):
            end = 0
        else:
            end = text.find(b"\n" + END_OF_DATA) + 1
            if not end:
                self.multiset.add_text(text)
                return
        self.multiset.add_text(text[:end])
        self.ended = True
        self._after_end(text[end + len(END_OF_DATA):])

    @staticmethod
    def _after_end(text):
        if text.strip(b"\n"):
            raise ValueError("COPY data goes on after its end-of-data marker")

    def close(self):
        if self._partial:
            raise ValueError("COPY data ends inside a row")

    def figures(self):
        return self.multiset.figures()
