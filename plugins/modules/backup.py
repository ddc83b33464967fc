#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: backup
short_description: Back up a BIM Wall System database into a deduplicating backup repository
version_added: 0.1.0
description:
  - Takes a full, differential or incremental backup of a PostgreSQL or SQLite BIM database into a
    backup repository (format in C(docs/repository-format.md)) made of content-addressed chunks,
    each compressed with zstd and stored once, and a manifest written last, atomically.
  - "PostgreSQL: C(pg_dump --format=custom --compress=0) is streamed into a content-defined
    chunker (FastCDC), never into a full-size temporary file; the password travels in
    C(PGPASSWORD), never on the command line. The table digests are taken in the same snapshot
    as the dump (each table streamed with C(COPY) on a connection of its own while C(pg_dump) runs)."
  - "SQLite: the online backup API makes a consistent copy in the repository's C(tmp) folder while
    the application keeps writing; the copy is cut into page-aligned 256 KiB chunks and removed."
  - The manifest records rows and a content digest per BIM table, so a restore can be proven.
  - After the backup, O(retention) expires old backups and O(prune) removes the chunks no remaining
    backup needs. Then every backup the secondary repositories of O(copy_to) lack is copied to them;
    a failed copy does not fail the task, it is reported in RV(storage_locations).
  - The repository is locked while the module writes; another run waits O(lock_timeout) seconds
    and then fails with who holds the lock. A lock left by a dead process on this host is cleared.
author:
  - BIM Wall System operations team (@bim-ops)
extends_documentation_fragment:
  - bim.wall_system.connection
  - bim.wall_system.repository_key
attributes:
  check_mode:
    description: Can run in check mode and return a prediction of what would change, without changing anything.
    support: full
    details: Plans the backup type and parent and lists what retention would expire; writes nothing.
  diff_mode:
    description: Will return details on what has changed (or would change in check mode) in diff mode.
    support: none
options:
  repository:
    description:
      - Folder of the backup repository on the managed host. Created (mode 0700) when missing.
      - Usually the inventory variable C(bim_backup_repository).
      - Required with O(method=logical).
    type: path
  type:
    description:
      - V(full) stores the whole database and re-verifies every chunk it reuses.
      - V(differential) records the last full as parent; V(incremental) records the last backup.
        Both store only chunks the repository does not hold yet. Every backup's manifest lists all
        its chunks, so a restore never replays a chain.
      - V(auto) takes a full when there is none or the last full is older than O(full_every_days),
        otherwise an incremental.
      - A differential or incremental with no full in the repository becomes a full.
    type: str
    choices: [auto, full, differential, incremental]
    default: auto
  full_every_days:
    description:
      - With O(type=auto), the age in days after which the next backup is a full. V(0) never forces one.
    type: int
    default: 7
  compression_level:
    description:
      - zstd level of the chunks (1-19). Higher is smaller and slower.
      - On a PostgreSQL dump, V(3) stores about 1.07 times a C(pg_dump -Fc) file and V(7) about 0.99 times,
        for four times the compression CPU.
    type: int
    default: 3
  include_paths:
    description:
      - Absolute paths of application configuration files and folders stored in the same backup
        as a tar stream named C(files), so disaster recovery can restore them.
    type: list
    elements: path
    default: []
  retention:
    description:
      - Which backups to keep after this one, with restic's semantics. Unset rules keep nothing by
        themselves; with no rule at all every backup is kept.
      - Retention never trades good backups for a suspicious one (see O(suspicious_drop)) - a
        suspicious backup is kept, counts for no C(keep_*) rule, and a run whose own backup is
        suspicious expires nothing. The newest backup whose last restore-level verification
        (M(bim.wall_system.backup_verify) with C(level=restore)) passed is never expired.
    type: dict
    default: {}
    suboptions:
      keep_last:
        description: Keep the N newest backups.
        type: int
      keep_daily:
        description: Keep the newest backup of each of the N newest days (UTC) that have backups.
        type: int
      keep_weekly:
        description: Keep the newest backup of each of the N newest ISO weeks that have backups.
        type: int
      keep_monthly:
        description: Keep the newest backup of each of the N newest months that have backups.
        type: int
  prune:
    description:
      - After retention, remove the chunks that no remaining backup references (under the lock).
    type: bool
    default: true
  suspicious_drop:
    description:
      - A backup is flagged C(suspicious) (in its manifest and in RV(suspicious)) when its database has none of
        the BIM tables (for example a zero-byte SQLite file) or when its C(walls) row count dropped by more
        than this share (above 0, at most 1) since the previous backup.
      - A suspicious backup is kept and never traded for good ones by O(retention).
    type: float
    default: 0.5
  forget_suspicious:
    description:
      - Ids of suspicious backups to remove, once examined (see O(suspicious_drop)). Before this run's backup is
        taken, under the lock, their manifests and verification records are removed; their chunks go with this
        run's prune (or the next one). The same backups are forgotten on the O(copy_to) targets where they are
        flagged suspicious too.
      - Only backups flagged suspicious are removed. An id naming a backup that is not suspicious fails the task
        before anything changes; an id the repository does not hold (forgotten by an earlier run) gives a warning.
      - This run's backup is then compared with the newest backup that remains. After an intended drop of the
        C(walls) rows, forget the suspicious backup once a later backup holds the new state, or the next backup
        is flagged again against the older, larger one.
    type: list
    elements: str
    default: []
  copy_to:
    description:
      - Secondary repositories. Each entry has a C(url), either an absolute local path or
        C(sftp://user@host[:port]/path), and for SFTP an optional C(key_file) (private key; key
        authentication only).
      - Chunks are copied first, each read back from the target and hash-checked; the manifest
        last. A copy cut off midway leaves no manifest on the target; the next run completes it.
      - O(retention) (and O(prune)) apply to each target's own backups after the copy.
    type: list
    elements: dict
    default: []
    suboptions:
      url:
        description: Local path or C(sftp://user@host[:port]/path) of the secondary repository.
        type: str
        required: true
      key_file:
        description: Private key file for SFTP.
        type: path
      strict_host_key_checking:
        description:
          - V(false) (default) trusts an SFTP host on first use, as C(StrictHostKeyChecking=accept-new)
            does; its key is recorded in O(copy_to[].known_hosts_file) and every later
            connection must offer the same key. In check mode a first-seen key is not recorded.
          - V(true) refuses a host whose key is not already in O(copy_to[].known_hosts_file),
            C(/etc/ssh/ssh_known_hosts) or C(~/.ssh/known_hosts).
          - Either way a host whose key changed is refused, the message naming both SHA256
            fingerprints; nothing is copied to it.
        type: bool
        default: false
      known_hosts_file:
        description:
          - The known_hosts file (OpenSSH format) the collection keeps on the managed host, where
            first-use keys are recorded. The system's known_hosts files are consulted too (read only).
        type: path
        default: /var/lib/bim-wall-system/known_hosts
  lock_timeout:
    description:
      - Seconds to wait for a lock held by another run before failing.
    type: int
    default: 0
  method:
    description:
      - V(logical) backs up into O(repository) as described above.
      - V(physical) (PostgreSQL) takes a pgBackRest backup of the whole cluster (V(full), V(differential) or
        V(incremental); V(auto) as above) into the stanza that M(bim.wall_system.continuous_archiving) set up in
        O(archive_dir). With the archived WAL it is the base of point-in-time restores
        (M(bim.wall_system.restore) O(bim.wall_system.restore#module:target_time)). O(repository), O(retention)
        and O(copy_to) do not apply (pgBackRest's own retention, from the archiving role, does).
    type: str
    choices: [logical, physical]
    default: logical
  archive_dir:
    description:
      - With O(method=physical), the folder of the archiving files (inventory C(bim_archiving_dir)).
    type: path
    default: /var/lib/bim-wall-system/archiving
  repository_encryption:
    description:
      - When the module creates the repository with O(repository_key), encrypt it (AES-256-GCM) so that it
        holds only ciphertext; V(false) makes it authenticated only (HMAC-SHA256, content readable).
      - Chunk names are keyed either way, so they reveal nothing of the content. Ignored for an existing
        repository, which keeps the mode it was created with.
    type: bool
    default: true
  new_repository_key:
    description:
      - Rotate the key. The repository's data key is re-wrapped under this key (with O(repository_key) the
        current one) before the backup, under the lock; chunks and manifests are not rewritten. From then on
        only the new key opens the repository, and copy targets get the new key file with the next copy.
      - Set C(bim_backup_repository_key) to the new key for the runs that follow. Never logged.
    type: str
requirements:
  - zstandard
  - pyfastcdc
  - psycopg (PostgreSQL)
  - paramiko (SFTP copies)
  - cryptography (with O(repository_key))
  - pg_dump on the managed host (PostgreSQL)
notes:
  - The SQLite copy needs free space for one database copy in the repository's file system.
seealso:
  - module: bim.wall_system.backup_info
'''

EXAMPLES = r'''
- name: Nightly backup of a PostgreSQL host with retention and an SFTP copy
  bim.wall_system.backup:
    engine: postgresql
    db_host: 127.0.0.1
    db_name: bim_walls
    db_user: bim
    db_password: "{{ vault_bim_db_password }}"
    repository: /var/backups/bim
    type: auto
    full_every_days: 7
    include_paths:
      - /etc/bim-wall-system
    retention:
      keep_last: 3
      keep_daily: 7
      keep_weekly: 4
      keep_monthly: 6
    copy_to:
      - url: sftp://backup@storage1.example.com/srv/bim/pg1
        key_file: /root/.ssh/bim_backup
  register: backup

- name: Full backup of a SQLite host
  bim.wall_system.backup:
    engine: sqlite
    sqlite_path: /var/lib/bim/walls.db
    repository: /var/backups/bim
    type: full
    lock_timeout: 600

- name: Backup into a keyed, encrypted repository (the key from Ansible Vault)
  bim.wall_system.backup:
    engine: sqlite
    sqlite_path: /var/lib/bim/walls.db
    repository: /var/backups/bim-keyed
    repository_key: "{{ bim_backup_repository_key }}"

- name: Forget a suspicious backup once examined (the next backup is then taken as usual)
  bim.wall_system.backup:
    engine: sqlite
    sqlite_path: /var/lib/bim/walls.db
    repository: /var/backups/bim
    forget_suspicious:
      - 20261127T020000Z-3fa9c2d1

- name: Rotate the repository key (chunks are not rewritten)
  bim.wall_system.backup:
    engine: sqlite
    sqlite_path: /var/lib/bim/walls.db
    repository: /var/backups/bim-keyed
    repository_key: "{{ bim_backup_repository_key }}"
    new_repository_key: "{{ vault_new_repository_key }}"
'''

RETURN = r'''
method:
  description: V(physical) for a pgBackRest backup (O(method=physical)).
  returned: with O(method=physical)
  type: str
  sample: physical
stanza:
  description: pgBackRest stanza backed up.
  returned: with O(method=physical)
  type: str
  sample: bim-pg1
backup_id:
  description: Id of the new backup (null in check mode); with O(method=physical), pgBackRest's label.
  returned: always
  type: str
  sample: 20261127T124501Z-3fa9c2d1
type:
  description: Type taken (or planned in check mode).
  returned: always
  type: str
  sample: incremental
parent_id:
  description: Parent backup (last full for a differential, last backup for an incremental).
  returned: always
  type: str
  sample: 20261126T020000Z-0a1b2c3d
started:
  description: Start time, ISO 8601 UTC.
  returned: success
  type: str
  sample: "2026-11-27T12:45:01.123456+00:00"
finished:
  description: Finish time (the manifest's), ISO 8601 UTC.
  returned: success
  type: str
  sample: "2026-11-27T12:45:09.654321+00:00"
duration_s:
  description: Seconds the backup took, copies included.
  returned: success
  type: float
  sample: 8.53
source_bytes:
  description: Uncompressed bytes of all streams (dump or database file, plus files).
  returned: success
  type: int
  sample: 512000000
new_stored_bytes:
  description: Compressed bytes of the chunks this backup added to the repository.
  returned: success
  type: int
  sample: 1048576
referenced_bytes:
  description: Compressed bytes of all distinct chunks this backup references.
  returned: success
  type: int
  sample: 58000000
tables:
  description:
    - Rows and content digest per BIM table, as recorded in the manifest.
    - On PostgreSQL each entry also names the form the digest was taken in (C(digest_form)) and the encoding of
      the rows (C(digest_encoding)). V(dump-framed) is the SHA-256 of the table's data as pg_dump wrote it in this
      backup (its rows in dump order, each after its length) and C(rows) its row count in the dump's snapshot;
      older backups record V(copy-ordered), V(copy-rows), V(copy-binary) or V(copy-text). Verifications digest the
      restored table in that form.
  returned: success
  type: dict
  sample: {walls: {rows: 1000, digest: 3b4c..., digest_form: dump-framed, digest_encoding: UTF8}}
suspicious:
  description: True when the backup was flagged suspicious (see O(suspicious_drop)); retention then expired nothing.
  returned: success
  type: bool
  sample: false
suspicious_reasons:
  description: Why the backup was flagged suspicious (empty when it was not).
  returned: success
  type: list
  elements: str
  sample: ["walls rows dropped from 1000 to 10 since backup 20261126T020000Z-0a1b2c3d (99%, more than suspicious_drop 50%)"]
storage_locations:
  description:
    - The primary repository and each copy target with its status (V(ok), V(failed), V(planned)) and error;
      a copy target also lists the backups retention C(expired) and O(forget_suspicious) C(forgotten) there.
    - An SFTP target also has C(host_key), its C(fingerprint) (SHA256) and C(trust) (V(known), or V(recorded)
      when this run trusted it on first use). A refused host key fails the copy with both fingerprints in C(error).
  returned: always
  type: list
  elements: dict
  sample:
    - {url: /var/backups/bim, status: ok, primary: true, error: null}
    - {url: "sftp://root@127.0.10.9:22/srv/bim/pg1", status: failed, primary: false,
       error: "copy to sftp://root@127.0.10.9:22/srv/bim/pg1 failed: Socket is closed", copied_chunks: 12,
       host_key: {fingerprint: "SHA256:qk0x3Nq6Bx2gQ7mJ9d3sS5b8rPp8nEw6bq0T1cY2uVw", trust: known}}
copy_failed:
  description: True when any copy target failed (the backup itself succeeded).
  returned: success
  type: bool
  sample: false
expired:
  description: Ids of the backups retention removed (would remove, in check mode).
  returned: always
  type: list
  elements: str
  sample: [20261101T020000Z-aa11bb22]
forgotten:
  description:
    - Ids of the suspicious backups O(forget_suspicious) removed from the repository (would remove, in check
      mode). Each copy target's entry in RV(storage_locations) lists those forgotten there.
  returned: with O(method=logical)
  type: list
  elements: str
  sample: [20261127T020000Z-3fa9c2d1]
pruned:
  description: Chunks and bytes prune removed, and chunks of crashed runs removed before the backup.
  returned: success
  type: dict
  sample: {removed_chunks: 10, removed_bytes: 655360, orphans_removed: 0}
new_chunks:
  description: Chunks this backup added.
  returned: success
  type: int
  sample: 16
reused_chunks:
  description: Chunks this backup found already stored.
  returned: success
  type: int
  sample: 7800
repaired_chunks:
  description: Stored chunks a full backup found corrupt and rewrote.
  returned: success
  type: int
  sample: 0
streams:
  description: Per stream (C(database), C(files)) its kind, size and chunk count.
  returned: success
  type: dict
  sample: {database: {kind: pg_dump_custom, size: 512000000, chunks: 7812}}
timings:
  description: Seconds per phase (database stream, digests taken alongside, files, sync, copies).
  returned: success
  type: dict
  sample: {database_s: 8.1, digests_s: 7.9, sync_s: 0.4, copies_s: 2.0}
repository:
  description: Absolute path of the primary repository.
  returned: always
  type: str
  sample: /var/backups/bim
protection:
  description:
    - What the repository key gives the repository - V(encrypted) (authenticated and encrypted),
      V(authenticated), or V(unkeyed) (a warning says that it is unauthenticated).
  returned: success
  type: str
  sample: encrypted
key_rotated:
  description: Whether O(new_repository_key) re-wrapped the data key (planned, in check mode).
  returned: success
  type: bool
  sample: false
'''

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import (
    ConnectionParams, database_argument_spec, database_required_if)
from ansible_collections.bim.wall_system.plugins.module_utils.database.schema import SchemaOverrideError
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError

from ansible_collections.bim.wall_system.plugins.module_utils.repository import backup as backup_lib
from ansible_collections.bim.wall_system.plugins.module_utils.repository.chunker import HAS_FASTCDC, FASTCDC_IMPORT_ERROR
from ansible_collections.bim.wall_system.plugins.module_utils.repository.locations import location_options
from ansible_collections.bim.wall_system.plugins.module_utils.repository.keys import (
    CRYPTOGRAPHY_IMPORT_ERROR, HAS_CRYPTOGRAPHY, key_argument_spec)
from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import (
    HAS_ZSTD, ZSTD_IMPORT_ERROR, RepositoryError)


def argument_spec():
    spec = database_argument_spec()
    spec.update(
        repository=dict(type="path"),
        type=dict(type="str", default="auto", choices=["auto", "full", "differential", "incremental"]),
        full_every_days=dict(type="int", default=7),
        compression_level=dict(type="int", default=3),
        include_paths=dict(type="list", elements="path", default=[]),
        retention=dict(type="dict", default={}, options=dict(
            keep_last=dict(type="int"), keep_daily=dict(type="int"),
            keep_weekly=dict(type="int"), keep_monthly=dict(type="int"))),
        prune=dict(type="bool", default=True),
        copy_to=dict(type="list", elements="dict", default=[], options=location_options()),
        lock_timeout=dict(type="int", default=0),
        suspicious_drop=dict(type="float", default=0.5),
        forget_suspicious=dict(type="list", elements="str", default=[]),
        method=dict(type="str", default="logical", choices=["logical", "physical"]),
        archive_dir=dict(type="path", default="/var/lib/bim-wall-system/archiving"),
        repository_encryption=dict(type="bool", default=True),
        new_repository_key=dict(type="str", no_log=True),
    )
    spec.update(key_argument_spec())
    return spec


def physical(module, params):
    """method: physical: the pgBackRest backup of the archiving library."""
    from ansible_collections.bim.wall_system.plugins.module_utils.archiving.common import ArchiveError
    from ansible_collections.bim.wall_system.plugins.module_utils.archiving.physical import run_physical_backup
    try:
        result = run_physical_backup(params, module.params["archive_dir"], module.params["type"],
                                     module.params["full_every_days"], check_mode=module.check_mode)
    except (ArchiveError, DatabaseError) as exc:
        extra = {k: v for k, v in getattr(exc, "details", {}).items() if k in ("rc", "stderr", "cmd")}
        module.fail_json(msg="physical backup of %s failed: %s" % (params.describe(), exc), **extra)
    module.exit_json(**result)


def main():
    module = AnsibleModule(argument_spec=argument_spec(),
                           required_if=database_required_if() + [("method", "logical", ("repository",))],
                           supports_check_mode=True)
    if module.params["method"] == "physical":
        physical(module, ConnectionParams.from_params(module.params))
    if not HAS_ZSTD:
        module.fail_json(msg=missing_required_lib("zstandard"), exception=str(ZSTD_IMPORT_ERROR))
    if not HAS_FASTCDC:
        module.fail_json(msg=missing_required_lib("pyfastcdc"), exception=str(FASTCDC_IMPORT_ERROR))
    if (module.params["repository_key"] or module.params["new_repository_key"]) and not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=str(CRYPTOGRAPHY_IMPORT_ERROR))
    if module.params["new_repository_key"] and not module.params["repository_key"]:
        module.fail_json(msg="new_repository_key rotates the key of a keyed repository: give its current "
                             "repository_key too")
    try:
        params = ConnectionParams.from_params(module.params)
    except SchemaOverrideError as exc:
        module.fail_json(msg=str(exc))
    options = {name: module.params[name] for name in (
        "type", "full_every_days", "compression_level", "include_paths", "retention", "prune",
        "copy_to", "lock_timeout", "suspicious_drop", "forget_suspicious", "repository_key", "repository_encryption",
        "new_repository_key")}
    try:
        if module.check_mode:
            result = backup_lib.plan_backup(params, module.params["repository"], options)
        else:
            result = backup_lib.run_backup(params, module.params["repository"], options)
    except (RepositoryError, DatabaseError) as exc:
        extra = {}
        for name in ("rc", "stderr", "cmd"):
            if getattr(exc, name, None) is not None:
                extra[name] = getattr(exc, name)
        module.fail_json(msg="backup of %s into %s failed: %s" % (params.describe(), module.params["repository"], exc),
                         **extra)
    except Exception as exc:  # a bug: still a message, with the traceback for -vvv
        module.fail_json(msg="backup of %s failed unexpectedly: %s: %s" % (params.describe(), type(exc).__name__, exc),
                         exception=traceback.format_exc())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
