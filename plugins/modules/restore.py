#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: restore
short_description: Restore a BIM Wall System database from the backup repository, with restore points and rollback
version_added: 0.1.0
description:
  - Restores one backup of the repository into the BIM database of the managed host.
  - O(mode=swap) restores beside the live database (PostgreSQL C(<db>__restore_<time>); SQLite a
    hidden file in the live file's folder), verifies the copy (rows and content digest of every
    table against the backup's manifest; PostgreSQL amcheck of btree indexes, GiST indexes valid;
    SQLite C(integrity_check), C(foreign_key_check), C(rtreecheck)), and only then swaps it in.
    PostgreSQL refuses and ends connections to the live database and renames (seconds, whatever
    the size); SQLite renames atomically with its C(-wal)/C(-shm) handled. The replaced database
    is kept as a restore point (PostgreSQL C(<db>__rp_<time>), SQLite C(<file>.rp-<time>)).
  - If the copy fails verification nothing is swapped and the live database is untouched.
  - Every swap step is written to a journal in O(state_dir) before it runs; a run killed at any
    moment is finished or undone by the next run (of this module, with any options).
  - O(mode=new) restores under another name or path (O(target)), for drills and selective recovery,
    optionally only some O(tables); the live database is never touched.
  - O(rollback_to) swaps a restore point back in the same way.
  - Restores a host whose database is gone (missing SQLite file, dropped PostgreSQL database).
  - When O(repository) is missing or unreadable and O(secondary_repository) is set, the backup is
    fetched from the secondary (local path or SFTP) into O(secondary_staging) and restored from there.
  - "With O(target_time) the restore is to a moment (point-in-time recovery) from the continuous archive that
    M(bim.wall_system.continuous_archiving) set up in O(archive_dir), not from the logical repository.
    PostgreSQL: pgBackRest restores the whole cluster into a new data directory beside the live one, which
    starts on its own Unix socket (port + 1, no TCP, archiving off), recovers to the moment and promotes;
    SQLite: Litestream restores a new file beside the live one. The copy is verified (every BIM table
    readable, spatial indexes valid; PostgreSQL amcheck and no invalid index; SQLite integrity_check,
    foreign_key_check, rtreecheck; no marker row newer than the moment), then swapped in with a restore
    point (PostgreSQL: the old data directory C(<data_dir>.rp-<time>), the cluster stopped and started with
    the commands the archiving role recorded, else pg_ctl; SQLite: as above, Litestream stopped around the
    swap). O(mode=new) leaves the copy beside live (PostgreSQL: running on its socket) for inspection."
  - "RV(rpo_s) of a point-in-time restore is measured from the collection's marker rows
    (C(bim_recovery_markers)): the newest marker of the live database (or of the marker writer's journal
    when the database is gone) minus the newest marker of the restored copy, never below 0."
author:
  - BIM Wall System operations team (@bim-wall-system)
extends_documentation_fragment:
  - bim.wall_system.connection
  - bim.wall_system.restore_state
  - bim.wall_system.repository_key
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Returns the plan (backup, bytes to read, free space needed vs available) and fails when it would not fit; changes nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  repository:
    description:
      - Folder of the backup repository on the managed host (C(bim_backup_repository)).
      - Not needed with O(rollback_to).
    type: path
  backup_id:
    description:
      - V(latest), V(latest_verified) (the newest backup whose newest verification passed) or a backup id.
    type: str
    default: latest
  mode:
    description:
      - V(swap) replaces the live database after verification and keeps a restore point.
      - V(new) restores into O(target) and leaves the live database alone.
    type: str
    choices: [swap, new]
    default: swap
  target:
    description:
      - O(mode=new) only. PostgreSQL database name or SQLite file path of the copy. Must not exist.
      - Default PostgreSQL C(<db>__copy_<time>), SQLite C(.<file>.copy-<time>) beside the live file.
    type: str
  tables:
    description:
      - O(mode=new) only. Restore only these tables' rows (the whole schema is created; foreign
        keys are left out on PostgreSQL).
    type: list
    elements: str
  keep_target:
    description:
      - O(mode=new) only. V(false) drops the copy after it has been verified and measured (drills).
    type: bool
    default: true
  check_live_unchanged:
    description:
      - Take the live database's table digests before and after and return whether they are equal
        (drills, to prove the live data was not touched).
    type: bool
    default: false
  rollback_to:
    description:
      - Name (or path) of a restore point to swap back in, or V(latest). Excludes a restore.
      - A PostgreSQL restore point of a point-in-time swap is a data directory (an absolute path,
        C(<data_dir>.rp-<time>)); the whole cluster is swapped back.
    type: str
  keep_restore_points:
    description:
      - How many restore points to keep after a swap; older ones are removed.
    type: int
    default: 2
  jobs:
    description:
      - Parallel jobs of C(pg_restore). With more than one job the archive is staged in O(staging_dir).
    type: int
    default: 2
  verification:
    description:
      - How the restored copy is proven before it is swapped in or handed over.
      - V(full) compares rows and content digests of every table with the manifest and runs the
        engine's integrity checks (PostgreSQL amcheck of btree indexes, GiST validity, no invalid
        index; SQLite C(integrity_check), C(foreign_key_check), C(rtreecheck)). On PostgreSQL
        the digests of tables C(pg_restore) has finished start while it still builds the last
        constraints.
      - V(auto) does the same, except for a whole-database SQLite restore of a backup whose
        latest restore-level verification (M(bim.wall_system.backup_verify)) passed. The file
        written is then byte for byte the image that verification checked (every chunk is
        hash-checked as it is read), so only its size, header and schema are checked again;
        RV(verification) says V(identity). A PostgreSQL restore is always checked in full, as
        C(pg_restore) rebuilds the database on the target server.
    type: str
    choices: [auto, full]
    default: auto
  restore_files:
    description:
      - Also write the configuration files of the backup's C(files) stream (its include_paths)
        below O(files_root), each atomically; equal files are left alone.
      - The files are read into a scratch folder under O(state_dir) and checked before the swap;
        only members under the backup's include_paths (and, for backups that record them, only
        the recorded entries with their recorded size and SHA-256) are accepted; absolute names,
        C(..), links, devices and a stream that is not a tar are refused, and nothing is swapped.
      - Files are written without following symlinks (a link below O(files_root) where a folder
        or file goes is refused), with the mode and owner recorded at backup time, never set-id bits.
      - In swap mode the files replaced are kept with the database's restore point (under
        O(state_dir)), and O(rollback_to) that restore point puts them back. If writing them fails
        after the swap, the restore is rolled back and RV(restore_point) names the restore point.
    type: bool
    default: false
  files_root:
    description: Folder the configuration files are restored below.
    type: path
    default: /
  secondary_repository:
    description:
      - Secondary repository used when O(repository) is missing or unreadable, as in the backup
        module's C(copy_to) entries.
    type: dict
    suboptions:
      url:
        description: Local path or C(sftp://user@host[:port]/path).
        type: str
        required: true
      key_file:
        description: Private key file for SFTP.
        type: path
      strict_host_key_checking:
        description:
          - V(false) (default) trusts an SFTP host on first use, as C(StrictHostKeyChecking=accept-new)
            does; its key is recorded in O(secondary_repository.known_hosts_file) and every later
            connection must offer the same key. In check mode a first-seen key is not recorded.
          - V(true) refuses a host whose key is not already in O(secondary_repository.known_hosts_file),
            C(/etc/ssh/ssh_known_hosts) or C(~/.ssh/known_hosts).
          - Either way a host whose key changed is refused, the message naming both SHA256
            fingerprints; nothing is read from it.
        type: bool
        default: false
      known_hosts_file:
        description:
          - The known_hosts file (OpenSSH format) the collection keeps on the managed host, where
            first-use keys are recorded. The system's known_hosts files are consulted too (read only).
        type: path
        default: /var/lib/bim-wall-system/known_hosts
  secondary_staging:
    description:
      - Local repository the backup is fetched into from O(secondary_repository).
      - Default C(<state_dir>/secondary-staging).
    type: path
  fetch_only:
    description:
      - Only choose where the backup comes from and make it local; restore nothing. When O(repository) is usable
        nothing is fetched and RV(repository_used) is O(repository) (RV(backup_id) the backup O(backup_id) names);
        otherwise the backup is fetched from O(secondary_repository) into O(secondary_staging) (in check mode only
        planned, RV(plan) the restore's plan read from the secondary). The restore role's preflight runs this and
        restores from RV(repository_used), so the choice is made here only.
    type: bool
    default: false
  preflight:
    description:
      - Only the disaster recovery's preflight, in one run; restores nothing and changes no database.
        Chooses the repository as O(fetch_only) does (the backup fetched from O(secondary_repository) when
        O(repository) is not usable), verifies the chosen backup's checksums (every chunk read and its length and
        SHA-256 checked, as M(bim.wall_system.backup_verify) with C(level=checksum); the result is recorded in the
        repository), and plans the restore (RV(plan) - backup, bytes to read, free space needed vs available; fails
        with the numbers when it would not fit). A damaged backup fails here, before anything else runs.
      - In check mode nothing is recorded; with the primary unusable nothing is fetched either and RV(plan) is read
        from the secondary (its chunks are hash-checked when a real run fetches them, RV(checksums) is null).
      - The restore role runs this before it stops the application, then restores RV(backup_id) from
        RV(repository_used).
    type: bool
    default: false
  then_restore:
    description:
      - With O(preflight), not in check mode - once the preflight passed, restore its RV(backup_id) from its
        RV(repository_used) in the same run, as a swap (with O(app_stop_command), O(app_start_command),
        O(health_gate) and the other restore options) - one module run for the whole disaster recovery of a host
        whose application is managed by commands.
      - A failure says where it stopped - RV(failed_step) V(preflight) (nothing was changed) or V(restore) (see
        O(app_stop_command) for what the application's commands do then).
      - In check mode only the preflight runs (it plans the restore).
      - The backup is read once - the preflight reads no chunk and the restore's own reads are its checksum
        verification (every chunk checked as it is read; the chunks the restore did not read, such as a files stream
        not restored, read and checked after the copy is verified; each stream's size checked) - completed and
        recorded in the repository before O(app_stop_command) and the swap. A damaged backup fails with
        RV(failed_step) V(preflight) - nothing was stopped, swapped or recorded.
    type: bool
    default: false
  recovery_log:
    description:
      - The disaster recovery's log on the host (one JSON line per step, C(bim_restore_log)); the module appends
        the records of the steps it runs itself - with O(preflight) C(start) (when O(recovery_log.start) is given)
        and C(preflight); with a swap C(app_stop) and C(app_start) (with O(app_stop_command)) and C(restore) (V(ok)
        or V(failed)). The folder is created (0700) when missing, the file is 0600. Nothing is written in check mode.
    type: dict
    suboptions:
      path:
        description: The log file.
        type: path
        required: true
      host:
        description: The C(host) field of the records (the inventory name).
        type: str
      start:
        description: Detail of a C(start) record written first (O(preflight) only).
        type: dict
  app_stop_command:
    description:
      - O(mode=swap) only. Command (no shell) that stops the application; it runs right before the swap, once the
        restored copy and the configuration files are verified and staged. If it fails nothing is swapped and the
        restore fails (after O(app_start_command) ran).
      - Requires O(app_start_command), which runs after the swap and the configuration files, and again after any
        failure once the stop command ran (the live data is then untouched). A failing start command is reported
        (RV(app_commands), a warning) without undoing the restore; the restore role's health gate then fails and
        rolls back.
      - Not run in check mode.
    type: str
  app_start_command:
    description: Command (no shell) that starts the application again (see O(app_stop_command)).
    type: str
  health_gate:
    description:
      - O(mode=swap) only. The disaster recovery's health gate in this run, right after the swap and
        O(app_start_command) (without it, right after the swap) - the checks of M(bim.wall_system.health_check)
        run until the overall status is no worse than O(health_gate.fail_on), at most O(health_gate.retries) + 1
        times, O(health_gate.delay) seconds apart. A start command that failed fails the gate without checks.
      - The gate decides and reports (RV(health_gate)); with O(recovery_log) it writes the C(health_gate) record and,
        when it passed, C(done). A failed gate does not fail the module and undoes nothing - the restore role then
        rolls back to RV(restore_point) (O(rollback_to)) and starts the application again.
      - Wrong check names are refused before anything is restored. Not run in check mode.
    type: dict
    suboptions:
      checks:
        description: Checks of M(bim.wall_system.health_check) to run (C(bim_restore_health_checks)).
        type: list
        elements: str
        default: [database, application]
      app_url:
        description:
          - Base URL of the application (C(bim_app_url)); credentials in it are never shown.
          - Without it the application checks are left out unless named in O(health_gate.checks).
        type: str
      fail_on:
        description: The first overall status that fails the gate (C(bim_restore_health_fail_on)).
        type: str
        choices: [degraded, unhealthy]
        default: unhealthy
      retries:
        description: Checks run again this many times while the gate fails (C(bim_restore_health_retries)).
        type: int
        default: 10
      delay:
        description: Seconds between two runs of the checks (C(bim_restore_health_delay)).
        type: float
        default: 3.0
      check_timeout:
        description: Seconds each check may take.
        type: float
        default: 15.0
  data_dir:
    description:
      - Folder whose file system receives the restored database, for the free-space check.
      - Default PostgreSQL C(SHOW data_directory), SQLite the live file's folder. Usually C(bim_data_dir).
    type: path
  staging_dir:
    description:
      - Folder for the staged PostgreSQL archive (O(jobs) > 1).
      - Default memory (C(/dev/shm), a tmpfs) when the archive takes at most a quarter of the available memory and
        fits there, else the system temp folder.
    type: path
  lock_timeout:
    description: Seconds to wait when another restore on the same database is running.
    type: int
    default: 60
  target_time:
    description:
      - Restore to this moment (ISO 8601, e.g. C(2026-12-05T10:05:40Z); no offset = UTC) or to V(latest), the
        newest moment the continuous archive holds, instead of restoring a logical backup.
      - It must lie in the recoverable window (M(bim.wall_system.backup_info) RV(bim.wall_system.backup_info#module:recoverable_window)).
      - "Grain: PostgreSQL stops at the last transaction committed at or before the moment. Litestream restores
        what it had shipped by the moment (it ships every O(bim.wall_system.continuous_archiving#module:sync_interval)),
        at the grain of its per-sync files while they are kept, coarser later."
      - Excludes O(backup_id) other than V(latest), O(tables), O(secondary_repository).
    type: str
  archive_dir:
    description:
      - Folder of the archiving files (inventory C(bim_archiving_dir)), for O(target_time) and for rolling back
        a point-in-time swap.
    type: path
    default: /var/lib/bim-wall-system/archiving
  marker_run:
    description:
      - Only count the marker rows of this run label when measuring RV(rpo_s) (drills write their own run).
    type: str
notes:
  - Stop the application before a SQLite swap; a process that keeps the old file open keeps writing
    to the restore point (the module warns with the process ids it finds).
  - A PostgreSQL restore point does not accept connections; roll back to it or drop it.
'''

EXAMPLES = r'''
- name: Plan a restore of the latest backup (free space, bytes to read)
  bim.wall_system.restore:
    engine: postgresql
    db_name: bim_walls
    repository: /var/backups/bim
  check_mode: true
  register: plan

- name: Restore the latest verified backup in place, keeping a restore point
  bim.wall_system.restore:
    engine: postgresql
    db_name: bim_walls
    repository: /var/backups/bim
    backup_id: latest_verified
    jobs: 4

- name: Restore only the walls table of one backup into a new SQLite file
  bim.wall_system.restore:
    engine: sqlite
    sqlite_path: /var/lib/bim/walls.db
    repository: /var/backups/bim
    backup_id: 20261127T124501Z-3fa9c2d1
    mode: new
    target: /var/lib/bim/walls-recovered.db
    tables: [walls]

- name: Bring the database back to how it was at 10:05:40 UTC (point-in-time recovery), keeping a restore point
  bim.wall_system.restore:
    engine: postgresql
    db_socket_dir: /var/run/postgresql
    target_time: "2026-12-05T10:05:40Z"

- name: Restore everything the archive holds into a copy beside live, for inspection
  bim.wall_system.restore:
    engine: sqlite
    sqlite_path: /var/lib/bim/walls.db
    target_time: latest
    mode: new

- name: Disaster recovery's preflight - repository, checksums of the backup, plan - in one run
  bim.wall_system.restore:
    engine: postgresql
    db_name: bim_walls
    repository: /var/backups/bim
    secondary_repository:
      url: sftp://root@storage1/srv/bim/pg1
      key_file: /root/.ssh/bim_backup
    preflight: true
    recovery_log:
      path: /var/log/bim-wall-system/recovery.log
      host: pg1
  register: preflight

- name: Restore it, the application stopped right before the swap and started after
  bim.wall_system.restore:
    engine: postgresql
    db_name: bim_walls
    repository: "{{ preflight.repository_used }}"
    backup_id: "{{ preflight.backup_id }}"
    app_stop_command: systemctl stop bim-wall-system
    app_start_command: systemctl start bim-wall-system
    recovery_log:
      path: /var/log/bim-wall-system/recovery.log
      host: pg1

- name: Roll back to the restore point the last swap kept
  bim.wall_system.restore:
    engine: sqlite
    sqlite_path: /var/lib/bim/walls.db
    rollback_to: latest
'''

RETURN = r'''
backup_id:
  description: Id of the backup restored (null for a rollback).
  returned: always
  type: str
  sample: 20261127T124501Z-3fa9c2d1
backup_finished:
  description: When the backup finished (ISO 8601 UTC).
  returned: when a backup was chosen
  type: str
  sample: "2026-11-27T12:45:09.120000+00:00"
mode:
  description: V(swap), V(new) or V(rollback).
  returned: always
  type: str
  sample: swap
target:
  description: Database name or file path that holds the restored data.
  returned: success
  type: str
  sample: bim_walls
restore_point:
  description:
    - Restore point holding the replaced live database (null when there was none or in new mode).
    - When the configuration files failed after the swap, the restore point the restore was
      rolled back to (with RV(rolled_back_to)).
  returned: always
  type: str
  sample: bim_walls__rp_20261127124630
restore_points:
  description: Restore points that exist afterwards, oldest first.
  returned: success
  type: list
  elements: str
  sample: [bim_walls__rp_20261127124630]
pruned_restore_points:
  description: Restore points removed because of O(keep_restore_points).
  returned: after a swap
  type: list
  elements: str
  sample: []
duration_s:
  description: Wall time of the whole task.
  returned: always
  type: float
  sample: 12.4
restore_s:
  description: Seconds spent restoring into the copy.
  returned: after a restore
  type: float
  sample: 9.8
verify_s:
  description:
    - Seconds spent verifying the copy after the restore ended.
    - PostgreSQL digests that ran while C(pg_restore) finished its last steps count in RV(restore_s).
  returned: after a restore
  type: float
  sample: 2.1
verification:
  description: How the copy was proven, V(full) or V(identity) (see O(verification)).
  returned: after a restore
  type: str
  sample: full
identity_verified_at:
  description: Time of the passed restore-level verification a V(identity) check relied on.
  returned: when RV(verification) is V(identity)
  type: str
  sample: "2026-11-27T02:10:44.512000+00:00"
swap_s:
  description: Seconds the swap took (the time the database was unavailable).
  returned: after a swap
  type: float
  sample: 0.3
rto_s:
  description: Restore plus verification seconds (recovery time objective as measured).
  returned: after a restore
  type: float
  sample: 11.9
rpo_s:
  description: Seconds between the backup's end and now (recovery point objective as measured).
  returned: when a backup was chosen
  type: float
  sample: 3600.5
tables:
  description: Per table the restored rows and digest, the manifest's rows and whether they match.
  returned: always
  type: dict
  sample: {walls: {rows: 1000, expected_rows: 1000, digest: 9f2c..., matches: true}}
verified:
  description: Whether the restored copy passed verification.
  returned: always
  type: bool
  sample: true
warnings:
  description: Things the operator should know (repairs of interrupted runs, open file handles).
  returned: always
  type: list
  elements: str
  sample: []
plan:
  description: Backup, bytes to read, restored bytes, free space per file system (needed vs available), fits.
  returned: when a backup was chosen
  type: dict
  sample: {backup_id: 20261127T124501Z-3fa9c2d1, bytes_to_read: 61234567, restored_bytes: 512000000,
           space: [{path: /var/lib/postgresql/15/main, needed_bytes: 836000000, available_bytes: 80000000000, fits: true}],
           fits: true}
target_dropped:
  description: The copy was dropped after verification (O(keep_target=false)).
  returned: in new mode with keep_target false
  type: bool
  sample: true
live_unchanged:
  description: Live digests before and after were equal (O(check_live_unchanged)).
  returned: with check_live_unchanged
  type: bool
  sample: true
live_digests_before:
  description: Live table digests before the run (null when the database did not exist).
  returned: with check_live_unchanged
  type: dict
  sample: {walls: {rows: 1000, digest: 9f2c...}}
live_digests_after:
  description: Live table digests after the run.
  returned: with check_live_unchanged
  type: dict
  sample: {walls: {rows: 1000, digest: 9f2c...}}
rolled_back_to:
  description: The restore point swapped back in.
  returned: with rollback_to, and when a restore was rolled back after its swap
  type: str
  sample: bim_walls__rp_20261127124630
files:
  description:
    - After a restore with O(restore_files), the configuration files written, left unchanged and
      skipped. After a swap, the files it replaced are kept with the restore point.
    - After a rollback, the files put back as they were before that restore (C(restored)) and the
      ones it had created, now removed (C(removed)); both empty when the restore wrote none.
  returned: with restore_files, and after a rollback
  type: dict
  sample: {written: [/etc/bim/app.conf], unchanged: [], skipped: []}
repository_used:
  description: The repository the backup was read from (the staging copy when the secondary was used).
  returned: when a backup was chosen
  type: str
  sample: /var/backups/bim
target_time:
  description: The moment restored to (ISO 8601 UTC), or V(latest).
  returned: with O(target_time)
  type: str
  sample: "2026-12-05T10:05:40Z"
recoverable_window:
  description: Earliest and latest moment the archive could restore to, when the restore began.
  returned: with O(target_time)
  type: dict
  sample: {earliest: "2026-12-05T09:00:12Z", latest: "2026-12-05T10:07:31Z"}
newest_marker_live:
  description: Newest marker row of the live database (or the marker writer's journal) before the restore.
  returned: with O(target_time)
  type: str
  sample: "2026-12-05T10:07:40.120331Z"
newest_marker_restored:
  description: Newest marker row in the restored copy.
  returned: with O(target_time)
  type: str
  sample: "2026-12-05T10:07:31.002144Z"
kept_copy:
  description: Where the copy of O(mode=new) is, PostgreSQL with the socket folder and port it runs on.
  returned: with O(target_time) and O(mode=new)
  type: dict
  sample: {data_dir: /var/lib/postgresql/15/main.copy-20261205101500, socket_dir: /var/lib/bim-wall-system/archiving/copy-socket, port: 5433}
checksums:
  description:
    - O(preflight) only. The checksum verification of the chosen backup (C(chunks) read and checked, C(problems),
      C(recorded) in the repository, C(checked_by)); null in check mode when the plan was read from the secondary.
    - C(checked_by) V(preflight) - the preflight read every chunk itself (alone, or in check mode).
    - C(checked_by) V(restore) - with O(then_restore) - the restore's reads checked every chunk; C(passed) and
      C(recorded) are then those of the whole backup once the restore has read it (C(duration_s) the seconds
      spent on the chunks it did not read and the record); a damaged backup gives C(passed) false, C(recorded)
      true (its failure is recorded, as the preflight records it; false when the repository takes no record) and
      RV(failed_step) V(preflight).
  returned: with O(preflight)
  type: dict
  sample: {backup_id: 20261127T124501Z-3fa9c2d1, passed: true, chunks: 412, problems: [], recorded: true, duration_s: 0.8,
           checked_by: preflight}
app_commands:
  description: The application's commands that ran (O(app_stop_command), O(app_start_command)), in order.
  returned: with O(app_stop_command) or O(recovery_log)
  type: list
  elements: dict
  sample: [{action: stop, cmd: systemctl stop bim-wall-system, rc: 0, stdout: "", stderr: "", duration_s: 0.1}]
failed_step:
  description:
    - With O(then_restore), when the run failed - V(preflight) (nothing was changed; also a damaged backup found by
      the restore's reads, before anything was stopped or swapped) or V(restore).
  returned: on failure, with O(then_restore)
  type: str
  sample: preflight
health_gate:
  description:
    - The health gate (O(health_gate)) - C(passed), the last C(overall_status) (null when the start command
      failed), its C(problems), the C(attempts) and the C(checks) of the last attempt, as
      M(bim.wall_system.health_check) returns them.
  returned: with O(health_gate), after a swap
  type: dict
  sample: {passed: true, overall_status: healthy, problems: [], attempts: 1, checks: []}
recovery_log_records:
  description: The records this run appended to O(recovery_log.path) (C(step), C(status), C(at) epoch seconds).
  returned: with O(recovery_log)
  type: list
  elements: dict
  sample: [{step: preflight, status: ok, at: 1764962101.412}]
secondary:
  description:
    - What was fetched from the secondary repository.
    - In check mode, what would be fetched (C(would_fetch), C(fetch_chunks), C(fetch_bytes), C(reused_chunks)),
      read from the secondary without writing anything; RV(plan) then plans the restore of that backup, the
      free space the fetch needs included.
    - C(host_key) of an SFTP secondary is its C(fingerprint) (SHA256) and C(trust) (V(known), V(recorded) when
      this run trusted it on first use, or V(new) in check mode, which records nothing); null for a local secondary.
  returned: when the secondary repository was used
  type: dict
  sample: {source: sftp://root@storage1:22/srv/bim/pg1, backup_id: 20261127T124501Z-3fa9c2d1, fetched_chunks: 412,
           fetched_bytes: 61234567, reused_chunks: 0,
           host_key: {fingerprint: "SHA256:qk0x3Nq6Bx2gQ7mJ9d3sS5b8rPp8nEw6bq0T1cY2uVw", trust: known}}
'''

import contextlib
import os

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import (
    ConnectionParams, database_argument_spec, database_required_if)
from ansible_collections.bim.wall_system.plugins.module_utils.database.schema import SchemaOverrideError
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError, MissingLibraryError
from ansible_collections.bim.wall_system.plugins.module_utils.repository.locations import location_options
from ansible_collections.bim.wall_system.plugins.module_utils.repository.keys import (
    CRYPTOGRAPHY_IMPORT_ERROR, HAS_CRYPTOGRAPHY, key_argument_spec)
from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import RepositoryError
from ansible_collections.bim.wall_system.plugins.module_utils.restore.errors import RestoreError
from ansible_collections.bim.wall_system.plugins.module_utils.restore.journal import DEFAULT_STATE_DIR
from ansible_collections.bim.wall_system.plugins.module_utils.restore.app_commands import AppCommands
from ansible_collections.bim.wall_system.plugins.module_utils.restore.health_gate import HealthGate, gate_options_spec
from ansible_collections.bim.wall_system.plugins.module_utils.restore.recovery_log import RecoveryLog, preflight_detail
from ansible_collections.bim.wall_system.plugins.module_utils.restore.source import resolve_source
from ansible_collections.bim.wall_system.plugins.module_utils.common.urls import url_secrets


def _finish(module, base, failed_msg=None):
    """Warnings go through module.warn (they appear in the result's ``warnings``)."""
    for text in base.pop("warnings", None) or []:
        module.warn(text)
    if failed_msg is not None:
        module.fail_json(msg=failed_msg, **base)
    module.exit_json(**base)


def paused_archiver(p, params):
    """A swap or rollback of a live database whose archiver holds it open (Litestream) pauses it."""
    archive = None
    restores = not (p["fetch_only"] or p["preflight"]) or p["then_restore"]
    # no archive folder, no archive: the archiving code is not even imported
    if restores and (p["rollback_to"] or p["mode"] == "swap") and os.path.isdir(p["archive_dir"]):
        from ansible_collections.bim.wall_system.plugins.module_utils.archiving.archives import archive_if_set_up
        archive = archive_if_set_up(params, p["archive_dir"], p["state_dir"])
    return archive.paused() if archive else contextlib.nullcontext()


def point_in_time(module, params, base):
    """target_time (and the rollback of a cluster swap): the continuous archive's restore."""
    from ansible_collections.bim.wall_system.plugins.module_utils.archiving.common import ArchiveError
    from ansible_collections.bim.wall_system.plugins.module_utils.archiving import pitr
    p = module.params
    if p["backup_id"] not in (None, "latest"):
        _finish(module, base, "backup_id names a logical backup; it does not go with target_time")
    try:
        if p["rollback_to"]:
            result = pitr.run_pitr_rollback(params, p["archive_dir"], p["rollback_to"], p["keep_restore_points"],
                                            check_mode=module.check_mode, state_dir=p["state_dir"],
                                            lock_wait=p["lock_timeout"])
        else:
            result = pitr.run_pitr_restore(params, p["archive_dir"], p["target_time"], mode=p["mode"],
                                           keep_target=p["keep_target"], keep_restore_points=p["keep_restore_points"],
                                           check_mode=module.check_mode, state_dir=p["state_dir"],
                                           lock_wait=p["lock_timeout"], marker_run=p["marker_run"])
    except MissingLibraryError as exc:
        module.fail_json(msg=missing_required_lib(exc.library), exception=exc.exception_text)
    except ArchiveError as exc:
        details = dict(exc.details)
        base.update(details.pop("result", None) or {})
        base.update({k: v for k, v in details.items() if k in ("problems", "rc", "stderr", "cmd")})
        _finish(module, base, "point-in-time restore of %s: %s" % (params.describe(), exc))
    except (DatabaseError, RestoreError, OSError) as exc:
        _finish(module, base, "point-in-time restore of %s: %s" % (params.describe(), exc))
    base.update(result)
    _finish(module, base)


def argument_spec():
    spec = database_argument_spec()
    spec.update(
        repository=dict(type="path"),
        backup_id=dict(type="str", default="latest"),
        mode=dict(type="str", default="swap", choices=["swap", "new"]),
        target=dict(type="str"),
        tables=dict(type="list", elements="str"),
        keep_target=dict(type="bool", default=True),
        check_live_unchanged=dict(type="bool", default=False),
        rollback_to=dict(type="str"),
        keep_restore_points=dict(type="int", default=2),
        jobs=dict(type="int", default=2),
        verification=dict(type="str", default="auto", choices=["auto", "full"]),
        restore_files=dict(type="bool", default=False),
        files_root=dict(type="path", default="/"),
        secondary_repository=dict(type="dict", options=location_options()),
        secondary_staging=dict(type="path"),
        fetch_only=dict(type="bool", default=False),
        preflight=dict(type="bool", default=False),
        then_restore=dict(type="bool", default=False),
        recovery_log=dict(type="dict", options=dict(path=dict(type="path", required=True), host=dict(type="str"),
                                                    start=dict(type="dict"))),
        health_gate=dict(type="dict", options=gate_options_spec()),
        app_stop_command=dict(type="str"),
        app_start_command=dict(type="str"),
        state_dir=dict(type="path", default=DEFAULT_STATE_DIR),
        data_dir=dict(type="path"),
        staging_dir=dict(type="path"),
        lock_timeout=dict(type="int", default=60),
        target_time=dict(type="str"),
        archive_dir=dict(type="path", default="/var/lib/bim-wall-system/archiving"),
        marker_run=dict(type="str"),
    )
    spec.update(key_argument_spec())
    return spec


MUTUALLY_EXCLUSIVE = [
    ("rollback_to", "tables"), ("rollback_to", "target"), ("rollback_to", "fetch_only"),
    ("target_time", "tables"), ("target_time", "rollback_to"), ("target_time", "fetch_only"),
    ("target_time", "secondary_repository"), ("target_time", "target"),
    ("preflight", "fetch_only"), ("preflight", "rollback_to"), ("preflight", "target_time"),
    ("then_restore", "rollback_to"), ("then_restore", "target_time"), ("then_restore", "fetch_only"),
    ("recovery_log", "rollback_to"), ("recovery_log", "target_time"),
    ("app_stop_command", "rollback_to"), ("app_stop_command", "target_time"), ("app_stop_command", "fetch_only"),
    ("health_gate", "rollback_to"), ("health_gate", "target_time"), ("health_gate", "fetch_only"),
]
REQUIRED_TOGETHER = [("app_stop_command", "app_start_command")]


def _failing(module, params, base):
    """Context for one restore procedure: its failures end the module with what was being done."""
    @contextlib.contextmanager
    def guard():
        try:
            yield
        except MissingLibraryError as exc:
            base.pop("warnings", None)
            module.fail_json(msg=missing_required_lib(exc.library), exception=exc.exception_text, **base)
        except RestoreError as exc:
            details = dict(exc.details)
            base["warnings"] = list(details.pop("warnings", None) or base["warnings"])
            kept = ("plan", "problems", "tables", "chunk", "restore_point", "rolled_back_to", "checksums",
                    "app_commands", "recovery_log_records")
            base.update({key: details[key] for key in kept if key in details})
            _finish(module, base, "restore of %s: %s" % (params.describe(), exc))
        except (DatabaseError, RepositoryError, OSError) as exc:
            _finish(module, base, "restore of %s: %s" % (params.describe(), exc))
    return guard()


def rollback(module, params, base):
    """rollback_to: put a restore point back in place of the live database."""
    from ansible_collections.bim.wall_system.plugins.module_utils.restore import runner
    p = module.params
    with _failing(module, params, base):
        with contextlib.nullcontext() if module.check_mode else paused_archiver(p, params):
            base.update(runner.run_rollback(params, p["rollback_to"], keep_restore_points=p["keep_restore_points"],
                                            check_mode=module.check_mode, state_dir=p["state_dir"],
                                            data_dir=p["data_dir"], lock_wait=p["lock_timeout"]))
    _finish(module, base)


def preflight(module, params, base):
    """preflight: the repository chosen, the backup's checksums verified, the restore planned, one run;
    with then_restore (not in check mode) the restore of that backup follows in the same run."""
    from ansible_collections.bim.wall_system.plugins.module_utils.restore.preflight import run_preflight
    from ansible_collections.bim.wall_system.plugins.module_utils.restore.read_checks import ReadChecks
    p = module.params
    log = RecoveryLog.from_option(p["recovery_log"], module.check_mode)
    restore_too = p["then_restore"] and not module.check_mode
    # in one run the restore's reads are the checksum verification: the backup is read once
    checks = ReadChecks() if restore_too else None
    with _failing(module, params, base):
        app, gate = _app_and_gate(module, params, log if p["recovery_log"] else None)
        if p["then_restore"]:
            base["failed_step"] = "preflight"
        if (p["recovery_log"] or {}).get("start") is not None:
            log.write("start", "ok", p["recovery_log"]["start"])
        result = run_preflight(params, p, module.check_mode, read_checks=checks)
        base["warnings"].extend(result.pop("warnings", None) or [])
        base.update(result)
        log.write("preflight", "ok", preflight_detail(base))
        base.update(recovery_log_records=list(log.records), changed=base["changed"] or log.written)
        if restore_too:
            base["failed_step"] = "restore"
            try:
                _restore(module, params, base, base["repository_used"], base["backup_id"], log, app, gate, checks)
            except RestoreError as exc:
                if "checksums" in exc.details:  # the preflight's check failed, before anything was stopped or swapped
                    base["failed_step"] = "preflight"
                raise
            base["changed"] = True
        base.pop("failed_step", None)
    _finish(module, base)


def _app_and_gate(module, params, log):
    """The application's commands and the health gate the options ask for, or None each (their settings
    checked before anything runs); they go with a restore, not with a preflight alone."""
    p = module.params
    if (p["app_stop_command"] or p["health_gate"]) and p["preflight"] and not p["then_restore"]:
        raise RestoreError("app_stop_command and health_gate go with a restore: with preflight, set then_restore")
    app = (AppCommands(module.run_command, p["app_stop_command"], p["app_start_command"], log or RecoveryLog(None, ""))
           if p["app_stop_command"] else None)
    return app, health_gate(module, params, p)


def health_gate(module, params, p):
    """The ``health_gate`` option's gate (None without it); its settings checked before anything runs."""
    if not p["health_gate"]:
        return None
    if p["mode"] != "swap":
        raise RestoreError("health_gate goes with mode=swap: mode=new leaves the live database and the application alone")
    module.no_log_values.update(url_secrets(p["health_gate"]["app_url"]))
    return HealthGate(params, p["health_gate"], data_dir=p["data_dir"], secrets=[p["db_password"]])


def restore_backup(module, params, base):
    """A logical backup: choose its repository (fetching from the secondary when needed), restore it
    (with the application's commands around the swap, the health gate and the steps logged, when asked)."""
    p = module.params
    log = RecoveryLog.from_option(p["recovery_log"], module.check_mode) if p["recovery_log"] else None
    with _failing(module, params, base):
        app, gate = _app_and_gate(module, params, log)
        source = resolve_source(params, p, module.check_mode)
        base["warnings"].extend(source.warnings)
        base.update(source.result())
        if source.done:
            _finish(module, base)
        _restore(module, params, base, source.repository, source.backup_id, log, app, gate)
        if source.secondary:
            base["changed"] = True
    _finish(module, base)


def _restore(module, params, base, repository, backup_id, log, app, gate, read_checks=None):
    """The restore itself (``recovery_steps.restore_with_steps``), its result merged into ``base``;
    ``read_checks``: its reads verify the backup's checksums (the preflight's, in one run)."""
    from ansible_collections.bim.wall_system.plugins.module_utils.restore import runner
    from ansible_collections.bim.wall_system.plugins.module_utils.restore.recovery_steps import restore_with_steps
    p = module.params
    with contextlib.nullcontext() if module.check_mode else paused_archiver(p, params):
        base.update(restore_with_steps(params, repository, runner.RestoreOptions(
            backup_id, mode=p["mode"], target_name=p["target"], tables=p["tables"], jobs=p["jobs"],
            keep_restore_points=p["keep_restore_points"], keep_target=p["keep_target"],
            check_live_unchanged=p["check_live_unchanged"], check_mode=module.check_mode,
            restore_files=p["restore_files"], files_root=p["files_root"], state_dir=p["state_dir"],
            data_dir=p["data_dir"], staging_dir=p["staging_dir"], lock_wait=p["lock_timeout"],
            verification=p["verification"], repository_key=p["repository_key"], read_checks=read_checks),
            app=app, log=log, gate=gate))


def _cluster_restore_point(p):
    """rollback_to names a point-in-time swap's restore point (the archiving code is imported only then)."""
    from ansible_collections.bim.wall_system.plugins.module_utils.archiving.pitr import is_cluster_restore_point
    return is_cluster_restore_point(p["engine"], p["rollback_to"])


def main():
    module = AnsibleModule(argument_spec=argument_spec(), required_if=database_required_if(),
                           mutually_exclusive=MUTUALLY_EXCLUSIVE, required_together=REQUIRED_TOGETHER,
                           supports_check_mode=True)
    p = module.params
    if p["repository_key"] and not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=str(CRYPTOGRAPHY_IMPORT_ERROR))
    base = dict(changed=False, backup_id=None, mode=p["mode"], restore_point=None, tables={}, verified=False,
                warnings=[], duration_s=0.0)
    try:
        params = ConnectionParams.from_params(p)
    except SchemaOverrideError as exc:
        module.fail_json(msg=str(exc), **base)
    if p["target_time"] or (p["rollback_to"] and _cluster_restore_point(p)):
        point_in_time(module, params, base)
    if p["rollback_to"]:
        rollback(module, params, base)
    if p["preflight"]:
        preflight(module, params, base)
    restore_backup(module, params, base)


if __name__ == "__main__":
    main()
