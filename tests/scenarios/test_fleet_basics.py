# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The test fleet does what the scenarios rely on: real SSH, real databases, a settable app."""

from __future__ import annotations

import datetime
import hashlib
import json
import sqlite3
import urllib.error
import urllib.request

import psycopg
import pytest

import generate

BIM_TABLES = ("walls", "intersections", "quality_metrics", "logs", "temp_geometry")
NOW = "2026-06-01T12:00:00+00:00"


def pg_connect(fleet, name, dbname="bim_walls", password=None):
    info = fleet.hosts[name]
    return psycopg.connect(host=info["address"], port=info["db_port"], user=info["db_user"],
                           dbname=dbname, password=password or fleet.password, connect_timeout=5,
                           autocommit=True)


def http_get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8")


def hosts_of(fleet, kind):
    return [name for name, info in fleet.hosts.items() if info["kind"] == kind]


def ping_states(run_ansible, pattern="all"):
    result = run_ansible(pattern, "ansible.builtin.ping")
    return result, result.hosts


def test_ping_reaches_every_host_over_ssh(fleet, run_ansible):
    result, states = ping_states(run_ansible)
    assert result.rc == 0, str(result)
    assert set(states) == set(fleet.hosts)
    assert set(states.values()) == {"ok"}


def test_inventory_sets_every_bim_variable(fleet):
    import yaml

    with open(fleet.inventory, encoding="utf-8") as handle:
        inventory = yaml.safe_load(handle)
    bim = inventory["all"]["children"]["bim"]["children"]
    hosts = {}
    for group in bim.values():
        hosts.update(group["hosts"])
    assert {"pg1", "pg2", "lite1", "lite2"} <= set(hosts)
    # the schema variant of each base host is recorded in fleet.json
    assert {n: fleet.hosts[n]["variant"] for n in ("pg1", "pg2", "lite1", "lite2", "storage1")} == {
        "pg1": "seed", "pg2": "site", "lite1": "seed", "lite2": "site", "storage1": None}
    names = ("bim_db_engine", "bim_db_host", "bim_db_port", "bim_db_name", "bim_db_user",
             "bim_db_password", "bim_db_socket_dir", "bim_sqlite_path", "bim_app_url",
             "bim_app_service", "bim_app_stop_command", "bim_app_start_command",
             "bim_backup_repository", "bim_data_dir")
    for name, hv in hosts.items():
        assert set(names) <= set(hv), name
        assert hv["bim_backup_repository"] == "%s/%s/repo" % (fleet.state_dir, name)
    assert "storage1" in inventory["all"]["children"]["bim_storage"]["hosts"]


@pytest.mark.parametrize("name, gist, geometry", [
    ("pg1", [("idx_intersections_point", "point"), ("idx_walls_geometry", "geom")], "geom"),
    ("pg2", [("idx_intersections_point", "location"), ("walls_outline_gist", "outline")], "outline"),
])
def test_postgresql_hosts_have_postgis_and_valid_gist_indexes(fleet, name, gist, geometry):
    with pg_connect(fleet, name) as conn:
        extensions = {row[0] for row in conn.execute("SELECT extname FROM pg_extension")}
        assert {"postgis", "amcheck"} <= extensions
        rows = conn.execute(
            "SELECT c.relname, a.attname, i.indisvalid FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
            "WHERE am.amname = 'gist' ORDER BY 1").fetchall()
        assert rows == [(index, column, True) for index, column in gist]
        walls = conn.execute("SELECT count(*) FROM walls").fetchone()[0]
        assert walls == fleet.load_meta()["walls"]
        srid, kind = conn.execute("SELECT ST_SRID(%s), GeometryType(%s) FROM walls LIMIT 1"
                                  % (geometry, geometry)).fetchone()
        assert (srid, kind) == (3857, "LINESTRING")


def test_postgresql_rejects_a_wrong_password(fleet):
    with pytest.raises(psycopg.OperationalError) as caught:
        pg_connect(fleet, "pg1", password="not-the-password").close()
    assert "password authentication failed" in str(caught.value)


@pytest.mark.parametrize("name, rtrees, walls_rtree", [("lite1", {"walls_rtree", "intersections_rtree"}, "walls_rtree"),
                                                       ("lite2", {"rtree_walls"}, "rtree_walls")])
def test_sqlite_host_has_its_rtree_tables(fleet, name, rtrees, walls_rtree):
    info = fleet.hosts[name]
    conn = sqlite3.connect("file:%s?mode=ro" % info["sqlite_path"], uri=True)
    try:
        found = {row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%rtree%'")}
        assert found == rtrees
        walls = conn.execute("SELECT count(*) FROM walls").fetchone()[0]
        assert walls == fleet.load_meta()["walls"]
        assert conn.execute("SELECT count(*) FROM %s" % walls_rtree).fetchone()[0] == walls
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_app_standin_answers_and_follows_its_state_file(fleet):
    name = "lite1"
    url = fleet.hosts[name]["app_url"]
    try:
        assert http_get(url + "/health") == (200, json.dumps({"status": "ok"}))
        status, body = http_get(url + "/metrics")
        assert status == 200
        assert json.loads(body)["cache_hit_rate"] == 0.92
        fleet.set_app_metrics(name, cache_hit_rate=0.6, throughput_ops=12)
        metrics = json.loads(http_get(url + "/metrics")[1])
        assert metrics["cache_hit_rate"] == 0.6 and metrics["throughput_ops"] == 12
        status, text = http_get(url + "/metrics?format=prometheus")
        assert status == 200
        assert "# TYPE cache_hit_rate gauge" in text and "\ncache_hit_rate 0.6\n" in text
        fleet.set_app_health(name, False)
        assert http_get(url + "/health")[0] == 503
        fleet.stop_app(name)
        with pytest.raises(OSError):
            urllib.request.urlopen(url + "/health", timeout=2)
        fleet.start_app(name)
        assert http_get(url + "/health")[0] == 503  # state survives a restart
    finally:
        fleet.reset(name)
    assert http_get(url + "/health")[0] == 200


def test_stopped_sshd_makes_only_that_host_unreachable(fleet, run_ansible):
    ping_states(run_ansible)  # warm the ControlPersist connections: a cut must cut them too
    try:
        fleet.stop_sshd("pg2")
        result, states = ping_states(run_ansible, "bim")
        assert result.rc != 0
        assert states["pg2"] == "unreachable"
        assert {states[h] for h in states if h != "pg2"} == {"ok"}
    finally:
        fleet.start_sshd("pg2")
    result, states = ping_states(run_ansible, "bim")
    assert result.rc == 0 and set(states.values()) == {"ok"}, str(result)


def test_stopped_database_refuses_connections_until_started(fleet):
    try:
        fleet.stop_db("pg2")
        with pytest.raises(psycopg.OperationalError):
            pg_connect(fleet, "pg2").close()
    finally:
        fleet.start_db("pg2")
    with pg_connect(fleet, "pg2") as conn:
        assert conn.execute("SELECT count(*) FROM walls").fetchone()[0] > 0


# ---------------------------------------------------------------------------------------------
# generator: determinism and the shape of the data


def pg_digests(conn):
    return {table: conn.execute(
        "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t.id), '')) FROM %s t" % table
    ).fetchone() for table in BIM_TABLES}


def sqlite_digests(path, rtrees=("walls_rtree", "intersections_rtree")):
    conn = sqlite3.connect(path)
    try:
        digests = {}
        for table in BIM_TABLES + tuple(rtrees):
            digest = hashlib.md5()
            count = 0
            for row in conn.execute("SELECT * FROM %s ORDER BY rowid" % table):
                digest.update(repr(row).encode("utf-8"))
                count += 1
            digests[table] = (count, digest.hexdigest())
        return digests
    finally:
        conn.close()


def test_generator_is_deterministic_on_sqlite(tmp_path):
    paths = [str(tmp_path / ("run%d.db" % i)) for i in range(3)]
    generate.populate_sqlite(paths[0], 1500, seed=7, now=NOW)
    generate.populate_sqlite(paths[1], 1500, seed=7, now=NOW)
    generate.populate_sqlite(paths[2], 1500, seed=8, now=NOW)
    first, second, other = (sqlite_digests(p) for p in paths)
    assert first == second
    assert first["walls"][0] == 1500 and first["intersections"][0] == 750
    assert first["walls"] != other["walls"]
    with pytest.raises(FileExistsError):
        generate.populate_sqlite(paths[0], 10, seed=7, now=NOW)


def test_site_variant_holds_the_same_rows_under_its_own_names(tmp_path):
    """Same seed and now: every BIM table holds the same values in both variants (only names
    differ), so figures of the two variants compare."""
    seed, site = str(tmp_path / "seed.db"), str(tmp_path / "site.db")
    generate.populate_sqlite(seed, 600, seed=3, now=NOW)
    generate.populate_sqlite(site, 600, seed=3, now=NOW, variant="site")
    first, second = sqlite_digests(seed), sqlite_digests(site, rtrees=("rtree_walls",))
    assert {t: first[t] for t in BIM_TABLES} == {t: second[t] for t in BIM_TABLES}
    assert first["walls_rtree"] == second["rtree_walls"]
    with sqlite3.connect(site) as conn:
        assert [r[1] for r in conn.execute("PRAGMA table_info(logs)")] == [
            "id", "logged_at", "severity", "category", "message"]
        assert conn.execute("SELECT count(*) FROM projects").fetchone()[0] == 2
    with pytest.raises(ValueError, match="unknown schema variant"):
        generate.populate_sqlite(str(tmp_path / "x.db"), 10, variant="other")


def test_generator_is_deterministic_on_postgresql(fleet):
    names = ["bim_fleet_det_a", "bim_fleet_det_b", "bim_fleet_det_c"]
    with pg_connect(fleet, "pg1", dbname="postgres") as admin:
        try:
            for name in names:
                admin.execute("DROP DATABASE IF EXISTS %s" % name)
                admin.execute("CREATE DATABASE %s" % name)
            info = fleet.hosts["pg1"]
            digests = []
            for name, seed in zip(names, (7, 7, 8)):
                conninfo = "host=%s port=%s user=postgres dbname=%s password=%s" % (
                    info["address"], info["db_port"], name, fleet.password)
                generate.populate_postgresql(conninfo, 1500, seed=seed, now=NOW)
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    digests.append(pg_digests(conn))
            assert digests[0] == digests[1]
            assert digests[0]["walls"][0] == 1500
            assert digests[0]["walls"] != digests[2]["walls"]
            with pytest.raises(RuntimeError):  # refuses a database that already holds the tables
                generate.populate_postgresql(conninfo, 10)
        finally:
            for name in names:
                admin.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % name)


def test_generated_logs_and_temp_geometry_straddle_the_cleanup_ages(tmp_path):
    path = str(tmp_path / "shape.db")
    generate.populate_sqlite(path, 600, seed=1, now=NOW)
    now = datetime.datetime.fromisoformat(NOW)

    def ago(days):
        return (now - datetime.timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S")

    conn = sqlite3.connect(path)
    try:
        recent = conn.execute("SELECT DISTINCT level, category FROM logs WHERE created_at >= ?", (ago(1),)).fetchall()
        old = conn.execute("SELECT DISTINCT level FROM logs WHERE created_at < ?", (ago(40),)).fetchall()
        assert {row[0] for row in recent} == {"info", "warning", "error"}
        assert {row[1] for row in recent} == {"geometry", "database", "api", "cache"}
        assert {row[0] for row in old} == {"info", "warning", "error"}
        assert conn.execute("SELECT count(*) FROM logs WHERE created_at < ?", (ago(30),)).fetchone()[0] > 0
        assert conn.execute("SELECT max(created_at) FROM logs").fetchone()[0] <= now.strftime("%Y-%m-%d %H:%M:%S")
        older, newer = conn.execute(
            "SELECT sum(created_at < ?), sum(created_at >= ?) FROM temp_geometry", (ago(1), ago(1))).fetchone()
        assert older > 0 and newer > 0
        assert conn.execute("SELECT count(*) FROM quality_metrics").fetchone()[0] == 600
    finally:
        conn.close()


def test_run_playbook_honours_limit_check_and_extra_vars(fleet, run_playbook, tmp_path):
    playbook = tmp_path / "probe.yml"
    playbook.write_text(
        "- name: Probe\n"
        "  hosts: bim\n"
        "  gather_facts: false\n"
        "  tasks:\n"
        "    - name: Write a marker on the host\n"
        "      ansible.builtin.copy:\n"
        "        content: '{{ probe_value }}'\n"
        "        dest: '{{ probe_dir }}/{{ inventory_hostname }}.txt'\n"
        "        mode: '0600'\n", encoding="utf-8")
    extra = {"probe_value": "fleet-ok", "probe_dir": str(tmp_path)}
    result = run_playbook(str(playbook), extra_vars=extra, limit="lite1", check=True)
    assert result.rc == 0, str(result)
    assert "lite1" in result.stdout and "pg1" not in result.stdout
    assert not (tmp_path / "lite1.txt").exists()  # check mode changed nothing
    result = run_playbook(str(playbook), extra_vars=extra, limit=["lite1", "pg1"])
    assert result.rc == 0, str(result)
    assert (tmp_path / "lite1.txt").read_text(encoding="utf-8") == "fleet-ok"
    assert (tmp_path / "pg1.txt").exists() and not (tmp_path / "pg2.txt").exists()


def test_reset_brings_a_broken_host_back(fleet):
    name = "pg1"
    try:
        fleet.set_app_metrics(name, cache_hit_rate=0.1)
        fleet.stop_app(name)
        fleet.stop_db(name)
        fleet.stop_sshd(name)
        status = fleet.status()
        assert not status["up"]
        assert status["hosts"][name] == {"sshd": False, "db": False, "app": False}
    finally:
        fleet.reset(name)
    assert fleet.status()["up"]
    assert json.loads(http_get(fleet.hosts[name]["app_url"] + "/metrics")[1])["cache_hit_rate"] == 0.92
