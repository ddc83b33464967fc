# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The list of health checks: importing a check file registers its checks.

Adding a check is one line here: import its file (the file decorates its function with
``base.register_check``). Checks are reported in the order they are registered. The imports
are static on purpose: Ansible ships a module's module_utils by reading its imports.
"""

from __future__ import annotations

# pylint: disable=unused-import
from ansible_collections.bim.wall_system.plugins.module_utils.health import database_check  # noqa: F401  database
from ansible_collections.bim.wall_system.plugins.module_utils.health import system_checks  # noqa: F401  memory, system
from ansible_collections.bim.wall_system.plugins.module_utils.health import app_checks  # noqa: F401  application, cache, geometric_operations
from ansible_collections.bim.wall_system.plugins.module_utils.health import logs_check  # noqa: F401  logs
from ansible_collections.bim.wall_system.plugins.module_utils.health import archiving_check  # noqa: F401  archiving
from ansible_collections.bim.wall_system.plugins.module_utils.health.base import REGISTRY

CHECK_ORDER = ("database", "memory", "application", "cache", "geometric_operations", "logs", "archiving", "system")


def checks():
    """Registered checks as ``{name: CheckSpec}`` in report order (unknown names last)."""
    names = sorted(REGISTRY, key=lambda n: (CHECK_ORDER.index(n) if n in CHECK_ORDER else len(CHECK_ORDER), n))
    return {name: REGISTRY[name] for name in names}
