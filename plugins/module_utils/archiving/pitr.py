# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Point-in-time restore from the continuous archive: the procedure the ``restore`` module runs
for ``target_time``. Engine-neutral: every engine step goes through the archive object
(``archives.open_archive``).

Order (under the per-database lock shared with logical restores' journal folder):

1. ``recover()``: a swap a killed run left is completed or undone, its scratch copies removed;
2. plan: the recoverable window; a target outside it is refused before anything is written;
3. restore a copy beside live (PostgreSQL: a whole cluster in a new data directory, recovered to
   the target and promoted, on its own socket; SQLite: a new file), and verify it (integrity,
   spatial indexes, every BIM table readable; PostgreSQL amcheck). Markers newer than the
   target in the copy are a failure: the restore went past the moment asked for;
4. ``swap``: the crash-safe swap, the replaced database kept as restore point; ``new``: the copy
   stays for inspection (or is dropped after measuring, for drills).

RPO is measured from the collection's marker rows: the newest marker the live database had (read
from it before the restore, else from the marker writer's journal when the database is gone)
minus the newest marker in the restored copy, never below 0 (``measured_rpo``).
"""

from __future__ import annotations

import datetime
import json
import os
import time

from ansible_collections.bim.wall_system.plugins.module_utils.archiving.archives import open_archive
from ansible_collections.bim.wall_system.plugins.module_utils.archiving.common import (
    ArchiveError, Background, iso_utc, parse_moment, parse_target_time)
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError

MODES = ("swap", "new")
MARKER_JOURNAL = "markers-journal.jsonl"


def is_cluster_restore_point(engine, rollback_to):
    """A PostgreSQL restore point of a point-in-time swap is a data directory (an absolute path);
    any other ``rollback_to`` names a restore point of a logical restore."""
    return bool(rollback_to) and engine == "postgresql" and os.path.isabs(rollback_to)


def marker_journal_path(archive_dir):
    return os.path.join(archive_dir, MARKER_JOURNAL)


def journal_markers(archive_dir, run=None):
    """The markers the marker writer recorded as committed, oldest first (its journal lives outside
    the database, so it survives the database's loss)."""
    found = []
    try:
        with open(marker_journal_path(archive_dir), encoding="utf-8") as handle:
            for line in handle:
                try:
                    entry = json.loads(line)
                    if run is None or entry.get("run") == run:
                        found.append(parse_moment(entry["written_at"]))
                except (ValueError, KeyError, ArchiveError):
                    continue  # a line cut by a crash
    except OSError:
        pass
    return sorted(found)


def journal_newest_marker(archive_dir, run=None):
    """The newest marker of the journal, or None."""
    found = journal_markers(archive_dir, run)
    return found[-1] if found else None


def measured_rpo(live_newest, restored_newest):
    """Seconds of markers the live database had that the copy lacks, or None without both. A
    drill's marker writer goes on while the archive is read, so the copy may hold a marker newer
    than the live one read before the restore: nothing was lost then (0, not a negative loss)."""
    if not (live_newest and restored_newest):
        return None
    return max(0.0, round((live_newest - restored_newest).total_seconds(), 3))


def marker_problems(target, live_markers, restored_markers, grain_s=0.0):
    """A restore to ``target`` must hold every marker the live database committed up to it (less the
    archive's grain: Litestream ships every sync interval) and none written after it."""
    problems = []
    late = [m for m in restored_markers if m > target]
    if late:
        problems.append("the copy holds %d marker(s) written after target_time %s (newest %s)" % (
            len(late), iso_utc(target), iso_utc(max(late))))
    restored = set(restored_markers)
    bound = target - datetime.timedelta(seconds=grain_s)
    missing = [m for m in live_markers if m <= bound and m not in restored]
    if missing:
        problems.append("the copy lacks %d marker(s) committed before target_time %s (the oldest %s)" % (
            len(missing), iso_utc(target), iso_utc(min(missing))))
    return problems


def _in_window(target, window):
    earliest = parse_moment(window["earliest"]) if window.get("earliest") else None
    latest = parse_moment(window["latest"]) if window.get("latest") else None
    if earliest is None:
        raise ArchiveError("the archive holds no base to restore from yet (no physical backup or snapshot)")
    if target is not None and target < earliest:
        raise ArchiveError("target_time %s is before the recoverable window (%s .. %s)" % (
            iso_utc(target), window["earliest"], window["latest"]))
    if target is not None and latest is not None and target > latest:
        raise ArchiveError("target_time %s is after the newest moment the archive holds (%s .. %s); use "
                           "target_time: latest for everything archived" % (
                               iso_utc(target), window["earliest"], window["latest"]))


def _pitr_plan(archive, info, result):
    """Check mode: the recoverable window and what a restore to ``result["target_time"]`` would touch."""
    window = info["recoverable_window"]
    result.update(recoverable_window=window, archive_health=info["archive_health"])
    result.update(changed=True, plan={"tool": info["tool"], "target_time": result["target_time"],
                                      "recoverable_window": window, "mode": result["mode"],
                                      "live": archive.live_location(),
                                      "live_exists": os.path.exists(archive.live_location()),
                                      "restore_points": archive.restore_points()})
    return result


def _place_copy(archive, copy, mode, keep_target, keep_restore_points, result):
    """The verified copy: swapped in (swap), kept, or dropped after measurement (a drill)."""
    if mode == "swap":
        t3 = time.monotonic()
        result["restore_point"] = archive.swap_in(copy)
        result["swap_s"] = round(time.monotonic() - t3, 3)
        result["target"] = archive.live_location()
        result["pruned_restore_points"] = archive.prune(max(int(keep_restore_points), 0))
    elif keep_target:
        result["target"] = copy.location
        result["kept_copy"] = archive.keep_copy(copy)
    else:
        archive.drop_copy(copy)
        result["target"] = copy.location
        result["target_dropped"] = True


def run_pitr_restore(params, archive_dir, target_time="latest", mode="swap", keep_target=True,
                     keep_restore_points=2, check_mode=False, state_dir=None, lock_wait=60.0, marker_run=None):
    """Restore the database to ``target_time`` (ISO-8601 or ``latest``). Returns the result dict."""
    if mode not in MODES:
        raise ArchiveError("mode must be swap or new, not %r" % (mode,))
    target = parse_target_time(target_time)
    archive = open_archive(params, archive_dir, state_dir=state_dir)
    if target is None and not check_mode:
        # "latest" needs no window to be checked against: the archive is read while the copy is
        # restored (the restore itself fails clearly when the archive holds no base).
        info = Background(archive.info)
    else:
        info = archive.info()
        _in_window(target, info["recoverable_window"])
        info = Background(lambda: info, run=False, value=info)
    result = {"changed": False, "mode": mode, "target_time": iso_utc(target) if target else "latest",
              "restore_point": None, "verified": False, "warnings": [], "source": archive.tool.tool}
    if check_mode:
        return _pitr_plan(archive, info.result(), result)
    started = time.monotonic()
    with archive.lock(wait=lock_wait):
        actions = archive.recover()
        if actions:
            result["changed"] = True
            result["warnings"].extend(actions)
        live_markers = archive.marker_times(params, marker_run) if os.path.exists(archive.live_location()) else None
        if not live_markers:
            live_markers = journal_markers(archive_dir, marker_run)
        live_newest = max(live_markers) if live_markers else None
        kind = "restore" if mode == "swap" else ("copy" if keep_target else "drill")
        t0 = time.monotonic()
        try:
            copy = archive.restore_copy(target, kind, info=info)
        except DatabaseError as exc:
            raise ArchiveError("the point-in-time restore failed, live data untouched: %s" % exc) from None
        except ArchiveError as exc:
            raise ArchiveError("the point-in-time restore failed, live data untouched: %s" % exc, **exc.details) from None
        t1 = time.monotonic()
        try:
            problems, counts = archive.verify_copy(copy)
            restored_markers = archive.marker_times(copy.params, marker_run) or []
        except (DatabaseError, ArchiveError) as exc:
            problems, counts, restored_markers = ["verification could not run: %s" % exc], {}, []
        if target is not None:
            problems += marker_problems(target, live_markers or [], restored_markers, archive.grain_s())
        t2 = time.monotonic()
        info = info.result()
        _in_window(target, info["recoverable_window"])
        result.update(recoverable_window=info["recoverable_window"], archive_health=info["archive_health"])
        restored_newest = max(restored_markers) if restored_markers else None
        result.update(restore_s=round(t1 - t0, 3), verify_s=round(t2 - t1, 3), rto_s=round(t2 - t0, 3),
                      tables={t: {"rows": n} for t, n in counts.items()},
                      newest_marker_live=iso_utc(live_newest), newest_marker_restored=iso_utc(restored_newest),
                      markers_restored=len(restored_markers), problems=problems,
                      rpo_s=measured_rpo(live_newest, restored_newest))
        if problems:
            archive.drop_copy(copy)
            raise ArchiveError("the restored copy failed verification, nothing was swapped and live data is "
                               "untouched: %s" % "; ".join(problems[:10]), problems=problems, result=result)
        result.update(verified=True, changed=True)
        _place_copy(archive, copy, mode, keep_target, keep_restore_points, result)
        result["restore_points"] = archive.restore_points()
    result["duration_s"] = round(time.monotonic() - started, 3)
    return result


def run_pitr_rollback(params, archive_dir, rollback_to, keep_restore_points=2, check_mode=False, state_dir=None,
                      lock_wait=60.0):
    """Swap a restore point a point-in-time swap kept back in."""
    archive = open_archive(params, archive_dir, state_dir=state_dir)
    points = archive.restore_points()
    if not points:
        raise ArchiveError("there is no restore point of %s to roll back to" % archive.live_location())
    name = points[-1] if rollback_to in (None, "", "latest") else next(
        (p for p in points if p == rollback_to or os.path.basename(p) == rollback_to), None)
    if name is None:
        raise ArchiveError("restore point %s not found; restore points: %s" % (rollback_to, ", ".join(points)))
    result = {"changed": True, "mode": "rollback", "rolled_back_to": name, "verified": False, "warnings": []}
    if check_mode:
        result["restore_points"] = points
        return result
    with archive.lock(wait=lock_wait):
        result["warnings"].extend(archive.recover())
        result["restore_point"] = archive.rollback(name)
        result["verified"] = True
        result["target"] = archive.live_location()
        result["pruned_restore_points"] = archive.prune(max(int(keep_restore_points), 1))
        result["restore_points"] = archive.restore_points()
    return result
