# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Data offsets filled into archives that a real pg_dump 15 wrote to a pipe, checked against the
offsets pg_dump itself writes when it can seek, and restored by a real parallel pg_restore."""

from __future__ import annotations

import os
import subprocess
import uuid

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql import pg_custom_archive
from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine
from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_tools import libpq_environment
from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_engine import PostgresEngine


def _dump(params, path, *options, to_pipe=True):
    """pg_dump -Fc of ``params``' database into ``path``, through a pipe or with -f."""
    tool = PostgresEngine(params).pg_tool("pg_dump")
    cmd = [tool, "-Fc"] + list(options)
    env = libpq_environment(params)
    if to_pipe:  # a real pipe, as in a backup: pg_dump cannot seek back (a redirected file can)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env=env)
        with open(path, "wb") as out:
            out.write(proc.stdout.read())
        assert proc.wait() == 0
    else:
        subprocess.run(cmd + ["-f", path], env=env, check=True)


def fill_data_offsets(path, block_size=4 * 1024 * 1024):
    """Feed archive file ``path`` to a DataOffsetFinder in blocks, as a restore's staging feeds
    what it writes, and fill the offsets in; returns what ``fill_in`` returns."""
    finder = pg_custom_archive.DataOffsetFinder()
    with open(path, "r+b") as handle:
        while True:
            block = handle.read(block_size)
            if not block:
                break
            finder.feed(block)
        return finder.fill_in(handle.fileno())


def _offsets(path):
    """{dump_id: (flag, offset)} of the entries with data."""
    with open(path, "rb") as handle:
        reader = pg_custom_archive._TocReader(handle.read())
    reader.header()
    found = {}
    for dump_id, _desc, flag_at, flag in reader.entries():
        if flag != 3:  # K_OFFSET_NO_DATA
            found[dump_id] = (flag, int.from_bytes(reader.data[flag_at + 1:flag_at + 1 + reader.off_size], "little"))
    return found


# Blocks of 7 and 4099 bytes put block headers and the table of contents across block boundaries.
@pytest.mark.parametrize("block_size", [7, 4099, 4 * 1024 * 1024])
def test_offsets_equal_those_pg_dump_writes_to_a_file(pg_conn_params, tmp_path, block_size):
    piped, seekable = str(tmp_path / "piped.dump"), str(tmp_path / "file.dump")
    _dump(pg_conn_params, piped, "-Z0")
    _dump(pg_conn_params, seekable, "-Z0", to_pipe=False)
    before = _offsets(piped)
    assert before and all(flag == pg_custom_archive.OFFSET_NOT_SET for flag, _o in before.values())

    patched = fill_data_offsets(piped, block_size=block_size)

    assert patched == len(before)
    assert _offsets(piped) == _offsets(seekable)
    assert os.path.getsize(piped) == os.path.getsize(seekable)
    # A second call finds nothing left to do.
    assert fill_data_offsets(piped) == 0


def test_patched_archive_restores_in_parallel(pg_conn_params, tmp_path, pg_admin):
    piped = str(tmp_path / "piped.dump")
    _dump(pg_conn_params, piped, "-Z0")
    assert fill_data_offsets(piped) > 0
    name = "bimtest_offsets_%s" % uuid.uuid4().hex[:8]
    pg_admin.execute('CREATE DATABASE "%s" TEMPLATE template0' % name)
    try:
        engine = PostgresEngine(pg_conn_params)
        engine.restore_archive(name, archive_path=piped, jobs=2)
        with open_engine(pg_conn_params) as source, open_engine(engine.engine_for_database(name).params) as copy:
            assert copy.table_digests() == source.table_digests()
    finally:
        pg_admin.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)


@pytest.mark.parametrize("case", ["compressed", "not_an_archive", "empty", "truncated"])
def test_archives_it_cannot_read_safely_are_left_alone(pg_conn_params, tmp_path, case):
    path = str(tmp_path / "archive.dump")
    if case == "compressed":
        _dump(pg_conn_params, path, "-Z1")
    elif case == "not_an_archive":
        with open(path, "wb") as out:
            out.write(b"PGDMX" + os.urandom(4096))
    elif case == "empty":
        open(path, "wb").close()
    else:
        _dump(pg_conn_params, path, "-Z0")
        with open(path, "r+b") as handle:
            handle.truncate(200)
    with open(path, "rb") as handle:
        before = handle.read()

    assert fill_data_offsets(path, block_size=1024) == 0

    with open(path, "rb") as handle:
        assert handle.read() == before
