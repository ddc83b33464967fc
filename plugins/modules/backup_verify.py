#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: backup_verify
short_description: Prove BIM Wall System backups by checksums or by restoring them into a scratch copy
version_added: 0.1.0
description:
  - O(level=checksum) reads every chunk of the chosen backups once (however many backups share it),
    decompresses it and checks its length and SHA-256 against its name and the manifest, and checks
    each manifest's own checksum.
  - O(level=restore) restores each chosen backup into a scratch copy (PostgreSQL a temporary
    database C(<db>__verify_<time>) on the same server; SQLite a temporary file), runs the integrity
    checks (SQLite C(integrity_check), C(foreign_key_check), C(rtreecheck); PostgreSQL
    C(pg_restore --exit-on-error), amcheck C(bt_index_check) of every btree index, spatial GiST
    indexes valid), compares rows and content digest of every table with the manifest and removes
    the scratch copy. The live database is never touched.
  - Each result is recorded in the repository's verification records (manifests stay immutable),
    so C(bim.wall_system.backup_info) reports C(latest_verified).
  - Fails when any backup has a problem; each problem names the backup and the chunk or table.
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
    details: >-
      Checksum level reads and reports but records nothing; restore level returns the plan of each
      scratch restore (space needed vs available) and creates nothing.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  repository:
    description: Folder of the backup repository on the managed host (C(bim_backup_repository)).
    type: path
    required: true
  backups:
    description:
      - Which backups; each entry V(all), V(latest), V(latest_verified) or a backup id.
    type: list
    elements: str
    default: [latest]
  level:
    description: V(checksum) or V(restore) (see the description).
    type: str
    choices: [checksum, restore]
    default: checksum
  record:
    description: Record the results in the repository.
    type: bool
    default: true
  fail_on_problems:
    description: Fail the task when a backup has a problem (the results are returned either way).
    type: bool
    default: true
  jobs:
    description: Parallel jobs of C(pg_restore) for O(level=restore).
    type: int
    default: 2
  scratch_dir:
    description: SQLite only. Folder of the scratch file (default the live file's folder).
    type: path
  staging_dir:
    description:
      - Folder for the staged PostgreSQL archive.
      - Default memory (C(/dev/shm), a tmpfs) when the archive takes at most a quarter of the available memory and
        fits there, else the system temp folder.
    type: path
  data_dir:
    description: Folder whose file system receives the scratch database, for the free-space check.
    type: path
  lock_timeout:
    description: Seconds to wait when a restore on the same database is running.
    type: int
    default: 60
notes:
  - Verification records are bookkeeping of the repository; the module reports C(changed=false)
    because no backup and no database changes.
'''

EXAMPLES = r'''
- name: Check the chunks of every backup
  bim.wall_system.backup_verify:
    engine: postgresql
    db_name: bim_walls
    repository: /var/backups/bim
    backups: [all]
    level: checksum

- name: Restore the latest backup into a scratch database and compare it with its manifest
  bim.wall_system.backup_verify:
    engine: sqlite
    sqlite_path: /var/lib/bim/walls.db
    repository: /var/backups/bim
    backups: [latest]
    level: restore
  register: verified
'''

RETURN = r'''
passed:
  description: Every chosen backup passed.
  returned: always
  type: bool
  sample: false
level:
  description: The level that ran.
  returned: always
  type: str
  sample: checksum
backups:
  description:
    - One entry per backup, oldest first.
    - At level V(restore) each entry also holds C(tables) (rows and digests per table),
      C(restore_s), C(verify_s) and C(manifest_checksum), the checksum of the manifest that was
      verified; a later M(bim.wall_system.restore) with O(bim.wall_system.restore#module:verification=auto) relies on
      this record only for that same manifest.
  returned: always
  type: list
  elements: dict
  sample:
    - backup_id: 20261127T124501Z-3fa9c2d1
      level: checksum
      passed: false
      problems: ["chunk 3fa2...: SHA-256 mismatch"]
      chunks: 412
problems:
  description: Every problem prefixed with its backup id, for a quick look.
  returned: always
  type: list
  elements: str
  sample: ["20261127T124501Z-3fa9c2d1: chunk 3fa2...: SHA-256 mismatch"]
recorded:
  description: Whether the results were recorded in the repository.
  returned: always
  type: bool
  sample: true
duration_s:
  description: Wall time of the verification.
  returned: always
  type: float
  sample: 4.2
'''

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import (
    ConnectionParams, database_argument_spec, database_required_if)
from ansible_collections.bim.wall_system.plugins.module_utils.database.schema import SchemaOverrideError
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError, MissingLibraryError
from ansible_collections.bim.wall_system.plugins.module_utils.repository.keys import (
    CRYPTOGRAPHY_IMPORT_ERROR, HAS_CRYPTOGRAPHY, key_argument_spec)
from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import RepositoryError
from ansible_collections.bim.wall_system.plugins.module_utils.restore.errors import RestoreError
from ansible_collections.bim.wall_system.plugins.module_utils.restore.journal import DEFAULT_STATE_DIR


def main():
    argument_spec = database_argument_spec()
    argument_spec.update(
        repository=dict(type="path", required=True),
        backups=dict(type="list", elements="str", default=["latest"]),
        level=dict(type="str", default="checksum", choices=["checksum", "restore"]),
        record=dict(type="bool", default=True),
        fail_on_problems=dict(type="bool", default=True),
        jobs=dict(type="int", default=2),
        state_dir=dict(type="path", default=DEFAULT_STATE_DIR),
        scratch_dir=dict(type="path"),
        staging_dir=dict(type="path"),
        data_dir=dict(type="path"),
        lock_timeout=dict(type="int", default=60),
    )
    argument_spec.update(key_argument_spec())
    module = AnsibleModule(argument_spec=argument_spec, required_if=database_required_if(),
                           supports_check_mode=True)
    p = module.params
    if p["repository_key"] and not HAS_CRYPTOGRAPHY:
        module.fail_json(msg=missing_required_lib("cryptography"), exception=str(CRYPTOGRAPHY_IMPORT_ERROR))
    from ansible_collections.bim.wall_system.plugins.module_utils.restore import runner
    base = dict(changed=False, passed=False, level=p["level"], backups=[], problems=[], recorded=False, duration_s=0.0)
    try:
        params = ConnectionParams.from_params(p)
    except SchemaOverrideError as exc:
        module.fail_json(msg=str(exc), **base)
    try:
        result = runner.verify_backups(
            p["repository"], p["backups"], level=p["level"], params=params, record=p["record"],
            check_mode=module.check_mode, jobs=p["jobs"], state_dir=p["state_dir"], scratch_dir=p["scratch_dir"],
            staging_dir=p["staging_dir"], data_dir=p["data_dir"], lock_wait=p["lock_timeout"],
            repository_key=p["repository_key"])
    except MissingLibraryError as exc:
        module.fail_json(msg=missing_required_lib(exc.library), exception=exc.exception_text, **base)
    except (RestoreError, RepositoryError, DatabaseError, OSError) as exc:
        module.fail_json(msg="verification of backups in %s: %s" % (p["repository"], exc), **base)
    base.update(result)
    base["problems"] = ["%s: %s" % (b["backup_id"], problem) for b in result["backups"] for problem in b["problems"]]
    if not result["passed"] and p["fail_on_problems"]:
        failed = [b["backup_id"] for b in result["backups"] if b["passed"] is False]
        base["msg"] = "%d of %d backups in %s failed %s verification: %s" % (
            len(failed), len(result["backups"]), p["repository"], p["level"], "; ".join(base["problems"][:10]))
        module.fail_json(**base)
    module.exit_json(**base)


if __name__ == "__main__":
    main()
