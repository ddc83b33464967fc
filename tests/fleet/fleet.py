# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The loopback test fleet: BIM hosts reached over real SSH, each with its own database and app.

    fleet.py up [--walls N] [--sqlite-hosts K] [--state-dir DIR] [--fresh]
    fleet.py down [--state-dir DIR]
    fleet.py status [--state-dir DIR]           exit 0 when every part is up, 1 otherwise
    fleet.py stop-db|start-db|stop-sshd|start-sshd|stop-app|start-app|reset HOST
    fleet.py set-app HOST '{"cache_hit_rate": 0.6}'
    fleet.py unit-start|unit-stop|unit-status HOST UNIT_FILE   a systemd unit's ExecStart, fleet-run

Hosts (every one its own sshd on ADDRESS:22, root with key auth; schema variant of generate.py):
    pg1      127.0.10.1   PostgreSQL 15 + PostGIS cluster on 127.0.10.1:5432, db bim_walls   seed
    pg2      127.0.10.2   same                                                          site
    lite1    127.0.10.3   SQLite file STATE/lite1/data/bim-walls.db                     seed
    lite2    127.0.10.4   SQLite file STATE/lite2/data/bim-walls.db                     site
    lite3..  127.0.10.20+ extra SQLite hosts (--sqlite-hosts K), for benchmarks         seed
    storage1 127.0.10.9   sshd only (group bim_storage), folder STATE/storage1/backups
Every BIM host runs the application stand-in (app_server.py) on ADDRESS:8080.

Run it with the Python that has psycopg (the dev venv). The managed hosts are bare: the inventory
names no interpreter, Ansible finds the system Python, and the role prerequisites (which every
shipped playbook runs first) builds each host's virtualenv under STATE/HOST/venv. Everything is local to 127.0.10.0/24 (--net or
BIM_FLEET_NET picks another loopback /24, with its own --state-dir / BIM_FLEET_STATE_DIR, for a
second fleet on the same machine).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import fcntl
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import appctl  # noqa: E402
import generate  # noqa: E402

# the fleet of this machine; BIM_FLEET_STATE_DIR names another (one per engineer sharing the machine)
DEFAULT_STATE_DIR = os.environ.get("BIM_FLEET_STATE_DIR") or "/var/tmp/bim-fleet"
PG_BIN = "/usr/lib/postgresql/15/bin"
SSHD = "/usr/sbin/sshd"
PG_PORT = 5432
APP_PORT = 8080
DB_NAME = "bim_walls"
DB_USER = "postgres"
DEFAULT_NET = "127.0.10"
# (name, last address byte, kind, schema variant of generate.py): each engine runs the guide's
# names (seed) on one host and an operator's own names (site) on another.
BASE_HOSTS = (
    ("pg1", 1, "postgresql", "seed"),
    ("pg2", 2, "postgresql", "site"),
    ("lite1", 3, "sqlite", "seed"),
    ("lite2", 4, "sqlite", "site"),
    ("storage1", 9, "storage", None),
)
EXTRA_SQLITE_BASE = 20  # lite3 = 127.0.10.20, lite4 = 127.0.10.21, ...
EXTRA_SQLITE_FIRST = 3
# The host that installs the collection's libraries from the controller's wheelhouse, with no
# package index reachable (the others install from the machine's index).
WHEELHOUSE_HOST = "pg2"
UNREACHABLE_INDEX = "http://127.0.0.1:9/simple/"  # the discard port: every connection is refused


class FleetError(Exception):
    pass


def host_plan(sqlite_hosts=0, net=DEFAULT_NET):
    """[(name, address, kind, variant)] of the fleet with K extra SQLite hosts, on the /24 NET."""
    if not 0 <= sqlite_hosts <= 200:
        raise FleetError("--sqlite-hosts must be between 0 and 200")
    if not re.match(r"^127\.\d{1,3}\.\d{1,3}$", net):
        raise FleetError("the fleet network must be a loopback /24 such as 127.0.10 (got %r)" % net)
    plan = [(name, "%s.%d" % (net, last), kind, variant) for name, last, kind, variant in BASE_HOSTS]
    for i in range(sqlite_hosts):
        plan.append(("lite%d" % (i + EXTRA_SQLITE_FIRST), "%s.%d" % (net, EXTRA_SQLITE_BASE + i), "sqlite", "seed"))
    return plan


def _pg_ids():
    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


def _chown_postgres(path):
    uid, gid = _pg_ids()
    os.chown(path, uid, gid)


def _run(cmd, as_postgres=False, check=True, timeout=120, env=None):
    kwargs = {}
    if as_postgres:
        uid, gid = _pg_ids()
        kwargs.update(user=uid, group=gid, extra_groups=[], cwd="/")
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, check=False,
                          stderr=subprocess.STDOUT, timeout=timeout, env=env, **kwargs)
    out = proc.stdout.decode("utf-8", "replace")
    if check and proc.returncode != 0:
        raise FleetError("%s failed (rc=%s): %s" % (" ".join(cmd), proc.returncode, out.strip()))
    return proc.returncode, out


def _port_open(address, port, timeout=0.5):
    try:
        with socket.create_connection((address, port), timeout=timeout):
            return True
    except OSError:
        return False


def _wait(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise FleetError("timed out after %ss waiting for %s" % (timeout, what))


def _read_pid(path, marker=None):
    """PID from a pid file if that process is alive and, with MARKER, its command line holds
    MARKER (a pid file left by a process that died may name an unrelated, newer process)."""
    try:
        with open(path, encoding="utf-8") as handle:
            pid = int(handle.read().split()[0])
        os.kill(pid, 0)
        if marker is not None:
            with open("/proc/%d/cmdline" % pid, "rb") as handle:
                if marker.encode("utf-8") not in handle.read():
                    return None
        return pid
    except (OSError, ValueError, IndexError):
        return None


def _write(path, text, mode=0o644):
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


class Fleet:
    """The fleet under one state folder; the same object serves fleet.py and the test fixtures."""

    def __init__(self, state_dir=DEFAULT_STATE_DIR):
        self.state_dir = os.path.abspath(state_dir)
        self.inventory = os.path.join(self.state_dir, "inventory.yml")
        self.ansible_cfg = os.path.join(self.state_dir, "ansible.cfg")
        self.client_key = os.path.join(self.state_dir, "client", "id_ed25519")
        self.password_file = os.path.join(self.state_dir, "pg-password")
        self.meta_file = os.path.join(self.state_dir, "fleet.json")

    # ------------------------------------------------------------------ layout
    def hdir(self, name, *parts):
        return os.path.join(self.state_dir, name, *parts)

    def load_meta(self):
        try:
            with open(self.meta_file, encoding="utf-8") as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return None

    @property
    def hosts(self):
        meta = self.load_meta()
        return meta["hosts"] if meta else {}

    def host(self, name):
        hosts = self.hosts
        if name not in hosts:
            raise FleetError("unknown host %r (fleet hosts: %s)" % (name, ", ".join(sorted(hosts)) or "none"))
        return hosts[name]

    @property
    def password(self):
        with open(self.password_file, encoding="utf-8") as handle:
            return handle.read().strip()

    # ------------------------------------------------------------------ up
    @contextlib.contextmanager
    def lock(self):
        """Serialize up/down of one fleet (parallel pytest workers, a CLI run beside a test run)."""
        fd = os.open(self.state_dir.rstrip("/") + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def ensure_up(self, walls=2000, sqlite_hosts=0, log=print):
        """Bring the fleet up unless it is up already; an existing fleet keeps its size."""
        with self.lock():
            if self.status()["up"]:
                return self.load_meta()
            meta = self.load_meta() or {}
            return self._up(walls=meta.get("walls", walls), sqlite_hosts=meta.get("sqlite_hosts", sqlite_hosts),
                            seed=meta.get("seed", 1), log=log)

    def up(self, walls=2000, sqlite_hosts=0, fresh=False, seed=1, net=None, log=print):
        with self.lock():
            if fresh and os.path.exists(self.state_dir):
                self._down(log=log)
            return self._up(walls=walls, sqlite_hosts=sqlite_hosts, seed=seed, net=net, log=log)

    def _up(self, walls=2000, sqlite_hosts=0, seed=1, net=None, log=print):
        started = time.monotonic()
        net = net or (self.load_meta() or {}).get("net") or os.environ.get("BIM_FLEET_NET", DEFAULT_NET)
        plan = host_plan(sqlite_hosts, net)
        os.makedirs(self.state_dir, exist_ok=True)
        os.chmod(self.state_dir, 0o755)  # postgres must reach its cluster folders
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        os.makedirs(os.path.join(self.state_dir, "cp"), mode=0o700, exist_ok=True)
        self._client_key()
        if not os.path.exists(self.password_file):
            _write(self.password_file, secrets.token_urlsafe(18) + "\n", 0o600)
        wanted = {entry[0]: entry[1] for entry in plan}
        for name in self._host_dirs():
            # a host of an earlier, larger fleet, or one whose name moved to another address
            # (lite2 was the first extra SQLite host before it joined the base fleet)
            if wanted.get(name) != self._listen_address(name):
                self._stop_host(name)
                shutil.rmtree(self.hdir(name), ignore_errors=True)

        hosts = {}
        errors = []
        workers = min(8, len(plan))
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(self._build_host, name, addr, kind, variant, walls, seed): name
                       for name, addr, kind, variant in plan}
            for future in concurrent.futures.as_completed(futures):
                name = futures[future]
                try:
                    hosts[name] = future.result()
                except Exception as exc:  # report every host's failure, not just the first
                    errors.append("%s: %s" % (name, exc))
        if errors:
            raise FleetError("fleet up failed:\n  " + "\n  ".join(sorted(errors)))
        ordered = {entry[0]: hosts[entry[0]] for entry in plan}
        meta = {"state_dir": self.state_dir, "net": net, "walls": walls, "seed": seed,
                "sqlite_hosts": sqlite_hosts, "python": sys.executable,
                "inventory": self.inventory, "ansible_cfg": self.ansible_cfg, "hosts": ordered}
        self._write_inventory(ordered)
        self._write_ansible_cfg()
        _write(self.meta_file, json.dumps(meta, indent=2, sort_keys=True) + "\n", 0o644)
        log("fleet up: %d hosts in %.1fs, inventory %s"
            % (len(ordered), time.monotonic() - started, self.inventory))
        return meta

    def _host_dirs(self):
        if not os.path.isdir(self.state_dir):
            return []
        return sorted(name for name in os.listdir(self.state_dir)
                      if os.path.isdir(self.hdir(name, "ssh")))

    def _client_key(self):
        os.makedirs(os.path.dirname(self.client_key), mode=0o700, exist_ok=True)
        if not os.path.exists(self.client_key):
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bim-fleet-client",
                  "-f", self.client_key])
        with open(self.client_key + ".pub", encoding="utf-8") as handle:
            _write(os.path.join(self.state_dir, "authorized_keys"), handle.read(), 0o644)

    def _build_host(self, name, addr, kind, variant, walls, seed):
        os.makedirs(self.hdir(name), exist_ok=True)
        os.chmod(self.hdir(name), 0o755)
        info = {"name": name, "address": addr, "kind": kind, "variant": variant,
                "engine": kind if kind in ("postgresql", "sqlite") else None}
        self._sshd(name, addr)
        if kind == "postgresql":
            self._postgresql(name, addr, walls, seed, variant)
            info.update(db_host=addr, db_port=PG_PORT, db_name=DB_NAME, db_user=DB_USER,
                        db_socket_dir=self.hdir(name, "run"), data_dir=self.hdir(name, "data"),
                        sqlite_path=None)
        elif kind == "sqlite":
            path = self._sqlite(name, walls, seed, variant)
            info.update(sqlite_path=path, data_dir=self.hdir(name, "data"))
        else:
            backups = self.hdir(name, "backups")
            os.makedirs(backups, mode=0o700, exist_ok=True)
            info.update(backups_dir=backups)
        if kind in ("postgresql", "sqlite"):
            app_dir = self._app(name, addr)
            info.update(app_url="http://%s:%d" % (addr, APP_PORT), app_dir=app_dir,
                        app_state_file=os.path.join(app_dir, "state.json"),
                        backup_repository=self.hdir(name, "repo"))
        return info

    # ------------------------------------------------------------------ sshd
    def _sshd(self, name, addr):
        sdir = self.hdir(name, "ssh")
        os.makedirs(sdir, mode=0o700, exist_ok=True)
        key = os.path.join(sdir, "ssh_host_ed25519_key")
        if not os.path.exists(key):
            _run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "bim-fleet-" + name, "-f", key])
        config = "\n".join([
            "# sshd of test fleet host %s (generated by tests/fleet/fleet.py)" % name,
            "ListenAddress %s:22" % addr,
            "HostKey %s" % key,
            "PidFile %s" % os.path.join(sdir, "sshd.pid"),
            "AuthorizedKeysFile %s" % os.path.join(self.state_dir, "authorized_keys"),
            "PermitRootLogin prohibit-password",
            "PubkeyAuthentication yes",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "UsePAM no",
            "StrictModes no",
            "UseDNS no",
            "PrintMotd no",
            "MaxStartups 200:30:400",
            "MaxSessions 100",
            "LogLevel ERROR",
            "Subsystem sftp internal-sftp",
            "",
        ])
        _write(os.path.join(sdir, "sshd_config"), config, 0o600)
        self.start_sshd(name, addr)

    def _sshd_pid(self, name):
        return _read_pid(self.hdir(name, "ssh", "sshd.pid"), marker=self.hdir(name, "ssh", "sshd_config"))

    def start_sshd(self, name, addr=None):
        addr = addr or self.host(name)["address"]
        if self._sshd_pid(name) and _port_open(addr, 22):
            return
        sdir = self.hdir(name, "ssh")
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
        _run([SSHD, "-f", os.path.join(sdir, "sshd_config"), "-E", os.path.join(sdir, "sshd.log")])
        _wait(lambda: _port_open(addr, 22), 15, "sshd of %s on %s:22" % (name, addr))

    def stop_sshd(self, name, addr=None):
        """Cut the host off: stop its sshd AND the sessions it serves (as a dead host would)."""
        addr = addr or self.host(name)["address"]
        pid = self._sshd_pid(name)
        if pid:
            os.kill(pid, signal.SIGTERM)
        for session in self._ssh_session_pids(addr):
            try:
                os.kill(session, signal.SIGKILL)
            except OSError:
                pass
        _wait(lambda: not _port_open(addr, 22) and not (pid and _alive(pid)), 15,
              "sshd of %s to stop" % name)

    @staticmethod
    def _ssh_session_pids(addr):
        """Server-side processes holding established TCP connections on ADDR:22 (from /proc,
        so no iproute2 is needed)."""
        local = "%08X:0016" % struct.unpack("<I", socket.inet_aton(addr))[0]
        inodes = set()
        try:
            with open("/proc/net/tcp", encoding="ascii") as handle:
                for line in handle.readlines()[1:]:
                    fields = line.split()
                    if fields[1] == local and fields[3] == "01":  # 01 = ESTABLISHED
                        inodes.add("socket:[%s]" % fields[9])
        except OSError:
            return set()
        pids = set()
        if not inodes:
            return pids
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            fd_dir = "/proc/%s/fd" % entry
            try:
                for fd in os.listdir(fd_dir):
                    if os.readlink(os.path.join(fd_dir, fd)) in inodes:
                        pids.add(int(entry))
                        break
            except OSError:
                continue
        return pids

    # ------------------------------------------------------------------ PostgreSQL
    def _pg_data(self, name):
        return self.hdir(name, "data")

    def _postgresql(self, name, addr, walls, seed, variant):
        data = self._pg_data(name)
        run = self.hdir(name, "run")
        if not os.path.exists(os.path.join(data, "PG_VERSION")):
            if os.path.exists(data):
                self._pg_stop(name)
                shutil.rmtree(data)
            shutil.rmtree(run, ignore_errors=True)
            try:
                os.unlink(self.hdir(name, "populated.json"))
            except OSError:
                pass
            os.makedirs(data, mode=0o700)
            _chown_postgres(data)
            os.makedirs(run, mode=0o755)
            _chown_postgres(run)
            pwfile = os.path.join(run, "initdb-pw")
            _write(pwfile, self.password + "\n", 0o600)
            _chown_postgres(pwfile)
            try:
                _run([os.path.join(PG_BIN, "initdb"), "-D", data, "-U", DB_USER, "-E", "UTF8",
                      "--locale=C.UTF-8", "--auth=scram-sha-256", "--pwfile", pwfile, "--no-sync",
                      "--no-instructions"], as_postgres=True)
            finally:
                os.unlink(pwfile)
            conf = "\n".join([
                "# test fleet host %s (tests/fleet/fleet.py)" % name,
                "listen_addresses = '%s'" % addr,
                "port = %d" % PG_PORT,
                "unix_socket_directories = '%s'" % run,
                "max_connections = 60",
                "shared_buffers = 64MB",
                "fsync = off",  # a test fleet: the machine does not crash under it
                "synchronous_commit = off",
                "max_wal_size = 1GB",
                "log_min_messages = warning",
                "log_line_prefix = '%m [%p] '",
                "",
            ])
            with open(os.path.join(data, "postgresql.conf"), "a", encoding="utf-8") as handle:
                handle.write(conf)
            hba = "\n".join([
                "# scram everywhere: a wrong password fails over the socket and over TCP alike",
                "local   all          all                    scram-sha-256",
                "host    all          all    127.0.0.0/8     scram-sha-256",
                "local   replication  all                    scram-sha-256",
                "host    replication  all    127.0.0.0/8     scram-sha-256",
                "",
            ])
            _write(os.path.join(data, "pg_hba.conf"), hba, 0o600)
            _chown_postgres(os.path.join(data, "pg_hba.conf"))
        self.start_db(name, addr)
        self._pg_populate(name, walls, seed, variant)

    def _pg_conninfo(self, name, dbname=DB_NAME):
        return "host=%s port=%d user=%s dbname=%s password=%s connect_timeout=5" % (
            self.hdir(name, "run"), PG_PORT, DB_USER, dbname, self.password)

    def _pg_populate(self, name, walls, seed, variant):
        import psycopg

        marker = self.hdir(name, "populated.json")
        want = {"walls": walls, "seed": seed, "variant": variant}
        try:
            with open(marker, encoding="utf-8") as handle:
                if json.load(handle) == want and self._pg_has_walls(name):
                    return
        except (OSError, ValueError):
            pass
        with psycopg.connect(self._pg_conninfo(name, "postgres"), autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS bim_walls WITH (FORCE)")
            conn.execute("CREATE DATABASE bim_walls")
        generate.populate_postgresql(self._pg_conninfo(name), walls, seed=seed, variant=variant)
        with psycopg.connect(self._pg_conninfo(name), autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
        _write(marker, json.dumps(want) + "\n")

    def _pg_has_walls(self, name):
        import psycopg

        try:
            with psycopg.connect(self._pg_conninfo(name), autocommit=True) as conn:
                return conn.execute("SELECT to_regclass('public.walls') IS NOT NULL").fetchone()[0]
        except psycopg.Error:
            return False

    def _pg_running(self, name):
        data = self._pg_data(name)
        if not os.path.exists(os.path.join(data, "PG_VERSION")):
            return False
        return _run([os.path.join(PG_BIN, "pg_ctl"), "-D", data, "status"], as_postgres=True, check=False)[0] == 0

    def start_db(self, name, addr=None):
        info = None if addr else self.host(name)
        addr = addr or info["address"]
        if info and info["kind"] == "sqlite":
            offline = info["sqlite_path"] + ".offline"
            if os.path.exists(offline) and not os.path.exists(info["sqlite_path"]):
                os.rename(offline, info["sqlite_path"])
            return
        if info and info["kind"] != "postgresql":
            raise FleetError("%s has no database" % name)
        # postgres must reach its cluster whatever a test did to the folders above it
        for folder in (self.state_dir, self.hdir(name)):
            os.chmod(folder, 0o755)
        out = ""
        for attempt in range(4):
            if self._pg_running(name):
                break
            if attempt:
                time.sleep(1.0)  # a crashed postmaster may still be on its way out (socket lock)
            rc, out = _run([os.path.join(PG_BIN, "pg_ctl"), "-D", self._pg_data(name), "-l",
                            self.hdir(name, "run", "postgresql.log"), "-w", "-t", "60", "start"],
                           as_postgres=True, check=False)
            if rc == 0:
                break
        else:
            raise FleetError("PostgreSQL of %s did not start: %s (log: %s)"
                             % (name, out.strip(), self.hdir(name, "run", "postgresql.log")))
        _wait(lambda: _port_open(addr, PG_PORT), 30, "PostgreSQL of %s" % name)

    def _pg_stop(self, name):
        if self._pg_running(name):
            _run([os.path.join(PG_BIN, "pg_ctl"), "-D", self._pg_data(name), "-m", "fast", "-w",
                  "-t", "60", "stop"], as_postgres=True)

    def stop_db(self, name):
        """PostgreSQL: pg_ctl stop -m fast. SQLite: the file is moved aside (NAME.offline), so the
        database is gone for the host until start_db puts it back."""
        info = self.host(name)
        if info["kind"] == "postgresql":
            self._pg_stop(name)
            _wait(lambda: not _port_open(info["address"], PG_PORT), 30, "PostgreSQL of %s to stop" % name)
        elif info["kind"] == "sqlite":
            if os.path.exists(info["sqlite_path"]):
                os.rename(info["sqlite_path"], info["sqlite_path"] + ".offline")
        else:
            raise FleetError("%s has no database" % name)

    # ------------------------------------------------------------------ SQLite
    def _sqlite(self, name, walls, seed, variant):
        data = self.hdir(name, "data")
        os.makedirs(data, mode=0o755, exist_ok=True)
        path = os.path.join(data, "bim-walls.db")
        marker = self.hdir(name, "populated.json")
        want = {"walls": walls, "seed": seed, "variant": variant}
        try:
            with open(marker, encoding="utf-8") as handle:
                if json.load(handle) == want and os.path.exists(path):
                    return path
        except (OSError, ValueError):
            pass
        if os.path.exists(path + ".offline") and not os.path.exists(path):
            os.rename(path + ".offline", path)
            return path
        for suffix in ("", "-wal", "-shm", "-journal"):
            try:
                os.unlink(path + suffix)
            except OSError:
                pass
        generate.populate_sqlite(path, walls, seed=seed, variant=variant)
        _write(marker, json.dumps(want) + "\n")
        return path

    # ------------------------------------------------------------------ application stand-in
    def _app(self, name, addr):
        app_dir = self.hdir(name, "app")
        os.makedirs(app_dir, mode=0o755, exist_ok=True)
        cfg = {"address": addr, "port": APP_PORT, "state_file": os.path.join(app_dir, "state.json"),
               "pid_file": os.path.join(app_dir, "app.pid"), "log_file": os.path.join(app_dir, "app.log")}
        _write(os.path.join(app_dir, "config.json"), json.dumps(cfg, indent=2) + "\n")
        if appctl.start(cfg) != 0:
            raise FleetError("application stand-in of %s did not start (see %s)" % (name, cfg["log_file"]))
        return app_dir

    def _app_cfg(self, name):
        return appctl.load_config(self.hdir(name, "app"))

    def app_command(self, name, action):
        return "%s %s %s %s" % (sys.executable, os.path.join(HERE, "appctl.py"), action, self.hdir(name, "app"))

    def set_app(self, name, values):
        cfg = self._app_cfg(name)
        state = appctl.read_state_file(cfg)
        state.update(values)
        appctl.write_state(cfg, state)

    def set_app_metrics(self, name, **values):
        self.set_app(name, values)

    def set_app_health(self, name, ok):
        self.set_app(name, {"healthy": bool(ok)})

    def start_app(self, name):
        if appctl.start(self._app_cfg(name)) != 0:
            raise FleetError("application stand-in of %s did not start" % name)

    def stop_app(self, name):
        if appctl.stop(self._app_cfg(name)) != 0:
            raise FleetError("application stand-in of %s did not stop" % name)

    def reset(self, name):
        """Back to the state `up` left: sshd up, database up, application up with defaults."""
        info = self.host(name)
        self.start_sshd(name)
        if info["kind"] in ("postgresql", "sqlite"):
            self.start_db(name)
            appctl.write_state(self._app_cfg(name), {})
            self.start_app(name)

    # ------------------------------------------------------------------ services (systemd units' commands)
    # A role that ships a systemd unit (e.g. Litestream of continuous_archiving) runs the unit's
    # ExecStart here under the fleet's own process control (no systemd on the test machine):
    # `fleet.py unit-start HOST UNIT_FILE` / unit-stop / unit-status. One pid file per unit.
    def _unit_paths(self, name, unit_file):
        unit = os.path.basename(unit_file)
        folder = self.hdir(name, "services")
        return folder, os.path.join(folder, unit + ".pid"), os.path.join(folder, unit + ".log")

    @staticmethod
    def unit_command(unit_file):
        """argv of the unit's ExecStart= (the command a systemd host would run)."""
        import shlex

        with open(unit_file, encoding="utf-8") as handle:
            for line in handle:
                if line.strip().startswith("ExecStart="):
                    return shlex.split(line.strip()[len("ExecStart="):].lstrip("-@+!"))
        raise FleetError("%s has no ExecStart= line" % unit_file)

    def unit_pid(self, name, unit_file):
        _folder, pid_file, _log = self._unit_paths(name, unit_file)
        pid = _read_pid(pid_file)
        return pid if pid and _alive(pid) else None

    def unit_start(self, name, unit_file):
        if self.unit_pid(name, unit_file):
            return
        folder, pid_file, log = self._unit_paths(name, unit_file)
        os.makedirs(folder, mode=0o755, exist_ok=True)
        with open(log, "ab") as out:
            proc = subprocess.Popen(self.unit_command(unit_file), stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT, start_new_session=True, cwd="/")
        _write(pid_file, "%d\n" % proc.pid)
        time.sleep(0.3)
        if proc.poll() is not None:
            raise FleetError("%s of %s exited at once (rc=%s), see %s" % (unit_file, name, proc.returncode, log))

    def unit_stop(self, name, unit_file):
        _folder, pid_file, _log = self._unit_paths(name, unit_file)
        self._stop_pid_file(pid_file)

    def _stop_pid_file(self, pid_file):
        pid = _read_pid(pid_file)
        if pid and _alive(pid):
            os.kill(pid, signal.SIGTERM)
            try:
                _wait(lambda: not _alive(pid), 30, "pid %d to stop" % pid)
            except FleetError:
                os.kill(pid, signal.SIGKILL)
        try:
            os.unlink(pid_file)
        except OSError:
            pass

    def _stop_units(self, name):
        folder = self.hdir(name, "services")
        if os.path.isdir(folder):
            for entry in sorted(os.listdir(folder)):
                if entry.endswith(".pid"):
                    self._stop_pid_file(os.path.join(folder, entry))

    # ------------------------------------------------------------------ inventory
    def _write_inventory(self, hosts):
        password = self.password
        common = {
            "ansible_connection": "ssh",
            "ansible_user": "root",
            "ansible_ssh_private_key_file": self.client_key,
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
            "ansible_ssh_pipelining": True,
            # Discovery takes the first python3.X on PATH; on this machine the SSH sessions see pyenv's
            # shims, whose python3.13 fails when run. The system Python is what a bare host has.
            "ansible_interpreter_python_fallback": ["/usr/bin/python3"],
        }
        groups = {"bim_postgresql": {}, "bim_sqlite": {}, "bim_storage": {}}
        for name, info in hosts.items():
            hv = {"ansible_host": info["address"]}
            if info["kind"] == "postgresql":
                hv.update(bim_db_engine="postgresql", bim_db_host=info["address"], bim_db_port=PG_PORT,
                          bim_db_name=DB_NAME, bim_db_user=DB_USER, bim_db_password=password,
                          bim_db_socket_dir=info["db_socket_dir"], bim_sqlite_path=None)
            elif info["kind"] == "sqlite":
                hv.update(bim_db_engine="sqlite", bim_db_host=info["address"], bim_db_port=PG_PORT,
                          bim_db_name=DB_NAME, bim_db_user=DB_USER, bim_db_password=None,
                          bim_db_socket_dir=None, bim_sqlite_path=info["sqlite_path"])
            else:
                hv.update(bim_storage_path=info["backups_dir"])
                groups["bim_storage"][name] = hv
                continue
            hv.update(bim_app_url=info["app_url"], bim_app_service="bim-wall-system",
                      bim_app_stop_command=self.app_command(name, "stop"),
                      bim_app_start_command=self.app_command(name, "start"),
                      bim_backup_repository=info["backup_repository"], bim_data_dir=info["data_dir"],
                      # the key of the SFTP copies to the storage hosts (a path on the BIM host)
                      bim_backup_copy_key_file=self.client_key,
                      # the storage hosts' keys this BIM host trusts: per host and per fleet, as on separate
                      # machines (a fleet built anew has new host keys; the machine-wide default would refuse them)
                      bim_backup_known_hosts_file=self.hdir(name, "known_hosts"),
                      bim_restore_known_hosts_file=self.hdir(name, "known_hosts"),
                      # Litestream's local folder replica: per host and per fleet (the default is machine-wide)
                      bim_continuous_archiving_file_replica_path=self.hdir(name, "litestream-replica"))
            hv.update(self._prerequisites_vars(name))
            groups["bim_" + info["kind"]][name] = hv
        inventory = {"all": {
            "vars": common,
            "children": {
                "bim": {"children": {
                    "bim_postgresql": {"hosts": groups["bim_postgresql"]},
                    "bim_sqlite": {"hosts": groups["bim_sqlite"]},
                }},
                "bim_storage": {"hosts": groups["bim_storage"]},
            },
        }}
        import yaml

        text = "# Test fleet inventory, generated by tests/fleet/fleet.py up. Holds a password: 0600.\n"
        text += yaml.safe_dump(inventory, sort_keys=False, default_flow_style=False)
        _write(self.inventory, text, 0o600)

    # ------------------------------------------------------------------ host-side libraries
    def venv(self, name):
        """The virtualenv the role prerequisites builds on host NAME. The hosts share this
        machine's file system, so each gets its own folder (as separate machines would), under
        the fleet's state folder: a new fleet starts bare."""
        return self.hdir(name, "venv")

    @property
    def wheelhouse(self):
        """The controller's wheelhouse folder for the host that installs without an index."""
        return os.path.join(self.state_dir, "wheelhouse")

    def _prerequisites_vars(self, name):
        """Inventory variables of the role prerequisites. Nothing names an interpreter: Ansible
        discovers the system Python, which has none of the collection's libraries. WHEELHOUSE_HOST
        installs from the controller's wheelhouse and its pip sees no configuration and an index
        that refuses every connection, so it is an air-gapped host."""
        hv = {"bim_prerequisites_venv": self.venv(name)}
        if name == WHEELHOUSE_HOST:
            hv.update(bim_prerequisites_wheelhouse=self.wheelhouse,
                      bim_prerequisites_environment={"PIP_CONFIG_FILE": os.devnull,
                                                     "PIP_INDEX_URL": UNREACHABLE_INDEX})
        return hv

    def make_bare(self, names=None):
        """Remove the virtualenvs (and wheelhouse copies) the role prerequisites built on the
        hosts NAMES (default: every BIM host): they are bare hosts again."""
        for name, info in self.hosts.items():
            if info["kind"] not in ("postgresql", "sqlite") or (names and name not in names):
                continue
            for path in (self.venv(name), self.venv(name) + ".wheelhouse"):
                shutil.rmtree(path, ignore_errors=True)
            for lock in (self.venv(name) + ".lock",):
                if os.path.exists(lock):
                    os.unlink(lock)

    def _write_ansible_cfg(self):
        text = "\n".join([
            "# generated by tests/fleet/fleet.py up",
            "[defaults]",
            "inventory = %s" % self.inventory,
            "host_key_checking = False",
            "forks = 10",
            "timeout = 10",
            "retry_files_enabled = False",
            "# the hosts are bare: Ansible finds their system Python (no warning about it)",
            "interpreter_python = auto_silent",
            "",
            "[ssh_connection]",
            "pipelining = True",
            "ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o PreferredAuthentications=publickey",
            "control_path_dir = %s" % os.path.join(self.state_dir, "cp"),
            "",
        ])
        _write(self.ansible_cfg, text, 0o644)

    # ------------------------------------------------------------------ status / down
    def status(self):
        meta = self.load_meta()
        if not meta:
            return {"up": False, "hosts": {}, "reason": "no fleet in %s" % self.state_dir}
        report = {}
        ok = os.path.exists(self.inventory) and os.path.exists(self.ansible_cfg)
        for name, info in meta["hosts"].items():
            row = {"sshd": bool(self._sshd_pid(name)) and _port_open(info["address"], 22)}
            if info["kind"] == "postgresql":
                row["db"] = _port_open(info["address"], PG_PORT)
            elif info["kind"] == "sqlite":
                row["db"] = os.path.exists(info["sqlite_path"])
            if info["kind"] in ("postgresql", "sqlite"):
                row["app"] = appctl.health_answers(self._app_cfg(name))
            report[name] = row
            ok = ok and all(row.values())
        return {"up": ok, "hosts": report, "walls": meta.get("walls"), "inventory": self.inventory}

    def _listen_address(self, name):
        """The address the host's sshd_config listens on, or None."""
        try:
            with open(self.hdir(name, "ssh", "sshd_config"), encoding="utf-8") as handle:
                return re.search(r"^ListenAddress (\S+):22$", handle.read(), re.M).group(1)
        except (OSError, AttributeError):
            return None

    def _stop_host(self, name):
        self._stop_units(name)
        app_cfg = self.hdir(name, "app", "config.json")
        if os.path.exists(app_cfg):
            appctl.stop(appctl.load_config(self.hdir(name, "app")))
        if os.path.exists(os.path.join(self._pg_data(name), "PG_VERSION")):
            self._pg_stop(name)
        pid = self._sshd_pid(name)
        addr = self._listen_address(name)
        if pid:
            os.kill(pid, signal.SIGTERM)
        if addr:
            for session in self._ssh_session_pids(addr):
                try:
                    os.kill(session, signal.SIGKILL)
                except OSError:
                    pass
            _wait(lambda: not _port_open(addr, 22), 15, "sshd of %s to stop" % name)

    def down(self, log=print):
        with self.lock():
            self._down(log=log)

    def _down(self, log=print):
        if not os.path.isdir(self.state_dir):
            log("fleet down: nothing in %s" % self.state_dir)
            return
        names = self._host_dirs()
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(self._stop_host, names))
        # ControlPersist masters of earlier ansible runs against this fleet
        for sock in os.listdir(os.path.join(self.state_dir, "cp")) if os.path.isdir(
                os.path.join(self.state_dir, "cp")) else []:
            _run(["ssh", "-o", "ControlPath=%s" % os.path.join(self.state_dir, "cp", sock), "-O", "exit",
                  "fleet"], check=False, timeout=10)
        shutil.rmtree(self.state_dir)
        log("fleet down: stopped %d hosts, removed %s" % (len(names), self.state_dir))


def _alive(pid):
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        with open("/proc/%d/stat" % pid, encoding="utf-8") as handle:
            return handle.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return False


def main(argv=None):
    parser = argparse.ArgumentParser(description="loopback test fleet for bim.wall_system")
    parser.add_argument("--state-dir", default=os.environ.get("BIM_FLEET_STATE_DIR", DEFAULT_STATE_DIR))
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="build the fleet (idempotent)")
    up.add_argument("--walls", type=int, default=2000)
    up.add_argument("--seed", type=int, default=1)
    up.add_argument("--sqlite-hosts", type=int, default=0, help="extra SQLite hosts lite3... (127.0.10.20+)")
    up.add_argument("--net", default=None,
                    help="loopback /24 of the fleet (default $BIM_FLEET_NET or 127.0.10); a second "
                         "fleet on one machine needs its own --net and --state-dir")
    up.add_argument("--fresh", action="store_true", help="tear down whatever is there first")
    sub.add_parser("down", help="stop every process and remove the state folder")
    sub.add_parser("status", help="JSON status; exit 0 when every part is up")
    for command in ("stop-db", "start-db", "stop-sshd", "start-sshd", "stop-app", "start-app", "reset"):
        sub.add_parser(command).add_argument("host")
    for command in ("unit-start", "unit-stop", "unit-status"):
        unit = sub.add_parser(command, help="run / stop / ask for a systemd unit's ExecStart under the fleet's control")
        unit.add_argument("host")
        unit.add_argument("unit_file")
    set_app = sub.add_parser("set-app", help="merge JSON into the host's application state")
    set_app.add_argument("host")
    set_app.add_argument("values", help='JSON object, e.g. \'{"cache_hit_rate": 0.6}\'')
    # --state-dir is accepted after the sub-command too
    for p in list(sub.choices.values()):
        p.add_argument("--state-dir", dest="state_dir_sub", default=None)
    args = parser.parse_args(argv)
    fleet = Fleet(args.state_dir_sub or args.state_dir)
    try:
        if args.command == "up":
            fleet.up(walls=args.walls, sqlite_hosts=args.sqlite_hosts, fresh=args.fresh, seed=args.seed,
                     net=args.net)
        elif args.command == "down":
            fleet.down()
        elif args.command == "status":
            report = fleet.status()
            print(json.dumps(report, indent=2))
            return 0 if report["up"] else 1
        elif args.command in ("unit-start", "unit-stop"):
            getattr(fleet, args.command.replace("-", "_"))(args.host, args.unit_file)
        elif args.command == "unit-status":
            pid = fleet.unit_pid(args.host, args.unit_file)
            print(json.dumps({"running": bool(pid), "pid": pid}))
            return 0 if pid else 3
        elif args.command == "set-app":
            values = json.loads(args.values)
            if not isinstance(values, dict):
                raise FleetError("set-app wants a JSON object")
            fleet.set_app(args.host, values)
        else:
            method = getattr(fleet, args.command.replace("-", "_"))
            method(args.host)
    except (FleetError, ValueError) as exc:
        print("fleet.py: %s" % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
