# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument spec of the ``bim.wall_system.alert`` action (shared by the action plugin, which
validates with it, and the documentation module, so docs and code cannot drift)."""

from __future__ import annotations

DEFAULT_STATE_FILE = "bim-reports/alert-state.json"


def _common_http():
    return dict(
        timeout=dict(type="int", default=10),
        validate_certs=dict(type="bool", default=True),
    )


def channels_spec():
    email = dict(
        host=dict(type="str"),
        port=dict(type="int"),
        security=dict(type="str", default="starttls", choices=["starttls", "ssl", "none"]),
        username=dict(type="str"),
        password=dict(type="str", no_log=True),
        sender=dict(type="str", default="bim-alerts@localhost", aliases=["from"]),
        to=dict(type="list", elements="str", default=[]),
        subject_prefix=dict(type="str", default=""),
    )
    email.update(_common_http())
    slack = dict(
        webhook_url=dict(type="str", no_log=True),
        channel=dict(type="str"),
        username=dict(type="str"),
    )
    slack.update(_common_http())
    sms = dict(
        account_sid=dict(type="str"),
        auth_token=dict(type="str", no_log=True),
        from_number=dict(type="str"),
        to_numbers=dict(type="list", elements="str", default=[]),
        api_base=dict(type="str", default="https://api.twilio.com"),
    )
    sms.update(_common_http())
    webhook = dict(
        url=dict(type="str", no_log=True),
        method=dict(type="str", default="POST", choices=["POST", "PUT"]),
        headers=dict(type="dict", no_log=True, default={}),
    )
    webhook.update(_common_http())
    return dict(
        email=dict(type="dict", options=email),
        slack=dict(type="dict", options=slack),
        sms=dict(type="dict", options=sms),
        webhook=dict(type="dict", options=webhook),
    )


def alert_argument_spec():
    return dict(
        rules=dict(type="list", elements="dict", required=True),
        results=dict(type="dict"),
        result_var=dict(type="str", default="__bim_health_result"),
        hosts=dict(type="list", elements="str"),
        channels=dict(type="dict", default={}, options=channels_spec()),
        state_file=dict(type="path", default=DEFAULT_STATE_FILE),
        send_resolved=dict(type="bool", default=False),
        history_limit=dict(type="int", default=500),
        lock_timeout=dict(type="int", default=60),
        fail_on_channel_error=dict(type="bool", default=False),
        stats=dict(type="str"),
    )


def channel_config(params_channels):
    """Map validated channel options to what ``channels.send`` reads (``sender`` -> ``from``)."""
    out = {}
    for kind, config in (params_channels or {}).items():
        if not config:
            continue
        config = dict(config)
        if kind == "email" and "sender" in config:
            config["from"] = config.pop("sender")
        out[kind] = config
    return out
