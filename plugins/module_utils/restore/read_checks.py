# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The preflight's checksum verification done by the restore's own reads (the disaster recovery in
one run: ``restore`` module ``preflight`` + ``then_restore``), so the backup is read once, not twice.

Each chunk a restore reads is checked as every read checks it (``Codec.decode_chunk``: authentic, or
named by its content; decompresses within bounds; the manifest's length): the check
``backup_verify`` makes at ``level: checksum``. ``ReadChecks`` notes each chunk so read (the
repository's ``read_log``); once the copy is restored and verified and the files staged - before the
application's stop command and before the swap - ``finish`` reads the chunks the restore did not
(a files stream not restored, an archive's tail its reader left) and records the verification in the
repository only when all of them passed; that each stream's chunk lengths add up to its size is
checked before anything is read (``check_sizes``). A damaged backup is a ``RestoreError`` carrying
``checksums`` (``passed: false``): the caller drops the copy, nothing was changed; the failure is
recorded in the repository as the separate preflight recorded it, so that a later recovery that
takes the newest verified backup does not pick this one again.
"""

from __future__ import annotations

import time

from ansible_collections.bim.wall_system.plugins.module_utils.repository.errors import (
    CorruptChunkError, RepositoryError)
from ansible_collections.bim.wall_system.plugins.module_utils.restore.errors import RestoreError

# The repository's verification level these checks are recorded as (runner.RECORD_LEVEL["checksum"]).
RECORDED_LEVEL = "checksums"


class ReadChecks:
    """The chunks of one restore's backup read and checked so far, and what is left to check."""

    def __init__(self):
        self.checked = set()  # (chunk_id, length)

    def watch(self, repo):
        """Note every chunk ``repo`` (a ``Repository``) reads and checks from now on."""
        repo.read_log = self.checked

    def summary(self, manifest, passed, problems, recorded=False, duration_s=None):
        """The ``checksums`` result of the restore module (as the preflight's, with ``checked_by``)."""
        from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import Repository
        return {"backup_id": manifest["id"], "passed": passed, "chunks": len(Repository.manifest_chunks(manifest)),
                "problems": list(problems), "recorded": recorded, "duration_s": duration_s, "checked_by": "restore"}

    def _record_failure(self, repo, manifest, problems, warnings):
        """The failed verification recorded (True), or a warning when the repository takes no record."""
        try:
            repo.record_verification(manifest["id"], RECORDED_LEVEL, False, problems, {"checked_by": "restore"})
        except (RepositoryError, OSError) as exc:
            warnings.append("the failed checksum verification of backup %s could not be recorded: %s"
                            % (manifest["id"], exc))
            return False
        return True

    def damaged(self, repo, manifest, exc, warnings):
        """The error of a damaged chunk met by the restore's reads (``exc``: its ``CorruptChunkError``)."""
        problems = [str(exc)]
        recorded = self._record_failure(repo, manifest, problems, warnings)
        return RestoreError("backup %s failed checksum verification as it was read for the restore, nothing was "
                            "changed: %s" % (manifest["id"], exc), problems=problems,
                            checksums=self.summary(manifest, False, problems, recorded=recorded),
                            chunk=getattr(exc, "chunk_id", None), warnings=warnings)

    def check_sizes(self, repo, manifest, warnings):
        """Before anything is read: each stream's chunk lengths add up to its size (the manifest alone)."""
        problems = repo.stream_size_problems(manifest)
        if problems:
            recorded = self._record_failure(repo, manifest, problems, warnings)
            raise RestoreError("backup %s failed checksum verification, nothing was changed: %s" % (
                manifest["id"], "; ".join(problems)), problems=problems,
                checksums=self.summary(manifest, False, problems, recorded=recorded), warnings=warnings)

    def read_rest(self, repo, manifest, warnings):
        """Read and check every chunk of ``manifest`` not checked yet; raises ``damaged`` at the first bad one."""
        for chunk_id, length in sorted(repo.manifest_chunks(manifest).items()):
            if (chunk_id, length) not in self.checked:
                try:
                    repo.read_chunk(chunk_id, expected_length=length)
                except CorruptChunkError as exc:
                    raise self.damaged(repo, manifest, exc, warnings)

    def finish(self, repo, manifest, warnings):
        """``read_rest``, then the verification recorded in the repository; returns the ``checksums`` result.
        A record that cannot be written fails as the preflight's would (nothing was changed)."""
        started = time.monotonic()
        self.read_rest(repo, manifest, warnings)
        summary = self.summary(manifest, True, [])
        try:
            repo.record_verification(manifest["id"], RECORDED_LEVEL, True, [],
                                     {"chunks": summary["chunks"], "checked_by": "restore"})
        except (RepositoryError, OSError) as exc:  # e.g. a full or read-only repository
            raise RestoreError("backup %s passed checksum verification but it could not be recorded, nothing was "
                               "changed: %s" % (manifest["id"], exc), checksums=summary, warnings=warnings)
        summary.update(recorded=True, duration_s=round(time.monotonic() - started, 3))
        return summary
