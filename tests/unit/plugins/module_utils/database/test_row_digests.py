# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Digests of the dump's own rows: the data blocks as pg_dump framed them (dump-framed, what a
backup records), the row multiset (row_digest), the archive reader (pg_dump_digest) fed the
stream of a real pg_dump 15 (whole, in odd blocks, damaged), and the verification's read of a real
PostgreSQL + PostGIS copy (fixtures in tests/unit/conftest.py)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import random
import subprocess
import uuid

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.database import row_digest
from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql import pg_dump_digest
from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError
from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_archive import dumped_table_digest
from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_row_digests import dump_environment
from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_tools import libpq_environment
from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_engine import PostgresEngine

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


@pytest.mark.parametrize("size", [1, 2, 5, 16, 17, 4099])
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


def _read(archive, size, wanted=lambda namespace, table: namespace == "public", sink=row_digest.multiset_lines,
          last_block_only=False):
    reader = pg_dump_digest.ArchiveRowDigests(wanted, sink=sink, last_block_only=last_block_only)
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
    framed = _read(archive, size, sink=pg_dump_digest.FramedChunks).digests()
    for table in TABLES:
        rows, digest, _in_order = found[("public", table)]
        assert (rows, digest) == (counts[table], verified[table]["digest"]), table
        # what a backup records (no per-row work): the data block's bytes as they are, which a
        # pg_dump of that one table now writes the same
        _none, _also_none, block = framed[("public", table)]
        assert (_none, _also_none) == (None, None)
        assert block == hashlib.sha256(_block_bytes(archive, table)).hexdigest(), table
        assert block == _dumped(odd_params, table), table
    assert found[("public", "odd")][0] == 4


def _block_bytes(archive, table):
    """The chunks of ``table``'s data block in ``archive``, walked one by one by their lengths
    (the reader under test finds the block's end by its zero-length chunk instead)."""
    from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_custom_archive import _TocReader
    reader = _TocReader(archive)
    reader.header()
    ids = {dump_id for dump_id, desc, _at, _flag in reader.entries() if desc == "TABLE DATA"
           and reader.details[dump_id][2] == table}
    position = reader.pos
    while True:
        assert archive[position] == 1  # BLOCK_DATA
        dump_id = int.from_bytes(archive[position + 2:position + 6], "little")
        position += 6
        start = position
        while True:
            length = int.from_bytes(archive[position + 1:position + 5], "little")
            position += 5 + length
            if not length:
                break
        if dump_id in ids:
            return archive[start:position - 5]


def _dumped(params, table):
    with open_engine(params) as engine:
        argv, env = engine.table_dump_command("public", table, None, "UTF8")
    return dumped_table_digest(argv, env, "public", table)


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
    from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_custom_archive import _TocReader
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


def test_damaged_and_hostile_streams_give_no_framed_digest_that_matches(odd_params):
    """The framed reader checks no lengths: every byte it hashes is in the digest, so a damaged
    block gives another digest, and one it cannot end gives none."""
    archive = _archive(odd_params)
    whole = _read(archive, 1 << 20, sink=pg_dump_digest.FramedChunks).digests()
    data = _data_start(archive)
    at = archive.index(b"\n\x00", data) + 1  # a chunk header inside the first table's data
    for damaged in (archive[:at + 1] + b"\xff\xff\xff\x7f" + archive[at + 5:],  # a length made wrong
                    archive[:at] + b"\x01" + archive[at + 1:]):  # a negative length
        found = _read(damaged, 4099, sink=pg_dump_digest.FramedChunks).digests()
        assert sum(whole[name] != value for name, value in found.items()) == 1
    for stream in (archive[:len(archive) * 2 // 3], archive[:data + 3000] + random.Random(2).randbytes(5000)):
        reader = _read(stream, 333, sink=pg_dump_digest.FramedChunks)
        assert reader.unsupported is not None and set(reader.digests()) < set(whole)
        assert all(whole[name] == value for name, value in reader.digests().items())
    # a run of NUL bytes where a row should be ends that block early: what follows is no block
    reader = _read(archive[:at + 8] + b"\x00" * 5 + archive[at + 13:], 4099, sink=pg_dump_digest.FramedChunks)
    first = next(iter(whole))  # dump order: the table whose data holds ``at``
    assert reader.unsupported is not None and first not in reader.digests()


def test_a_one_table_dump_ends_where_the_archive_does(odd_params):
    """A verification's pg_dump holds one table: its block's end is the archive's, checked at
    the end instead of searched for; the same digest, none when the archive is cut short or goes
    on after it, and another one when it goes on with zero bytes (then read as its end)."""
    whole = _read(_archive(odd_params), 1 << 20, sink=pg_dump_digest.FramedChunks).digests()
    with open_engine(odd_params) as engine:
        argv, env = engine.table_dump_command("public", "odd", None, "UTF8")
    single = subprocess.run(argv, stdout=subprocess.PIPE, env=env, check=True).stdout
    for size in (7, 4099, 1 << 20):
        assert _read(single, size, sink=pg_dump_digest.FramedChunks, last_block_only=True).digests() == {
            ("public", "odd"): whole[("public", "odd")]}
    for damaged in (single[:-1], single[:-3000], single + b"\n"):
        reader = _read(damaged, 4099, sink=pg_dump_digest.FramedChunks, last_block_only=True)
        assert reader.digests() == {} and reader.unsupported == "the archive ends inside its data"
    for longer in (single + b"\x00", single + single[-5:]):
        found = _read(longer, 4099, sink=pg_dump_digest.FramedChunks, last_block_only=True).digests()
        assert found[("public", "odd")] != whole[("public", "odd")]


def test_tables_not_wanted_are_skipped(odd_params):
    reader = _read(_archive(odd_params), 4099, wanted=lambda namespace, table: table == "odd")
    assert list(reader.digests()) == [("public", "odd")]


# -- verification against the manifest -----------------------------------------------------------
def _copy_database(pg_admin, source, name):
    pg_admin.execute('CREATE DATABASE "%s" TEMPLATE "%s"' % (name, source.db_name))
    return dataclasses.replace(source, db_name=name)


def _backup(params):
    """(manifest tables, archive bytes) of a backup's dump_database of ``params``."""
    kept = []
    with open_engine(params) as engine:
        _stream, recorded = engine.dump_database(lambda reader: (kept.append(reader.read()), ([], 0, {}))[1], None, "x")
    return recorded, kept[0]


class _Opener:
    """The backup's archive opened again from bytes; counts the openings."""

    def __init__(self, data):
        self.data = data
        self.opened = 0

    def __call__(self):
        self.opened += 1
        return io.BytesIO(self.data)


@pytest.fixture
def ordered_copy(pg_admin, odd_params):
    """(backup's manifest tables, its archive, engine of a copy of the database, forms)."""
    _sql(odd_params, "ALTER TABLE temp_geometry ADD COLUMN n numeric", "UPDATE temp_geometry SET n = 1.0")
    recorded, archive = _backup(odd_params)
    name = "bimtest_rows_%s" % uuid.uuid4().hex[:8]
    copy = _copy_database(pg_admin, odd_params, name)
    try:
        with open_engine(copy) as engine:
            yield recorded, archive, engine, {t: e["digest_form"] for t, e in recorded.items()}
    finally:
        pg_admin.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)


def _verify(engine, forms, recorded, table, opener):
    return engine.table_digests((table,), forms=forms, recorded=recorded, archive=opener)[table]


def test_a_backup_records_the_framed_digest_and_an_equal_copy_verifies_by_it(ordered_copy):
    recorded, archive, engine, forms = ordered_copy
    assert set(forms.values()) == {"dump-framed"}
    assert {e["digest_encoding"] for e in recorded.values()} == {"UTF8"}
    assert all("ordered_digest" not in e for e in recorded.values())
    with open_engine(engine.params) as copy:
        assert {t: e["rows"] for t, e in recorded.items()} == copy.row_counts(tuple(recorded))
    assert recorded["walls"]["rows"] == 300
    opener = _Opener(archive)
    assert engine.table_digests(tuple(recorded), forms=forms, recorded=recorded, archive=opener) == {
        t: {"rows": e["rows"], "digest": e["digest"], "digest_form": "dump-framed"} for t, e in recorded.items()}
    assert opener.opened == 0  # the cheap check decided every table


def test_a_table_whose_name_needs_quoting_is_dumped_alone(pg_conn_params):
    """pg_dump's --table is a pattern: a name with a dot, a star and a quote is matched as it is."""
    _sql(pg_conn_params, 'CREATE TABLE "odd.*""name" (id int)', 'CREATE TABLE "oddXname" (id int)',
         'INSERT INTO "odd.*""name" VALUES (1), (2)', 'INSERT INTO "oddXname" VALUES (3)')
    recorded, archive = _backup(pg_conn_params)
    block = _block_bytes(archive, 'odd.*"name')
    # one chunk per row, then pg_dump's end-of-data line
    assert block == b"\x00\x02\x00\x00\x001\n\x00\x02\x00\x00\x002\n\x00\x05\x00\x00\x00\\.\n\n\n"
    assert _dumped(pg_conn_params, 'odd.*"name') == hashlib.sha256(block).hexdigest()
    assert _dumped(pg_conn_params, "oddXname") != _dumped(pg_conn_params, 'odd.*"name')
    with pytest.raises(DatabaseError, match="pg_dump failed .*no matching tables"):
        _dumped(pg_conn_params, "no such table")


def test_rows_in_another_order_pass_by_the_backup_s_own_rows(ordered_copy):
    recorded, archive, engine, forms = ordered_copy
    # an update and its undo move the row to the end of the heap: same rows, another order
    engine._execute("UPDATE walls SET name = name || 'x' WHERE id IN (SELECT min(id) FROM walls)")
    engine._execute("UPDATE walls SET name = left(name, -1) WHERE id IN (SELECT min(id) FROM walls)")
    opener = _Opener(archive)
    assert _verify(engine, forms, recorded, "walls", opener)["digest"] == recorded["walls"]["digest"]
    assert opener.opened == 2  # its framed digest checked against the manifest, then its rows
    # with no archive to compare with, the moved rows cannot be proven equal
    assert engine.table_digests(("walls",), forms=forms, recorded=recorded)["walls"]["digest"] != recorded["walls"]["digest"]


@pytest.mark.parametrize("change", [
    "UPDATE walls SET name = name || 'x' WHERE id IN (SELECT min(id) FROM walls)",  # a changed row
    "UPDATE temp_geometry SET n = 1.00 WHERE id IN (SELECT min(id) FROM temp_geometry)",  # same number, other bytes
    "DELETE FROM temp_geometry WHERE id IN (SELECT min(id) FROM temp_geometry)",  # a missing row
    # an extra row, the very same as another (a doubled row is another multiset)
    "INSERT INTO logs SELECT * FROM logs WHERE id IN (SELECT min(id) FROM logs)",
])
def test_other_rows_fail_after_the_comparison_with_the_archive(ordered_copy, change):
    recorded, archive, engine, forms = ordered_copy
    table = {"UPDATE": change.split()[1], "DELETE": change.split()[2], "INSERT": change.split()[2]}[change.split()[0]]
    if table == "logs":
        engine._execute("ALTER TABLE logs DROP CONSTRAINT logs_pkey CASCADE")
    engine._execute(change)
    opener = _Opener(archive)
    found = _verify(engine, forms, recorded, table, opener)
    assert opener.opened == 2
    assert (found["rows"], found["digest"]) != (recorded[table]["rows"], recorded[table]["digest"])


def _first_row(engine, table):
    text = subprocess.run([engine.pg_tool("psql"), "-X", "-q", "-c", "SET extra_float_digits = 3", "-c", "SET TimeZone = 'UTC'",
                           "-c", "\\copy %s TO pstdout" % table], stdout=subprocess.PIPE,
                          env=libpq_environment(engine.params), check=True).stdout
    return text[:text.index(b"\n") + 1]


def test_a_damaged_or_hostile_archive_during_the_comparison_is_a_clear_error(ordered_copy):
    recorded, archive, engine, forms = ordered_copy
    row = _first_row(engine, "walls")
    at = archive.index(row)  # the first row of walls' data, after its 5-byte chunk header
    # same rows, another order: only the archive can decide
    engine._execute("UPDATE walls SET name = name WHERE id IN (SELECT min(id) FROM walls)")
    changed = row[:-2] + (b"1" if row[-2:-1] != b"1" else b"2") + b"\n"
    for bad, why in ((archive[:at + 5], "holds no complete data of table public.walls"),
                     (b"", "holds no complete data of table public.walls"),
                     (random.Random(3).randbytes(100000), "holds no complete data"),
                     (archive[:at - 5] + b"\x01" + archive[at - 4:], "does not hold the rows its manifest records"),
                     (archive[:at] + changed + archive[at + len(row):], "does not hold the rows its manifest records")):
        with pytest.raises(DatabaseError, match=why):
            _verify(engine, forms, recorded, "walls", _Opener(bad))
    assert _verify(engine, forms, recorded, "walls", _Opener(archive))["digest"] == recorded["walls"]["digest"]

    def broken():
        raise DatabaseError("reading the backup again: chunk 12ab is damaged")
    with pytest.raises(DatabaseError, match="cannot be read again: reading the backup again: chunk 12ab"):
        _verify(engine, forms, recorded, "walls", broken)


def test_old_manifest_forms_still_verify(ordered_copy, odd_params):
    """copy-ordered (the rows' SHA-256 in dump order, manifest version 4), copy-rows (the
    multiset and its ordered digest, version 3), copy-binary and copy-text (versions 2 and 1)
    entries verify against the same data."""
    _recorded, archive, engine, _forms = ordered_copy
    found = _read(archive, 1 << 20).digests()
    rows = {t: {"rows": found[("public", t)][0], "digest": found[("public", t)][1], "digest_form": "copy-rows",
                "digest_encoding": "UTF8", "ordered_digest": found[("public", t)][2]} for t in TABLES[:-1]}
    ordered = {t: {"rows": found[("public", t)][0], "digest": found[("public", t)][2], "digest_form": "copy-ordered",
                   "digest_encoding": "UTF8"} for t in TABLES[:-1]}
    opener = _Opener(archive)
    assert engine.table_digests(tuple(ordered), forms=dict.fromkeys(ordered, "copy-ordered"), recorded=ordered,
                                archive=opener) == {
        t: {"rows": e["rows"], "digest": e["digest"], "digest_form": "copy-ordered"} for t, e in ordered.items()}
    assert opener.opened == 0
    engine._execute("UPDATE walls SET name = name WHERE id IN (SELECT min(id) FROM walls)")  # order moved
    assert engine.table_digests(("walls",), forms={"walls": "copy-ordered"}, recorded=ordered,
                                archive=opener)["walls"]["digest"] == ordered["walls"]["digest"]
    assert opener.opened == 1
    forms = dict.fromkeys(rows, "copy-rows")
    assert engine.table_digests(tuple(rows), forms=forms, recorded=rows) == {
        t: {"rows": e["rows"], "digest": e["digest"], "digest_form": "copy-rows"} for t, e in rows.items()}
    with open_engine(odd_params) as live:
        binary = live.table_digests(TABLES[:-1])
        text = live.table_digests(TABLES[:-1], forms=dict.fromkeys(TABLES[:-1], "copy-text"))
    assert engine.table_digests(TABLES[:-1]) == binary
    assert engine.table_digests(TABLES[:-1], forms={}) == text  # no form recorded (version 1): text


def test_a_money_table_keeps_a_second_read(pg_conn_params):
    _sql(pg_conn_params, "CREATE TABLE logs_money (id int PRIMARY KEY, m money)", "DROP TABLE logs CASCADE",
         "CREATE TABLE logs (id int PRIMARY KEY, price money)", "INSERT INTO logs VALUES (1, 12.5)")
    with open_engine(pg_conn_params) as engine:
        _stream, recorded = engine.dump_database(lambda reader: (reader.read(), ([], 0, {}))[1], None, "x")
    assert recorded["logs"]["digest_form"] in ("copy-binary", "copy-text")
    assert recorded["walls"]["digest_form"] == "dump-framed"


def test_a_failing_stream_digest_falls_back_to_a_second_read(pg_conn_params, monkeypatch):
    """When hashing the stream fails, the tables are read again in the dump's snapshot and the
    backup goes on with the earlier forms."""
    from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql import pg_archive

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
