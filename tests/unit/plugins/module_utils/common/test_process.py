# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A program killed by a signal is reported as such: a real pg_dump killed mid-stream."""

from __future__ import annotations

import os
import signal

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.common.process import describe_exit, failure_text
from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError


def test_exit_codes_and_signals_in_words():
    assert describe_exit(1) == "exit code 1"
    assert describe_exit(-9) == "killed by signal 9 (SIGKILL)"
    assert describe_exit(-200) == "killed by signal 200"
    assert failure_text("pg_dump", -15, "") == "pg_dump failed (killed by signal 15 (SIGTERM))"
    assert failure_text("pg_dump", 1, " no such table \n") == "pg_dump failed (exit code 1): no such table"


def test_pg_dump_killed_mid_stream_names_the_signal(pg_conn_params):
    engine = open_engine(pg_conn_params)
    engine.connect()
    try:
        dump = engine.open_dump_stream()
        assert dump.stdout.read(4096)  # the archive has begun
        os.kill(dump.proc.pid, signal.SIGKILL)  # our own child, by its PID
        with pytest.raises(DatabaseError) as caught:
            while dump.stdout.read(1 << 20):
                pass
            dump.finish()
    finally:
        engine.close()
    assert "pg_dump failed (killed by signal 9 (SIGKILL))" in str(caught.value)
    assert "rc=" not in str(caught.value)
