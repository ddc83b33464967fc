# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Table digests taken from the data of a ``pg_dump -Fc -Z0`` archive as it streams by.

After its header and table of contents (read by ``pg_custom_archive._TocReader``), an
uncompressed custom-format archive holds one data block per TABLE DATA entry: ``BLOCK_DATA``, the
entry's dump id, then chunks (a length as pg_dump's integer: a sign byte and ``int_size``
little-endian bytes; then that many bytes of COPY text), ended by a chunk of length 0. The COPY
text is exactly the rows pg_dump read in its snapshot, so hashing it gives the backup's table
digests without a second read of the tables.

A backup (sink ``FramedChunks``) hashes each wanted block's bytes as they are, framing included,
and only looks for the zero-length chunk that ends the block; a table not wanted is skipped the
same way. The other sink (``row_digest.multiset_lines``) takes the COPY text without its framing:
pg_dump writes one chunk per row, so the framing is removed in bulk, one regular-expression split
per block finding every header (COPY text holds no NUL byte, and every header starts with the
sign byte 0), the lengths found checked against the claimed ones at C speed; a block where they
disagree is walked chunk by chunk instead. The text is cut into lines again
(``row_digest.LineBuffer``), so a row split across chunks or blocks is one row all the same.
Anything this module does not know (another archive version, compression, large objects) stops
it: ``unsupported`` says why and the tables it did not finish get no digest from here.
"""

from __future__ import annotations

import hashlib
import re
import struct

from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_custom_archive import (
    BLOCK_DATA, MAX_TOC_BYTES, ArchiveFeed, _TocReader, _Truncated, _Unsupported,
)
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError
from ansible_collections.bim.wall_system.plugins.module_utils.database.row_digest import multiset_lines

_INT_FORMATS = {4: "I", 8: "Q"}
READ_BLOCK = 1024 * 1024


class FramedChunks:
    """A sink of ``ArchiveRowDigests`` that takes a table's data block as pg_dump framed it
    (``framed``: its chunks fed as they are, headers included, the zero-length end left out)
    and hashes it: the ``dump-framed`` digest (``pg_row_digests``). pg_dump writes one chunk per
    row, so these bytes are the rows in dump order, each after its length; no row is cut out or
    counted here (the count comes from the server), which keeps the backup's digest thread to
    one SHA-256 of large blocks. ``figures()`` is (None, None, digest)."""

    framed = True

    def __init__(self):
        self._sha = hashlib.sha256()

    def feed(self, chunks):
        self._sha.update(chunks)

    def close(self):
        """Nothing is held back: the reader found the block's end."""

    def figures(self):
        return None, None, self._sha.hexdigest()


class ArchiveRowDigests(ArchiveFeed):
    """Fed the archive block by block (``feed``, then ``close``); ``digests()`` returns
    ``{(namespace, table): (rows or None, multiset digest or None, ordered or framed digest)}`` of
    the TABLE DATA entries ``wanted(namespace, table)`` accepts whose data block was read to its
    end; ``sink`` makes what a table's data is fed to: ``FramedChunks`` (a backup: its bytes as
    they are, one SHA-256) or ``row_digest.multiset_lines`` (its COPY text cut into rows, for the
    per-row multiset). ``encoding`` is the archive's client encoding (of its COPY text)."""

    def __init__(self, wanted, sink, last_block_only=False):
        self.wanted = wanted
        self.sink = sink
        # An archive of one table's data (a verification's pg_dump): its one block ends where the
        # archive does, so its end is checked there instead of searched for.
        self._to_the_end = last_block_only
        self.encoding = None
        self._prefix = bytearray()
        self._rest = b""
        self._current = None  # (name, LineBuffer or None) of the data block being read
        self._done = {}
        # The figures of the block read last: they count once what follows it is sound (another
        # block's header, or the archive's end), so a block whose end was found too early (bytes
        # that were no chunks) gives no digest.
        self._ended = None
        self._header = None

    # -- feeding ---------------------------------------------------------------------------------
    def _data(self, block):
        try:
            self._consume(self._rest + block)
        except ValueError as exc:
            raise _Unsupported("table data: %s" % exc) from None

    def close(self):
        """The archive ended: a data block still open means it was cut short."""
        if self.unsupported is None and self._to_the_end and self._current is not None and self._rest == self._end_marker:
            self._rest = b""
            self._end_block()
        if self.unsupported is None and (self._reader is None or self._current is not None or self._rest):
            self._give_up("the archive ends inside its %s" % ("data" if self._reader else "table of contents"))
        self._count_ended()

    def digests(self):
        return dict(self._done)

    def _give_up(self, reason):
        self.unsupported = reason
        self._prefix = bytearray()
        self._rest = b""
        self._ended = None
        self._current = None

    # -- table of contents -----------------------------------------------------------------------
    def _read_toc(self):
        reader = _TocReader(bytes(self._prefix))
        try:
            reader.header()
            reader.entries()
        except _Truncated:
            if len(self._prefix) > MAX_TOC_BYTES:
                raise _Unsupported("table of contents larger than %d bytes" % MAX_TOC_BYTES)
            return b""
        if reader.int_size not in _INT_FORMATS:
            raise _Unsupported("integers of %d bytes" % reader.int_size)
        self.encoding = _encoding(reader.details)
        self._reader = reader
        self._header = re.compile(b"\x00(" + b"." * reader.int_size + b")", re.S)
        self._end_marker = reader.encoded_int(0)
        rest = bytes(self._prefix[reader.pos:])
        self._prefix = bytearray()
        return rest

    # -- data blocks -----------------------------------------------------------------------------
    def _consume(self, data):
        position = 0
        while True:
            if self._current is None:
                position = self._block_start(data, position)
                if position is None:
                    return
            position, ended = self._chunks(data, position)
            if not ended:
                self._rest = data[position:]
                return
            self._end_block()

    def _block_start(self, data, position):
        """Read a data block's header at ``position``; None when ``data`` ends first."""
        width = 2 + self._reader.int_size
        if len(data) - position < width:
            self._rest = data[position:]
            return None
        if data[position] != BLOCK_DATA:
            raise _Unsupported("a block of type %d (large objects or unknown)" % data[position])
        if data[position + 1] != 0:
            raise _Unsupported("a negative dump id")
        dump_id = int.from_bytes(data[position + 2:position + width], "little")
        desc, namespace, tag, _defn = self._reader.details.get(dump_id, (None,) * 4)
        if desc != "TABLE DATA":
            raise _Unsupported("a data block of entry %d, which is no TABLE DATA" % dump_id)
        self._count_ended()
        lines = self.sink() if self.wanted(namespace, tag) else None
        self._current = ((namespace, tag), lines)
        return position + width

    def _end_block(self):
        name, lines = self._current
        self._current = None
        if lines is not None:
            lines.close()
            self._ended = (name, lines.figures())

    def _count_ended(self):
        if self._ended is not None and self.unsupported is None:
            name, figures = self._ended
            self._done[name] = figures
        self._ended = None

    def _chunks(self, data, position):
        """Hash the whole chunks of ``data`` from ``position``; returns (position after them,
        whether the block's end marker was among them)."""
        lines = self._current[1]
        if lines is None or getattr(lines, "framed", False):
            return self._framed_bytes(data, position)
        parts = self._header.split(data[position:])
        payloads, claimed, ended = _framed(parts, self._reader.int_size)
        if payloads is None:
            return self._walk(data, position)
        self._rows(payloads)
        used = sum(claimed) + len(claimed) * (1 + self._reader.int_size)
        if ended:
            used += 1 + self._reader.int_size
        return position + used, ended

    def _framed_bytes(self, data, position):
        """The block's bytes as they are, chunk headers included, up to the zero-length chunk
        that ends it (fed to a ``framed`` sink, or skipped for a table not wanted). That chunk is
        the only run of ``1 + int_size`` zero bytes in a block: a chunk header is a zero sign
        byte and a length that is not zero, and the COPY text between headers is never empty and
        holds no NUL byte. The last bytes are held back when no end is found, as the end may
        straddle two blocks (and, for ``last_block_only``, are the end ``close()`` checks)."""
        end = -1 if self._to_the_end else data.find(self._end_marker, position)
        ended = end >= 0
        if not ended:
            end = max(position, len(data) - len(self._end_marker) + (0 if self._to_the_end else 1))
        lines = self._current[1]
        if lines is not None and end > position:
            lines.feed(memoryview(data)[position:end])
        return end + len(self._end_marker) if ended else end, ended

    def _walk(self, data, position):
        """The same as ``_chunks``, one chunk at a time (blocks the bulk split cannot read)."""
        size = self._reader.int_size
        payloads = []
        ended = False
        while len(data) - position >= 1 + size:
            if data[position] != 0:
                raise _Unsupported("a negative chunk length")
            length = int.from_bytes(data[position + 1:position + 1 + size], "little")
            if length == 0:
                position += 1 + size
                ended = True
                break
            if len(data) - position - 1 - size < length:
                break
            payloads.append(data[position + 1 + size:position + 1 + size + length])
            position += 1 + size + length
        self._rows(payloads)
        return position, ended

    def _rows(self, payloads):
        lines = self._current[1]
        if lines is not None and payloads:
            lines.feed(b"".join(payloads))


def _framed(parts, int_size):
    """(payloads, claimed lengths, ended) of the whole chunks a header split ``parts`` found, or
    (None, None, None) when the split does not match the claimed lengths (then walk instead).

    ``parts`` is [text before the first header, length, payload, length, payload, ...]; the last
    payload may be cut short by the end of the data, or followed by the start of a header."""
    if parts[0]:
        return None, None, None
    lengths = parts[1::2]
    payloads = parts[2::2]
    count = len(lengths)
    if not count:
        return [], [], False
    claimed = struct.unpack("<%d%s" % (count, _INT_FORMATS[int_size]), b"".join(lengths))
    ended = 0 in claimed
    whole = claimed.index(0) if ended else count - 1  # the last chunk is checked below
    found = tuple(map(len, payloads))
    if found[:whole] != claimed[:whole]:
        return None, None, None
    if not ended and found[-1] == claimed[-1]:
        whole = count
    return payloads[:whole], claimed[:whole], ended


def _encoding(details):
    """The client encoding of the archive's ENCODING entry (``SET client_encoding = 'X';``)."""
    for desc, _namespace, _tag, defn in details.values():
        if desc == "ENCODING" and defn:
            found = re.search(r"client_encoding = '([A-Za-z0-9_]+)'", defn)
            if found:
                return found.group(1)
    return None


def archive_table_rows(open_archive, schema, table, sink=multiset_lines):
    """(rows, multiset digest, ordered digest) of ``schema.table``'s rows in the backup's own
    archive, read again from start to end (``sink=FramedChunks``: (None, None, its dump-framed
    digest)): ``open_archive()`` returns a context manager whose value reads it (the staged
    archive file, or the repository's chunks). Raises DatabaseError when the archive cannot be
    read or does not hold the table's data to its end."""
    digests = ArchiveRowDigests(lambda namespace, name: (namespace, name) == (schema, table), sink=sink)
    try:
        with open_archive() as stream:
            while True:
                block = stream.read(READ_BLOCK)
                if not block:
                    digests.close()
                    break
                digests.feed(block)
                if digests.unsupported is not None or (schema, table) in digests.digests():
                    break
    except (DatabaseError, OSError, ValueError) as exc:
        raise DatabaseError("the backup's archive cannot be read again: %s" % exc) from None
    found = digests.digests().get((schema, table))
    if found is None:
        raise DatabaseError("the backup's archive holds no complete data of table %s.%s (%s)"
                            % (schema, table, digests.unsupported or "no such table data"))
    return found
