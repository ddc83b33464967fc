# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where a logical restore reads its backup from: the one place that chooses between the primary
repository and the secondary one.

The primary is used whenever it is usable (its ``config.json`` readable); otherwise the backup is
fetched from the secondary into a local staging repository and restored from there. In check mode
nothing is fetched: the plan is made from the secondary itself. The restore role asks the module
(``fetch_only``) and uses the repository it names, so no other layer repeats this decision.
"""

from __future__ import annotations

import dataclasses
import os

from ansible_collections.bim.wall_system.plugins.module_utils.restore.errors import RestoreError


@dataclasses.dataclass
class Source:
    """The repository to restore from, the backup chosen, and what the secondary gave.

    ``done`` is set when nothing is left to restore: ``fetch_only``, or check mode reading the
    secondary (then ``plan`` is the whole plan)."""

    repository: str | None
    backup_id: str
    secondary: dict | None = None
    plan: dict | None = None
    done: bool = False
    warnings: list = dataclasses.field(default_factory=list)

    def result(self):
        """The module result keys this source accounts for."""
        result = {"repository_used": self.repository}
        if self.secondary is not None:
            # a first-use host key recorded in the collection's known_hosts file is a change too
            key_recorded = (self.secondary.get("host_key") or {}).get("trust") == "recorded"
            result.update(secondary=self.secondary, changed=bool(self.secondary.get("fetched_chunks")) or
                          key_recorded or bool(self.plan))
        if self.done:
            result["backup_id"] = self.backup_id
        if self.plan is not None:
            result["plan"] = self.plan
        return result


def usable_repository(path):
    """A repository the restore can read: its config.json exists and is readable."""
    config = os.path.join(path, "config.json") if path else None
    return bool(config) and os.path.isfile(config) and os.access(config, os.R_OK)


def staging_folder(secondary_staging, state_dir):
    """The local repository a secondary's backup is fetched into."""
    return secondary_staging or os.path.join(state_dir, "secondary-staging")


def resolve_source(params, options, check_mode):
    """Choose where the backup comes from; fetch it from the secondary when the primary is not usable.

    ``options``: the restore module's parameters (repository, backup_id, secondary_repository,
    secondary_staging, fetch_only, mode, jobs, state_dir, data_dir, staging_dir, repository_key). Raises RestoreError
    when no repository is usable."""
    repository, selector = options["repository"], options["backup_id"]
    secondary = options["secondary_repository"]
    if usable_repository(repository):
        selected = (_resolve_id(repository, selector, options.get("repository_key")) if options["fetch_only"]
                    else selector)
        return Source(repository, selected,
                      done=options["fetch_only"])
    if not secondary:
        if repository:
            raise RestoreError("the backup repository %s is missing or unreadable and no secondary_repository "
                               "is given" % repository)
        raise RestoreError("repository is required (or rollback_to)")
    staging = staging_folder(options["secondary_staging"], options["state_dir"])
    if check_mode:
        warning = ("the primary repository %s is not usable; the backup would be fetched from the secondary "
                   "repository" % repository)
        from ansible_collections.bim.wall_system.plugins.module_utils.restore import runner
        plan = runner.plan_secondary_restore(
            params, dict(secondary), selector, staging, mode=options["mode"], jobs=options["jobs"],
            state_dir=options["state_dir"], data_dir=options["data_dir"], staging_dir=options["staging_dir"],
            repository_key=options.get("repository_key"))
        return Source(staging, plan["backup_id"], secondary=dict(plan["secondary"], would_fetch=True), plan=plan,
                      done=True, warnings=[warning] if repository else [])
    from ansible_collections.bim.wall_system.plugins.module_utils.restore.stage import pull_backup
    fetched = pull_backup(dict(secondary), selector, staging, key=options.get("repository_key"))
    return Source(staging, fetched["backup_id"], secondary=fetched, done=options["fetch_only"])


def _resolve_id(repository, selector, key=None):
    """The id of the backup ``selector`` names in a local repository (fetch_only: nothing to fetch)."""
    from ansible_collections.bim.wall_system.plugins.module_utils.restore import runner
    return runner.resolve_backup(runner.open_repository(repository, key), selector)["id"]
