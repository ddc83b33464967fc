-- BIM Wall System schema on SQLite, "site" variant: an operator's own schema with the guide's
-- table names but another R*Tree layout, no R*Tree on intersections and other log column names
-- (tests/fleet/generate.py --variant site).
-- Test fixture only: the collection reads this schema and never creates it in a live database.
PRAGMA journal_mode = WAL;
PRAGMA foreign_keys = ON;

CREATE TABLE projects (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE walls (
    id            INTEGER PRIMARY KEY,
    project_id    INTEGER NOT NULL,
    name          TEXT NOT NULL,
    material      TEXT NOT NULL,
    height_mm     REAL NOT NULL,
    thickness_mm  REAL NOT NULL,
    geom_wkt      TEXT NOT NULL,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE VIRTUAL TABLE rtree_walls USING rtree (wall_id, x_lo, x_hi, y_lo, y_hi);
CREATE INDEX idx_walls_project ON walls (project_id);

CREATE TABLE intersections (
    id          INTEGER PRIMARY KEY,
    wall_a      INTEGER NOT NULL REFERENCES walls (id),
    wall_b      INTEGER NOT NULL REFERENCES walls (id),
    kind        TEXT NOT NULL,
    x           REAL NOT NULL,
    y           REAL NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE quality_metrics (
    id           INTEGER PRIMARY KEY,
    wall_id      INTEGER NOT NULL REFERENCES walls (id),
    metric       TEXT NOT NULL,
    value        REAL NOT NULL,
    measured_at  TEXT NOT NULL
);

-- Timestamps are UTC text 'YYYY-MM-DD HH:MM:SS' so they sort and compare as strings.
CREATE TABLE logs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    logged_at   TEXT NOT NULL,
    severity    TEXT NOT NULL,
    category    TEXT NOT NULL,
    message     TEXT NOT NULL
);
CREATE INDEX idx_logs_logged_at ON logs (logged_at);

CREATE TABLE temp_geometry (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at  TEXT NOT NULL,
    geom_wkt    TEXT NOT NULL
);
CREATE INDEX idx_temp_geometry_created_at ON temp_geometry (created_at);
