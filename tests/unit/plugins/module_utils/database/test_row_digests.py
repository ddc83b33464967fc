# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""copy-rows digests: the row multiset (row_digest), the archive reader (pg_dump_digest) fed the
stream of a real pg_dump 15 (whole, in odd blocks, damaged), and the verification's read of a real
PostgreSQL + PostGIS copy (fixtures in tests/unit/conftest.py)."""

from __future__ import annotations

import dataclasses
import hashlib
import random
import subprocess
import uuid

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.database import pg_dump_digest, row_digest
from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine
from ansible_collections.bim.wall_system.plugins.module_utils.database.pg_row_digests import dump_environment
from ansible_collections.bim.wall_system.plugins.module_utils.database.pg_tools import libpq_environment
from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql import PostgresEngine

ROWS = [b"1\tL-junction\t1.0\n", b"2\t\\N\t2.5\n", b"3\ta\\nb\\tc\\\\.\t-0\n", b"4\t\\\\.\t1e+300\n"]


def _digest(rows):
    multiset = row_digest.RowMultiset()
    multiset.add_rows(list(rows))
    return multiset.rows, multiset.hexdigest()


def test_multiset_ignores_order_and_counts_every_row():
    assert _digest(ROWS) == _digest(reversed(ROWS)) == _digest(random.Random(5).sample(ROWS, len(ROWS)))
    assert _digest(ROWS)[0] == 4
    assert _digest(ROWS + ROWS[:1]) != _digest(ROWS)  # a doubled row is another multiset
    assert _digest(ROWS[1:]) != _digest(ROWS)
    assert _digest([]) == (0, "0" * 64)


def test_multiset_is_byte_exact():
    assert _digest([b"1\t1.0\n"]) != _digest([b"1\t1.00\n"])
    assert _digest([b"1\t1.0\n"]) != _digest([b"1\t1.0 \n"])
    assert _digest([b"a\tb\n"]) != _digest([b"b\ta\n"])


def test_folding_equals_the_plain_sum():
    rows = [("%d\tvalue %d\n" % (n, n * n)).encode() for n in range(5000)]
    plain = sum(int.from_bytes(hashlib.sha256(r).digest(), "little") for r in rows) % row_digest.MODULUS
    multiset = row_digest.RowMultiset()
    for start in range(0, len(rows), 777):  # batches of any size add up to the same sum
        multiset.add_rows(rows[start:start + 777])
    assert multiset.hexdigest() == "%064x" % plain
    assert row_digest._fold(row_digest.MODULUS) == 0 and row_digest._fold(row_digest.MODULUS + 5) == 5


@pytest.mark.parametrize("size", [1, 3, 7, 64])
def test_lines_split_across_blocks_are_whole_rows(size):
    text = b"".join(ROWS) + b"\\.\n\n\n"
    multiset = row_digest.RowMultiset()
    lines = row_digest.LineBuffer(multiset)
    for start in range(0, len(text), size):
        lines.feed(text[start:start + size])
    lines.close()
    assert (multiset.rows, multiset.hexdigest()) == _digest(ROWS)
    assert multiset.ordered_hexdigest() == hashlib.sha256(b"".join(ROWS)).hexdigest()


def test_a_raw_carriage_return_is_no_line_end_and_bad_endings_are_refused():
    # COPY escapes CR; should one come raw all the same, only the newline ends the row
    multiset = row_digest.RowMultiset()
    multiset.add_text(b"1\ta\rb\n2\tc\n")
    assert (multiset.rows, multiset.hexdigest()) == _digest([b"1\ta\rb\n", b"2\tc\n"])
    lines = row_digest.LineBuffer(row_digest.RowMultiset())
    lines.feed(b"1\ta\n2\tb")
    with pytest.raises(ValueError, match="inside a row"):
        lines.close()
    lines = row_digest.LineBuffer(row_digest.RowMultiset())
    with pytest.raises(ValueError, match="after its end-of-data marker"):
        lines.feed(b"1\ta\n\\.\n2\tb\n")


# -- the archive reader against a real pg_dump ---------------------------------------------------
def _sql(params, *statements):
    import psycopg
    with psycopg.connect(host=params.db_host, port=params.db_port, user=params.db_user, dbname=params.db_name,
                         autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


ODD_ROWS = (
    "CREATE TABLE odd (id int PRIMARY KEY, t text, n numeric, f float8, b bytea, at timestamptz, g geometry(Point, 3857))",
    # escaped newline, tab, CR and backslash, a value that prints as the end marker, NULLs,
    # 1.0 and 1.00, a float needing 17 digits, bytea, a time stamp in another zone
    "INSERT INTO odd VALUES (1, E'two\\nlines\\tand\\r\\\\', 1.0, 0.1, '\\x00ff', '2026-11-01 12:00+05:30',"
    " ST_SetSRID(ST_MakePoint(1, 2), 3857)), (2, '\\.', 1.00, 1e-300, NULL, NULL, NULL), (3, NULL, NULL, NULL,"
    " '', '2026-11-01 00:00Z', NULL), (4, repeat('x', 70000), 2, 3.141592653589793, NULL, NULL, NULL)",
)


@pytest.fixture
def odd_params(pg_conn_params):
    _sql(pg_conn_params, *ODD_ROWS)
    return pg_conn_params


def _archive(params):
    """The bytes a backup's pg_dump writes (custom format, no compression, a pipe)."""
    argv = [PostgresEngine(params).pg_tool("pg_dump"), "--format=custom", "--compress=0", "--no-password"]
    out = subprocess.run(argv, stdout=subprocess.PIPE, env=dump_environment(libpq_environment(params)), check=True)
    return out.stdout


def _read(archive, size, wanted=lambda namespace, table: namespace == "public"):
    reader = pg_dump_digest.ArchiveRowDigests(wanted)
    for start in range(0, len(archive), size):
        reader.feed(archive[start:start + size])
    reader.close()
    return reader


TABLES = ("walls", "intersections", "quality_metrics", "logs", "temp_geometry", "odd")


@pytest.mark.parametrize("size", [7, 4099, 1 << 20])
def test_stream_digests_equal_the_verification_of_the_same_database(odd_params, size):
    archive = _archive(odd_params)
    reader = _read(archive, size)
    assert reader.unsupported is None and reader.encoding == "UTF8"
    found = reader.digests()
    with open_engine(odd_params) as engine:
        # a copy-rows read with no ordered digest to try first: the multiset, row by row
        verified = engine.table_digests(TABLES, forms=dict.fromkeys(TABLES, "copy-rows"),
                                        recorded={t: {"digest_encoding": "UTF8"} for t in TABLES})
        counts = engine.row_counts(TABLES)
    for table in TABLES:
        rows, digest, _ordered = found[("public", table)]
        assert (rows, digest) == (counts[table], verified[table]["digest"]), table
    assert found[("public", "odd")][0] == 4


def test_a_dumped_row_split_over_chunks_and_the_end_marker_are_handled(odd_params):
    """The 70000-byte value makes one row larger than a 64 KiB pipe read; `\\.` as a value is
    escaped, so only the real end marker ends the rows."""
    reader = _read(_archive(odd_params), 65536)
    rows, _digest_hex, ordered = reader.digests()[("public", "odd")]
    with open_engine(odd_params) as engine:
        text = subprocess.run([engine.pg_tool("psql"), "-X", "-q", "-c", "SET extra_float_digits = 3",
                               "-c", "SET TimeZone = 'UTC'", "-c", "\\copy odd TO pstdout"], stdout=subprocess.PIPE,
                              env=libpq_environment(odd_params), check=True).stdout
    assert rows == 4 and ordered == hashlib.sha256(text).hexdigest()


def _data_start(archive):
    from ansible_collections.bim.wall_system.plugins.module_utils.database.pg_custom_archive import _TocReader
    reader = _TocReader(archive)
    reader.header()
    reader.entries()
    return reader.pos


def test_damaged_and_hostile_streams_give_no_digest_and_no_exception(odd_params):
    archive = _archive(odd_params)
    whole = _read(archive, 1 << 20).digests()
    data = _data_start(archive)

    def check(stream, size=4099):
        reader = _read(stream, size)
        assert reader.unsupported is not None
        # what it did finish is right; a table it could not finish has no digest
        assert all(whole[name] == value for name, value in reader.digests().items())
        return reader.digests()

    # cut short: the tables read to their end keep their digests, the cut one has none
    assert set(check(archive[:len(archive) * 2 // 3])) < set(whole)
    # a chunk length made wrong in the middle of the data of the first table
    at = archive.index(b"\n\x00", data) + 1
    assert len(check(archive[:at + 1] + b"\xff\xff\xff\x7f" + archive[at + 5:])) < len(whole)
    # a NUL inside a row: the bulk split and the lengths disagree, the chunk walk follows the
    # lengths, and the digest describes the bytes it found (one table differs, the rest do not)
    row = archive.index(b"\n\x00", at + 10) + 8
    reader = _read(archive[:row] + b"\x00" + archive[row + 1:], 4099)
    assert reader.unsupported is None
    assert sum(whole[name] != value for name, value in reader.digests().items()) == 1
    # garbage, an empty stream, another version, noise after the table of contents
    noise = random.Random(1).randbytes(5000)
    for junk in (b"", b"PGDMP", b"not an archive at all" * 100, archive[:5] + b"\x09" + archive[6:],
                 archive[:data + 3000] + noise):
        assert check(junk, 333) is not None


def test_tables_not_wanted_are_skipped(odd_params):
    reader = _read(_archive(odd_params), 4099, wanted=lambda namespace, table: table == "odd")
    assert list(reader.digests()) == [("public", "odd")]


# -- verification against the manifest -----------------------------------------------------------
def _copy_database(pg_admin, source, name):
    pg_admin.execute('CREATE DATABASE "%s" TEMPLATE "%s"' % (name, source.db_name))
    return dataclasses.replace(source, db_name=name)


def test_verification_of_a_backup_digest(pg_admin, odd_params):
    """A backup's digests (dump_database) verify against an identical copy, first by the ordered
    digest, then after the copy's rows move (same multiset), and fail for one changed value."""
    _sql(odd_params, "ALTER TABLE temp_geometry ADD COLUMN n numeric", "UPDATE temp_geometry SET n = 1.0")
    with open_engine(odd_params) as engine:
        _stream, recorded = engine.dump_database(lambda reader: (reader.read(), ([], 0, {}))[1], None, "x")
    assert {t: e["digest_form"] for t, e in recorded.items()} == dict.fromkeys(TABLES[:-1], "copy-rows")
    assert {e["digest_encoding"] for e in recorded.values()} == {"UTF8"}
    name = "bimtest_rows_%s" % uuid.uuid4().hex[:8]
    _sql(odd_params, "SELECT 1")  # nobody else connected: the template copy below needs that
    copy = _copy_database(pg_admin, odd_params, name)
    try:
        with open_engine(copy) as engine:
            forms = {t: e["digest_form"] for t, e in recorded.items()}
            assert engine.table_digests(tuple(recorded), forms=forms, recorded=recorded) == {
                t: {"rows": e["rows"], "digest": e["digest"], "digest_form": e["digest_form"]} for t, e in recorded.items()}
            # rows moved (an update and its undo): the ordered digest no longer matches, the multiset does
            engine._execute("UPDATE walls SET name = name || 'x' WHERE id IN (SELECT min(id) FROM walls)")
            engine._execute("UPDATE walls SET name = left(name, -1) WHERE id IN (SELECT min(id) FROM walls)")
            moved = engine.table_digests(("walls",), forms=forms, recorded=recorded)["walls"]
            assert moved["digest"] == recorded["walls"]["digest"]
            # 1.0 -> 1.00 is the same number but another value
            engine._execute("UPDATE temp_geometry SET n = 1.00 WHERE id IN (SELECT min(id) FROM temp_geometry)")
            changed = engine.table_digests(("temp_geometry",), forms=forms, recorded=recorded)["temp_geometry"]
            assert changed["rows"] == recorded["temp_geometry"]["rows"]
            assert changed["digest"] != recorded["temp_geometry"]["digest"]
    finally:
        pg_admin.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)


def test_a_money_table_keeps_a_second_read(pg_conn_params):
    _sql(pg_conn_params, "CREATE TABLE logs_money (id int PRIMARY KEY, m money)", "DROP TABLE logs CASCADE",
         "CREATE TABLE logs (id int PRIMARY KEY, price money)", "INSERT INTO logs VALUES (1, 12.5)")
    with open_engine(pg_conn_params) as engine:
        _stream, recorded = engine.dump_database(lambda reader: (reader.read(), ([], 0, {}))[1], None, "x")
    assert recorded["logs"]["digest_form"] in ("copy-binary", "copy-text")
    assert recorded["walls"]["digest_form"] == "copy-rows"


def test_a_failing_stream_digest_falls_back_to_a_second_read(pg_conn_params, monkeypatch):
    """When hashing the stream fails, the tables are read again in the dump's snapshot and the
    backup goes on with the earlier forms."""
    from ansible_collections.bim.wall_system.plugins.module_utils.database import pg_archive

    class Broken(pg_dump_digest.ArchiveRowDigests):
        def feed(self, block):
            raise RuntimeError("consumer broke")

    monkeypatch.setattr(pg_archive, "ArchiveRowDigests", Broken)
    timings = {}
    with open_engine(pg_conn_params) as engine:
        _stream, recorded = engine.dump_database(lambda reader: (reader.read(), ([], 0, {}))[1], None, "x",
                                                 timings=timings)
    with open_engine(pg_conn_params) as engine:
        expected = engine.table_digests(tuple(recorded))
    assert "consumer broke" in timings["digest_fallback"]
    assert recorded == expected and {e["digest_form"] for e in recorded.values()} == {"copy-binary"}
