# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SqliteCoreMixin against real SQLite files (fixtures in tests/unit/conftest.py)."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import sqlite3

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.database.sqlite import sqlite_core, sqlite_digests
from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import ConnectionParams
from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError


def _sql(params, *statements):
    """Change the file directly with the sqlite3 module, outside the engine under test."""
    conn = sqlite3.connect(params.sqlite_path, isolation_level=None)
    try:
        for statement in statements:
            conn.execute(statement)
    finally:
        conn.close()


@pytest.fixture
def engine(sqlite_conn_params):
    with open_engine(sqlite_conn_params) as eng:
        yield eng


def test_connect_returns_seconds_and_close_is_idempotent(sqlite_conn_params):
    eng = open_engine(sqlite_conn_params)
    seconds = eng.connect()
    assert isinstance(seconds, float) and seconds >= 0
    eng.close()
    eng.close()
    with pytest.raises(DatabaseError, match="not connected"):
        eng.existing_tables()


@pytest.mark.parametrize("name", ["missing.db", "no-such-folder/missing.db", "odd ?name#.db"])
def test_missing_file_is_an_error_and_never_created(tmp_path, name):
    path = tmp_path / name
    params = ConnectionParams(engine="sqlite", sqlite_path=str(path))
    for read_only in (False, True):
        with pytest.raises(DatabaseError) as info:
            open_engine(params, read_only=read_only).connect()
        assert str(path) in str(info.value) and "does not exist" in str(info.value)
    assert sorted(os.listdir(tmp_path)) == []


def test_missing_sqlite_path_is_an_error():
    with pytest.raises(DatabaseError, match="sqlite_path is required"):
        open_engine(ConnectionParams(engine="sqlite")).connect()


def test_a_file_that_is_not_a_database_is_an_error(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a database, just some text that is long enough to be read as a header\n" * 20)
    with pytest.raises(DatabaseError, match="cannot open sqlite database .*notes.txt"):
        open_engine(ConnectionParams(engine="sqlite", sqlite_path=str(path))).connect()


def test_odd_file_name_opens(sqlite_conn_params, tmp_path):
    odd = tmp_path / "dir with space" / "bim ?walls#1.db"
    odd.parent.mkdir()
    shutil.copy(sqlite_conn_params.sqlite_path, odd)
    with open_engine(dataclasses.replace(sqlite_conn_params, sqlite_path=str(odd))) as eng:
        assert eng.row_counts(["walls"]) == {"walls": 300}
        assert eng.data_directory() == str(odd.parent)


def test_read_only_engine_cannot_write(sqlite_conn_params):
    with open_engine(sqlite_conn_params, read_only=True) as eng:
        with pytest.raises(DatabaseError, match="readonly"):
            eng._execute("DELETE FROM logs")
        assert eng.row_counts(["logs"])["logs"] > 0


def test_probes_on_fresh_data(engine, sqlite_conn_params):
    assert engine.existing_tables() == ["walls", "intersections", "quality_metrics", "logs", "temp_geometry"]
    latency = engine.query_latency()
    assert latency["key_lookup_ms"] >= 0 and latency["spatial_window_ms"] >= 0
    assert 1 <= latency["spatial_window_rows"] <= sqlite_core.WINDOW_LIMIT
    assert engine.connection_usage() == {"active": 1, "idle": 0, "max_connections": None}
    assert engine.data_directory() == os.path.dirname(sqlite_conn_params.sqlite_path)
    assert [(i["name"], i["present"], i["valid"], i["problem"]) for i in engine.spatial_indexes()] == [
        ("walls_rtree", True, True, None), ("intersections_rtree", True, True, None)]


def test_window_probe_uses_the_rtree(engine):
    plan = " ".join(str(r) for r in engine._fetchall(
        "EXPLAIN QUERY PLAN SELECT w.id FROM walls_rtree AS r JOIN walls AS w ON w.id = r.id"
        " WHERE r.min_x <= 1 AND r.max_x >= 0 AND r.min_y <= 1 AND r.max_y >= 0 LIMIT 100"))
    assert "VIRTUAL TABLE INDEX" in plan and "USING INTEGER PRIMARY KEY" in plan


def test_query_latency_on_empty_walls(sqlite_conn_params):
    _sql(sqlite_conn_params, "DELETE FROM intersections", "DELETE FROM quality_metrics",
         "DELETE FROM walls", "DELETE FROM walls_rtree")
    with open_engine(sqlite_conn_params) as eng:
        assert eng.query_latency()["spatial_window_rows"] == 0


def test_dropped_rtree_is_reported_missing_when_declared(sqlite_conn_params):
    _sql(sqlite_conn_params, "DROP TABLE walls_rtree")
    with open_engine(sqlite_conn_params) as eng:
        assert [i["name"] for i in eng.spatial_indexes()] == ["intersections_rtree"]
        assert eng.schema().unindexed == ["walls"]
        latency = eng.query_latency()
    assert latency["spatial_window_skipped"] == "walls has no valid R*Tree" and "spatial_window_ms" not in latency
    declared = dataclasses.replace(sqlite_conn_params, schema={"walls": {"rtree": "walls_rtree"}})
    with open_engine(declared) as eng:
        walls = eng.spatial_indexes()[0]
    assert walls["name"] == "walls_rtree" and walls["declared"] and not walls["present"] and not walls["valid"]
    assert walls["problem"] == "missing"


def test_rtree_missing_a_row_is_invalid(sqlite_conn_params):
    _sql(sqlite_conn_params, "DELETE FROM walls_rtree WHERE id = (SELECT max(id) FROM walls)")
    with open_engine(sqlite_conn_params) as eng:
        walls, inters = eng.spatial_indexes()
    assert walls["present"] and not walls["valid"]
    assert walls["problem"] == "R*Tree holds 299 rows but walls has 300"
    assert inters["valid"]


def test_corrupt_rtree_fails_rtreecheck(sqlite_conn_params):
    # damage the R*Tree's own node table: its structure no longer matches its rowid map
    _sql(sqlite_conn_params, "DELETE FROM intersections_rtree_rowid WHERE rowid = (SELECT min(rowid) FROM intersections_rtree_rowid)")
    with open_engine(sqlite_conn_params) as eng:
        inters = eng.spatial_indexes()[1]
    assert not inters["valid"] and inters["problem"].startswith("rtreecheck failed")


def test_row_counts(engine):
    counts = engine.row_counts()
    assert counts["walls"] == 300
    assert set(counts) == {"walls", "intersections", "quality_metrics", "logs", "temp_geometry"}
    assert engine.row_counts(["walls", "no_such_table"]) == {"walls": 300}


def test_digests_equal_for_same_data_and_change_with_one_row(sqlite_conn_params, tmp_path):
    copy = tmp_path / "copy.db"
    shutil.copy(sqlite_conn_params.sqlite_path, copy)
    other = dataclasses.replace(sqlite_conn_params, sqlite_path=str(copy))
    with open_engine(sqlite_conn_params, read_only=True) as a:
        before = a.table_digests()
        assert before["walls"]["rows"] == 300
        assert before["walls"]["digest"] == a.table_digest("walls")
    # VACUUM rewrites every page: the digest depends on the rows, not on the file layout
    _sql(other, "VACUUM")
    with open_engine(other) as b:
        assert b.table_digests() == before
        b._execute("UPDATE walls SET height_mm = height_mm + 1 WHERE id = (SELECT min(id) FROM walls)")
        changed = b.table_digests()
        assert changed["walls"]["digest"] != before["walls"]["digest"]
        assert changed["intersections"] == before["intersections"]
        b._execute("UPDATE walls SET height_mm = height_mm - 1 WHERE id = (SELECT min(id) FROM walls)")
        assert b.table_digest("walls") == before["walls"]["digest"]


def test_canonical_rows_keep_types_apart(engine, monkeypatch):
    """The canonical form: json_array of each row in key order, newline-terminated; 1, 1.0, "1",
    null and blobs stay apart, and the keyset batches do not change the bytes hashed."""
    engine._execute("CREATE TABLE typed (id INTEGER PRIMARY KEY, v)")
    values = [1, 1.0, "1", None, b"\x00\xff", "é\n", "],[", 0.5]
    engine.conn.executemany("INSERT INTO typed (v) VALUES (?)", [(v,) for v in values])
    expected = "".join(line + "\n" for line in (
        '[1,1]', '[2,1.0]', '[3,"1"]', '[4,null]', '[5,{"blob":"00FF"}]', '[6,"é\\n"]', '[7,"],["]', '[8,0.5]'))
    digest = hashlib.sha256(expected.encode("utf-8")).hexdigest()
    assert engine.table_digests(["typed"]) == {"typed": {"rows": 8, "digest": digest}}
    # a manifest's forms are accepted (SQLite records none) and a named form is refused
    assert engine.table_digests(["typed"], forms={"typed": None}) == {"typed": {"rows": 8, "digest": digest}}
    with pytest.raises(DatabaseError, match="unknown digest form of table typed on sqlite"):
        engine.table_digests(["typed"], forms={"typed": "copy-binary"})
    for batch in (1, 3, 8):
        monkeypatch.setattr(sqlite_digests, "DIGEST_BATCH_ROWS", batch)
        assert engine.table_digest("typed") == digest
    # the same rows in a table whose key is not the rowid (ordered scan) hash the same
    engine._execute("CREATE TABLE typed_text_key (id TEXT PRIMARY KEY, v)")
    engine._execute("INSERT INTO typed_text_key SELECT id, v FROM typed")
    other = engine.table_digest("typed_text_key")
    assert other != digest  # ids are text there: "1" is not 1
    for one, two in ((1, "1"), (1, 1.0), (None, "")):
        engine._execute("UPDATE typed SET v = ? WHERE id = 1", [one])
        first = engine.table_digest("typed")
        engine._execute("UPDATE typed SET v = ? WHERE id = 1", [two])
        assert engine.table_digest("typed") != first


def test_odd_identifiers_are_quoted(engine):
    engine._execute('CREATE TABLE "odd ""name"" table" ("key id" TEXT PRIMARY KEY, v BLOB)')
    engine._execute('INSERT INTO "odd ""name"" table" VALUES (\'b\', x\'00\'), (\'a\', NULL)')
    name = 'odd "name" table'
    assert engine._quote_identifier(name) == '"odd ""name"" table"'
    assert engine.row_counts([name]) == {name: 2}
    first = engine.table_digest(name)
    engine._execute('CREATE TABLE nokey (a, b)')
    engine._execute("INSERT INTO nokey VALUES (2, 'x'), (1, 'y')")
    untyped = engine.table_digest("nokey")
    # a value of another type with the same text is a change (columns without affinity keep it)
    engine._execute("UPDATE nokey SET a = '2' WHERE a = 2")
    assert engine.table_digest("nokey") != untyped
    assert engine.table_digest(name) == first
    with pytest.raises(DatabaseError, match="no table or index named"):
        engine._quote_identifier("walls; DROP TABLE walls")
    with pytest.raises(DatabaseError, match="no table or index named"):
        engine.table_digest('walls" --')
    assert "walls" in engine.existing_tables()
