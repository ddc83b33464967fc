# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Errors of the restore layer."""

from __future__ import annotations


class RestoreError(Exception):
    """A restore, verification or rollback could not be done. The message is safe to show.

    ``details`` carries structured context (the plan, problems) for the module's result.
    """

    def __init__(self, message, **details):
        super().__init__(message)
        self.details = details
