# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fill in the data offsets of a custom-format archive that ``pg_dump`` wrote to a pipe.

A backup streams ``pg_dump -Fc -Z0`` into the repository, so pg_dump cannot seek back and leaves
every TABLE DATA entry of the table of contents marked "offset not set". ``pg_restore -j`` on
such a file has no sizes to schedule the largest tables first and must skip through every
row-sized data chunk of other tables to find the one it wants; on the 1M-wall benchmark that
made the restore 30% slower than the same archive written to a file. The offsets occupy a
fixed number of bytes in the table of contents, so they are filled in place once the staged
file is complete; pg_restore still checks the block id it finds at each offset.

The layout read here is the one of ``ReadHead``/``ReadToc`` in PostgreSQL's
``src/bin/pg_dump/pg_backup_archiver.c`` (archive versions 1.12 to 1.16, PostgreSQL 9.6 to 17).
Anything else — another version, a compressed archive, large objects — is left untouched: the
file then restores as before, only slower.
"""

from __future__ import annotations

import mmap
import os

MAGIC = b"PGDMP"
FORMAT_CUSTOM = 1
BLOCK_DATA = 1
OFFSET_NOT_SET = 1
OFFSET_SET = 2
KNOWN_VERSIONS = ((1, 12), (1, 13), (1, 14), (1, 15), (1, 16))


class _Unsupported(Exception):
    """The archive is not one this module can patch safely (it is then left as it is)."""


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
            raise _Unsupported("archive ends inside its table of contents")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def integer(self):
        sign = self.byte()
        raw = bytes(self.data[self.pos:self.pos + self.int_size])
        if len(raw) != self.int_size:
            raise _Unsupported("archive ends inside its table of contents")
        self.pos += self.int_size
        value = int.from_bytes(raw, "little")
        return -value if sign else value

    def string(self):
        length = self.integer()
        if length < 0:
            return None
        value = bytes(self.data[self.pos:self.pos + length])
        if len(value) != length:
            raise _Unsupported("archive ends inside its table of contents")
        self.pos += length
        return value.decode("utf-8", "replace")

    def header(self):
        if len(self.data) < 5:
            raise _Unsupported("archive ends inside its header")
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
        """[(dump_id, desc, offset_flag_position, offset_flag)] of the table of contents."""
        found = []
        for _index in range(self.integer()):
            dump_id = self.integer()
            self.integer()  # had a data dumper
            self.string()  # table oid
            self.string()  # oid
            self.string()  # tag
            desc = self.string()
            self.integer()  # section
            for _field in range(5):  # defn, drop statement, copy statement, namespace, tablespace
                self.string()
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
            found.append((dump_id, desc, flag_at, flag))
        return found

    def encoded_int(self, value):
        return b"\x00" + value.to_bytes(self.int_size, "little")


def fill_data_offsets(path):
    """Write the data offsets into the table of contents of archive ``path`` (in place).

    Returns the number of entries given an offset; 0 when there was nothing to do or the
    archive is not one this module patches (see the module doc). Raises OSError only.
    """
    with open(path, "r+b") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return 0
        with mmap.mmap(handle.fileno(), 0) as data:
            reader = _TocReader(data)
            try:
                reader.header()
                entries = reader.entries()
                offsets = _locate_blocks(data, reader, entries)
            except _Unsupported:
                return 0
            for flag_at, offset in offsets:
                data[flag_at:flag_at + 1 + reader.off_size] = (
                    bytes([OFFSET_SET]) + offset.to_bytes(reader.off_size, "little"))
            data.flush()
    return len(offsets)


def _locate_blocks(data, reader, entries):
    """[(offset_flag_position, block_offset)] for the entries whose offset is not set.

    pg_dump writes the data blocks in table-of-contents order, each ``BLOCK_DATA, dump id,
    chunks..., 0``. Chunks hold COPY text, which has no NUL bytes, and chunk lengths are never
    zero, so five zero bytes (an int 0 ending the previous block) followed by the next header
    occur only where that block starts.
    """
    pending = [(dump_id, desc, flag_at) for dump_id, desc, flag_at, flag in entries if flag == OFFSET_NOT_SET]
    if not pending:
        raise _Unsupported("offsets already set")
    if any(desc != "TABLE DATA" for _id, desc, _at in pending):
        raise _Unsupported("large objects or other data than tables")  # binary content: no safe search
    ending = reader.encoded_int(0)
    out = []
    position = reader.pos  # the first data block follows the table of contents
    for index, (dump_id, _desc, flag_at) in enumerate(pending):
        header = bytes([BLOCK_DATA]) + reader.encoded_int(dump_id)
        if index == 0 and data[position:position + len(header)] == header:
            found = position
        else:
            hit = data.find(ending + header, position)
            if hit < 0:
                raise _Unsupported("data block of entry %d not found" % dump_id)
            found = hit + len(ending)
        out.append((flag_at, found))
        position = found + len(header)
    return out
