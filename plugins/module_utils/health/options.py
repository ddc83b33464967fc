# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options that say what to check, shared by ``health_check`` and ``monitoring_service``."""

from __future__ import annotations


def health_options_spec():
    """Argument spec entries for the application, cache, data folder, checks, thresholds and check options."""
    return dict(
        app_url=dict(type="str"),
        cache_url=dict(type="str", no_log=True),
        data_dir=dict(type="path"),
        checks=dict(type="list", elements="str"),
        thresholds=dict(type="dict", default={}),
        check_options=dict(type="dict", default={}),
    )
