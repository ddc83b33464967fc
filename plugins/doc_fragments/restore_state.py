# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """The restore state folder shared by the modules that restore or lock a BIM database. Its
    default is module_utils/restore/journal.py's DEFAULT_STATE_DIR, which the argument specs use."""

    DOCUMENTATION = r'''
options:
  state_dir:
    description:
      - Folder of the restore's state on the host (keep it on local disk) - the swap journal, the per-database
        lock shared by M(bim.wall_system.restore) and M(bim.wall_system.backup_verify), and the configuration
        files kept with restore points (C(files/)).
      - The roles pass it only when their variable is set, so this default applies otherwise.
    type: path
    default: /var/lib/bim-wall-system/restore
'''
