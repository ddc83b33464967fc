# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fill in the data offsets of a custom-format archive that ``pg_dump`` wrote to a pipe.

A backup streams ``pg_dump -Fc -Z0`` into the repository, so pg_dump cannot seek back and leaves
every TABLE DATA entry of the table of contents marked "offset not set". ``pg_restore -j`` on
such a file has no sizes to schedule the largest tables first and must skip through every
row-sized data chunk of other tables to find the one it wants; on the 1M-wall benchmark that
made the restore 30% slower than the same archive written to a file. The offsets occupy a
fixed number of bytes in the table of contents: ``DataOffsetFinder`` finds the data blocks while
the staged file is being written (no second read of the file) and fills the offsets in place
once it is complete; pg_restore still checks the block id it finds at each offset.

The layout read here is the one of ``ReadHead``/``ReadToc`` in PostgreSQL's
``src/bin/pg_dump/pg_backup_archiver.c`` (archive versions 1.12 to 1.16, PostgreSQL 9.6 to 17).
Anything else — another version, a compressed archive, large objects — is left untouched: the
file then restores as before, only slower.
"""

from __future__ import annotations

import os

MAGIC = b"PGDMP"
FORMAT_CUSTOM = 1
BLOCK_DATA = 1
OFFSET_NOT_SET = 1
OFFSET_SET = 2
KNOWN_VERSIONS = ((1, 12), (1, 13), (1, 14), (1, 15), (1, 16))


# The table of contents is read from the first bytes of the stream; an archive whose table of
# contents is larger than this is left as it is rather than held in memory.
MAX_TOC_BYTES = 64 * 1024 * 1024


class _Unsupported(Exception):
    """The archive is not one this module can patch safely (it is then left as it is)."""


class _Truncated(_Unsupported):
    """The bytes seen so far end inside the header or the table of contents."""


class _TocReader:
    """Reads the header and table of contents of an archive held in ``data`` (bytes-like)."""

    def __init__(self, data):
        self.data = data
        self.pos = 0
        self.int_size = 4
        self.off_size = 8
        self.version = (0, 0)

    def byte(self):
        if self.pos >= len(self.data):
            raise _Truncated("archive ends inside its table of contents")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def integer(self):
        sign = self.byte()
        raw = bytes(self.data[self.pos:self.pos + self.int_size])
        if len(raw) != self.int_size:
            raise _Truncated("archive ends inside its table of contents")
        self.pos += self.int_size
        value = int.from_bytes(raw, "little")
        return -value if sign else value

    def string(self):
        length = self.integer()
        if length < 0:
            return None
        value = bytes(self.data[self.pos:self.pos + length])
        if len(value) != length:
            raise _Truncated("archive ends inside its table of contents")
        self.pos += length
        return value.decode("utf-8", "replace")

    def header(self):
        if len(self.data) < 5:
            raise _Truncated("archive ends inside its header")
        if bytes(self.data[:5]) != MAGIC:
            raise _Unsupported("not a PostgreSQL custom-format archive")
        self.pos = 5
        self.version = (self.byte(), self.byte())
        self.byte()  # revision
        if self.version not in KNOWN_VERSIONS:
            raise _Unsupported("archive version %d.%d" % self.version)
        self.int_size = self.byte()
        self.off_size = self.byte()
        if self.byte() != FORMAT_CUSTOM:
            raise _Unsupported("not the custom format")
        compressed = self.byte() if self.version >= (1, 15) else self.integer()
        if compressed not in (0,):
            # Compressed data blocks hold arbitrary bytes, in which block headers cannot be found safely.
            raise _Unsupported("compressed archive")
        for _field in range(7):  # creation time: sec, min, hour, mday, mon, year, isdst
            self.integer()
        for _field in range(3):  # database name, server version, pg_dump version
            self.string()

    def entries(self):
        """[(dump_id, desc, offset_flag_position, offset_flag)] of the table of contents;
        ``details`` then maps each dump id to (desc, namespace, tag, definition)."""
        found = []
        self.details = {}
        for _index in range(self.integer()):
            dump_id = self.integer()
            self.integer()  # had a data dumper
            self.string()  # table oid
            self.string()  # oid
            tag = self.string()
            desc = self.string()
            self.integer()  # section
            defn = self.string()
            self.string()  # drop statement
            self.string()  # copy statement
            namespace = self.string()
            self.string()  # tablespace
            self.details[dump_id] = (desc, namespace, tag, defn)
            if self.version >= (1, 14):
                self.string()  # table access method
            if self.version >= (1, 16):
                self.integer()  # relkind
            self.string()  # owner
            self.string()  # "with oids", always false
            while self.string() is not None:  # dependencies, ended by a NULL string
                pass
            flag_at = self.pos
            flag = self.byte()
            self.pos += self.off_size
            if self.pos > len(self.data):
                raise _Truncated("archive ends inside its table of contents")
            found.append((dump_id, desc, flag_at, flag))
        return found

    def encoded_int(self, value):
        return b"\x00" + value.to_bytes(self.int_size, "little")


class ArchiveFeed:
    """An archive fed block by block: its first bytes are held until ``_read_toc()`` has read the
    table of contents (and set ``_reader``), the rest goes to ``_data(block)``; what either
    raises as ``_Unsupported`` ends the reading (``_give_up``)."""

    _reader = None
    unsupported = None

    def feed(self, block):
        """The next ``block`` (bytes) of the archive."""
        if self.unsupported is not None:
            return
        try:
            if self._reader is None:
                self._prefix += block
                block = self._read_toc()
                if self._reader is None:
                    return
            self._data(block)
        except _Unsupported as exc:
            self._give_up(str(exc))


class DataOffsetFinder(ArchiveFeed):
    """Finds the data blocks of an archive fed to it in order, block by block, as it is written.

    pg_dump writes the data blocks in table-of-contents order, each ``BLOCK_DATA, dump id,
    chunks..., 0``. Chunks hold COPY text, which has no NUL bytes, and chunk lengths are never
    zero, so five zero bytes (an int 0 ending the previous block) followed by the next header
    occur only where that block starts; the first block follows the table of contents, as if
    after such an ending. ``fill_in(fd)`` then writes the offsets found into the file.
    """

    def __init__(self):
        self._prefix = bytearray()  # the first bytes, until the table of contents is read
        self._reader = None
        self._pending = []  # (dump_id, offset_flag_position) of the blocks still to find
        self._found = []  # (offset_flag_position, block_offset)
        self._tail = b""  # last bytes of the previous block: a header may straddle two
        self._tail_start = 0  # stream position of _tail[0]
        self.unsupported = None  # why the archive is left alone, once known

    def _data(self, block):
        self._search(block)

    def _give_up(self, reason):
        self.unsupported = reason
        self._prefix = bytearray()
        self._pending = []
        self._found = []
        self._tail = b""

    def _read_toc(self):
        """Parse the table of contents once the prefix holds it; returns the bytes after it."""
        reader = _TocReader(bytes(self._prefix))
        try:
            reader.header()
            entries = reader.entries()
        except _Truncated:
            if len(self._prefix) > MAX_TOC_BYTES:
                raise _Unsupported("table of contents larger than %d bytes" % MAX_TOC_BYTES)
            return b""
        self._pending = [(dump_id, flag_at) for dump_id, desc, flag_at, flag in entries if flag == OFFSET_NOT_SET]
        if not self._pending:
            raise _Unsupported("offsets already set")
        if any(desc != "TABLE DATA" for _id, desc, _at, flag in entries if flag == OFFSET_NOT_SET):
            raise _Unsupported("large objects or other data than tables")  # binary content: no safe search
        self._reader = reader
        data_start = reader.pos
        rest = bytes(self._prefix[data_start:])
        self._prefix = bytearray()
        ending = reader.encoded_int(0)
        self._tail, self._tail_start = ending, data_start - len(ending)
        return rest

    def _search(self, block):
        reader = self._reader
        ending = reader.encoded_int(0)
        window = self._tail + block
        window_start = self._tail_start
        position = 0
        while self._pending:
            dump_id, flag_at = self._pending[0]
            needle = ending + bytes([BLOCK_DATA]) + reader.encoded_int(dump_id)
            hit = window.find(needle, position)
            if hit < 0:
                break
            self._found.append((flag_at, window_start + hit + len(ending)))
            self._pending.pop(0)
            position = hit + len(needle)
        # Keep the bytes a needle starting in this block could still need (all but its last
        # byte: ending, block type, dump id = 2 * len(ending) + 1), never bytes already matched.
        keep_from = max(position, len(window) - 2 * len(ending))
        self._tail = window[keep_from:]
        self._tail_start = window_start + keep_from

    def fill_in(self, fd):
        """Write the offsets found into the archive open as ``fd`` (writable). Returns the
        number of entries given an offset: 0 when the archive is not one this module patches
        (``unsupported`` says why). Raises OSError only."""
        if self.unsupported is None and self._reader is None:
            self._give_up("archive ends inside its header or table of contents")
        elif self._pending:
            self._give_up("data block of entry %d not found" % self._pending[0][0])
        if self.unsupported is not None:
            return 0
        for flag_at, offset in self._found:
            os.pwrite(fd, bytes([OFFSET_SET]) + offset.to_bytes(self._reader.off_size, "little"), flag_at)
        return len(self._found)
