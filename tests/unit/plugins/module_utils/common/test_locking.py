# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one flock helper, against another real process that holds the lock, then is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.common.locking import LockBusy, file_lock
from ansible_collections.bim.wall_system.plugins.module_utils.restore.errors import RestoreError
from ansible_collections.bim.wall_system.plugins.module_utils.restore.journal import TargetLock

HOLDER = """
import os, sys, time
from ansible_collections.bim.wall_system.plugins.module_utils.common.locking import file_lock
with file_lock(sys.argv[1]) as fd:
    os.write(fd, str(os.getpid()).encode())
    print("held", flush=True)
    time.sleep(60)
"""


@pytest.fixture
def holder(tmp_path, collection_env):
    """A child process holding the flock on tmp_path/the.lock until killed."""
    path = str(tmp_path / "the.lock")
    child = subprocess.Popen([sys.executable, "-c", HOLDER, path], env=collection_env, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        yield path, child
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()


def test_a_held_lock_is_busy_then_free_once_its_holder_dies(holder):
    path, child = holder
    with pytest.raises(LockBusy):
        with file_lock(path, blocking=False):
            pass
    with pytest.raises(LockBusy):
        with file_lock(path, timeout=0.3):
            pass
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    with file_lock(path, timeout=5) as fd:  # the kernel released it with the dead holder
        assert fd >= 0


def test_restore_target_lock_names_the_holder(holder):
    path, child = holder
    with pytest.raises(RestoreError, match="held by pid %d" % child.pid):
        with TargetLock(path, wait=0.3):
            pass
