# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deterministic generator of BIM Wall System test data (PostgreSQL+PostGIS and SQLite).

Same seed, same size and same ``now`` give identical rows on both engines. The schema comes from
schema_postgresql.sql / schema_sqlite.sql beside this file: tables first, the rows bulk loaded
(COPY on PostgreSQL, executemany in one transaction on SQLite), then the indexes of the schema
file (GiST / B-tree) are built over the loaded data.

Per N walls: N walls (2-point LineStrings in SRID 3857, in pairs meeting at a corner), about N/2
intersections (the corner points), N quality_metrics rows, max(300, N/2) log rows (old ones
40-90 days before ``now``, some 2-29 days, recent ones in the last 24 h; levels info/warning/error,
categories geometry/database/api/cache) and max(40, N/20) temp_geometry rows, half older and
half newer than 24 h.

Schema variants (``variant``), the same rows in each:

- ``seed``: schema_postgresql.sql / schema_sqlite.sql, the names of the guide (walls.geom with GiST
  idx_walls_geometry, intersections.point with idx_intersections_point; R*Trees walls_rtree and
  intersections_rtree (id, min_x, max_x, min_y, max_y); logs(created_at, level, ...)).
- ``site``: schema_postgresql_site.sql / schema_sqlite_site.sql, an operator's own names:
  walls.outline with GiST walls_outline_gist, intersections.location with idx_intersections_point;
  the R*Tree rtree_walls (wall_id, x_lo, x_hi, y_lo, y_hi) and none on intersections;
  logs(logged_at, severity, ...); and a table outside the BIM schema, projects.

CLI::

    python tests/fleet/generate.py postgresql --dsn "host=... dbname=bim_walls" --walls 2000 [--variant site]
    python tests/fleet/generate.py sqlite --path /tmp/bim-walls.db --walls 2000 [--variant site]
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import random
import re
import sqlite3
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMA_POSTGRESQL = os.path.join(HERE, "schema_postgresql.sql")
SCHEMA_SQLITE = os.path.join(HERE, "schema_sqlite.sql")

# The names that differ between schema variants (see the module docstring).
VARIANTS = {
    "seed": {
        "postgresql": SCHEMA_POSTGRESQL, "sqlite": SCHEMA_SQLITE,
        "walls_geometry": "geom", "intersections_geometry": "point",
        "log_time": "created_at", "log_level": "level",
        "walls_rtree": ("walls_rtree", "id", "min_x", "max_x", "min_y", "max_y"),
        "intersections_rtree": ("intersections_rtree", "id", "min_x", "max_x", "min_y", "max_y"),
        "projects": False,
    },
    "site": {
        "postgresql": os.path.join(HERE, "schema_postgresql_site.sql"),
        "sqlite": os.path.join(HERE, "schema_sqlite_site.sql"),
        "walls_geometry": "outline", "intersections_geometry": "location",
        "log_time": "logged_at", "log_level": "severity",
        "walls_rtree": ("rtree_walls", "wall_id", "x_lo", "x_hi", "y_lo", "y_hi"),
        "intersections_rtree": None,
        "projects": True,
    },
}

WALLS_PER_PROJECT = 500
BATCH = 20000

LEVELS = ("info", "warning", "error")
CATEGORIES = ("geometry", "database", "api", "cache")
MATERIALS = (
    "concrete C30/37",
    "calcium silicate",
    "gypsum, steel stud",
    "CLT timber",
    "aerated concrete",
    "clay brick",
    "precast concrete",
    "curtain wall",
)
ROOMS = ("Kitchen", "Office", "Corridor", "Stairwell", "Bathroom", "Meeting room", "Storage",
         "Plant room", "Lobby", "Bedroom", "Living room", "Server room")
KINDS = ("L-junction", "L-junction", "T-junction", "X-crossing")
METRICS = ("planarity_mm", "thickness_dev_mm", "alignment_deg", "clash_count", "overlap_m2")
# per category: three ordinary messages, then the one an error entry uses
MESSAGES = {
    "geometry": (
        "offset wall {w}: {ms} ms, {n} vertices",
        "intersection {w}/{w2} recomputed ({k})",
        "wall {w} off grid by {d} mm",
        "offset wall {w} failed: self-intersection",
    ),
    "database": (
        "bbox query project {p}: {n} rows, {ms} ms",
        "pool: {n} active, {n2} idle",
        "slow query intersections p{p}: {ms} ms",
        "save wall {w} rolled back: serialization",
    ),
    "api": (
        "GET /projects/{p}/walls 200 {ms} ms",
        "PUT /walls/{w} 200 {ms} ms",
        "POST /projects/{p}/clashes 429 {ms} ms",
        "GET /walls/{w}/intersections 500 {ms} ms",
    ),
    "cache": (
        "hit wall {w} (rate {r})",
        "miss tile p{p}: {n} walls, {ms} ms",
        "evicted {n} entries, {n2} MB",
        "cache unreachable for {ms} ms",
    ),
}


def variant_names(variant):
    """The names of schema variant ``variant`` (``seed`` or ``site``)."""
    if variant not in VARIANTS:
        raise ValueError("unknown schema variant %r (known: %s)" % (variant, ", ".join(VARIANTS)))
    return VARIANTS[variant]


def _split_sql(path):
    """Statements of a schema file: (other statements, CREATE INDEX statements), in order."""
    with open(path, encoding="utf-8") as handle:
        text = "\n".join(line for line in handle.read().splitlines()
                         if not line.strip().startswith("--"))
    statements = [s.strip() for s in text.split(";") if s.strip()]
    index = [s for s in statements if re.match(r"CREATE\s+(UNIQUE\s+)?INDEX", s, re.I)]
    other = [s for s in statements if s not in index]
    return other, index


def _now(now):
    if now is None:
        now = datetime.datetime.now(datetime.timezone.utc)
    elif isinstance(now, str):
        now = datetime.datetime.fromisoformat(now)
    if now.tzinfo is None:
        now = now.replace(tzinfo=datetime.timezone.utc)
    return now.astimezone(datetime.timezone.utc).replace(microsecond=0)


class _Data:
    """Row producer shared by both engines. Every value is already a string or a number with a
    fixed text form, so both engines store the same thing."""

    def __init__(self, walls, seed, now):
        if walls < 2:
            raise ValueError("walls must be at least 2")
        self.walls = walls
        self.seed = seed
        self.now = _now(now)
        self.epoch = int(self.now.timestamp())

    def ts(self, seconds_before):
        """Timestamp text 'YYYY-MM-DD HH:MM:SS' (UTC) a whole number of seconds before now."""
        return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(self.epoch - int(seconds_before)))

    def rng(self, stream):
        return random.Random("%s:%s" % (self.seed, stream))

    def walls_and_intersections(self):
        """Yield ('w', row) and ('i', row) in id order. A wall row is
        (id, project_id, name, material, height_mm, thickness_mm, (x0, y0, x1, y1), created, updated);
        an intersection row is (id, wall_a, wall_b, kind, (x, y), created)."""
        rng = self.rng("walls")
        day = 86400
        n = self.walls
        for k in range((n + 1) // 2):
            a = 2 * k + 1
            project = 1 + (a - 1) // WALLS_PER_PROJECT
            ox = 1000000.0 + (project % 100) * 2500.0
            oy = 6000000.0 + (project // 100) * 2500.0
            x0 = round(ox + rng.uniform(0, 2000), 3)
            y0 = round(oy + rng.uniform(0, 2000), 3)
            angle = rng.uniform(0, 2 * math.pi)
            length = rng.uniform(1.5, 14.0)
            x1 = round(x0 + length * math.cos(angle), 3)
            y1 = round(y0 + length * math.sin(angle), 3)
            turn = angle + (math.pi / 2 if rng.random() < 0.5 else -math.pi / 2)
            length2 = rng.uniform(1.5, 14.0)
            x2 = round(x1 + length2 * math.cos(turn), 3)
            y2 = round(y1 + length2 * math.sin(turn), 3)
            created = rng.randint(31 * day, 900 * day)
            level = rng.randint(0, 24)
            room = ROOMS[rng.randrange(len(ROOMS))]
            for wid, coords in ((a, (x0, y0, x1, y1)), (a + 1, (x1, y1, x2, y2))):
                if wid > n:
                    break
                updated = created - rng.randint(0, 30 * day)
                yield "w", (
                    wid, project,
                    "L%02d %s W-%07d" % (level, room, wid),
                    MATERIALS[rng.randrange(len(MATERIALS))],
                    float(rng.randrange(2400, 4201, 50)),
                    float(rng.randrange(100, 401, 25)),
                    coords, self.ts(created), self.ts(updated),
                )
            if a + 1 <= n:
                yield "i", (k + 1, a, a + 1, KINDS[rng.randrange(len(KINDS))], (x1, y1),
                            self.ts(created - rng.randint(0, day)))

    def quality_metrics(self):
        rng = self.rng("quality")
        for wid in range(1, self.walls + 1):
            metric = METRICS[wid % len(METRICS)]
            value = round(rng.uniform(0, 12) if metric != "clash_count" else rng.randint(0, 6), 4)
            yield (wid, wid, metric, float(value), self.ts(rng.randint(0, 60 * 86400)))

    def logs(self):
        """(id, created_at, level, category, message) in time order (ids follow time)."""
        rng = self.rng("logs")
        count = max(300, self.walls // 2)
        day = 86400
        ages = []
        for i in range(count):
            bucket = i % 10
            if bucket < 5:
                age = rng.randint(40 * day, 90 * day)       # old: cleanup removes these
            elif bucket < 7:
                age = rng.randint(2 * day, 29 * day)        # kept by a 30-day retention
            else:
                age = rng.randint(0, day - 60)              # last 24 h: recent error rate
            ages.append(age)
        ages.sort(reverse=True)
        recent_seen = 0
        for i, age in enumerate(ages):
            if age < day and recent_seen < 12:
                # the first recent entries cover every level and every category
                level = LEVELS[recent_seen % 3]
                category = CATEGORIES[recent_seen % 4]
                recent_seen += 1
            elif i < 12:
                level = LEVELS[i % 3]
                category = CATEGORIES[i % 4]
            else:
                r = rng.random()
                level = "info" if r < 0.86 else ("warning" if r < 0.97 else "error")
                category = CATEGORIES[rng.randrange(4)]
            templates = MESSAGES[category]
            template = templates[3] if level == "error" else templates[rng.randrange(3)]
            w = rng.randint(1, self.walls)
            message = template.format(
                w=w, w2=min(w + 1, self.walls), p=1 + (w - 1) // WALLS_PER_PROJECT,
                ms=rng.randint(2, 4000), n=rng.randint(1, 500), n2=rng.randint(1, 200),
                d=round(rng.uniform(0, 9), 2), r=round(rng.uniform(0.6, 0.99), 2),
                k=KINDS[rng.randrange(4)])
            if level == "warning":
                message += " [slow]"
            yield (i + 1, self.ts(age), level, category, message)

    def temp_geometry(self):
        """(id, created_at, (x, y, size)) in time order: half older than 24 h, half newer."""
        rng = self.rng("temp")
        count = max(40, self.walls // 20)
        day = 86400
        ages = sorted((rng.randint(day + 3600, 14 * day) if i % 2 == 0
                       else rng.randint(0, day - 3600) for i in range(count)), reverse=True)
        for i, age in enumerate(ages):
            x = round(1000000.0 + rng.uniform(0, 250000), 3)
            y = round(6000000.0 + rng.uniform(0, 25000), 3)
            yield (i + 1, self.ts(age), (x, y, round(rng.uniform(0.5, 20), 3)))

    def projects(self):
        """(id, name, created_at) of every project the walls belong to (site variant only)."""
        for project in range(1, 2 + (self.walls - 1) // WALLS_PER_PROJECT):
            yield (project, "Project %03d" % project, self.ts(900 * 86400 + project * 3600))


def _line_wkt(c):
    return "LINESTRING(%.3f %.3f,%.3f %.3f)" % c


def _polygon_wkt(g):
    x, y, s = g
    return "POLYGON((%.3f %.3f,%.3f %.3f,%.3f %.3f,%.3f %.3f,%.3f %.3f))" % (
        x, y, x + s, y, x + s, y + s, x, y + s, x, y)


def _fmt(v):
    return repr(v) if isinstance(v, float) else str(v)


# ---------------------------------------------------------------------------------------------
# PostgreSQL


def populate_postgresql(conninfo, walls, seed=1, now=None, variant="seed"):
    """Create the BIM schema (of ``variant``) in an EXISTING EMPTY database and fill it. Returns a
    stats dict."""
    import psycopg

    names = variant_names(variant)
    data = _Data(walls, seed, now)
    tables, indexes = _split_sql(names["postgresql"])
    started = time.monotonic()
    counts = {}
    with psycopg.connect(conninfo) as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname = 'public' AND c.relname = ANY(%s)",
                        (["walls", "intersections", "quality_metrics", "logs", "temp_geometry"],))
            if cur.fetchone()[0]:
                raise RuntimeError("database already holds BIM tables; give an empty database")
            cur.execute("SET maintenance_work_mem = '256MB'")
            cur.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
            if cur.fetchone()[0]:
                # the rows are consistent by construction; skip per-row FK triggers while loading
                cur.execute("SET session_replication_role = replica")
            for statement in tables:
                cur.execute(statement)

            def copy(table, columns, lines):
                n = 0
                with cur.copy("COPY %s (%s) FROM STDIN WITH (FREEZE)" % (table, columns)) as cp:
                    buf = []
                    for line in lines:
                        buf.append(line)
                        n += 1
                        if len(buf) >= BATCH:
                            cp.write("".join(buf))
                            buf = []
                    if buf:
                        cp.write("".join(buf))
                counts[table] = n

            inters = []

            def wall_lines():
                for kind, row in data.walls_and_intersections():
                    if kind == "i":
                        inters.append(row)
                        continue
                    yield "%d\t%d\t%s\t%s\t%r\t%r\tSRID=3857;%s\t%s+00\t%s+00\n" % (
                        row[0], row[1], row[2], row[3], row[4], row[5], _line_wkt(row[6]),
                        row[7], row[8])

            if names["projects"]:
                copy("projects", "id, name, created_at", ("%d\t%s\t%s+00\n" % r for r in data.projects()))
            copy("walls", "id, project_id, name, material, height_mm, thickness_mm, %s, "
                 "created_at, updated_at" % names["walls_geometry"], wall_lines())
            copy("intersections", "id, wall_a, wall_b, kind, %s, created_at" % names["intersections_geometry"],
                 ("%d\t%d\t%d\t%s\tSRID=3857;POINT(%.3f %.3f)\t%s+00\n"
                  % (r[0], r[1], r[2], r[3], r[4][0], r[4][1], r[5]) for r in inters))
            del inters[:]
            copy("quality_metrics", "id, wall_id, metric, value, measured_at",
                 ("%d\t%d\t%s\t%r\t%s+00\n" % r for r in data.quality_metrics()))
            copy("logs", "id, %s, %s, category, message" % (names["log_time"], names["log_level"]),
                 ("%d\t%s+00\t%s\t%s\t%s\n" % r for r in data.logs()))
            copy("temp_geometry", "id, created_at, geom",
                 ("%d\t%s+00\tSRID=3857;%s\n" % (r[0], r[1], _polygon_wkt(r[2]))
                  for r in data.temp_geometry()))
            loaded = time.monotonic()
            for statement in indexes:
                cur.execute(statement)
            for table in ("logs", "temp_geometry"):
                cur.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)",
                            (table, max(counts[table], 1)))
            cur.execute("RESET session_replication_role")
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE")
        size = conn.execute(
            "SELECT sum(pg_total_relation_size(c.oid))::bigint FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> 'spatial_ref_sys'"
        ).fetchone()[0]
    done = time.monotonic()
    return {"engine": "postgresql", "rows": counts, "load_seconds": round(loaded - started, 2),
            "index_seconds": round(done - loaded, 2), "total_seconds": round(done - started, 2),
            "size_bytes": int(size or 0)}


# ---------------------------------------------------------------------------------------------
# SQLite


def populate_sqlite(path, walls, seed=1, now=None, variant="seed"):
    """Create a NEW SQLite file with the BIM schema (of ``variant``) and fill it. Refuses an
    existing path."""
    if os.path.lexists(path):
        raise FileExistsError("refusing to overwrite existing file %s" % path)
    names = variant_names(variant)
    data = _Data(walls, seed, now)
    tables, indexes = _split_sql(names["sqlite"])
    started = time.monotonic()
    counts = {}
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        for statement in tables:
            conn.execute(statement)
        # bulk load without a journal (a new file: a crash leaves garbage we never claim as done),
        # then back to the schema's WAL mode.
        conn.execute("PRAGMA journal_mode = OFF")
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("PRAGMA cache_size = -262144")
        conn.execute("BEGIN")

        def many(sql, rows, table):
            n = 0
            batch = []
            for row in rows:
                batch.append(row)
                if len(batch) >= BATCH:
                    conn.executemany(sql, batch)
                    n += len(batch)
                    batch = []
            if batch:
                conn.executemany(sql, batch)
                n += len(batch)
            counts[table] = n

        inters = []
        wall_rtree = []

        def wall_rows():
            for kind, row in data.walls_and_intersections():
                if kind == "i":
                    inters.append(row)
                    continue
                x0, y0, x1, y1 = row[6]
                wall_rtree.append((row[0], min(x0, x1), max(x0, x1), min(y0, y1), max(y0, y1)))
                yield row[:6] + (_line_wkt(row[6]), row[7], row[8])

        many("INSERT INTO walls (id, project_id, name, material, height_mm, thickness_mm, geom_wkt,"
             " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", wall_rows(), "walls")
        many("INSERT INTO %s (%s, %s, %s, %s, %s) VALUES (?, ?, ?, ?, ?)" % names["walls_rtree"],
             wall_rtree, names["walls_rtree"][0])
        del wall_rtree[:]
        many("INSERT INTO intersections (id, wall_a, wall_b, kind, x, y, created_at)"
             " VALUES (?, ?, ?, ?, ?, ?, ?)",
             ((r[0], r[1], r[2], r[3], r[4][0], r[4][1], r[5]) for r in inters), "intersections")
        if names["intersections_rtree"]:
            many("INSERT INTO %s (%s, %s, %s, %s, %s) VALUES (?, ?, ?, ?, ?)" % names["intersections_rtree"],
                 ((r[0], r[4][0], r[4][0], r[4][1], r[4][1]) for r in inters), names["intersections_rtree"][0])
        del inters[:]
        if names["projects"]:
            many("INSERT INTO projects (id, name, created_at) VALUES (?, ?, ?)", data.projects(), "projects")
        many("INSERT INTO quality_metrics (id, wall_id, metric, value, measured_at)"
             " VALUES (?, ?, ?, ?, ?)", data.quality_metrics(), "quality_metrics")
        many("INSERT INTO logs (id, %s, %s, category, message) VALUES (?, ?, ?, ?, ?)"
             % (names["log_time"], names["log_level"]), data.logs(), "logs")
        many("INSERT INTO temp_geometry (id, created_at, geom_wkt) VALUES (?, ?, ?)",
             ((r[0], r[1], _polygon_wkt(r[2])) for r in data.temp_geometry()), "temp_geometry")
        loaded = time.monotonic()
        for statement in indexes:
            conn.execute(statement)
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    except BaseException:
        conn.close()
        for suffix in ("", "-wal", "-shm", "-journal"):
            try:
                os.unlink(path + suffix)
            except OSError:
                pass
        raise
    conn.close()
    done = time.monotonic()
    return {"engine": "sqlite", "rows": counts, "load_seconds": round(loaded - started, 2),
            "index_seconds": round(done - loaded, 2), "total_seconds": round(done - started, 2),
            "size_bytes": os.path.getsize(path)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = parser.add_subparsers(dest="engine", required=True)
    pg = sub.add_parser("postgresql", help="fill an existing empty PostgreSQL database")
    pg.add_argument("--dsn", required=True, help="libpq conninfo of the (empty) database")
    lite = sub.add_parser("sqlite", help="create a new SQLite file")
    lite.add_argument("--path", required=True)
    for p in (pg, lite):
        p.add_argument("--variant", choices=sorted(VARIANTS), default="seed", help="schema variant (default seed)")
        p.add_argument("--walls", type=int, default=2000)
        p.add_argument("--seed", type=int, default=1)
        p.add_argument("--now", help="ISO timestamp all times are relative to (default: now)")
    args = parser.parse_args(argv)
    try:
        if args.engine == "postgresql":
            stats = populate_postgresql(args.dsn, args.walls, args.seed, args.now, args.variant)
        else:
            stats = populate_sqlite(args.path, args.walls, args.seed, args.now, args.variant)
    except (RuntimeError, FileExistsError, ValueError) as exc:
        print("generate.py: %s" % exc, file=sys.stderr)
        return 1
    import json
    print(json.dumps(stats, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
