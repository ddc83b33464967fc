-- BIM Wall System schema on PostgreSQL + PostGIS, "site" variant: an operator's own schema with
-- the guide's table names but other column and index names (tests/fleet/generate.py --variant site).
-- Test fixture only: the collection reads this schema and never creates it in a live database.
CREATE EXTENSION IF NOT EXISTS postgis;

CREATE TABLE projects (
    id          integer PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL
);

CREATE TABLE walls (
    id            bigint PRIMARY KEY,
    project_id    integer NOT NULL,
    name          text NOT NULL,
    material      text NOT NULL,
    height_mm     double precision NOT NULL,
    thickness_mm  double precision NOT NULL,
    outline       geometry(LineString, 3857) NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX walls_outline_gist ON walls USING gist (outline);
CREATE INDEX idx_walls_project ON walls (project_id);

CREATE TABLE intersections (
    id          bigint PRIMARY KEY,
    wall_a      bigint NOT NULL REFERENCES walls (id),
    wall_b      bigint NOT NULL REFERENCES walls (id),
    kind        text NOT NULL,
    location    geometry(Point, 3857) NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX idx_intersections_point ON intersections USING gist (location);

CREATE TABLE quality_metrics (
    id           bigint PRIMARY KEY,
    wall_id      bigint NOT NULL REFERENCES walls (id),
    metric       text NOT NULL,
    value        double precision NOT NULL,
    measured_at  timestamptz NOT NULL
);

CREATE TABLE logs (
    id          bigserial PRIMARY KEY,
    logged_at   timestamptz NOT NULL,
    severity    text NOT NULL,
    category    text NOT NULL,
    message     text NOT NULL
);
CREATE INDEX idx_logs_logged_at ON logs (logged_at);

CREATE TABLE temp_geometry (
    id          bigserial PRIMARY KEY,
    created_at  timestamptz NOT NULL,
    geom        geometry(Geometry, 3857) NOT NULL
);
CREATE INDEX idx_temp_geometry_created_at ON temp_geometry (created_at);
