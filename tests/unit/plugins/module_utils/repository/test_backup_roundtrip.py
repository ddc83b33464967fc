# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Round trips through the repository for both engines: back up, rebuild the stream, restore it
into a scratch database, compare the table digests with the manifest's."""

from __future__ import annotations

import sqlite3
import subprocess
import uuid

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import ConnectionParams
from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine
from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_tools import find_pg_tool
from ansible_collections.bim.wall_system.plugins.module_utils.repository.backup import run_backup
from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import Repository

psycopg = pytest.importorskip("psycopg")


def _admin(params):
    return psycopg.connect(host=params.db_host, port=params.db_port, user=params.db_user, dbname="postgres",
                           autocommit=True)


def restore_postgresql(repo, manifest, params):
    """pg_restore the rebuilt archive into a new database; returns its ConnectionParams."""
    name = "bimtest_bk_%s" % uuid.uuid4().hex[:10]
    with _admin(params) as admin:
        admin.execute('CREATE DATABASE "%s"' % name)
    target = ConnectionParams(engine="postgresql", db_host=params.db_host, db_port=params.db_port,
                              db_user=params.db_user, db_name=name)
    proc = subprocess.Popen([find_pg_tool("pg_restore"), "--no-owner", "-h", params.db_host, "-p",
                             str(params.db_port), "-U", params.db_user, "-d", name],
                            stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    with repo.open_stream(manifest, "database") as reader:
        while True:
            block = reader.read(1 << 20)
            if not block:
                break
            proc.stdin.write(block)
    proc.stdin.close()
    err = proc.stderr.read()
    assert proc.wait() == 0, err
    return target


def drop_database(params):
    with _admin(params) as admin:
        admin.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % params.db_name)


def test_postgresql_round_trip(pg_conn_params, repo_path, repository_sound):
    result = run_backup(pg_conn_params, repo_path, {"type": "full"})
    assert result["type"] == "full" and result["parent_id"] is None
    repo = Repository(repo_path)
    manifest = repo.load_manifest(result["backup_id"])
    assert manifest["tables"]["walls"]["rows"] == 300
    # the digests of the dump's own data as pg_dump framed it, with their form, in a version-5
    # manifest older releases refuse
    walls = manifest["tables"]["walls"]
    assert walls["digest_form"] == "dump-framed" and walls["digest_encoding"] == "UTF8" and manifest["format_version"] == 5
    assert repo.stream_size(manifest, "database") == manifest["source_bytes"]
    target = restore_postgresql(repo, manifest, pg_conn_params)
    try:
        with open_engine(target) as engine:
            tables = manifest["tables"]
            assert engine.table_digests(tuple(tables), forms={t: e["digest_form"] for t, e in tables.items()},
                                        recorded=tables) == {
                t: {"rows": e["rows"], "digest": e["digest"], "digest_form": e["digest_form"]} for t, e in tables.items()}
    finally:
        drop_database(target)
    repository_sound(repo_path)


def test_sqlite_round_trip(sqlite_conn_params, repo_path, tmp_path):
    result = run_backup(sqlite_conn_params, repo_path, {"type": "full"})
    repo = Repository(repo_path)
    manifest = repo.load_manifest(result["backup_id"])
    restored = str(tmp_path / "restored.db")
    with repo.open_stream(manifest) as reader, open(restored, "wb") as out:
        while True:
            block = reader.read(100000)
            if not block:
                break
            out.write(block)
    assert sqlite3.connect(restored).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    tables = manifest["tables"]
    with open_engine(ConnectionParams(engine="sqlite", sqlite_path=restored)) as engine:
        # the digests of the stored pages, taken as they were stored, verify on the written image
        assert engine.table_digests(tuple(tables), forms={t: e["digest_form"] for t, e in tables.items()}) == tables
        rows = engine.table_digests()
    with open_engine(sqlite_conn_params) as engine:
        assert engine.table_digests() == rows  # and the rows are the source's
    assert tables["walls"]["rows"] == 300 and tables["walls"]["digest_form"] == "sqlite-pages"
    assert manifest["format_version"] == 3
    assert manifest["streams"]["database"]["page_size"] > 0


def test_include_paths_stored_as_tar(sqlite_conn_params, repo_path, tmp_path):
    import io
    import tarfile
    conf = tmp_path / "etc"
    conf.mkdir()
    (conf / "app.yml").write_text("walls: true\n")
    (conf / "sub").mkdir()
    (conf / "sub" / "x.conf").write_text("x=1\n")
    result = run_backup(sqlite_conn_params, repo_path, {"include_paths": [str(conf)]})
    repo = Repository(repo_path)
    manifest = repo.load_manifest(result["backup_id"])
    data = repo.open_stream(manifest, "files").read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = tar.getnames()
        assert str(conf / "app.yml").lstrip("/") in names
        assert tar.extractfile(str(conf / "sub" / "x.conf").lstrip("/")).read() == b"x=1\n"


def test_pg_digest_is_the_copy_text_of_the_rows(pg_conn_params):
    """The canonical PostgreSQL text digest hashes COPY's text output of the rows in key order,
    escapes included, also for text full of backslashes and control characters; inside an
    exported snapshot it describes that snapshot, not later writes."""
    import hashlib
    awkward = ["back\\slash", "two \\\\ backslashes", "new\nline", "tab\there", "cr\rhere", "quote \" and '",
               "trailing backslash \\", "\\n literally", "uni code ✓ ß", "bell \x07 vt \x0b ff \x0c bs \x08",
               "\\" * 7]
    conninfo = dict(host=pg_conn_params.db_host, port=pg_conn_params.db_port, user=pg_conn_params.db_user,
                    dbname=pg_conn_params.db_name)
    with psycopg.connect(autocommit=True, **conninfo) as conn:
        for text in awkward:
            conn.execute("INSERT INTO logs (created_at, level, category, message) VALUES (now(), 'info', 'api', %s)",
                         (text,))
        conn.execute("SET TimeZone = 'UTC'")
        conn.execute("SET DateStyle = 'ISO, YMD'")
        texts = conn.execute("SELECT id::text, created_at::text, level, category, message FROM logs AS l ORDER BY l.id").fetchall()

    def copy_field(text):
        return (text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
                .replace("\x08", "\\b").replace("\x0c", "\\f").replace("\x0b", "\\v"))
    escaped = "".join("\t".join(copy_field(v) for v in row) + "\n" for row in texts)
    with open_engine(pg_conn_params) as engine:
        assert engine.table_digests(("logs",), forms={"logs": "copy-text"})["logs"] == {
            "rows": len(texts), "digest": hashlib.sha256(escaped.encode("utf-8")).hexdigest(), "digest_form": "copy-text"}
        digests = engine.table_digests()
        snapshot = engine.export_snapshot()
        try:
            with psycopg.connect(autocommit=True, **conninfo) as conn:
                conn.execute("DELETE FROM logs WHERE id = (SELECT min(id) FROM logs)")
            assert engine.table_digests(snapshot=snapshot) == digests
        finally:
            engine.release_snapshot()
        assert engine.table_digests()["logs"]["rows"] == len(texts) - 1
