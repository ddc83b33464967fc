# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Names of the BIM application's tables and spatial indexes, as the collection reads them.

The application owns the schema (the collection never creates it in a live database); these
names are the contract both engines implement. tests/fleet/schema_*.sql build it for tests.
"""

from __future__ import annotations

BIM_TABLES = ("walls", "intersections", "quality_metrics", "logs", "temp_geometry")

# The tables a restore must reproduce exactly (logs and temp_geometry are included: an
# operator restoring a host expects its logs back too).
DIGEST_TABLES = BIM_TABLES

# table -> (geometry column on PostgreSQL, GiST index name on PostgreSQL, R*Tree table on SQLite)
SPATIAL_INDEXES = {
    "walls": ("geom", "idx_walls_geometry", "walls_rtree"),
    "intersections": ("point", "idx_intersections_point", "intersections_rtree"),
}
