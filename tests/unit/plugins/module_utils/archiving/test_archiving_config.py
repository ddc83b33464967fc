# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The configuration the collection writes for pgBackRest and Litestream, and the plain pieces of
the archiving library (moments, windows, tool output parsing, the restart window)."""

from __future__ import annotations

import datetime
import json

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.archiving import litestream, pgbackrest
from ansible_collections.bim.wall_system.plugins.module_utils.archiving.common import (
    ArchiveError, iso_utc, parse_target_time)
from ansible_collections.bim.wall_system.plugins.module_utils.archiving.configure import in_window
from ansible_collections.bim.wall_system.plugins.module_utils.archiving.pitr import _in_window

UTC = datetime.timezone.utc


def _pg_config(**kwargs):
    args = dict(stanza="bim-pg1", repositories=[{"path": "/srv/repo"}], pg_path="/data", pg_port=5432,
                pg_socket_dir="/run/pg", pg_user="postgres", spool_path="/a/spool", lock_path="/a/lock",
                log_path="/a/log")
    args.update(kwargs)
    return pgbackrest.render_config(**args)


def _lines(text):
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_pgbackrest_config_maps_keep_periods_to_time_retention():
    lines = _lines(_pg_config(retention={"keep_last": 3, "keep_daily": 7, "keep_weekly": 4}))
    assert "repo1-retention-full-type=time" in lines and "repo1-retention-full=28" in lines
    assert "archive-async=y" in lines and "spool-path=/a/spool" in lines
    stanza = lines[lines.index("[bim-pg1]"):]
    assert stanza == ["[bim-pg1]", "pg1-path=/data", "pg1-port=5432", "pg1-socket-path=/run/pg", "pg1-user=postgres"]


def test_pgbackrest_config_keep_last_alone_counts_fulls_and_repo_hosts_are_named():
    lines = _lines(_pg_config(retention={"keep_last": 3}, repositories=[
        {"path": "/srv/repo"}, {"path": "/backups/pg1", "host": "storage1", "host_user": "pgbackrest"}]))
    assert "repo1-retention-full-type=count" in lines and "repo1-retention-full=3" in lines
    assert "repo2-host=storage1" in lines and "repo2-host-user=pgbackrest" in lines and "repo2-path=/backups/pg1" in lines
    assert not [line for line in _lines(_pg_config()) if "retention" in line]


def test_archive_command_names_the_config_and_stanza():
    assert pgbackrest.archive_command("/a/pgbackrest.conf", "bim-pg1") == \
        "pgbackrest --config=/a/pgbackrest.conf --stanza=bim-pg1 archive-push %p"


def test_segment_names_of_repository_files():
    assert pgbackrest.segment_name("15-1/0000000100000000/00000001000000000000001C-3be735ac751436d32094d64900d7871d49b54e6b.zst") \
        == "00000001000000000000001C"
    assert pgbackrest.segment_name("15-1/00000003.history") is None
    assert pgbackrest.segment_name("0000000100000000/000000010000000000000019.00000028.backup") is None


def test_litestream_config_is_json_with_one_replica():
    text = litestream.render_config("/data/db.sqlite", {"type": "sftp", "host": "10.0.0.9:22", "user": "bim",
                                                        "path": "/srv/ls/lite1", "key_path": "/root/.ssh/k"},
                                    "/a/meta", "/a/ls.sock", retention_days=7)
    config = json.loads(text.split("\n", 1)[1])
    db = config["dbs"][0]
    assert db["path"] == "/data/db.sqlite" and db["meta-path"] == "/a/meta"
    assert db["replica"] == {"type": "sftp", "host": "10.0.0.9:22", "user": "bim", "path": "/srv/ls/lite1",
                             "key-path": "/root/.ssh/k", "sync-interval": "1s"}
    assert config["snapshot"]["retention"] == "168h" and config["socket"]["path"] == "/a/ls.sock"
    assert litestream.replica_url(db["replica"] | {"key_path": None}) == "sftp://bim@10.0.0.9:22/srv/ls/lite1"
    with pytest.raises(ArchiveError, match="file or sftp"):
        litestream.render_config("/d", {"type": "s3", "path": "x"}, "/m", "/s")


def test_litestream_json_output_skips_its_log_lines():
    out = 'time=2026-12-05T10:15:57Z level=WARN msg="sftp host key not verified"\n[\n {"level": 0}\n]\n'
    assert litestream.json_output(out, []) == [{"level": 0}]
    assert litestream.json_output("", []) == []
    assert litestream.json_output('time=x level=INFO msg="nothing"\n', {}) == {}
    with pytest.raises(ValueError):
        litestream.json_output("Error: boom\n", [])


def test_litestream_window_runs_from_the_oldest_snapshot_to_the_newest_file():
    files = [{"level": 0, "min_txid": "01", "max_txid": "05", "timestamp": "2026-12-05T10:04:25Z"},
             {"level": 9, "min_txid": "01", "max_txid": "01", "timestamp": "2026-12-05T10:04:18Z"},
             {"level": 1, "min_txid": "01", "max_txid": "07", "timestamp": "2026-12-05T10:04:30Z"}]
    tool = litestream.Litestream("/c", "/d")
    assert tool.recoverable_window(files) == {"earliest": "2026-12-05T10:04:18Z", "latest": "2026-12-05T10:04:30Z"}
    assert tool.replica_position(files)[0] == 7
    assert tool.recoverable_window(files[:1]) == {"earliest": None, "latest": None}


class _Repo(pgbackrest.PgBackRest):
    """pgBackRest's info document without the program: the window is computed from it."""

    def __init__(self, arrived):
        super().__init__("/c", "s")
        self.arrived = arrived

    def newest_archived(self, info=None):
        return "000000010000000000000010", self.arrived


def test_pgbackrest_window_starts_at_the_oldest_sound_backup_and_ends_at_the_newest_archive():
    info = {"backup": [{"label": "a", "type": "full", "error": True, "timestamp": {"start": 100, "stop": 110}},
                       {"label": "b", "type": "full", "error": False, "timestamp": {"start": 200, "stop": 210}},
                       {"label": "c", "type": "incr", "error": False, "timestamp": {"start": 300, "stop": 320}}]}
    arrived = datetime.datetime.fromtimestamp(400, UTC)
    window = _Repo(arrived).recoverable_window(info)
    assert window == {"earliest": iso_utc(datetime.datetime.fromtimestamp(210, UTC)), "latest": iso_utc(arrived)}
    # The live server's last archive refines the end; an archive older than the newest backup does not shorten it.
    later = datetime.datetime.fromtimestamp(450, UTC)
    assert _Repo(arrived).recoverable_window(info, last_archived_time=later)["latest"] == iso_utc(later)
    assert _Repo(datetime.datetime.fromtimestamp(5, UTC)).recoverable_window(info)["latest"] == \
        iso_utc(datetime.datetime.fromtimestamp(320, UTC))
    assert _Repo(arrived).recoverable_window({"backup": []}) == {"earliest": None, "latest": None}
    assert [b["type"] for b in _Repo(arrived).backups(info)] == ["full", "full", "incremental"]


def test_target_times_and_the_window_refusals():
    assert parse_target_time("latest") is None and parse_target_time(None) is None
    assert parse_target_time("2026-12-05T10:05:40Z") == datetime.datetime(2026, 12, 5, 10, 5, 40, tzinfo=UTC)
    assert parse_target_time("2026-12-05 11:05:40+01:00").astimezone(UTC).hour == 10
    with pytest.raises(ArchiveError, match="not an ISO-8601 moment"):
        parse_target_time("yesterday")
    window = {"earliest": "2026-12-05T09:00:00Z", "latest": "2026-12-05T10:00:00Z"}
    with pytest.raises(ArchiveError, match="before the recoverable window"):
        _in_window(parse_target_time("2026-12-05T08:59:59Z"), window)
    with pytest.raises(ArchiveError, match="after the newest moment"):
        _in_window(parse_target_time("2026-12-05T10:00:01Z"), window)
    with pytest.raises(ArchiveError, match="no base to restore from"):
        _in_window(None, {"earliest": None, "latest": None})
    _in_window(parse_target_time("2026-12-05T09:30:00Z"), window)
    _in_window(None, window)


def test_restart_window_may_wrap_midnight():
    at = datetime.datetime(2026, 12, 5, 23, 30)
    assert in_window("", at) and in_window(None, at)
    assert in_window("22:00-04:00", at) and in_window("22:00-04:00", at.replace(hour=3))
    assert not in_window("22:00-04:00", at.replace(hour=12))
    assert in_window("01:00-04:00", at.replace(hour=1)) and not in_window("01:00-04:00", at.replace(hour=4))
    with pytest.raises(ArchiveError, match="HH:MM-HH:MM"):
        in_window("1-4", at)


def test_a_repository_host_comes_after_a_local_repo1_and_gets_its_own_config():
    from ansible_collections.bim.wall_system.plugins.module_utils.archiving import repo_host
    with pytest.raises(ArchiveError, match="keep repo1 local"):
        repo_host.remote_repositories([{"path": "/srv/r", "host": "10.0.0.9"}])
    repos = [{"path": "/a/repo"}, {"path": "/srv/pgbr/pg1", "host": "10.0.0.9", "host_user": "root", "host_port": 2222}]
    assert repo_host.remote_repositories(repos) == [(2, repos[1])]
    lines = _lines(_pg_config(repositories=repos, cmd_ssh="/a/ssh/ssh", retention={"keep_last": 2}))
    assert ["repo2-path=/srv/pgbr/pg1", "repo2-host=10.0.0.9", "repo2-host-user=root", "repo2-host-port=2222"] == \
        [line for line in lines if line.startswith("repo2-") and "retention" not in line]
    assert "cmd-ssh=/a/ssh/ssh" in lines and "repo2-retention-full=2" in lines
    pg = {"host": "10.0.0.1", "user": "postgres", "config": "/a/pgbackrest.conf", "cmd": "/a/pgbackrest-remote",
          "data_dir": "/data", "port": 5432, "socket_dir": "/run/pg", "db_user": "postgres", "key_file": "/k"}
    text, ssh = repo_host.render_remote_config(2, repos[1], "bim-pg1", {"keep_daily": 7}, pg)
    remote = _lines(text)
    # the database host passes its repo2-* options as they are: the repository keeps its number there
    assert "repo2-path=/srv/pgbr/pg1" in remote and not any(line.startswith("repo1-") for line in remote)
    assert "repo2-retention-full=7" in remote and "cmd-ssh=/srv/pgbr/pgbackrest-bim-pg1-ssh" in remote
    expected = ["[bim-pg1]", "pg1-host=10.0.0.1", "pg1-host-user=postgres", "pg1-host-config=/a/pgbackrest.conf",
                "pg1-host-cmd=/a/pgbackrest-remote"]
    assert remote[remote.index("[bim-pg1]"):][:5] == expected
    assert "StrictHostKeyChecking=accept-new" in ssh and "-i /k" in ssh
    assert repo_host.remote_argv("/a/ssh/ssh", repos[1], "cat", "/x") == ["/a/ssh/ssh", "-p", "2222", "root@10.0.0.9", "cat /x"]


def test_litestream_supervisor_runs_one_process_per_config():
    script = litestream.supervisor_script("/v/bin/litestream", ["/a/litestream.yml", "/a/litestream-2.yml"])
    assert "/v/bin/litestream replicate -config /a/litestream.yml &" in script
    assert "/v/bin/litestream replicate -config /a/litestream-2.yml &" in script
    assert script.index("wait -n") < script.index("kill 0", script.index("wait -n"))
