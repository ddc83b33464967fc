# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Real-database fixtures for the unit tests of module_utils.

``pg_conn_params``: a fresh database ``bimtest_<random>`` on 127.0.0.1:5432 (user postgres),
with PostGIS, the BIM schema and ``UNIT_WALLS`` walls from tests/fleet/generate.py; dropped
afterwards. ``sqlite_conn_params``: the same data in a SQLite file under ``tmp_path``.
``pg_site_params`` / ``sqlite_site_params``: the same rows in the generator's "site" schema
variant (other geometry, R*Tree and log column names, no intersections R*Tree).
All yield ``ConnectionParams``. The generator is imported by file path, because tests/fleet is
not a package and ansible-test's collection loader does not import it as one.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.database import connection as _connection
from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import ConnectionParams

UNIT_WALLS = 300
PG_HOST = os.environ.get("BIM_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("BIM_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("BIM_TEST_PG_USER", "postgres")
PG_BIN = os.environ.get("BIM_TEST_PG_BIN", "/usr/lib/postgresql/15/bin")
FLEET_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fleet")
GENERATOR = os.path.join(FLEET_DIR, "generate.py")


# The folder holding ansible_collections/, wherever the tree was imported from (a symlink under
# plain pytest, ansible-test's copy): seven levels above plugins/module_utils/database/connection.py.
COLLECTIONS_ROOT = os.path.abspath(_connection.__file__)
for _level in range(7):
    COLLECTIONS_ROOT = os.path.dirname(COLLECTIONS_ROOT)


@pytest.fixture(scope="session", autouse=True)
def children_import_the_code_under_test():
    """Every child Python a test starts (lock races, kill -9 fault tests) imports the collection
    the test imports: ansible-test gives pytest its own path and sets no PYTHONPATH. (Set for this
    process's children only; the shared venv is left alone, so two checkouts can run at once.)"""
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = COLLECTIONS_ROOT + (os.pathsep + before if before else "")
    yield
    if before is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = before


@pytest.fixture(scope="session")
def collection_env(children_import_the_code_under_test):
    """A copy of this session's environment (whose PYTHONPATH finds the collection, set above),
    for a child that needs variables of its own: ``dict(collection_env, NAME=value)``."""
    return dict(os.environ)


def load_fleet_module(name):
    """tests/fleet/<name>.py as a module (the unit tests do not have tests/fleet on their path)."""
    spec = importlib.util.spec_from_file_location("bim_fleet_" + name, os.path.join(FLEET_DIR, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def folder_tree():
    """tests/fleet/snapshot.py's ``tree(path)``: a folder as data, to prove nothing in it changed."""
    return load_fleet_module("snapshot").tree


@pytest.fixture(scope="session")
def flip_chunk():
    """tests/fleet/damage.py's ``flip_chunk_byte(repository, chunk_id)``: one byte of a stored chunk inverted."""
    return load_fleet_module("damage").flip_chunk_byte


def _wait_until(what, probe, timeout_s=30.0, interval_s=0.05):
    """Call ``probe`` until it returns something true and return that; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(interval_s)
    pytest.fail("timed out after %.0f s waiting for %s" % (timeout_s, what))


@pytest.fixture(scope="session")
def wait_until():
    """``wait_until(what, probe, timeout_s=30, interval_s=0.05)``: for a test that waits on another process."""
    return _wait_until


def load_generator():
    """tests/fleet/generate.py as a module (``populate_postgresql``, ``populate_sqlite``)."""
    return load_fleet_module("generate")


def _admin_connect():
    psycopg = pytest.importorskip("psycopg")
    return psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True)


@pytest.fixture(scope="session")
def bim_generator():
    """The module tests/fleet/generate.py (``populate_postgresql``, ``populate_sqlite``)."""
    return load_generator()


@pytest.fixture(scope="session")
def pg_server():
    """``ConnectionParams`` of the shared test server's maintenance database ``postgres``."""
    return ConnectionParams(engine="postgresql", db_host=PG_HOST, db_port=PG_PORT, db_user=PG_USER,
                            db_name="postgres", connect_timeout=5)


@pytest.fixture
def pg_admin():
    """An autocommit psycopg connection to the maintenance database ``postgres``."""
    conn = _admin_connect()
    try:
        yield conn
    finally:
        conn.close()


def _pg_database(variant):
    """Yield ConnectionParams of a fresh, populated PostGIS database of schema ``variant``; drop it after."""
    name = "bimtest_%s" % uuid.uuid4().hex[:12]
    with _admin_connect() as admin:
        admin.execute('CREATE DATABASE "%s"' % name)
    try:
        conninfo = "host=%s port=%d user=%s dbname=%s" % (PG_HOST, PG_PORT, PG_USER, name)
        load_generator().populate_postgresql(conninfo, UNIT_WALLS, seed=1, variant=variant)
        yield ConnectionParams(engine="postgresql", db_host=PG_HOST, db_port=PG_PORT, db_user=PG_USER,
                               db_name=name, connect_timeout=5)
    finally:
        with _admin_connect() as admin:
            admin.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)


def _sqlite_file(tmp_path, variant):
    path = str(tmp_path / ("bim_walls.db" if variant == "seed" else "bim_walls_%s.db" % variant))
    load_generator().populate_sqlite(path, UNIT_WALLS, seed=1, variant=variant)
    return ConnectionParams(engine="sqlite", sqlite_path=path, connect_timeout=5)


@pytest.fixture
def pg_conn_params():
    """ConnectionParams of a fresh, populated PostGIS database; dropped after the test."""
    yield from _pg_database("seed")


@pytest.fixture
def pg_site_params():
    """As ``pg_conn_params``, in the "site" schema variant (walls.outline, walls_outline_gist,
    intersections.location, logs.logged_at / severity, an extra table projects)."""
    yield from _pg_database("site")


@pytest.fixture
def sqlite_conn_params(tmp_path):
    """ConnectionParams of a populated SQLite file in ``tmp_path``."""
    return _sqlite_file(tmp_path, "seed")


@pytest.fixture
def sqlite_site_params(tmp_path):
    """As ``sqlite_conn_params``, in the "site" schema variant (R*Tree rtree_walls (wall_id, x_lo,
    x_hi, y_lo, y_hi), no intersections R*Tree, logs.logged_at / severity, a table projects)."""
    return _sqlite_file(tmp_path, "site")


def load_sshd_server():
    """tests/unit/sshd_server.py as a module (not a package either)."""
    spec = importlib.util.spec_from_file_location("bim_sshd_server", os.path.join(os.path.dirname(__file__), "sshd_server.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def sshd():
    """A real sshd on 127.0.11.1 and a free port (tests/unit/sshd_server.py), stopped afterwards."""
    server_lib = load_sshd_server()
    if not os.path.exists(server_lib.SSHD) or os.geteuid() != 0:
        pytest.skip("needs root and %s" % server_lib.SSHD)
    base = tempfile.mkdtemp(prefix="bimtest_sshd_")
    server = server_lib.Sshd(base)
    try:
        server.start()
    except (subprocess.CalledProcessError, AssertionError) as exc:
        shutil.rmtree(base)
        pytest.skip("cannot start sshd on %s:%d: %s" % (server.address, server.port, exc))
    try:
        yield server
    finally:
        server.cut()
        shutil.rmtree(base, ignore_errors=True)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def pg_password_server():
    """A throwaway PostgreSQL cluster that demands scram-sha-256 passwords (the shared 5432
    server trusts every local connection, so it cannot prove wrong-password handling).

    Yields ``(host, port, user, password)``; the cluster is stopped and removed afterwards.
    Function scope on purpose: ansible-test runs each test in a forked child, where a session
    fixture would be set up per test and never torn down (a leaked server per test).
    """
    if not os.path.exists(os.path.join(PG_BIN, "initdb")):
        pytest.skip("PostgreSQL server binaries not found in %s" % PG_BIN)
    prefix = []
    if os.geteuid() == 0:
        prefix = ["runuser", "-u", "postgres", "--"]  # initdb refuses to run as root
    base = tempfile.mkdtemp(prefix="bimtest_pgauth_")
    password = "Unit-Test-Secret-%s" % uuid.uuid4().hex[:8]
    port = _free_port()
    data = os.path.join(base, "data")
    with open(os.path.join(base, "pw"), "w", encoding="utf-8") as handle:
        handle.write(password + "\n")
    if prefix:
        shutil.chown(base, "postgres", "postgres")
        shutil.chown(os.path.join(base, "pw"), "postgres", "postgres")
    run = dict(stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    options = "-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off" % (port, base)
    try:
        subprocess.run(prefix + [os.path.join(PG_BIN, "initdb"), "-D", data, "-U", "postgres", "-A",
                                 "scram-sha-256", "--pwfile", os.path.join(base, "pw"), "-E", "UTF8",
                                 "--no-sync"], check=True, **run)
        subprocess.run(prefix + [os.path.join(PG_BIN, "pg_ctl"), "-D", data, "-o", options, "-w", "-l",
                                 os.path.join(base, "log"), "start"], check=True, **run)
        yield ("127.0.0.1", port, "postgres", password)
    finally:
        if os.path.exists(os.path.join(data, "postmaster.pid")):
            subprocess.run(prefix + [os.path.join(PG_BIN, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"],
                           check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(base, ignore_errors=True)
