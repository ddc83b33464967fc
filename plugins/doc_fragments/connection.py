# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Connection options shared by every module that talks to a BIM database."""

    DOCUMENTATION = r'''
options:
  engine:
    description:
      - Database engine of the BIM installation.
      - Usually set from the inventory variable C(bim_db_engine).
    type: str
    choices: [postgresql, sqlite]
    required: true
  db_host:
    description:
      - PostgreSQL server host name or address. Ignored for SQLite.
      - When O(db_socket_dir) is set it takes precedence and the Unix socket is used.
    type: str
    default: localhost
  db_port:
    description:
      - PostgreSQL server port. Ignored for SQLite.
    type: int
    default: 5432
  db_user:
    description:
      - PostgreSQL role to connect as. Ignored for SQLite.
    type: str
    default: postgres
  db_password:
    description:
      - Password of O(db_user). Never logged or returned.
    type: str
  db_socket_dir:
    description:
      - Folder holding the PostgreSQL Unix socket; used instead of O(db_host) when set.
    type: path
  db_name:
    description:
      - PostgreSQL database holding the BIM tables. Ignored for SQLite.
    type: str
    default: bim_walls
  db_namespace:
    description:
      - PostgreSQL schema (namespace) that holds the BIM tables, when it is not the first schema of
        O(db_user)'s own C(search_path) (usually C(public)). Usually set from the inventory variable
        C(bim_db_namespace).
      - Every session of the collection puts it first in its C(search_path) and keeps the rest, so
        PostGIS is found wherever it is installed. Tables of the same names in other schemas are
        never read, checked or maintained.
      - A schema that does not exist, or that O(db_user) may not use, is an error naming it.
      - Backups and restores always cover the whole database. Ignored for SQLite.
    type: str
  sqlite_path:
    description:
      - Path of the SQLite database file. Required when O(engine=sqlite).
      - The file must exist; a missing file is an error, never a new empty database.
    type: path
  connect_timeout:
    description:
      - Seconds to wait for a database connection before failing.
    type: int
    default: 10
  schema:
    description:
      - Names of the BIM schema that the catalog does not give, or that must be checked even when
        absent. Usually set from the inventory variable C(bim_schema).
      - Without it everything but the table names is discovered per connection. PostgreSQL reads
        the GiST indexes of the BIM tables and their columns, the C(geometry)/C(geography)
        columns and the primary keys. SQLite reads the R*Tree virtual tables, each mapped to the
        BIM table that its name names (C(walls_rtree), C(rtree_walls), C(wall_rtree)), and their
        id and min/max columns. Both read the time, level, category and message columns of
        C(logs) and the time column of C(temp_geometry), trying common names
        (C(created_at), C(timestamp), C(logged_at), ...; C(level), C(severity), ...).
      - A mapping of BIM table (V(walls), V(intersections), V(quality_metrics), V(logs),
        V(temp_geometry)) to settings. Every table takes C(geometry_column) (PostgreSQL),
        C(spatial_index) (a PostgreSQL GiST index) and C(rtree) (a SQLite R*Tree table). C(logs)
        also takes C(time_column), C(level_column), C(category_column) and C(message_column).
        C(temp_geometry) also takes C(time_column). Each engine uses its own keys and ignores
        the other's, so one map can serve a mixed fleet.
      - A spatial index or R*Tree named here is expected. When it is missing or invalid, the
        health check reports an error, and C(db_maintenance) creates the missing index on
        PostgreSQL. A spatial table with no spatial index that is not named here is only
        reported as information.
      - An unknown table or setting, or a value that is not a name, fails the module with a
        message that names the entry.
    type: dict
notes:
  - PostgreSQL access needs the C(psycopg) (version 3) Python library on the managed host;
    SQLite access uses the Python standard library.
  - All the options above can be set once per play through the action group
    C(group/bim.wall_system.database) in C(module_defaults).
requirements:
  - psycopg >= 3.1 (PostgreSQL only)
'''
