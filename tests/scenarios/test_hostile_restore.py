# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Swap restores with configuration files on the fleet, attacked for real through ansible-playbook:
an unreadable files stream, a kill -9 of the restore module in the files step, a database named
with ``=``, a SQLite path with ``?`` and ``#``. Each test checks the operator's invariants: the live
database is the old one or the backup's (rows and digests), nothing outside the target changed,
and no good backup was lost."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import signal
import subprocess
import time

import pytest

import restore_helpers as rh
from damage import flip_chunk_byte
from conftest import PREREQUISITES, _tool, ansible_env
from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine
from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import Repository
from ansible_collections.bim.wall_system.plugins.module_utils.restore.targets import make_target

RESTORE_PLAYBOOK = """
- name: Swap restore with the configuration files
  hosts: "{{ restore_host }}"
  gather_facts: false
  # the collection's one mapping of bim_db_* (role prerequisites), as a user's own play would set it
  module_defaults:
    group/bim.wall_system.database: "{{ __bim_db_connection }}"
""" + PREREQUISITES + """  tasks:
    - name: Restore
      bim.wall_system.restore:
        repository: "{{ bim_backup_repository }}"
        backup_id: "{{ restore_backup_id }}"
        mode: swap
        restore_files: true
        files_root: /
        keep_restore_points: 2
        state_dir: "{{ restore_state_dir }}"
      register: restored
      ignore_errors: true

    - name: Hand the result to the test
      ansible.builtin.copy:
        content: "{{ restored | to_json }}"
        dest: "{{ restore_result_dir }}/{{ inventory_hostname }}.json"
        mode: "0600"
      delegate_to: localhost
"""


def _tree(folder):
    """{relative path: (mode, uid, gid, sha256)} of every entry below ``folder``."""
    out = {}
    for base, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(base, name)
            st = os.lstat(path)
            digest = None
            if os.path.isfile(path) and not os.path.islink(path):
                sha = hashlib.sha256()
                with open(path, "rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        sha.update(block)
                digest = sha.hexdigest()
            out[os.path.relpath(path, folder)] = (st.st_mode, st.st_uid, st.st_gid, digest)
    return out


class Host:
    """One fleet host prepared for a files restore: a configuration folder, a folder beside it that
    must never change, its own restore state dir; reset afterwards."""

    def __init__(self, fleet, name, tmp_path, db_name=None, sqlite_path=None):
        self.fleet, self.name, self.tmp_path = fleet, name, tmp_path
        self.params = rh.params_of(fleet, name, db_name=db_name or "bim_walls")
        if sqlite_path:
            self.params = dataclasses.replace(self.params, sqlite_path=sqlite_path)
        self.extra = {}
        self.taken = []  # backup ids this test took (some of them damaged on purpose): removed after
        if db_name:
            self.extra["bim_db_name"] = db_name
        if sqlite_path:
            self.extra["bim_sqlite_path"] = sqlite_path
        self.conf = fleet.hdir(name, "hostile", "conf")
        self.outside = fleet.hdir(name, "hostile", "outside")
        self.state = fleet.hdir(name, "hostile", "restore-state")
        shutil.rmtree(fleet.hdir(name, "hostile"), ignore_errors=True)
        os.makedirs(self.conf)
        os.makedirs(self.outside)
        with open(os.path.join(self.outside, "secret"), "w") as handle:
            handle.write("never touched\n")
        self.write("app.conf", "from the backup\n", 0o640)

    def write(self, name, text, mode=0o644):
        path = os.path.join(self.conf, name)
        with open(path, "w") as handle:
            handle.write(text)
        os.chmod(path, mode)
        return path

    def read(self, name):
        with open(os.path.join(self.conf, name)) as handle:
            return handle.read()

    def backup(self, run_playbook):
        extra = dict(self.extra, backup_include_paths=[self.conf])
        taken = rh.take_backup(self.fleet, run_playbook, self.tmp_path, self.name, extra=extra)
        self.taken.append(taken["id"])
        return taken

    def restore_vars(self, backup_id, out):
        return dict(self.extra, restore_host=self.name, restore_backup_id=backup_id, restore_state_dir=self.state,
                    restore_result_dir=str(out))

    def restore(self, run_playbook, backup_id):
        out = self.tmp_path / ("restored-%d" % time.monotonic_ns())
        out.mkdir()
        playbook = self.tmp_path / "restore.yml"
        playbook.write_text(RESTORE_PLAYBOOK)
        result = run_playbook(str(playbook), extra_vars=self.restore_vars(backup_id, out))
        assert result.rc == 0, str(result)
        return json.loads((out / ("%s.json" % self.name)).read_text())

    def digests(self, like=None):
        """The live digests; ``like``: a manifest to take them as (``rh.digests_like``)."""
        target = make_target(self.params, state_dir=self.state)
        if not target.live_exists():
            return None
        with open_engine(self.params) as eng:
            return rh.digests_like(eng, like)

    def change_data(self):
        sql = "UPDATE walls SET name = name || ' (edited)' WHERE id <= 5"
        if self.params.engine == "sqlite":
            import sqlite3
            conn = sqlite3.connect(self.params.sqlite_path)
            with conn:
                conn.execute(sql)
            conn.close()
            return
        import psycopg
        with psycopg.connect(host=self.params.db_socket_dir, user="postgres", password=self.fleet.password,
                             dbname=self.params.db_name, autocommit=True) as conn:
            conn.execute(sql)

    def target(self):
        return make_target(self.params, state_dir=self.state)

    def point_digests(self, point):
        """Digests of restore point ``point`` (a PostgreSQL one is opened for the read)."""
        if self.params.engine == "sqlite":
            params = dataclasses.replace(self.params, sqlite_path=point)
        else:
            import psycopg
            with psycopg.connect(host=self.params.db_socket_dir, user="postgres", password=self.fleet.password,
                                 dbname="postgres", autocommit=True) as admin:
                admin.execute('ALTER DATABASE "%s" ALLOW_CONNECTIONS true' % point)
            params = dataclasses.replace(self.params, db_name=point)
        with open_engine(params) as eng:
            return eng.table_digests()

    def leftovers(self):
        target = self.target()
        return (target.pending_journal(), os.path.exists(os.path.join(self.state, "%s.files.json" % target.key)),
                os.path.exists(os.path.join(self.state, "files-staging", target.key)))

    def good_backups(self):
        repo = Repository(self.fleet.hosts[self.name]["backup_repository"])
        return {m["id"]: m for m in repo.list_backups()}

    def cleanup(self):
        target = self.target()
        for point in target.restore_points():
            target.drop(point)
        # the host's repository is shared with later scenarios (verify_backups checks every backup)
        repo = Repository(self.fleet.hosts[self.name]["backup_repository"])
        with repo.lock("test cleanup"):
            for backup_id in self.taken:
                repo.remove_backup(backup_id)
            repo.prune()
        shutil.rmtree(self.fleet.hdir(self.name, "hostile"), ignore_errors=True)
        self.fleet.reset(self.name)


@pytest.fixture
def prepared(fleet, tmp_path):
    made = []

    def prepare(name, **kwargs):
        host = Host(fleet, name, tmp_path, **kwargs)
        made.append(host)
        return host

    yield prepare
    for host in made:
        host.cleanup()


def _damage(host, backup, how):
    """A later backup whose files stream is damaged: a flipped byte in its chunk, or a forged
    (unkeyed) manifest whose files stream is not a tar."""
    repo = Repository(host.fleet.hosts[host.name]["backup_repository"])
    manifest = repo.load_manifest(backup["id"])
    if how == "corrupt_chunk":
        flip_chunk_byte(repo.path, manifest["streams"]["files"]["chunks"][0][0])
        return
    from ansible_collections.bim.wall_system.plugins.module_utils.repository.writer import ChunkSession
    chunks, size = ChunkSession(repo, workers=1).store_stream([os.urandom(8192)])
    manifest["streams"]["files"] = {"kind": "tar", "size": size, "chunks": chunks}
    repo.write_manifest({k: v for k, v in manifest.items() if k != "checksum"})


@pytest.mark.parametrize("name, how", [("lite1", "corrupt_chunk"), ("pg1", "not_a_tar")])
def test_an_unreadable_files_stream_never_swaps(fleet, run_playbook, prepared, name, how):
    host = prepared(name)
    good = host.backup(run_playbook)
    host.write("app.conf", "second\n", 0o640)
    bad = host.backup(run_playbook)
    _damage(host, bad, how)
    host.restore(run_playbook, good["id"])  # a restore point exists, and must survive
    points = host.target().restore_points()
    host.change_data()
    host.write("app.conf", "edited\n", 0o600)
    live, conf, outside = host.digests(), _tree(host.conf), _tree(host.outside)

    result = host.restore(run_playbook, bad["id"])

    assert result["failed"] and "nothing was swapped" in result["msg"], result
    assert host.digests() == live  # rows and digests of every table unchanged
    assert _tree(host.conf) == conf and _tree(host.outside) == outside
    assert host.target().restore_points() == points  # none pruned, none added
    assert host.leftovers() == (None, False, False)
    backups = host.good_backups()
    assert good["id"] in backups
    assert Repository(fleet.hosts[name]["backup_repository"]).verify_checksums([backups[good["id"]]]) == {
        good["id"]: []}


def _popen_restore(fleet, host, backup_id, tmp_path):
    out = tmp_path / "killed"
    out.mkdir()
    playbook = tmp_path / "restore.yml"
    playbook.write_text(RESTORE_PLAYBOOK)
    cmd = [_tool("ansible-playbook"), "-i", fleet.inventory, "-e", json.dumps(host.restore_vars(backup_id, out)),
           str(playbook)]
    return subprocess.Popen(cmd, cwd=str(tmp_path), env=ansible_env(fleet), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True), out


def _module_pid(host, playbook):
    """The restore module's process while ``playbook`` runs: the holder of the target's lock (the
    module writes its pid there and keeps the file open). It runs under the sshd the playbook's
    ssh connection reached (pipelined: no AnsiballZ file name on its command line)."""
    lock = os.path.join(host.state, "%s.lock" % host.target().key)
    try:
        with open(lock) as handle:
            pid = int(handle.read().strip() or 0)
        holds = any(os.path.realpath(os.path.join("/proc/%d/fd" % pid, fd)) == lock
                    for fd in os.listdir("/proc/%d/fd" % pid))
        parent = pid
        under_sshd = False
        while parent > 1 and not under_sshd:
            with open("/proc/%d/stat" % parent) as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            parent = int(fields[1])
            with open("/proc/%d/comm" % parent) as handle:
                under_sshd = handle.read().strip().startswith("sshd")
    except (OSError, ValueError):
        return None
    if not (holds and under_sshd) or playbook.poll() is not None:
        return None
    return pid


@pytest.mark.parametrize("name, moment", [("lite1", "staging"), ("lite1", "install"), ("pg1", "install")])
def test_kill_9_in_the_files_step_leaves_the_old_or_the_new_never_a_mix(fleet, run_playbook, prepared, tmp_path,
                                                                        name, moment):
    host = prepared(name)
    # A large file makes the files step last long enough to be hit (zeros: a tiny repository).
    with open(os.path.join(host.conf, "large.bin"), "wb") as handle:
        handle.truncate(512 << 20)
    backup = host.backup(run_playbook)
    os.unlink(os.path.join(host.conf, "large.bin"))
    host.change_data()
    host.write("app.conf", "edited\n", 0o600)
    before, conf, outside = host.digests(), _tree(host.conf), _tree(host.outside)
    expected = rh.manifest_digests(backup)
    target = host.target()
    staging = os.path.join(host.state, "files-staging", target.key)
    journal = os.path.join(host.state, "%s.files.json" % target.key)

    playbook, out = _popen_restore(fleet, host, backup["id"], tmp_path)
    killed = None
    try:
        while playbook.poll() is None and killed is None:
            reached = os.path.isdir(staging) if moment == "staging" else _journal_step(journal) == "install"
            pid = _module_pid(host, playbook) if reached else None
            if pid:
                os.kill(pid, signal.SIGKILL)
                killed = pid
            time.sleep(0.002)
        output = playbook.communicate(timeout=600)[0]
    finally:
        if playbook.poll() is None:
            playbook.kill()
    assert killed, "the files step was never seen; output:\n" + output[-3000:]
    result = json.loads((out / ("%s.json" % name)).read_text())
    assert result["failed"], result

    # Right after the kill the live database is the old one or the backup's, nothing else.
    assert host.digests() == before or host.digests(like=backup) == expected
    assert _tree(host.outside) == outside
    if moment == "staging":
        assert host.digests() == before and _tree(host.conf) == conf

    # The next run repairs from the journal, then restores: the backup's data and files.
    rerun = host.restore(run_playbook, backup["id"])
    assert not rerun.get("failed"), rerun
    assert host.digests(like=backup) == expected
    assert host.read("app.conf") == "from the backup\n"
    assert os.path.getsize(os.path.join(host.conf, "large.bin")) == 512 << 20
    assert _tree(host.outside) == outside
    assert host.leftovers() == (None, False, False)
    # The old live data was not lost: a restore point holds it.
    assert before in [host.point_digests(p) for p in host.target().restore_points()]
    assert backup["id"] in host.good_backups()


def _journal_step(path):
    try:
        with open(path) as handle:
            return json.load(handle).get("step")
    except (OSError, ValueError):
        return None


def test_a_database_named_with_an_equals_sign_restores(fleet, run_playbook, prepared):
    import generate
    import psycopg
    name = "bim=walls x"
    params = rh.params_of(fleet, "pg1")
    with psycopg.connect(host=params.db_socket_dir, user="postgres", password=fleet.password, dbname="postgres",
                         autocommit=True) as admin:
        admin.execute('DROP DATABASE IF EXISTS "%s"' % name)
        admin.execute('CREATE DATABASE "%s"' % name)
    try:
        generate.populate_postgresql(psycopg.conninfo.make_conninfo(host=params.db_socket_dir, user="postgres",
                                                                    password=fleet.password, dbname=name), 300, seed=5)
        host = prepared("pg1", db_name=name)
        bim_walls = rh.live_digests(fleet, "pg1")
        backup = host.backup(run_playbook)
        host.change_data()
        before = host.digests()
        assert host.digests(like=backup) != rh.manifest_digests(backup)

        result = host.restore(run_playbook, backup["id"])

        assert not result.get("failed"), result
        assert result["verified"] and result["restore_point"]
        assert host.digests(like=backup) == rh.manifest_digests(backup)
        assert host.point_digests(result["restore_point"]) == before
        assert rh.live_digests(fleet, "pg1") == bim_walls  # the host's other database untouched
    finally:
        with psycopg.connect(host=params.db_socket_dir, user="postgres", password=fleet.password, dbname="postgres",
                             autocommit=True) as admin:
            for (db,) in admin.execute("SELECT datname FROM pg_database WHERE datname = %s OR left(datname, %s) = %s",
                                       (name, len(name) + 2, name + "__")).fetchall():
                admin.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % db)


def test_a_sqlite_path_with_question_mark_and_hash_restores_and_verifies(fleet, run_playbook, prepared):
    import generate
    path = fleet.hdir("lite1", "data", "odd?name#1.db")
    if os.path.exists(path):
        os.unlink(path)
    generate.populate_sqlite(path, 300, seed=5)
    try:
        host = prepared("lite1", sqlite_path=path)
        lite1 = rh.live_digests(fleet, "lite1")
        backup = host.backup(run_playbook)
        host.change_data()
        before = host.digests()

        result = host.restore(run_playbook, backup["id"])

        assert not result.get("failed"), result
        assert result["verified"] and result["verification"] == "full"
        assert all(t["matches"] for t in result["tables"].values())
        assert host.digests(like=backup) == rh.manifest_digests(backup)
        assert host.point_digests(result["restore_point"]) == before
        assert rh.live_digests(fleet, "lite1") == lite1  # the host's own database untouched
    finally:
        for leftover in [path] + [p for p in os.listdir(os.path.dirname(path)) if p.startswith("odd?name#1.db")]:
            full = os.path.join(os.path.dirname(path), leftover)
            if os.path.exists(full):
                os.unlink(full)
