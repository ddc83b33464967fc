# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SQLite: discover the BIM schema from ``sqlite_master`` and ``pragma_table_info``.

Spatial indexes are R*Tree virtual tables (``USING rtree`` or ``rtree_i32``; SpatiaLite's
``idx_<table>_<column>`` indexes are R*Trees too). Each belongs to the BIM table that
``bim_schema`` names it for, else to the table its name names (``schema.rtree_table_for``:
walls_rtree, rtree_walls, wall_rtree); an R*Tree of no BIM table is listed, never checked. Its
layout comes from the R*Tree itself: the first column is the id (the indexed row's rowid), then
min/max pairs per dimension, then auxiliary ``+columns``. Reads the schema pages only.
"""

from __future__ import annotations

import re

from ansible_collections.bim.wall_system.plugins.module_utils.database.discovered import (
    DiscoveredSchema,
    SpatialIndex,
    choose_time_columns,
)
from ansible_collections.bim.wall_system.plugins.module_utils.database.schema import (
    BIM_TABLES,
    SPATIAL_TABLES,
    rtree_table_for,
)

_RTREE = re.compile(r"^\s*CREATE\s+VIRTUAL\s+TABLE\s.*?\bUSING\s+(rtree|rtree_i32)\s*\((.*)\)\s*$",
                    re.IGNORECASE | re.DOTALL)


def _is_time_type(ctype):
    upper = ctype.upper()
    return "TIME" in upper or "DATE" in upper


def rtree_arguments(create_sql):
    """The column arguments of an R*Tree's CREATE VIRTUAL TABLE, or None for another table."""
    match = _RTREE.match(create_sql or "")
    if not match:
        return None
    return [a.strip() for a in match.group(2).split(",") if a.strip()]


def _layout(entry, args, columns):
    """Fill the id and box columns of an R*Tree entry from its own columns."""
    aux = sum(1 for a in args if a.startswith("+"))
    names = [name for name, _type, _pk in columns]
    coords = names[1:len(names) - aux] if aux else names[1:]
    entry.id_column = names[0] if names else None
    if len(coords) >= 4:
        entry.box = tuple(coords[:4])
        entry.valid = True
    else:
        entry.problem = "R*Tree has %d coordinate column(s); a 2-D index needs 4" % len(coords)


def discover(fetchall, override, tables=BIM_TABLES):
    """``DiscoveredSchema`` of the BIM tables; ``fetchall(query, params)`` runs the queries."""
    schema = DiscoveredSchema(override=override or {})
    master = dict(fetchall("SELECT name, sql FROM sqlite_master WHERE type = 'table'", []))
    rtrees = {name: args for name, args in ((n, rtree_arguments(s)) for n, s in master.items()) if args is not None}
    for table in tables:
        if table not in master:
            continue
        columns = fetchall("SELECT name, type, pk FROM pragma_table_info(?) ORDER BY cid", [table])
        schema.columns[table] = [(name, ctype or "") for name, ctype, _pk in columns]
        keys = [name for name, _t, pk in sorted(columns, key=lambda c: c[2]) if pk > 0]
        schema.primary_keys[table] = keys
        schema.row_keys[table] = _row_key(keys, master[table])
    schema.tables = tuple(t for t in tables if t in schema.columns)

    owners = {}
    for table in schema.tables:
        declared = schema.setting(table, "rtree")
        if declared:
            owners[declared] = table
            if declared not in master:
                schema.spatial_indexes.append(SpatialIndex(table=table, name=declared, declared=True, present=False,
                                                           problem="missing"))
            elif declared not in rtrees:
                schema.spatial_indexes.append(SpatialIndex(table=table, name=declared, declared=True,
                                                           problem="not an R*Tree virtual table"))
    for name in sorted(rtrees):
        table = owners.get(name) or rtree_table_for(name, schema.tables)
        if table is None:
            schema.unmapped.append(name)
            continue
        entry = SpatialIndex(table=table, name=name, declared=name in owners)
        _layout(entry, rtrees[name], fetchall("SELECT name, type, pk FROM pragma_table_info(?) ORDER BY cid", [name]))
        schema.spatial_indexes.append(entry)
    schema.spatial_indexes.sort(key=lambda i: (schema.tables.index(i.table), not i.declared, i.name))
    for table in schema.tables:
        if table in SPATIAL_TABLES and not schema.indexes_of(table):
            schema.unindexed.append(table)
    for table in ("logs", "temp_geometry"):
        if table in schema.tables:
            schema.time_columns[table] = choose_time_columns(schema, table, _is_time_type)
    return schema


def _row_key(keys, create_sql):
    """The rowid of a rowid table (an INTEGER PRIMARY KEY is its alias), else the single key
    column of a WITHOUT ROWID table, else None."""
    if "WITHOUT ROWID" not in re.sub(r"\s+", " ", (create_sql or "").upper()):
        return "rowid"
    return keys[0] if len(keys) == 1 else None
