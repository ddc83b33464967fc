# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Names for new files and folders beside live data."""

from __future__ import annotations

import os


def unused_path(path):
    """``path``, or ``path_2``, ``path_3``... the first name nothing exists at (restore points and
    copies made within the same second keep apart)."""
    candidate, n = path, 1
    while os.path.lexists(candidate):
        n += 1
        candidate = "%s_%d" % (path, n)
    return candidate
