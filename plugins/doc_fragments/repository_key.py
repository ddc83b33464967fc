# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """The repository key option of every module that reads or writes a backup repository."""

    DOCUMENTATION = r'''
options:
  repository_key:
    description:
      - Key of a keyed backup repository (repository format 2), usually the vaulted inventory variable
        C(bim_backup_repository_key). Never logged.
      - It authenticates every manifest and chunk of the repository (and decrypts them when the repository is
        encrypted); a keyed repository opened without it, or with another key, fails with a message.
      - Without it the repository is unkeyed (format 1) and every result warns that it is unauthenticated -
        anyone who can write to it can forge a backup that verifies, and a PostgreSQL restore runs the SQL of a
        forged backup with its database role before anything is verified. A key cannot be added to an unkeyed
        repository; a keyed one is started in a new folder. See C(docs/security.md).
      - At least 16 characters. Needs the Python library C(cryptography) on the managed host.
    type: str
requirements:
  - cryptography >= 41 (only with O(repository_key))
'''
