# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""sqlite-pages digests: taken by a backup from the pages it stores, verified on the image a
restore writes, against real SQLite files (fixtures in tests/unit/conftest.py)."""

from __future__ import annotations

import shutil
import sqlite3

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError
from ansible_collections.bim.wall_system.plugins.module_utils.database.sqlite.sqlite_pages import PageDigests


def _backup(params, tmp_path):
    """(stored image, digests) of a backup of ``params``' database, as dump_database makes them."""
    stored = bytearray()

    def store(reader, page_size=None):
        while True:
            block = reader.read(page_size * 7)  # blocks of a few pages, as the fixed chunker reads
            if not block:
                return [], len(stored), {}
            stored.extend(block)

    with open_engine(params) as engine:
        _stream, digests = engine.dump_database(store, str(tmp_path), "b1")
    return bytes(stored), digests


def _restored(params, tmp_path, image, name):
    path = str(tmp_path / name)
    with open(path, "wb") as handle:
        handle.write(image)
    return params.__class__(engine="sqlite", sqlite_path=path)


def _verify(params, recorded):
    with open_engine(params) as engine:
        return engine.table_digests(tuple(recorded), forms={t: e["digest_form"] for t, e in recorded.items()},
                                    recorded=recorded)


def test_backup_digests_come_from_the_stored_pages_and_verify_on_the_restored_image(sqlite_conn_params, tmp_path):
    image, recorded = _backup(sqlite_conn_params, tmp_path)
    assert {e["digest_form"] for e in recorded.values()} == {"sqlite-pages"}
    with open_engine(sqlite_conn_params) as engine:
        assert {t: e["rows"] for t, e in recorded.items()} == engine.row_counts(tuple(recorded))
    copy = _restored(sqlite_conn_params, tmp_path, image, "restored.db")
    assert _verify(copy, recorded) == recorded
    # the restore gives the file its journal mode back (page 1's header only): still equal
    with sqlite3.connect(copy.sqlite_path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
    assert _verify(copy, recorded) == recorded


def test_a_changed_row_or_page_shows(sqlite_conn_params, tmp_path):
    image, recorded = _backup(sqlite_conn_params, tmp_path)
    copy = _restored(sqlite_conn_params, tmp_path, image, "changed.db")
    with sqlite3.connect(copy.sqlite_path) as conn:
        conn.execute("UPDATE walls SET thickness_mm = thickness_mm + 0.5 WHERE id = (SELECT min(id) FROM walls)")
    found = _verify(copy, recorded)
    assert found["walls"]["digest"] != recorded["walls"]["digest"]
    assert all(found[t] == recorded[t] for t in recorded if t != "walls")


def test_the_digest_is_of_the_image_not_the_rows(sqlite_conn_params, tmp_path):
    """The same rows in a rewritten file digest differently: only a restore's verification, which
    compares an image with itself, uses this form; old manifests keep the row digests."""
    image, recorded = _backup(sqlite_conn_params, tmp_path)
    copy = _restored(sqlite_conn_params, tmp_path, image, "vacuumed.db")
    with open_engine(copy) as engine:
        rows_before = engine.table_digests()
    conn = sqlite3.connect(copy.sqlite_path, isolation_level=None)
    conn.execute("DELETE FROM logs WHERE id % 2 = 0")
    conn.execute("VACUUM")
    conn.close()
    with open_engine(copy) as engine:
        assert engine.table_digests()["walls"] == rows_before["walls"]  # the row digest: unchanged rows
    assert _verify(copy, recorded)["walls"]["digest"] != recorded["walls"]["digest"]


def test_forms_are_not_mixed_and_a_wal_with_pages_is_refused(sqlite_conn_params, tmp_path):
    image, recorded = _backup(sqlite_conn_params, tmp_path)
    copy = _restored(sqlite_conn_params, tmp_path, image, "wal.db")
    with open_engine(copy) as engine:
        with pytest.raises(DatabaseError, match="mixes"):
            engine.table_digests(("walls", "logs"), forms={"walls": "sqlite-pages", "logs": None})
    shutil.copy(copy.sqlite_path, copy.sqlite_path + ".keep")
    writer = sqlite3.connect(copy.sqlite_path)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("UPDATE logs SET message = message || '!' WHERE id = 1")
    writer.commit()
    try:
        with pytest.raises(DatabaseError, match="write-ahead log"):
            _verify(copy, recorded)
    finally:
        writer.close()


def test_page_digests_take_any_block_sizes():
    pages = [bytes([n]) * 512 for n in range(1, 6)]
    whole = PageDigests(512)
    whole.feed(b"".join(pages))
    pieces = PageDigests(512)
    data = b"".join(pages)
    for start in range(0, len(data), 333):
        pieces.feed(data[start:start + 333])
    assert pieces.pages == whole.pages == 5
    assert pieces.table_digest([2, 4]) == whole.table_digest([2, 4]) != whole.table_digest([2, 5])
    with pytest.raises(DatabaseError, match="beyond"):
        whole.table_digest([6])
