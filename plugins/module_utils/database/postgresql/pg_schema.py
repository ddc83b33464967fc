# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL: discover the BIM schema from the catalog of ``current_schema()``.

Three catalog queries (columns, indexes, primary keys) that read the catalog only: no table data,
and no lock on any BIM table or index, so discovery is cheap enough for every health probe and
never waits behind the application's DDL or a VACUUM FULL: an index's size is the planner's
``relpages`` (``pg_relation_size`` waits for a REINDEX), its key expression comes from
``pg_get_expr`` (``pg_get_indexdef`` waits for an ACCESS EXCLUSIVE lock on the table). Geometry columns are the columns of type ``geometry`` /
``geography`` (what PostGIS's ``geometry_columns`` view lists, read from ``pg_attribute`` so the
query also works where the view is missing). Spatial indexes are the GiST indexes on BIM tables:

- on one column (or expression: the first key), every valid GiST index is expected; an invalid
  one beside a valid one is an invalid duplicate (an interrupted CREATE INDEX CONCURRENTLY):
  maintenance drops it;
- on a column whose GiST indexes are all invalid, one is the index to rebuild: the declared one,
  else the oldest (lowest OID: the duplicates are later builds); the others are duplicates;
- ``*_ccnew*`` / ``*_ccold*`` are leftovers of an interrupted REINDEX CONCURRENTLY: dropped;
- an index named in ``bim_schema`` is expected whatever it is (not GiST: a problem; absent:
  missing, and maintenance creates it on the geometry column).
"""

from __future__ import annotations

import re

from ansible_collections.bim.wall_system.plugins.module_utils.database.discovered import (
    INVALID_INDEX_PROBLEM,
    DiscoveredSchema,
    Leftover,
    SpatialIndex,
    choose_time_columns,
)
from ansible_collections.bim.wall_system.plugins.module_utils.database.schema import (
    BIM_TABLES,
    SPATIAL_TABLES,
)

LEFTOVER_PATTERN = re.compile(r"_cc(new|old)\d*$")
GEOMETRY_TYPES = ("geometry", "geography")
TIME_TYPES = ("timestamp with time zone", "timestamp without time zone", "date")

_COLUMNS = (
    "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod),"
    " CASE WHEN t.typtype = 'd' THEN bt.typname ELSE t.typname END"
    " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
    " JOIN pg_type t ON t.oid = a.atttypid LEFT JOIN pg_type bt ON bt.oid = t.typbasetype"
    " WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND c.relname = ANY(%s)"
    " ORDER BY c.relname, a.attnum")
_INDEXES = (
    "SELECT t.relname, c.relname, am.amname, i.indisvalid, i.indisready, a.attname,"
    " c.relpages::bigint * current_setting('block_size')::bigint,"
    " COALESCE(a.attname, pg_get_expr(i.indexprs, i.indrelid))"
    " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid"
    " JOIN pg_namespace n ON n.oid = t.relnamespace JOIN pg_am am ON am.oid = c.relam"
    " LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = i.indkey[0] AND i.indkey[0] <> 0"
    " WHERE n.nspname = current_schema() AND t.relname = ANY(%s) ORDER BY t.relname, c.oid")
_PRIMARY_KEYS = (
    "SELECT t.relname, a.attname FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid"
    " JOIN pg_namespace n ON n.oid = t.relnamespace"
    " JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
    " WHERE n.nspname = current_schema() AND t.relname = ANY(%s) AND i.indisprimary"
    " ORDER BY t.relname, array_position(i.indkey, a.attnum)")


def _is_time_type(ctype):
    return ctype in TIME_TYPES


def _index_entry(row, declared_name):
    table, name, method, valid, ready, column, size, _key = row
    entry = SpatialIndex(table=table, name=name, column=column, declared=name == declared_name,
                         valid=bool(valid and ready and method == "gist"), bytes=int(size or 0))
    if not valid:
        entry.problem = INVALID_INDEX_PROBLEM
    elif not ready:
        entry.problem = "not ready (build in progress or interrupted)"
    elif method != "gist":
        entry.problem = "not a GiST index (%s)" % method
    return entry


def _spatial_of_table(schema, table, rows):
    """Expected spatial indexes, leftovers and other invalid indexes of one table."""
    declared = schema.setting(table, "spatial_index")
    expected = []
    by_key = {}  # first key column, or expression, of the GiST indexes: what duplicates share
    for row in rows:
        name, method, valid, ready, column, key = row[1], row[2], row[3], row[4], row[5], row[7]
        if LEFTOVER_PATTERN.search(name) and name != declared:
            schema.leftovers.append(Leftover(table, name, column, bool(valid and ready), "reindex"))
        elif method == "gist":
            by_key.setdefault(key, []).append(row)
        elif name == declared:
            expected.append(_index_entry(row, declared))
        elif not (valid and ready):
            schema.other_invalid.append({"name": name, "table": table, "column": column})
    for group in by_key.values():
        good = [r for r in group if r[3] and r[4]]
        if not good:
            named = [r for r in group if r[1] == declared]
            good = named or group[:1]  # rows come in OID order: the oldest is the original
        for row in group:
            if row in good:
                expected.append(_index_entry(row, declared))
            else:
                schema.leftovers.append(Leftover(table, row[1], row[5], False, "duplicate"))
    if declared and not any(e.name == declared for e in expected):
        column = schema.geometry_column(table)
        expected.append(SpatialIndex(table=table, name=declared, column=column, declared=True, present=False,
                                     problem="missing"))
    schema.spatial_indexes.extend(expected)


def discover(fetchall, override, tables=BIM_TABLES):
    """``DiscoveredSchema`` of the BIM tables; ``fetchall(query, params)`` runs catalog queries."""
    schema = DiscoveredSchema(override=override or {})
    names = list(tables)
    for table, column, ctype, base in fetchall(_COLUMNS, [names]):
        schema.columns.setdefault(table, []).append((column, ctype))
        if base in GEOMETRY_TYPES:
            schema.geometry_columns.setdefault(table, []).append(column)
    schema.tables = tuple(t for t in names if t in schema.columns)
    for table, column in fetchall(_PRIMARY_KEYS, [names]):
        schema.primary_keys.setdefault(table, []).append(column)
    schema.row_keys = {t: schema.key_column(t) for t in schema.tables}
    indexes = {}
    for row in fetchall(_INDEXES, [names]):
        indexes.setdefault(row[0], []).append(row)
    for table in schema.tables:
        declared_column = schema.setting(table, "geometry_column")
        if declared_column and not schema.has_column(table, declared_column):
            schema.problems.append("bim_schema.%s.geometry_column: column %s does not exist in %s"
                                   % (table, declared_column, table))
        _spatial_of_table(schema, table, indexes.get(table, []))
        if table in SPATIAL_TABLES and not schema.indexes_of(table):
            schema.unindexed.append(table)
    # invalid plain indexes matter beside spatial ones (today's report); elsewhere they are
    # outside what this collection checks
    spatial = set(SPATIAL_TABLES) | {i.table for i in schema.spatial_indexes}
    schema.other_invalid = [i for i in schema.other_invalid if i["table"] in spatial]
    for table in ("logs", "temp_geometry"):
        if table in schema.tables:
            schema.time_columns[table] = choose_time_columns(schema, table, _is_time_type)
    return schema
