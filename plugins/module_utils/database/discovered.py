# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The schema of one BIM database as discovered from its catalog (``DiscoveredSchema``).

Built per connection by ``pg_schema.discover()`` / ``sqlite_schema.discover()`` and cached on
the engine (``engine.schema()``). Every caller that needs a name beyond the BIM table names
(geometry column, spatial index, R*Tree layout, time / level / category / message column,
primary key) asks this object, so one rule decides for health, maintenance and restore:

- a spatial index is *expected* when the operator declared it (``bim_schema``) or it exists;
  an expected index that is missing or invalid is an error;
- a spatial table (``schema.SPATIAL_TABLES``) with no expected spatial index is information
  (``unindexed``): reported, never unhealthy;
- ``problems``: the override names something the database does not have (an error: the
  operator's map and the database disagree).
"""

from __future__ import annotations

import dataclasses

from ansible_collections.bim.wall_system.plugins.module_utils.database.schema import COLUMN_CANDIDATES


@dataclasses.dataclass
class SpatialIndex:
    """An expected spatial index: a GiST index (PostgreSQL) or an R*Tree table (SQLite)."""

    table: str
    name: str
    column: str | None = None          # PostgreSQL: first indexed column (None: an expression)
    declared: bool = False             # named by bim_schema
    present: bool = True
    valid: bool = False
    problem: str | None = None
    bytes: int = 0                     # PostgreSQL: size of the index (relpages: the catalog's estimate)
    id_column: str | None = None       # SQLite: the R*Tree's id column
    box: tuple = ()                    # SQLite: (min_x, max_x, min_y, max_y) column names

    def as_dict(self):
        """The entry ``engine.spatial_indexes()`` returns."""
        return {"name": self.name, "table": self.table, "column": self.column, "expected": True,
                "declared": self.declared, "present": self.present, "valid": self.valid,
                "problem": self.problem}


INVALID_INDEX_PROBLEM = "invalid (interrupted concurrent build?)"
# Leftover kinds: what the health check says about them, and why maintenance drops them.
LEFTOVER_TEXTS = {
    "reindex": ("leftover of an interrupted REINDEX CONCURRENTLY (drop it)",
                "leftover of an interrupted REINDEX CONCURRENTLY"),
    "duplicate": (INVALID_INDEX_PROBLEM, "invalid duplicate from an interrupted CREATE INDEX CONCURRENTLY"),
}


@dataclasses.dataclass
class Leftover:
    """An index maintenance drops: a ``*_ccnew*``/``*_ccold*`` leftover of an interrupted
    REINDEX CONCURRENTLY (``kind`` reindex), or an invalid duplicate beside the index of the
    same column (``kind`` duplicate)."""

    table: str
    name: str
    column: str | None
    valid: bool
    kind: str

    @property
    def reason(self):
        return LEFTOVER_TEXTS[self.kind][1]

    def as_dict(self):
        return {"name": self.name, "table": self.table, "column": self.column, "expected": False,
                "declared": False, "present": True, "valid": False, "problem": LEFTOVER_TEXTS[self.kind][0]}


@dataclasses.dataclass
class TimeColumns:
    """The columns of a table with a time column (logs, temp_geometry) that the code reads."""

    table: str
    time: str | None = None
    level: str | None = None
    category: str | None = None        # logs without one: every entry counts as category "all"
    message: str | None = None         # logs without one: no most-repeated messages
    key: str | None = None             # the column a cleanup's batches walk in order
    # bim_schema settings naming a column the table does not have: {setting: name}
    absent: dict = dataclasses.field(default_factory=dict)

    def _unusable(self, setting, found_by):
        if setting in self.absent:
            return "bim_schema.%s.%s names column %s, which %s does not have" % (
                self.table, setting, self.absent[setting], self.table)
        return "%s has no usable %s (%s); set bim_schema.%s.%s" % (
            self.table, setting.replace("_", " "), found_by, self.table, setting)

    def _no_time(self):
        return self._unusable("time_column", "none of %s, ..., and no timestamp-typed column"
                              % ", ".join(COLUMN_CANDIDATES["time_column"][:5]))

    def analysis_problem(self):
        """Why the logs check cannot read this table, or None."""
        if self.time is None:
            return self._no_time()
        if self.level is None:
            return self._unusable("level_column", "none of %s" % ", ".join(COLUMN_CANDIDATES["level_column"]))
        return None

    def cleanup_problem(self):
        """Why old rows of this table cannot be deleted in batches, or None."""
        if self.time is None:
            return self._no_time()
        if self.key is None:
            return "%s has no single-column primary key to delete old rows in batches by" % self.table
        return None


@dataclasses.dataclass
class DiscoveredSchema:
    override: dict
    tables: tuple = ()
    columns: dict = dataclasses.field(default_factory=dict)          # table -> [(name, type)]
    primary_keys: dict = dataclasses.field(default_factory=dict)     # table -> [column]
    # table -> the column that addresses its rows in key order (probes, cleanup batches):
    # PostgreSQL the single-column primary key; SQLite the rowid (or a WITHOUT ROWID table's key)
    row_keys: dict = dataclasses.field(default_factory=dict)
    geometry_columns: dict = dataclasses.field(default_factory=dict)  # table -> [column]
    spatial_indexes: list = dataclasses.field(default_factory=list)  # [SpatialIndex]
    leftovers: list = dataclasses.field(default_factory=list)        # [Leftover]
    other_invalid: list = dataclasses.field(default_factory=list)    # [dict] invalid non-spatial indexes
    unindexed: list = dataclasses.field(default_factory=list)        # [table]
    unmapped: list = dataclasses.field(default_factory=list)         # SQLite R*Trees of no BIM table
    problems: list = dataclasses.field(default_factory=list)         # [str]
    time_columns: dict = dataclasses.field(default_factory=dict)     # table -> TimeColumns

    def setting(self, table, key):
        return ((self.override or {}).get(table) or {}).get(key)

    def column_names(self, table):
        return [name for name, _type in self.columns.get(table, [])]

    def has_column(self, table, column):
        return column in self.column_names(table)

    def key_column(self, table):
        """The single primary-key column of ``table``, or None."""
        keys = self.primary_keys.get(table) or []
        return keys[0] if len(keys) == 1 else None

    def indexes_of(self, table):
        return [i for i in self.spatial_indexes if i.table == table]

    def geometry_column(self, table):
        """The override, else the column of the table's first valid spatial index, else its
        first geometry column (PostgreSQL); None when there is none."""
        declared = self.setting(table, "geometry_column")
        if declared:
            return declared if self.has_column(table, declared) else None
        for index in self.indexes_of(table):
            if index.present and index.valid and index.column:
                return index.column
        found = self.geometry_columns.get(table) or []
        return found[0] if found else None

    def probe_index(self, table):
        """The spatial index a window probe of ``table`` can use: present and valid (on the
        geometry column for PostgreSQL), or None."""
        column = self.geometry_column(table)
        for index in self.indexes_of(table):
            if not (index.present and index.valid):
                continue
            # An R*Tree's box covers its table's geometry whatever the column is called; a GiST
            # index (no box) serves a window probe only when it indexes the geometry column.
            if index.box or index.column == column:
                return index
        return None


def _pick(columns, override, candidates, typed=None):
    """(name, problem): the override if the table has it, else the first candidate present
    (case-insensitive), else the first column ``typed`` accepts, else None."""
    names = [name for name, _type in columns]
    if override:
        if override in names:
            return override, None
        return None, "column %s does not exist" % override
    lower = {name.lower(): name for name in names}
    for candidate in candidates:
        if candidate in lower:
            return lower[candidate], None
    if typed is not None:
        for name, ctype in columns:
            if typed(ctype or ""):
                return name, None
    return None, None


def choose_time_columns(schema, table, is_time_type):
    """``TimeColumns`` of ``table`` (logs or temp_geometry) from the override and the columns;
    records override mismatches in ``schema.problems``."""
    columns = schema.columns.get(table, [])
    found = TimeColumns(table=table, key=schema.row_keys.get(table))
    wanted = ("time_column",) + (("level_column", "category_column", "message_column") if table == "logs" else ())
    for key in wanted:
        name, problem = _pick(columns, schema.setting(table, key), COLUMN_CANDIDATES[key],
                              typed=is_time_type if key == "time_column" else None)
        if problem:
            found.absent[key] = schema.setting(table, key)
            schema.problems.append("bim_schema.%s.%s: %s in %s" % (table, key, problem, table))
        setattr(found, key[:-len("_column")], name)
    return found
