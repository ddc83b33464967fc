# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgresCoreMixin against a real PostgreSQL + PostGIS server (fixtures in tests/unit/conftest.py)."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql import pg_core
from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import ConnectionParams
from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError, MissingLibraryError

psycopg = pytest.importorskip("psycopg")

FIXED_NOW = "2026-11-01T12:00:00+00:00"


def _sql(params, statement):
    """Run one statement as the (superuser) fixture user directly, outside the engine under test."""
    with psycopg.connect(host=params.db_host, port=params.db_port, user=params.db_user,
                         dbname=params.db_name, autocommit=True) as conn:
        conn.execute(statement)


@pytest.fixture
def engine(pg_conn_params):
    with open_engine(pg_conn_params) as eng:
        yield eng


def test_connect_returns_seconds_and_close_is_idempotent(pg_conn_params):
    eng = open_engine(pg_conn_params)
    seconds = eng.connect()
    assert isinstance(seconds, float) and seconds >= 0
    eng.close()
    eng.close()
    with pytest.raises(DatabaseError, match="not connected"):
        eng.existing_tables()


def test_wrong_password_is_clear_and_never_echoed(pg_password_server):
    host, port, user, password = pg_password_server
    wrong = "Wrong-%s-pw" % uuid.uuid4().hex
    params = ConnectionParams(engine="postgresql", db_host=host, db_port=port, db_user=user,
                              db_password=wrong, db_name="postgres", connect_timeout=5)
    with pytest.raises(DatabaseError) as info:
        open_engine(params).connect()
    text = str(info.value)
    assert wrong not in text and password not in text
    assert "password authentication failed" in text
    assert "127.0.0.1:%d/postgres as postgres" % port in text
    # and the right password works on the same server
    good = dataclasses.replace(params, db_password=password)
    with open_engine(good) as eng:
        assert eng.existing_tables() == []


def test_missing_password_is_clear(pg_password_server):
    host, port, user, _password = pg_password_server
    params = ConnectionParams(engine="postgresql", db_host=host, db_port=port, db_user=user, db_name="postgres")
    with pytest.raises(DatabaseError, match="a password is required"):
        open_engine(params).connect()


def test_missing_database_is_an_error_and_never_created(pg_admin, pg_server):
    name = "bimtest_missing_%s" % uuid.uuid4().hex[:8]
    params = dataclasses.replace(pg_server, db_name=name, db_password="Secret-Should-Not-Show")
    with pytest.raises(DatabaseError) as info:
        open_engine(params).connect()
    assert "database does not exist" in str(info.value)
    assert name in str(info.value) and "Secret-Should-Not-Show" not in str(info.value)
    assert pg_admin.execute("SELECT count(*) FROM pg_database WHERE datname = %s", [name]).fetchone()[0] == 0


def test_unix_socket_connection(pg_conn_params):
    params = dataclasses.replace(pg_conn_params, db_socket_dir="/var/run/postgresql")
    with open_engine(params) as eng:
        assert "walls" in eng.existing_tables()


def test_refused_port_is_clear():
    params = ConnectionParams(engine="postgresql", db_host="127.0.0.1", db_port=1, db_name="x", connect_timeout=2)
    with pytest.raises(DatabaseError, match="cannot connect to postgresql 127.0.0.1:1/x as postgres: connection refused"):
        open_engine(params).connect()


def test_missing_psycopg_raises_missing_library(pg_conn_params, monkeypatch):
    monkeypatch.setattr(pg_core, "HAS_PSYCOPG", False)
    with pytest.raises(MissingLibraryError) as info:
        open_engine(pg_conn_params).connect()
    assert info.value.library == "psycopg"


def test_a_missing_client_program_names_the_package_of_the_server_s_version(pg_conn_params):
    with open_engine(pg_conn_params) as eng:
        major = eng._server_major()
        with pytest.raises(DatabaseError) as err:
            eng.pg_tool("pg_dump_of_no_release")
    text = str(err.value)
    assert text.startswith("the PostgreSQL client program pg_dump_of_no_release was not found on this host"), text
    assert "install the client programs of PostgreSQL %d (Debian/Ubuntu: package postgresql-client-%d" % (
        major, major) in text


def test_probes_on_fresh_data(engine):
    assert engine.existing_tables() == ["walls", "intersections", "quality_metrics", "logs", "temp_geometry"]
    latency = engine.query_latency()
    assert latency["key_lookup_ms"] >= 0 and latency["spatial_window_ms"] >= 0
    assert 1 <= latency["spatial_window_rows"] <= pg_core.WINDOW_LIMIT
    usage = engine.connection_usage()
    assert usage["active"] >= 1 and usage["max_connections"] > 0
    assert usage["total"] >= usage["active"] + usage["idle"]
    assert engine.data_directory().startswith("/")
    indexes = engine.spatial_indexes()
    assert [(i["name"], i["present"], i["valid"], i["problem"]) for i in indexes] == [
        ("idx_walls_geometry", True, True, None), ("idx_intersections_point", True, True, None)]


def test_probe_queries_use_indexes(engine):
    """The window probe must be answered by the GiST index, the key probe by the primary key."""
    engine._execute("SET enable_seqscan = off")
    plan = "\n".join(r[0] for r in engine._fetchall(
        "EXPLAIN SELECT id FROM walls WHERE geom && ST_MakeEnvelope(0, 0, 10, 10, 3857) LIMIT 100"))
    assert "idx_walls_geometry" in plan
    engine._execute("RESET enable_seqscan")
    plan = "\n".join(r[0] for r in engine._fetchall(
        "EXPLAIN SELECT id FROM walls WHERE id >= 5 ORDER BY id LIMIT 1"))
    assert "walls_pkey" in plan


def test_query_latency_on_empty_walls(pg_conn_params):
    _sql(pg_conn_params, "TRUNCATE walls CASCADE")
    with open_engine(pg_conn_params) as eng:
        latency = eng.query_latency()
    assert latency["spatial_window_rows"] == 0


def test_index_marked_invalid_is_reported(pg_conn_params):
    _sql(pg_conn_params, "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'idx_walls_geometry'::regclass")
    with open_engine(pg_conn_params) as eng:
        walls = eng.spatial_indexes()[0]
    assert walls["name"] == "idx_walls_geometry" and walls["present"] and not walls["valid"]
    assert walls["problem"] == "invalid (interrupted concurrent build?)"


def test_failed_concurrent_build_leaves_an_invalid_index_that_is_reported(pg_conn_params):
    with open_engine(pg_conn_params) as eng:
        some_id = eng._fetchone("SELECT min(id) + 7 FROM walls")[0]
        with pytest.raises(DatabaseError, match="division by zero"):
            # the predicate divides by zero on one row: the build fails half-way, as a crash would
            eng._execute("CREATE INDEX CONCURRENTLY idx_walls_geom_rebuild ON walls USING gist (geom)"
                         " WHERE 1 / (id - %d) > -1000000" % some_id)
        found = {i["name"]: i for i in eng.spatial_indexes()}
    assert found["idx_walls_geometry"]["valid"]
    extra = found["idx_walls_geom_rebuild"]
    assert extra["present"] and not extra["valid"] and not extra["expected"]
    assert extra["problem"] == "invalid (interrupted concurrent build?)"


def test_reindex_leftover_and_missing_index(pg_conn_params):
    """A dropped index nobody declared is information (walls is unindexed); declared in
    bim_schema it is an expected index that is missing."""
    _sql(pg_conn_params, "CREATE INDEX idx_intersections_point_ccnew ON intersections USING gist (point)")
    _sql(pg_conn_params, "UPDATE pg_index SET indisvalid = false"
                         " WHERE indexrelid = 'idx_intersections_point_ccnew'::regclass")
    _sql(pg_conn_params, "DROP INDEX idx_walls_geometry")
    with open_engine(pg_conn_params) as eng:
        found = {i["name"]: i for i in eng.spatial_indexes()}
        assert eng.schema().unindexed == ["walls"]
    assert "idx_walls_geometry" not in found
    assert found["idx_intersections_point"]["valid"]
    assert "REINDEX CONCURRENTLY" in found["idx_intersections_point_ccnew"]["problem"]
    declared = dataclasses.replace(pg_conn_params, schema={"walls": {"spatial_index": "idx_walls_geometry"}})
    with open_engine(declared) as eng:
        walls = {i["name"]: i for i in eng.spatial_indexes()}["idx_walls_geometry"]
        assert eng.schema().unindexed == []
    assert walls["declared"] and not walls["present"] and walls["problem"] == "missing"
    assert walls["column"] == "geom"  # the table's geometry column: where maintenance creates it


def test_row_counts_match_the_generator(engine):
    counts = engine.row_counts()
    assert counts["walls"] == 300
    assert set(counts) == {"walls", "intersections", "quality_metrics", "logs", "temp_geometry"}
    assert engine.row_counts(["walls", "no_such_table"]) == {"walls": 300}


def _populated(pg_admin, pg_server, generator, name):
    pg_admin.execute('CREATE DATABASE "%s"' % name)
    params = dataclasses.replace(pg_server, db_name=name)
    generator.populate_postgresql("host=%s port=%d user=%s dbname=%s" % (
        params.db_host, params.db_port, params.db_user, name), 120, seed=3, now=FIXED_NOW)
    return params


def test_digests_equal_for_same_data_and_change_with_one_row(pg_admin, pg_server, bim_generator):
    names = ["bimtest_dg_%s_%d" % (uuid.uuid4().hex[:8], n) for n in range(2)]
    try:
        first, second = [_populated(pg_admin, pg_server, bim_generator, n) for n in names]
        with open_engine(first, read_only=True) as a, open_engine(second) as b:
            before = a.table_digests()
            assert before == b.table_digests()
            assert before["walls"]["rows"] == 120
            assert before["walls"]["digest"] == a.table_digest("walls")
            # one changed coordinate of one wall changes the digest (geometry is part of the row text)
            b._execute("UPDATE walls SET geom = ST_Translate(geom, 0.001, 0) WHERE id = (SELECT min(id) FROM walls)")
            assert b.table_digest("walls") != before["walls"]["digest"]
            # reverting moves the tuple physically but primary-key order gives the old digest back
            b._execute("UPDATE walls SET geom = ST_Translate(geom, -0.001, 0) WHERE id = (SELECT min(id) FROM walls)")
            assert b.table_digest("walls") == before["walls"]["digest"]
            # the session time zone does not leak into the digest
            b._execute("SET TimeZone = 'Asia/Kolkata'")
            assert b.table_digests() == before
    finally:
        for name in names:
            pg_admin.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)


def test_odd_identifiers_are_quoted(engine):
    odd = 'wall "odd" name; drop'
    engine._execute(psycopg.sql.SQL("CREATE TABLE {} ({} bigint PRIMARY KEY, v text)").format(
        psycopg.sql.Identifier(odd), psycopg.sql.Identifier("key id")))
    engine._execute(psycopg.sql.SQL("INSERT INTO {} VALUES (2, 'b'), (1, 'a')").format(psycopg.sql.Identifier(odd)))
    assert engine.row_counts([odd]) == {odd: 2}
    digest = engine.table_digest(odd)
    assert len(digest) == 64
    assert "walls" in engine.existing_tables()
    with pytest.raises(DatabaseError, match="does not exist"):
        engine.table_digest("walls; DROP TABLE walls")


def test_read_only_engine_cannot_write(pg_conn_params):
    with open_engine(pg_conn_params, read_only=True) as eng:
        with pytest.raises(DatabaseError, match="read-only"):
            eng._execute("DELETE FROM logs")
        assert eng.row_counts(["logs"])["logs"] > 0


def test_probe_blocked_by_a_lock_is_cancelled_by_statement_timeout(pg_conn_params, monkeypatch):
    monkeypatch.setattr(pg_core, "PROBE_TIMEOUT_MS", 300)
    with psycopg.connect(host=pg_conn_params.db_host, port=pg_conn_params.db_port, user=pg_conn_params.db_user,
                         dbname=pg_conn_params.db_name) as locker:
        locker.execute("LOCK TABLE walls IN ACCESS EXCLUSIVE MODE")  # held until the block ends
        with open_engine(pg_conn_params) as eng:
            with pytest.raises(DatabaseError, match="statement_timeout"):
                eng.query_latency()
            # the timeout was local to the probe transaction
            assert eng._fetchone("SHOW statement_timeout")[0] == "0"
        locker.rollback()


def test_unprivileged_role_gets_probes_without_data_directory(pg_conn_params, pg_admin):
    role = "bimtest_role_%s" % uuid.uuid4().hex[:8]
    pg_admin.execute('CREATE ROLE "%s" LOGIN' % role)
    try:
        _sql(pg_conn_params, 'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "%s"' % role)
        with open_engine(dataclasses.replace(pg_conn_params, db_user=role), read_only=True) as eng:
            assert eng.data_directory() is None
            assert eng.connection_usage()["max_connections"] > 0
            assert all(i["valid"] for i in eng.spatial_indexes())
            assert eng.query_latency()["spatial_window_rows"] >= 1
            assert eng.table_digests()["walls"]["rows"] == 300
    finally:
        pg_admin.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % pg_conn_params.db_name)
        pg_admin.execute('DROP ROLE IF EXISTS "%s"' % role)


@pytest.mark.parametrize("form, options", [("copy-text", ""), ("copy-binary", " (FORMAT binary)")])
def test_digest_is_sha256_of_the_documented_copy(engine, form, options):
    """The psql readers hash exactly what the canonical COPY sends in either form (read here
    through psycopg with the digest settings), and report the table's rows."""
    import hashlib
    from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_digests import DIGEST_SETTINGS
    expected = hashlib.sha256()
    with engine.conn.transaction():
        for name, value in DIGEST_SETTINGS:
            engine._execute("SELECT set_config(%s, %s, true)", [name, value])
        with engine.conn.cursor() as cur:
            with cur.copy("COPY (SELECT t.* FROM walls AS t ORDER BY t.id) TO STDOUT" + options) as copy:
                for block in copy:
                    expected.update(block)
    rows = engine.row_counts(["walls"])["walls"]
    assert engine.table_digests(("walls",), forms={"walls": form}) == {
        "walls": {"rows": rows, "digest": expected.hexdigest(), "digest_form": form}}


def test_a_digest_recorded_without_form_is_text_and_an_unknown_form_is_refused(engine):
    text = engine.table_digests(("walls",), forms={"walls": "copy-text"})
    # manifests written before binary digests record no form
    assert engine.table_digests(("walls",), forms={}) == text
    assert engine.table_digests(("walls",), forms={"walls": None}) == text
    # the BIM tables are all digested in binary when nothing is asked for
    assert {t: d["digest_form"] for t, d in engine.table_digests().items()} == dict.fromkeys(
        ("walls", "intersections", "quality_metrics", "logs", "temp_geometry"), "copy-binary")
    with pytest.raises(DatabaseError, match=r"unknown digest form of table walls \(copy-xml\)"):
        engine.table_digests(("walls",), forms={"walls": "copy-xml"})


TYPED_TABLES = ("plain", "enum_array", "enum_composite", "oid_alias")


def _typed_database(pg_admin, pg_server, name):
    """A database whose tables cover the binary-safety rule; the types created here get new OIDs
    in every database (the OID counter is shared by the cluster)."""
    pg_admin.execute('CREATE DATABASE "%s"' % name)
    params = dataclasses.replace(pg_server, db_name=name)
    for statement in (
            "CREATE EXTENSION postgis",
            "CREATE TYPE kind AS ENUM ('stud', 'panel')",
            "CREATE DOMAIN mm AS double precision CHECK (VALUE >= 0)",
            "CREATE TYPE part AS (n int, k kind)",
            "CREATE TABLE plain (id int PRIMARY KEY, k kind, t mm, g geometry(Point, 3857), tags text[],"
            " span int4range, at timestamptz, price numeric(8, 2))",
            "CREATE TABLE enum_array (id int PRIMARY KEY, ks kind[])",
            "CREATE TABLE enum_composite (id int PRIMARY KEY, p part)",
            "CREATE TABLE oid_alias (id int PRIMARY KEY, r regclass)",
            "INSERT INTO plain VALUES (1, 'stud', 2.5, ST_SetSRID(ST_MakePoint(1, 2), 3857), '{a,b}', '[1,5)',"
            " '2026-11-01T12:00:00Z', 12.5), (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
            "INSERT INTO enum_array VALUES (1, '{stud,panel}')",
            "INSERT INTO enum_composite VALUES (1, ROW(1, 'panel'))",
            "INSERT INTO oid_alias VALUES (1, 'plain'::regclass)"):
        _sql(params, statement)
    return params


def test_binary_digests_only_for_tables_whose_binary_copy_carries_no_oid(pg_admin, pg_server):
    names = ["bimtest_forms_%s_%d" % (uuid.uuid4().hex[:8], n) for n in range(2)]
    try:
        first, second = [_typed_database(pg_admin, pg_server, n) for n in names]
        with open_engine(first) as a, open_engine(second) as b:
            digests = a.table_digests(TYPED_TABLES)
            assert {t: d["digest_form"] for t, d in digests.items()} == {
                "plain": "copy-binary", "enum_array": "copy-text", "enum_composite": "copy-text", "oid_alias": "copy-text"}
            assert b.table_digests(TYPED_TABLES) == digests
            # Why those three stay on text: forced to binary, the same rows digest differently in
            # the two databases (enum OIDs inside the array and the record, a table's OID).
            for table in ("enum_array", "enum_composite", "oid_alias"):
                forced = {table: "copy-binary"}
                assert a.table_digests((table,), forms=forced) != b.table_digests((table,), forms=forced)
    finally:
        for name in names:
            pg_admin.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)


def test_digest_failure_names_the_database(engine, monkeypatch):
    from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql import pg_digests
    monkeypatch.setattr(pg_digests, "DIGEST_SETTINGS", (("no_such_setting_x", "1"),))
    with pytest.raises(DatabaseError, match="digest on .* failed: .*no_such_setting_x"):
        engine.table_digests(("walls",))
