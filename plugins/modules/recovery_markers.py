#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r'''
---
module: recovery_markers
short_description: Write a marker row a second into a BIM database, to measure the real RPO of a recovery
version_added: 0.1.0
description:
  - Writes one row every O(interval) seconds for O(duration) seconds into the collection's marker table
    C(bim_recovery_markers) (created by M(bim.wall_system.continuous_archiving) or here when missing; the
    collection's own table, never a BIM table, excluded from every digest).
  - Each committed marker is also appended to C(markers-journal.jsonl) in O(archive_dir), outside the database,
    so a recovery of a database that was lost can still measure its RPO (M(bim.wall_system.restore) with
    O(bim.wall_system.restore#module:target_time) reports RV(bim.wall_system.restore#module:rpo_s)).
  - A write that fails (the database is down or gone) is counted and the writer keeps going until its time is
    up. Meant to run in the background (C(async)) during drills.
author:
  - BIM Wall System operations team (@bim-wall-system)
extends_documentation_fragment:
  - bim.wall_system.connection
  - bim.wall_system.attributes
attributes:
  check_mode:
    support: full
    details: Writes nothing and reports what it would write.
  diff_mode:
    support: none
options:
  duration:
    description: Seconds to write markers for.
    type: float
    required: true
  interval:
    description: Seconds between two markers.
    type: float
    default: 1.0
  run:
    description: Label stored with each marker (a drill's id), so a measurement can count only its own markers.
    type: str
    default: ""
  archive_dir:
    description: Folder of the archiving files (inventory C(bim_archiving_dir)), where the journal is kept.
    type: path
    default: /var/lib/bim-wall-system/archiving
'''

EXAMPLES = r'''
- name: Write a marker a second for ten minutes in the background, during a drill
  bim.wall_system.recovery_markers:
    engine: postgresql
    db_socket_dir: /var/run/postgresql
    duration: 600
    run: drill-20261205
  async: 700
  poll: 0
'''

RETURN = r'''
written:
  description: Markers committed.
  returned: success
  type: int
  sample: 600
failures:
  description: Writes that failed (the database was down or gone).
  returned: success
  type: int
  sample: 0
last_error:
  description: The last failure's message.
  returned: success
  type: str
  sample: null
first:
  description: Time of the first marker (ISO 8601 UTC).
  returned: success
  type: str
  sample: "2026-12-05T10:00:00.102311Z"
last:
  description: Time of the last committed marker.
  returned: success
  type: str
  sample: "2026-12-05T10:09:59.100934Z"
journal:
  description: Path of the marker journal.
  returned: success
  type: str
  sample: /var/lib/bim-wall-system/archiving/markers-journal.jsonl
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.bim.wall_system.plugins.module_utils.database.connection import (
    ConnectionParams, database_argument_spec, database_required_if)


def main():
    spec = database_argument_spec()
    spec.update(duration=dict(type="float", required=True), interval=dict(type="float", default=1.0),
                run=dict(type="str", default=""),
                archive_dir=dict(type="path", default="/var/lib/bim-wall-system/archiving"))
    module = AnsibleModule(argument_spec=spec, required_if=database_required_if(), supports_check_mode=True)
    p = module.params
    if p["duration"] <= 0 or p["interval"] <= 0:
        module.fail_json(msg="duration and interval must be positive numbers of seconds")
    if module.check_mode:
        module.exit_json(changed=True, written=0, failures=0, last_error=None, first=None, last=None, journal=None,
                         msg="would write about %d markers" % int(p["duration"] / p["interval"]))
    from ansible_collections.bim.wall_system.plugins.module_utils.archiving.markers import write_markers
    result = write_markers(ConnectionParams.from_params(p), p["archive_dir"], p["duration"], p["interval"], p["run"])
    module.exit_json(changed=result["written"] > 0, **result)


if __name__ == "__main__":
    main()
