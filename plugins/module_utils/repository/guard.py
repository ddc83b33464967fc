# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What retention must never trade away: a backup that looks wrong is kept and flagged
``suspicious`` (and counts for no ``keep_*`` rule), a run that took a suspicious backup expires
nothing, and the newest backup that passed a restore-level verification is never expired. A
suspicious backup goes only when the operator names it (``forget_suspicious``).

Plain functions over manifests (dicts); the repository is asked only for verification records and,
to forget a suspicious backup, to remove it.
"""

from __future__ import annotations

from ansible_collections.bim.wall_system.plugins.module_utils.database.schema import BIM_TABLES
from ansible_collections.bim.wall_system.plugins.module_utils.repository import retention
from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import RepositoryError

DEFAULT_SUSPICIOUS_DROP = 0.5


class GuardError(ValueError):
    """Bad guard settings."""


def check_drop(value):
    """``suspicious_drop`` as a float in (0, 1]: the share of ``walls`` rows a backup may lose
    since the previous one before it is suspicious."""
    try:
        share = float(DEFAULT_SUSPICIOUS_DROP if value is None else value)
    except (TypeError, ValueError):
        raise GuardError("suspicious_drop must be a number between 0 and 1, got %r" % (value,))
    if not 0 < share <= 1:
        raise GuardError("suspicious_drop must be above 0 and at most 1 (a share of the walls rows), got %r" % (value,))
    return share


def _walls_rows(tables):
    entry = (tables or {}).get("walls")
    rows = entry.get("rows") if isinstance(entry, dict) else None
    return rows if isinstance(rows, int) and not isinstance(rows, bool) else None


def suspicion(tables, previous, max_drop=DEFAULT_SUSPICIOUS_DROP):
    """Reasons to distrust a backup whose table digests are ``tables`` ({} = none of the BIM tables:
    an empty or foreign database), given the ``previous`` backup's manifest (or None)."""
    if not any(name in (tables or {}) for name in BIM_TABLES):
        return ["the database has none of the BIM tables (%s): an empty or foreign database, not a backup to "
                "replace good ones with" % ", ".join(BIM_TABLES)]
    before = _walls_rows((previous or {}).get("tables"))
    now = _walls_rows(tables)
    if before and now is not None and (before - now) > max_drop * before:
        return ["walls rows dropped from %d to %d since backup %s (%.0f%%, more than suspicious_drop %.0f%%)"
                % (before, now, previous["id"], 100.0 * (before - now) / before, 100.0 * max_drop)]
    return []


def is_suspicious(manifest):
    """A manifest's ``suspicious`` is the list of reasons it was flagged with (absent when trusted)."""
    return bool(manifest.get("suspicious"))


def newest_restore_verified(repo, manifests):
    """Id of the newest backup whose latest restore-level verification passed for its manifest as it
    is now (``Repository.restore_verified``), or None."""
    for manifest in reversed(manifests):
        if repo.restore_verified(manifest["id"], manifest.get("checksum")):
            return manifest["id"]
    return None


def expiry(manifests, rules, protected=(), new_id=None, new_finished=None):
    """Ids (oldest first) retention ``rules`` expire among ``manifests`` (oldest first, plus a planned
    ``new_id`` finishing at ``new_finished``). Suspicious backups are left out of the rules (kept,
    and counted for no ``keep_*``); ``protected`` ids are never expired."""
    listing = [{"id": m["id"], "finished": m["finished"]} for m in manifests if not is_suspicious(m)]
    if new_id:
        listing.append({"id": new_id, "finished": new_finished})
    forget = set(retention.plan(listing, rules)[1]) - set(protected) - {new_id}
    return [m["id"] for m in manifests if m["id"] in forget]


def suspicious_to_forget(repo, ids):
    """The ids among ``ids`` that ``repo`` holds, each checked to be flagged suspicious: a good backup
    is never removed this way (RepositoryError naming it; good backups go by retention). An id the
    repository does not hold is a warning, not an error: a run that forgot it already is repeated."""
    held = set(repo.backup_ids())
    out = []
    for backup_id in ids:
        if backup_id not in held:
            repo.warnings.append("backup %s is not in repository %s (forgotten already?): nothing to forget"
                                 % (backup_id, repo.path))
            continue
        if not is_suspicious(repo.load_listed(backup_id)):
            raise RepositoryError("backup %s is not suspicious: forget_suspicious removes only backups flagged "
                                  "suspicious (retention removes good ones); nothing was removed" % backup_id)
        out.append(backup_id)
    return out


def forget_suspicious(repo, ids):
    """Remove the suspicious backups ``ids`` (their manifests and verification records; call under
    the lock): every id is checked before any is removed. Their chunks go at the next prune."""
    forget = suspicious_to_forget(repo, ids)
    for backup_id in forget:
        repo.remove_backup(backup_id)
    return forget
