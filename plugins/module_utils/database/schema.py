# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the collection assumes about the BIM schema, and the operator's override of the rest.

The table names are the contract (the guide's names). Everything else (geometry columns,
spatial index and R*Tree names, R*Tree layouts, the columns of logs and temp_geometry, primary
keys) is read from the catalog per connection (``pg_schema.py``, ``sqlite_schema.py``, the result
in ``discovered.py``); the inventory map ``bim_schema`` (module option ``schema``) names what
discovery cannot guess or must not miss. tests/fleet/schema_*.sql build schemas for tests.
"""

from __future__ import annotations

import re

BIM_TABLES = ("walls", "intersections", "quality_metrics", "logs", "temp_geometry")

# The tables a restore must reproduce exactly (logs and temp_geometry are included: an
# operator restoring a host expects its logs back too).
DIGEST_TABLES = BIM_TABLES

# The tables the guide gives a spatial index: one of them without any is worth a word to the
# operator (information, not a fault: the application may not need it).
SPATIAL_TABLES = ("walls", "intersections")

# The tables maintenance deletes old rows from (by their time column).
CLEANUP_TABLES = ("logs", "temp_geometry")

# Keys of bim_schema per table. Spatial keys apply to every BIM table; each engine reads its own
# (spatial_index on PostgreSQL, rtree on SQLite), so one map can serve a mixed fleet.
SPATIAL_KEYS = ("geometry_column", "spatial_index", "rtree")
TIME_KEYS = ("time_column",)
LOG_KEYS = ("time_column", "level_column", "category_column", "message_column")
OVERRIDE_KEYS = {
    "walls": SPATIAL_KEYS,
    "intersections": SPATIAL_KEYS,
    "quality_metrics": SPATIAL_KEYS,
    "logs": SPATIAL_KEYS + LOG_KEYS,
    "temp_geometry": SPATIAL_KEYS + TIME_KEYS,
}

# Column names tried in order when bim_schema names none (lower-case comparison). A time column
# may also be found by its type (see discovered.choose_time_column).
COLUMN_CANDIDATES = {
    "time_column": ("created_at", "timestamp", "logged_at", "ts", "time", "created", "log_time",
                    "occurred_at", "event_time", "datetime"),
    "level_column": ("level", "severity", "log_level", "loglevel", "levelname", "lvl"),
    "category_column": ("category", "logger", "component", "source", "module", "facility", "channel"),
    "message_column": ("message", "msg", "text", "log_message", "body"),
}

# An identifier as both engines take it; quoting is still done by the driver / _quote_identifier.
_NAME = re.compile(r"^[^\x00]{1,63}$")


class SchemaOverrideError(ValueError):
    """The ``schema`` option (inventory ``bim_schema``) is malformed; the message says where."""


def validate_override(value):
    """The ``schema`` option checked and copied: ``{table: {key: name}}``, or None when empty.

    Keys must be BIM tables, per table only the keys of ``OVERRIDE_KEYS``, values non-empty
    strings (names, never SQL). Raises ``SchemaOverrideError`` naming the offending entry.
    """
    if value is None or value == {}:
        return None
    if not isinstance(value, dict):
        raise SchemaOverrideError("schema (bim_schema) must be a mapping of BIM table -> settings, got %s"
                                  % type(value).__name__)
    clean = {}
    for table, settings in value.items():
        if table not in OVERRIDE_KEYS:
            raise SchemaOverrideError("schema (bim_schema): %r is not a BIM table; the tables are %s"
                                      % (table, ", ".join(BIM_TABLES)))
        if settings is None:
            continue
        if not isinstance(settings, dict):
            raise SchemaOverrideError("schema (bim_schema).%s must be a mapping of setting -> name, got %s"
                                      % (table, type(settings).__name__))
        allowed = OVERRIDE_KEYS[table]
        entry = {}
        for key, name in settings.items():
            if key not in allowed:
                raise SchemaOverrideError("schema (bim_schema).%s: unknown setting %r; %s takes %s"
                                          % (table, key, table, ", ".join(allowed)))
            if not isinstance(name, str) or not _NAME.match(name) or name != name.strip():
                raise SchemaOverrideError("schema (bim_schema).%s.%s must be a name (1-63 characters, no "
                                          "surrounding spaces), got %r" % (table, key, name))
            entry[key] = name
        if entry:
            clean[table] = entry
    return clean or None


def singular(name):
    """``walls`` -> ``wall``, ``intersections`` -> ``intersection``, ``metrics`` -> ``metric``."""
    return name[:-1] if name.endswith("s") and len(name) > 1 else name


def rtree_table_for(rtree_name, tables=BIM_TABLES):
    """The BIM table an R*Tree belongs to by its name, or None (unknown or ambiguous).

    The name is split into tokens at ``_``, ``-`` and ``.``; a table matches when its own tokens
    appear in that order, side by side, the last one possibly singular: ``walls_rtree``,
    ``rtree_walls``, ``wall_rtree``, ``idx_walls_geom`` (SpatiaLite) all mean walls.
    """
    tokens = [t for t in re.split(r"[_\-.]+", rtree_name.lower()) if t]
    found = []
    for table in tables:
        want = table.split("_")
        for start in range(len(tokens) - len(want) + 1):
            window = tokens[start:start + len(want)]
            if window[:-1] == want[:-1] and window[-1] in (want[-1], singular(want[-1])):
                found.append(table)
                break
    return found[0] if len(found) == 1 else None
