# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Schema discovery (engine.schema()) on both test schema variants, and the bim_schema override,
against real PostgreSQL+PostGIS and SQLite (fixtures in tests/unit/conftest.py)."""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import ConnectionParams
from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine
from ansible_collections.bim.wall_system.plugins.module_utils.database.schema import (
    SchemaOverrideError,
    rtree_table_for,
)
from ansible_collections.bim.wall_system.plugins.module_utils.health.base import CheckContext
from ansible_collections.bim.wall_system.plugins.module_utils.health.runner import build_report, run_checks, thresholds_for

psycopg = pytest.importorskip("psycopg")


def _pg(params, *statements):
    with psycopg.connect(host=params.db_host, port=params.db_port, user=params.db_user,
                         dbname=params.db_name, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


def _lite(params, *statements):
    with sqlite3.connect(params.sqlite_path) as conn:
        for statement in statements:
            conn.execute(statement)


def _layout(schema):
    return [(i.table, i.name, i.column, i.declared, i.present, i.valid) for i in schema.spatial_indexes]


def _columns(schema, table):
    c = schema.time_columns[table]
    return (c.time, c.level, c.category, c.message, c.key)


@pytest.mark.parametrize("value, message", [
    ("walls", "must be a mapping of BIM table"),
    ({"projects": {"rtree": "x"}}, "'projects' is not a BIM table"),
    ({"walls": {"time_column": "t"}}, "walls: unknown setting 'time_column'; walls takes geometry_column"),
    ({"temp_geometry": {"level_column": "l"}}, "unknown setting 'level_column'"),
    ({"walls": ["geom"]}, "walls must be a mapping of setting -> name"),
    ({"walls": {"geometry_column": ""}}, "walls.geometry_column must be a name"),
    ({"logs": {"time_column": 5}}, "logs.time_column must be a name"),
    ({"logs": {"time_column": " ts"}}, "logs.time_column must be a name"),
])
def test_a_bad_override_is_refused_with_the_entry_named(value, message):
    with pytest.raises(SchemaOverrideError, match=message):
        ConnectionParams(engine="sqlite", sqlite_path="/x.db", schema=value)


def test_a_good_override_is_kept_and_empty_ones_drop_out():
    params = ConnectionParams.from_params({"engine": "postgresql", "schema": {
        "walls": {"geometry_column": "outline", "spatial_index": "walls_outline_gist", "rtree": "rtree_walls"},
        "logs": {"time_column": "logged_at", "level_column": "severity"}, "intersections": None, "temp_geometry": {}}})
    assert params.schema == {"walls": {"geometry_column": "outline", "spatial_index": "walls_outline_gist",
                                       "rtree": "rtree_walls"},
                             "logs": {"time_column": "logged_at", "level_column": "severity"}}
    assert ConnectionParams(engine="sqlite", schema={}).schema is None
    assert hash(params) == hash(dataclasses.replace(params, schema=None))  # still usable as a key


@pytest.mark.parametrize("name, table", [
    ("walls_rtree", "walls"), ("rtree_walls", "walls"), ("wall_rtree", "walls"), ("idx_walls_geom", "walls"),
    ("intersections_rtree", "intersections"), ("intersection_bbox", "intersections"),
    ("rtree_quality_metric", "quality_metrics"), ("temp_geometry_rtree", "temp_geometry"),
    ("geometry_rtree", None), ("walls_intersections_rtree", None), ("wallsrtree", None), ("bbox", None),
])
def test_rtree_names_map_to_their_table(name, table):
    assert rtree_table_for(name) == table


def test_postgresql_discovers_both_variants(pg_conn_params, pg_site_params):
    with open_engine(pg_conn_params) as eng:
        seed = eng.schema()
    with open_engine(pg_site_params) as eng:
        site = eng.schema()
        assert eng.schema() is site  # read once per connection
        latency = eng.query_latency()
    assert _layout(seed) == [("walls", "idx_walls_geometry", "geom", False, True, True),
                             ("intersections", "idx_intersections_point", "point", False, True, True)]
    assert _layout(site) == [("walls", "walls_outline_gist", "outline", False, True, True),
                             ("intersections", "idx_intersections_point", "location", False, True, True)]
    assert site.geometry_column("walls") == "outline" and site.geometry_columns["temp_geometry"] == ["geom"]
    assert site.primary_keys["walls"] == ["id"] and site.row_keys["logs"] == "id"
    assert _columns(seed, "logs") == ("created_at", "level", "category", "message", "id")
    assert _columns(site, "logs") == ("logged_at", "severity", "category", "message", "id")
    assert site.time_columns["temp_geometry"].time == "created_at"
    assert "projects" not in site.tables
    assert (site.unindexed, site.leftovers, site.problems) == ([], [], [])
    assert 1 <= latency["spatial_window_rows"] and "spatial_window_skipped" not in latency


def test_sqlite_discovers_both_variants(sqlite_conn_params, sqlite_site_params):
    with open_engine(sqlite_conn_params) as eng:
        seed = eng.schema()
    with open_engine(sqlite_site_params) as eng:
        site = eng.schema()
        latency = eng.query_latency()
        checked = eng.spatial_indexes()
    assert _layout(seed) == [("walls", "walls_rtree", None, False, True, True),
                             ("intersections", "intersections_rtree", None, False, True, True)]
    assert seed.spatial_indexes[0].box == ("min_x", "max_x", "min_y", "max_y")
    assert _layout(site) == [("walls", "rtree_walls", None, False, True, True)]
    walls = site.spatial_indexes[0]
    assert (walls.id_column, walls.box) == ("wall_id", ("x_lo", "x_hi", "y_lo", "y_hi"))
    assert site.unindexed == ["intersections"]  # information: nobody declared one
    assert [(i["name"], i["valid"], i["problem"]) for i in checked] == [("rtree_walls", True, None)]
    assert _columns(site, "logs") == ("logged_at", "severity", "category", "message", "rowid")
    assert 1 <= latency["spatial_window_rows"]


def test_sqlite_override_maps_an_rtree_discovery_cannot(sqlite_site_params):
    _lite(sqlite_site_params, "ALTER TABLE rtree_walls RENAME TO bbox_index")
    with open_engine(sqlite_site_params) as eng:
        assert eng.schema().unmapped == ["bbox_index"] and eng.schema().unindexed == ["walls", "intersections"]
        assert eng.query_latency()["spatial_window_skipped"] == "walls has no valid R*Tree"
    report = build_report(run_checks(CheckContext(conn=sqlite_site_params, thresholds=thresholds_for(), timeout=30),
                                     ["database"]))
    assert report["overall_status"] == "healthy" and report["checks"][0]["metrics"]["rtrees_of_no_table"] == ["bbox_index"]
    assert any("bbox_index belong to no BIM table" in r and "bim_schema.walls" in r for r in report["recommendations"])
    named = dataclasses.replace(sqlite_site_params, schema={"walls": {"rtree": "bbox_index"},
                                                            "intersections": {"rtree": "intersections_rtree"}})
    with open_engine(named) as eng:
        assert _layout(eng.schema()) == [("walls", "bbox_index", None, True, True, True),
                                         ("intersections", "intersections_rtree", None, True, False, False)]
        assert eng.query_latency()["spatial_window_rows"] >= 1
        assert [(i["name"], i["valid"], i["problem"]) for i in eng.spatial_indexes()] == [
            ("bbox_index", True, None), ("intersections_rtree", False, "missing")]


def test_postgresql_override_and_its_contradictions(pg_site_params):
    named = dataclasses.replace(pg_site_params, schema={
        "walls": {"geometry_column": "outline_2d", "spatial_index": "walls_outline_gist"},
        "logs": {"level_column": "level"}})
    with open_engine(named) as eng:
        schema = eng.schema()
    assert schema.problems == ["bim_schema.walls.geometry_column: column outline_2d does not exist in walls",
                               "bim_schema.logs.level_column: column level does not exist in logs"]
    assert schema.spatial_indexes[0].declared and schema.geometry_column("walls") is None
    assert schema.time_columns["logs"].analysis_problem() == (
        "bim_schema.logs.level_column names column level, which logs does not have")


def test_postgresql_invalid_index_on_a_renamed_column_is_the_one_to_rebuild(pg_site_params):
    """An invalid GiST with no valid sibling on its column is the expected index (rebuilt by
    maintenance); an invalid one beside a valid one is a duplicate (dropped)."""
    _pg(pg_site_params,
        "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'walls_outline_gist'::regclass",
        "CREATE INDEX intersections_location_dup ON intersections USING gist (location)",
        "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'intersections_location_dup'::regclass")
    with open_engine(pg_site_params) as eng:
        schema = eng.schema()
        found = {i["name"]: i for i in eng.spatial_indexes()}
        latency = eng.query_latency()
    assert _layout(schema)[0] == ("walls", "walls_outline_gist", "outline", False, True, False)
    assert found["walls_outline_gist"]["problem"] == "invalid (interrupted concurrent build?)"
    assert [(x.name, x.kind) for x in schema.leftovers] == [("intersections_location_dup", "duplicate")]
    assert not found["intersections_location_dup"]["expected"]
    # the probe never scans: no valid index on walls.outline, so no window query
    assert latency["spatial_window_skipped"] == "walls has no valid spatial index on outline"


def test_postgresql_gist_on_an_expression_is_not_a_duplicate_of_another(pg_site_params):
    """Two GiST indexes with different keys on one table: an invalid one is the one to rebuild,
    never a duplicate to drop."""
    _pg(pg_site_params,
        "CREATE INDEX walls_outline_4326 ON walls USING gist (ST_Transform(outline, 4326))",
        "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'walls_outline_4326'::regclass")
    with open_engine(pg_site_params) as eng:
        schema = eng.schema()
    assert [(i.name, i.column, i.valid) for i in schema.indexes_of("walls")] == [
        ("walls_outline_gist", "outline", True), ("walls_outline_4326", None, False)]
    assert schema.leftovers == [] and schema.geometry_column("walls") == "outline"
