# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""After changing 1% of the walls, an incremental stores only the chunks that changed."""

from __future__ import annotations

import hashlib
import io
import random
import uuid


from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import ConnectionParams
from ansible_collections.bim.wall_system.plugins.module_utils.repository import chunker
from ansible_collections.bim.wall_system.plugins.module_utils.repository.backup import run_backup
from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import Repository

WALLS = 3000
PG_WALLS = 40000  # a dump of ~40 chunks of 256 KiB average, so 1% is a small part of it


def test_cdc_insertion_shifts_nothing():
    rng = random.Random(7)
    data = bytes(rng.getrandbits(8) for _i in range(4_000_000))
    edited = data[:2_000_000] + b"inserted wall row\n" * 5 + data[2_000_000:]
    before = {hashlib.sha256(c).hexdigest() for c in chunker.cdc_chunks(io.BytesIO(data))}
    after = [hashlib.sha256(c).hexdigest() for c in chunker.cdc_chunks(io.BytesIO(edited))]
    assert len(before) > 10
    assert len([c for c in after if c not in before]) <= 2  # only the chunk(s) around the insertion


def test_fixed_chunks_are_page_aligned():
    params = chunker.fixed_parameters(4096)
    assert params["size"] % 4096 == 0
    pieces = list(chunker.fixed_chunks(io.BytesIO(b"x" * (params["size"] * 2 + 100)), params["size"]))
    assert [len(p) for p in pieces] == [params["size"], params["size"], 100]


def _blocks(data, size):
    return [data[i:i + size] for i in range(0, len(data), size)]


def test_sqlite_incremental_stores_only_changed_pages(tmp_path, bim_generator, repo_path):
    path = str(tmp_path / "walls.db")
    bim_generator.populate_sqlite(path, WALLS, seed=3)
    params = ConnectionParams(engine="sqlite", sqlite_path=path)
    full = run_backup(params, repo_path, {"type": "full"})
    repo = Repository(repo_path)
    full_manifest = repo.load_manifest(full["backup_id"])
    before_chunks = repo.list_chunks()
    import sqlite3
    with sqlite3.connect(path) as conn:  # a contiguous 1% of the walls
        conn.execute("UPDATE walls SET thickness_mm = thickness_mm + 1 WHERE id IN "
                     "(SELECT id FROM walls ORDER BY id LIMIT ? OFFSET ?)", (WALLS // 100, WALLS // 2))
    incr = run_backup(params, repo_path, {"type": "incremental"})
    assert incr["type"] == "incremental" and incr["parent_id"] == full["backup_id"]
    incr_manifest = repo.load_manifest(incr["backup_id"])
    size = incr_manifest["streams"]["database"]["chunker"]["size"]
    old = _blocks(repo.open_stream(full_manifest).read(), size)
    new = _blocks(repo.open_stream(incr_manifest).read(), size)
    changed = {hashlib.sha256(b).hexdigest() for i, b in enumerate(new) if i >= len(old) or old[i] != b}
    expected_new = changed - before_chunks
    assert repo.list_chunks() - before_chunks == expected_new
    assert incr["new_chunks"] == len(expected_new) > 0
    assert incr["new_stored_bytes"] <= 0.25 * full["new_stored_bytes"]  # 256 KiB chunks of a ~2.5 MB file


def test_postgresql_incremental_stores_only_changed_chunks(bim_generator, repo_path, pg_admin):
    name = "bimtest_bk_%s" % uuid.uuid4().hex[:10]
    pg_admin.execute('CREATE DATABASE "%s"' % name)
    try:
        bim_generator.populate_postgresql("host=127.0.0.1 port=5432 user=postgres dbname=%s" % name, PG_WALLS, seed=3)
        params = ConnectionParams(engine="postgresql", db_host="127.0.0.1", db_port=5432, db_user="postgres",
                                  db_name=name)
        full = run_backup(params, repo_path, {"type": "full"})
        repo = Repository(repo_path)
        full_chunks = set(Repository.manifest_chunks(repo.load_manifest(full["backup_id"])))
        import psycopg
        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=%s" % name, autocommit=True) as conn:
            conn.execute("UPDATE walls SET thickness_mm = thickness_mm + 1 WHERE id IN "
                         "(SELECT id FROM walls ORDER BY id LIMIT %s OFFSET %s)", (PG_WALLS // 100, PG_WALLS // 2))
        incr = run_backup(params, repo_path, {"type": "incremental"})
        incr_chunks = set(Repository.manifest_chunks(repo.load_manifest(incr["backup_id"])))
        assert incr["new_chunks"] == len(incr_chunks - full_chunks)
        assert incr["reused_chunks"] >= len(incr_chunks & full_chunks)
        # An UPDATE moves the new row versions (physical order is what pg_dump dumps): the dump changes
        # at the header (timestamps), where the rows were and where they went; nothing else.
        assert full["new_chunks"] >= 30
        assert incr["new_chunks"] <= 6
        assert incr["new_stored_bytes"] <= 0.20 * full["new_stored_bytes"]
    finally:
        pg_admin.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
