#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: backup_info
short_description: List the backups of a BIM backup repository and flag a stale one
version_added: 0.1.0
description:
  - Lists every backup of a repository written by M(bim.wall_system.backup) with its type, parent,
    times, sizes, verification state and age, plus the latest and the latest verified backup.
  - Only manifests that pass their checksum are listed; damaged ones are reported apart.
  - With O(max_age), flags the repository as stale when its newest backup is older (or it holds none).
  - With O(engine) (and the connection options), where M(bim.wall_system.continuous_archiving) set archiving up
    (its descriptor in O(archive_dir)), also the continuous archive - the physical backups (pgBackRest), the
    recoverable window (RV(recoverable_window), the earliest and latest moment a point-in-time restore can
    reach) and the archive's health (PostgreSQL - last archived WAL, its age, failures, how long WAL waits for
    the archive; SQLite - Litestream's replica position and lag).
  - Only reads; takes no lock.
author:
  - BIM Wall System operations team (@bim-ops)
attributes:
  check_mode:
    description: Can run in check mode and return a prediction of what would change, without changing anything.
    support: full
    details: The module only reads.
  diff_mode:
    description: Will return details on what has changed (or would change in check mode) in diff mode.
    support: none
extends_documentation_fragment:
  - bim.wall_system.connection
  - bim.wall_system.repository_key
options:
  repository:
    description:
      - Folder of the backup repository (usually C(bim_backup_repository)).
      - Required unless O(engine) is given (the continuous archive alone is then reported).
    type: path
  engine:
    description:
      - Engine of the database, to report its continuous archive too. Without it only O(repository) is read.
    type: str
    choices: [postgresql, sqlite]
    required: false
  archive_dir:
    description: Folder of the archiving files (inventory C(bim_archiving_dir)).
    type: path
    default: /var/lib/bim-wall-system/archiving
  max_age:
    description:
      - Newest backup age above which the repository is stale, as seconds (V(93600)) or with a
        unit C(s), C(m), C(h), C(d) (V(26h), V(2d)).
    type: str
  fail_when_stale:
    description: Fail the task when the repository is stale.
    type: bool
    default: false
  backup_id:
    description: Only report this backup (an unknown id or one with path characters fails clearly).
    type: str
requirements:
  - zstandard
seealso:
  - module: bim.wall_system.backup
'''

EXAMPLES = r'''
- name: List the backups and flag a repository whose newest backup is older than 26 hours
  bim.wall_system.backup_info:
    repository: /var/backups/bim
    max_age: 26h
  register: backups

- name: Show the newest verified backup
  ansible.builtin.debug:
    msg: "{{ backups.latest_verified.id | default('none verified yet') }}"
'''

RETURN = r'''
backups:
  description: Every backup, oldest first.
  returned: always
  type: list
  elements: dict
  sample:
    - id: 20261127T124501Z-3fa9c2d1
      type: full
      parent_id: null
      engine: postgresql
      started: "2026-11-27T12:45:01.123456+00:00"
      finished: "2026-11-27T12:45:09.654321+00:00"
      age_s: 3600.0
      source_bytes: 512000000
      new_stored_bytes: 58000000
      referenced_bytes: 58000000
      tables: {walls: 1000}
      include_paths: []
      suspicious: []
      verified: true
      verification: {level: restore, passed: true, problems: [], time: "2026-11-27T13:00:00+00:00", details: {}}
count:
  description: Number of backups.
  returned: always
  type: int
  sample: 4
latest:
  description: The newest backup (same fields as an entry of RV(backups)), or null.
  returned: always
  type: dict
  sample: {id: 20261127T124501Z-3fa9c2d1, type: incremental}
latest_verified:
  description: The newest backup whose newest verification passed, or null.
  returned: always
  type: dict
  sample: {id: 20261126T020000Z-0a1b2c3d, type: full}
stale:
  description: True when O(max_age) is set and the newest backup is older or there is none.
  returned: always
  type: bool
  sample: false
suspicious:
  description:
    - Ids of the backups flagged suspicious (none of the BIM tables, or a drop of the C(walls) rows beyond the
      backup's C(suspicious_drop)); each backup's C(suspicious) lists the reasons. Retention keeps them.
  returned: always
  type: list
  elements: str
  sample: [20261127T124501Z-3fa9c2d1]
damaged_manifests:
  description: Manifests that fail their checksum or cannot be read, with the reason.
  returned: always
  type: dict
  sample: {}
repository:
  description: Absolute path of the repository.
  returned: always
  type: str
  sample: /var/backups/bim
protection:
  description:
    - V(encrypted), V(authenticated) or V(unkeyed) (a warning then says that the repository is unauthenticated).
  returned: when O(repository) is read
  type: str
  sample: encrypted
recoverable_window:
  description:
    - Earliest and latest moment (ISO-8601 UTC) a point-in-time restore can reach, from the continuous archive.
    - Both null where archiving is not set up (or holds no base yet).
  returned: always
  type: dict
  sample: {earliest: "2026-12-05T09:00:12Z", latest: "2026-12-05T10:07:31Z"}
physical_backups:
  description: pgBackRest backups of the stanza, oldest first.
  returned: with O(engine) where archiving is set up
  type: list
  elements: dict
  sample:
    - {label: 20261205-090012F, type: full, parent: null, started: "2026-12-05T09:00:05Z", finished: "2026-12-05T09:00:12Z",
       database_bytes: 40724660, repository_bytes: 4780743, repository_delta_bytes: 4780743, error: false}
archive_health:
  description:
    - The archive's health. PostgreSQL - C(last_archived_wal), C(last_archived_time), C(last_archived_age_s),
      C(failed_count), C(last_failed_time), C(archive_failing), C(archive_delay_s), C(archive_delay_ratio),
      C(ready_segments). SQLite - C(replica_txid), C(replica_time), C(local_txid), C(transactions_behind),
      C(lag_s), C(daemon_pid).
  returned: with O(engine) where archiving is set up
  type: dict
  sample: {tool: pgbackrest, last_archived_wal: 000000010000000000000010, last_archived_age_s: 12.1, failed_count: 0,
           archive_failing: false, archive_delay_s: 0.0}
archiving:
  description: Whether continuous archiving is set up for the database (a descriptor in O(archive_dir)).
  returned: always
  type: bool
  sample: true
msg:
  description: Summary in words (says why the repository is stale).
  returned: always
  type: str
  sample: newest backup 20261125T020000Z-0a1b2c3d is 34.0 h old, older than max_age 26.0 h
'''

import re

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import (
    ENGINES, ConnectionParams, database_argument_spec, database_required_if)
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError

from ansible_collections.bim.wall_system.plugins.module_utils.repository import backup as backup_lib
from ansible_collections.bim.wall_system.plugins.module_utils.repository.keys import (
    CRYPTOGRAPHY_IMPORT_ERROR, HAS_CRYPTOGRAPHY, key_argument_spec)
from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import (
    HAS_ZSTD, ZSTD_IMPORT_ERROR, Repository, RepositoryError)

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_age(text):
    """'26h' / '90m' / '2d' / '93600' -> seconds; None when unset; ValueError when malformed."""
    if text is None or str(text).strip() == "":
        return None
    match = re.match(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([smhdw]?)\s*$", str(text).lower())
    if not match:
        raise ValueError("max_age %r is not a duration like 93600, 90m, 26h or 2d" % (text,))
    return float(match.group(1)) * UNITS[match.group(2) or "s"]


def archive_report(params, archive_dir):
    """The continuous archive's part of the result (empty window where archiving is not set up)."""
    from ansible_collections.bim.wall_system.plugins.module_utils.archiving.archives import archive_if_set_up
    from ansible_collections.bim.wall_system.plugins.module_utils.archiving.common import window
    archive = archive_if_set_up(params, archive_dir) if params is not None else None
    if archive is None:
        return {"archiving": False, "recoverable_window": window(None, None)}
    info = archive.info()
    return {"archiving": True, "recoverable_window": info["recoverable_window"],
            "physical_backups": info["physical_backups"], "archive_health": info["archive_health"]}


def main():
    spec = database_argument_spec()
    spec["engine"] = dict(type="str", choices=list(ENGINES))
    spec.update(
        repository=dict(type="path"),
        max_age=dict(type="str"),
        fail_when_stale=dict(type="bool", default=False),
        backup_id=dict(type="str"),
        archive_dir=dict(type="path", default="/var/lib/bim-wall-system/archiving"),
    )
    spec.update(key_argument_spec())
    module = AnsibleModule(argument_spec=spec, required_one_of=[("repository", "engine")],
                           required_if=database_required_if(), supports_check_mode=True)
    if not HAS_ZSTD:
        module.fail_json(msg=missing_required_lib("zstandard"), exception=str(ZSTD_IMPORT_ERROR))
    if module.params["repository_key"] and not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=str(CRYPTOGRAPHY_IMPORT_ERROR))
    try:
        max_age = parse_age(module.params["max_age"])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    result = {"backups": [], "count": 0, "latest": None, "latest_verified": None, "damaged_manifests": {}, "suspicious": [],
              "stale": False, "repository": None, "msg": "no logical repository given"}
    if module.params["repository"]:
        try:
            repo = Repository(module.params["repository"], key=module.params["repository_key"])
            if module.params["backup_id"]:
                repo.load_manifest(module.params["backup_id"])
            result = backup_lib.backup_summary(repo, max_age_s=max_age)
        except RepositoryError as exc:
            module.fail_json(msg=str(exc), stale=max_age is not None)
        if module.params["backup_id"]:
            result["backups"] = [b for b in result["backups"] if b["id"] == module.params["backup_id"]]
    from ansible_collections.bim.wall_system.plugins.module_utils.archiving.common import ArchiveError
    params = ConnectionParams.from_params(module.params) if module.params["engine"] else None
    try:
        result.update(archive_report(params, module.params["archive_dir"]))
    except (ArchiveError, DatabaseError, OSError) as exc:
        module.fail_json(msg="cannot read the continuous archive in %s: %s" % (module.params["archive_dir"], exc))
    result["changed"] = False
    if result["stale"] and module.params["fail_when_stale"]:
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
