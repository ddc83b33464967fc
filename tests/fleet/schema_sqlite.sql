-- BIM Wall System schema on SQLite, as the application creates it.
-- Test fixture only: the collection reads this schema and never creates it in a live database.
-- Geometry is kept as WKT plus its bounding box; the spatial indexes are R*Tree tables keyed
-- by the row id of the table they index.
PRAGMA journal_mode = WAL;
PRAGMA foreign_keys = ON;

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
CREATE VIRTUAL TABLE walls_rtree USING rtree (id, min_x, max_x, min_y, max_y);
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
CREATE VIRTUAL TABLE intersections_rtree USING rtree (id, min_x, max_x, min_y, max_y);

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
    created_at  TEXT NOT NULL,
    level       TEXT NOT NULL,
    category    TEXT NOT NULL,
    message     TEXT NOT NULL
);
CREATE INDEX idx_logs_created_at ON logs (created_at);

CREATE TABLE temp_geometry (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at  TEXT NOT NULL,
    geom_wkt    TEXT NOT NULL
);
CREATE INDEX idx_temp_geometry_created_at ON temp_geometry (created_at);
