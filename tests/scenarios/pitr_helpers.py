# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers of the point-in-time recovery scenarios: the archiving variables of the fleet (pgBackRest
beside pg2's cluster, Litestream of lite1 replicating to storage1 over SFTP, run under the fleet's
own process control with the command its systemd unit carries), markers, and the tools."""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import sys

import restore_helpers as rh
from conftest import DEFAULT_COLLECTIONS_PATH

PG_HOST, LITE_HOST = "pg2", "lite1"
HOSTS = PG_HOST + "," + LITE_HOST
ARCHIVE_TIMEOUT = 10  # seconds: the RPO knob, short so the scenarios stay lean
FLEET_PY = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fleet", "fleet.py")


def archive_dir(fleet, host):
    return os.path.join(fleet.state_dir, host, "archiving")


def unit_file(fleet, host):
    return os.path.join(fleet.state_dir, host, "services", "bim-litestream.service")


def archiving_vars(fleet, **extra):
    state = fleet.state_dir
    fleet_cmd = "%s %s --state-dir %s" % (sys.executable, FLEET_PY, state)
    values = {
        "bim_archiving_dir": state + "/{{ inventory_hostname }}/archiving",
        "bim_continuous_archiving_install_packages": False,  # tests/run.sh installs pgbackrest
        "bim_continuous_archiving_archive_timeout": ARCHIVE_TIMEOUT,
        "bim_continuous_archiving_sftp_key_file": fleet.client_key,
        "bim_continuous_archiving_service_manager": "command",
        "bim_continuous_archiving_unit_dir": state + "/{{ inventory_hostname }}/services",
        "bim_continuous_archiving_service_start_command": fleet_cmd + " unit-start {{ inventory_hostname }}",
        "bim_continuous_archiving_service_stop_command": fleet_cmd + " unit-stop {{ inventory_hostname }}",
        "bim_continuous_archiving_service_status_command": fleet_cmd + " unit-status {{ inventory_hostname }}",
    }
    values.update(extra)
    return values


def recap(result):
    """{host: {"ok": n, "changed": n, "failed": n, ...}} from ansible-playbook's PLAY RECAP."""
    out = {}
    for host, fields in re.findall(r"^(\S+)\s+:\s+(ok=.*)$", result.stdout, re.M):
        out[host] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", fields)}
    return out


def descriptor(fleet, host):
    with open(os.path.join(archive_dir(fleet, host), "archiving.json"), encoding="utf-8") as handle:
        return json.load(handle)


def pgbackrest(fleet, host, *args):
    d = descriptor(fleet, host)
    cmd = ["runuser", "-u", d["os_user"], "--", "pgbackrest", "--config=" + d["config"], "--stanza=" + d["stanza"]]
    env = dict(os.environ, PGPASSWORD=fleet.password)
    return subprocess.run(cmd + list(args), capture_output=True, text=True, env=env, check=False, timeout=600)


def litestream_ltx(fleet, host):
    d = descriptor(fleet, host)
    proc = subprocess.run([d["binary"], "ltx", "-config", d["config"], "-level", "all", "-json", d["db_path"]],
                          capture_output=True, text=True, check=True, timeout=120)
    from ansible_collections.bim.wall_system.plugins.module_utils.archiving.litestream import json_output
    return json_output(proc.stdout, [])


def write_markers(fleet, host, count, run="test"):
    """Write ``count`` markers a tenth of a second apart, straight into the host's database; returns
    their times."""
    import time

    from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine
    times = []
    with open_engine(rh.params_of(fleet, host)) as eng:
        eng.ensure_marker_table()
        for _i in range(count):
            times.append(eng.write_marker(run))
            time.sleep(0.1)
    return times


def marker_times(fleet, host, run=None, params=None):
    from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine
    with open_engine(params or rh.params_of(fleet, host)) as eng:
        return eng.marker_times(run)


def utc(text):
    value = text[:-1] + "+00:00" if text.endswith("Z") else text
    return datetime.datetime.fromisoformat(value)


def _switched_segment(fleet, host):
    """Close the PostgreSQL host's current WAL segment; the name of the segment just closed (the one
    that holds everything written so far)."""
    import psycopg

    params = rh.params_of(fleet, host)
    with psycopg.connect(host=params.db_socket_dir, port=params.db_port, user=params.db_user,
                         password=params.db_password, dbname=params.db_name, autocommit=True) as conn:
        return conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]


def _segment_archived(fleet, host, segment):
    from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine
    with open_engine(rh.params_of(fleet, host)) as eng:
        archived = eng.archiver_stats().get("last_archived_wal")
    return bool(archived) and archived[8:] >= segment[8:]


def wait_archived_past(fleet, host, moment, timeout=120):
    """Wait until the host's archive reaches past ``moment`` (its recoverable window's latest end)
    and, on a PostgreSQL host, holds the WAL written until now. (The window's latest end is when the
    newest segment arrived, and a segment closed just before ``moment`` may arrive after it: a
    restore to "latest" would then lack what was written at ``moment``.)"""
    import time

    from ansible_collections.bim.wall_system.plugins.module_utils.archiving.archives import open_archive
    segment = _switched_segment(fleet, host) if fleet.hosts[host]["kind"] == "postgresql" else None
    deadline = time.monotonic() + timeout
    latest = None
    while time.monotonic() < deadline:
        window = open_archive(rh.params_of(fleet, host), archive_dir(fleet, host)).info()["recoverable_window"]
        latest = utc(window["latest"]) if window["latest"] else None
        if latest and latest > moment and (segment is None or _segment_archived(fleet, host, segment)):
            return latest
        time.sleep(1)
    raise AssertionError("the archive of %s did not reach %s within %ss (latest %s, segment %s)"
                         % (host, moment, timeout, latest, segment))


def wait_archive_failing(fleet, host, timeout=120):
    """Wait until PostgreSQL reports a failed archive_command after its last archived segment
    (pgBackRest's archive-push may take a while to give up; under load longer than a WAL switch)."""
    from ansible_collections.bim.wall_system.plugins.module_utils.database.engine import open_engine

    def failing():
        with open_engine(rh.params_of(fleet, host)) as eng:
            stats = eng.archiver_stats()
        failed, archived = stats.get("last_failed_time"), stats.get("last_archived_time")
        return bool(failed and (archived is None or failed > archived))

    if not wait_for(failing, timeout=timeout, step=1):
        raise AssertionError("%s reported no failed archive_command within %ss" % (host, timeout))


def destroy_host_database(fleet, host):
    """What a dying host does to its database: PostgreSQL killed (-9) and its data directory removed; the
    SQLite file and its -wal/-shm removed."""
    import shutil
    import signal

    info = fleet.hosts[host]
    if info["engine"] == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(info["sqlite_path"] + suffix):
                os.unlink(info["sqlite_path"] + suffix)
        return
    data = info["data_dir"]
    with open(os.path.join(data, "postmaster.pid"), encoding="ascii") as handle:
        pid = int(handle.readline())
    os.kill(pid, signal.SIGKILL)
    shutil.rmtree(data)


class MarkerLoad:
    """The steady write load of the done-when scenario: the collection's marker writer (the library of
    the recovery_markers module, with its journal beside the archive) in a thread."""

    def __init__(self, fleet, host, run, duration, interval=1.0):
        import threading

        self.fleet, self.host, self.run_label = fleet, host, run
        self.duration, self.interval = duration, interval
        self.result = None
        self.thread = threading.Thread(target=self._write, daemon=True)

    def _write(self):
        from ansible_collections.bim.wall_system.plugins.module_utils.archiving.markers import write_markers
        self.result = write_markers(rh.params_of(self.fleet, self.host), archive_dir(self.fleet, self.host),
                                    self.duration, self.interval, self.run_label)

    def start(self):
        self.thread.start()

    def join(self):
        self.thread.join(self.duration + 60)

    def committed_before_destruction(self):
        return bool(self.result and self.result["written"] >= 10 and self.result["failures"] > 0)


def pids_with_cmdline(parts):
    """PIDs whose command line holds every string of ``parts``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as handle:
                cmdline = handle.read().decode("utf-8", "replace").split("\0")
        except OSError:
            continue
        if all(any(part in arg for arg in cmdline) for part in parts):
            found.append(int(entry))
    return found


def second_newest_segment_file(fleet, host):
    """Path of the second newest WAL segment file of the host's local pgBackRest repository (a later
    segment of the same timeline exists, so a restore that stops at it stops short)."""
    d = descriptor(fleet, host)
    archive = os.path.join(archive_dir(fleet, host), "repo", "archive", d["stanza"])
    files = []
    for root, _dirs, names in os.walk(archive):
        files += [os.path.join(root, n) for n in names if re.match(r"^[0-9A-F]{24}-[0-9a-f]{40}", n)]
    files.sort(key=lambda p: (os.path.basename(p)[8:24], os.path.getmtime(p)))
    newest_tli = os.path.basename(files[-1])[:8]
    same = [p for p in files if os.path.basename(p)[:8] == newest_tli]
    return same[-2]


PITR_CHILD = r"""
import json, sys
from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import ConnectionParams
from ansible_collections.bim.wall_system.plugins.module_utils.archiving.pitr import run_pitr_restore
cfg = json.loads(sys.argv[1])
result = run_pitr_restore(ConnectionParams(**cfg["params"]), cfg["archive"], "latest", state_dir=cfg["state"])
print(json.dumps(result, default=str))
"""


def pitr_child(fleet, host, env_extra=None):
    """A point-in-time restore (latest, swap) of ``host`` in a child process of its own session (the
    collection's library, as the restore module runs it), with ``env_extra`` (fault injection)."""
    import dataclasses

    cfg = {"params": dataclasses.asdict(rh.params_of(fleet, host)), "archive": archive_dir(fleet, host),
           "state": fleet.hdir(host, "restore-state")}
    env = dict(os.environ)
    paths = [p for p in os.environ.get("ANSIBLE_COLLECTIONS_PATH", DEFAULT_COLLECTIONS_PATH).split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")])
    env.update(env_extra or {})
    return subprocess.Popen([sys.executable, "-c", PITR_CHILD, json.dumps(cfg)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)


def setup_archiving(fleet, cwd, hosts=HOSTS):
    """The continuous_archiving role on ``hosts`` and, when pg2 is among them, the base of its
    point-in-time restores: a physical full backup taken by the backup role."""
    import conftest

    runs = [(hosts, archiving_vars(fleet), "bim.wall_system.continuous_archiving")]
    if PG_HOST in hosts.split(","):
        runs.append((PG_HOST, archiving_vars(fleet, bim_backup_method="physical", bim_backup_type="full"),
                     "bim.wall_system.backup"))
    for limit, values, playbook in runs:
        cmd = [conftest._tool("ansible-playbook"), "-i", fleet.inventory, "--limit", limit, "-e",
               json.dumps(values), playbook]
        proc = subprocess.run(cmd, cwd=str(cwd), env=conftest.ansible_env(fleet), text=True, capture_output=True,
                              check=False, timeout=900)
        assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]


class FullArchive:
    """pg2's WAL archive (``repo/archive``) moved onto a small tmpfs of its own and filled to the last
    byte: pgBackRest's archive-push meets ENOSPC, as on a full repository disk. ``heal()`` frees the
    space; ``close()`` moves the archive back onto the host's disk (the contents the tmpfs hid are a
    subset of what it holds: an archive only grows)."""

    def __init__(self, fleet, host):
        d = descriptor(fleet, host)
        self.folder = os.path.join(archive_dir(fleet, host), "repo", "archive")
        self.stage = os.path.join(fleet.state_dir, host, "archive-stage")
        self.filler = os.path.join(self.folder, "filler")
        stat = os.stat(self.folder)
        subprocess.run(["cp", "-a", self.folder + "/.", self._fresh_stage()], check=True)
        used = int(subprocess.run(["du", "-sm", self.stage], check=True, capture_output=True, text=True).stdout.split()[0])
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm,mode=%o,uid=%d,gid=%d" % (
            used + 16, stat.st_mode & 0o7777, stat.st_uid, stat.st_gid), "tmpfs-" + d["stanza"], self.folder], check=True)
        subprocess.run(["cp", "-a", self.stage + "/.", self.folder], check=True)
        self._fill()

    def _fresh_stage(self):
        import shutil

        shutil.rmtree(self.stage, ignore_errors=True)
        os.makedirs(self.stage)
        return self.stage

    def _fill(self):
        import errno

        with open(self.filler, "wb", buffering=0) as handle:  # unbuffered: a write that fits partly is kept
            for chunk in (1 << 20, 4096, 1):
                try:
                    while True:
                        handle.write(b"\0" * chunk)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
        assert os.statvfs(self.folder).f_bavail == 0

    def heal(self):
        if os.path.exists(self.filler):
            os.unlink(self.filler)

    def close(self):
        import shutil
        import time

        self.heal()
        subprocess.run(["cp", "-a", self.folder + "/.", self._fresh_stage()], check=True)
        for _attempt in range(30):  # an archive-push may hold a file of it open for a moment
            if subprocess.run(["umount", self.folder], check=False, capture_output=True).returncode == 0:
                break
            time.sleep(1)
        else:
            raise AssertionError("the tmpfs on %s could not be unmounted" % self.folder)
        subprocess.run(["cp", "-a", self.stage + "/.", self.folder], check=True)
        shutil.rmtree(self.stage, ignore_errors=True)


def restore_copies(fleet, host, kind="restore"):
    """The restored copies of kind ``kind`` beside the host's data directory."""
    import glob

    return sorted(glob.glob(fleet.hdir(host, "data.%s-*" % kind)))


def wait_for(predicate, timeout=120, step=0.02):
    """Poll ``predicate`` until it returns something true; returns that, or None after ``timeout``."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(step)
    return None


def restore(run_ansible, fleet, host, env=None, **args):
    """The restore module run ad hoc on ``host`` against its archive; (result, the module's JSON)."""
    info = fleet.hosts[host]
    values = {"engine": info["engine"], "archive_dir": archive_dir(fleet, host),
              "state_dir": fleet.hdir(host, "restore-state")}
    if info["engine"] == "sqlite":
        values["sqlite_path"] = info["sqlite_path"]
    else:
        values.update(db_socket_dir=info["db_socket_dir"], db_password=fleet.password)
    values.update(args)
    result = run_ansible(host, "bim.wall_system.restore", values, env=env)
    match = re.search(r"^\S+ \| [A-Z!]+ => (\{.*)", result.stdout, re.M | re.S)
    assert match, str(result)
    return result, json.loads(match.group(1))


def health(run_playbook, fleet, hosts):
    """The health_check playbook on ``hosts``: ({host: fleet report row}, names of the firing alert rules)."""
    result = run_playbook("bim.wall_system.health_check", limit=hosts, extra_vars=archiving_vars(fleet))
    assert result.rc == 0, str(result)
    with open(os.path.join(result.cwd, "bim-reports", "fleet-report.json")) as handle:
        report = {row["host"]: row for row in json.load(handle)["hosts"]}
    with open(os.path.join(result.cwd, "bim-reports", "alert-state.json")) as handle:
        state = json.load(handle)
    firing = {name for name, rule in state["rules"].items() if rule.get("firing")}
    return report, firing


def archiving_check(row):
    """The archiving check of a fleet report row."""
    return next(c for c in row["checks"] if c["name"] == "archiving")
