# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Removal of secrets from anything the alerting and reporting code returns or writes.

Two nets: values known to be secret (passwords, tokens, webhook URLs passed as options) are
replaced wherever they appear inside a string, and keys whose name says "secret" have their
value masked whatever it is.
"""

from __future__ import annotations

import re

from ansible_collections.bim.wall_system.plugins.module_utils.common.urls import secret_url_parts

MASK = "********"

SECRET_KEY_PATTERN = re.compile(
    r"(passw(or)?d|passphrase|secret|token|api[_-]?key|auth|webhook[_-]?url|^url$|_url$|credential|private[_-]?key|headers)",
    re.IGNORECASE,
)
# Keys that match the pattern above but are known to be harmless.
SAFE_KEYS = frozenset(("bim_app_url", "app_url", "api_base", "auth_method", "author", "authors"))

# Credentials embedded in URLs (scheme://user:password@host).
URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<cred>[^/@\s:]+:[^/@\s]+)@")


def collect_secrets(value, found=None, key=None):
    """Return the set of secret strings inside ``value`` (found through their key names)."""
    found = set() if found is None else found
    if isinstance(value, dict):
        for k, v in value.items():
            if is_secret_key(k) and v not in (None, "", [], {}):
                _add_leaves(v, found)
                if isinstance(v, str) and "://" in v:
                    # an endpoint echoes the path (a Slack webhook's key) without the rest of the URL
                    found.update(secret_url_parts(v))
            else:
                collect_secrets(v, found, k)
    elif isinstance(value, (list, tuple)):
        for item in value:
            collect_secrets(item, found, key)
    return found


def _add_leaves(value, found):
    if isinstance(value, dict):
        for v in value.values():
            _add_leaves(v, found)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _add_leaves(v, found)
    elif value is not None and not isinstance(value, bool):
        text = str(value)
        # Very short values (a port, "1") would mask half of every message; they are not secrets.
        if len(text) >= 4:
            found.add(text)


def is_secret_key(key):
    if not isinstance(key, str) or key in SAFE_KEYS:
        return False
    return bool(SECRET_KEY_PATTERN.search(key))


def scrub_text(text, secrets=()):
    """Replace every known secret inside ``text`` and credentials inside URLs."""
    if not isinstance(text, str):
        return text
    for secret in sorted(secrets, key=len, reverse=True):
        if secret and secret in text:
            text = text.replace(secret, MASK)
    return URL_CREDENTIALS.sub(lambda m: m.group("scheme") + MASK + "@", text)


def scrub(value, secrets=(), mask_keys=True):
    """Deep copy of ``value`` with secrets removed from strings and secret-named keys masked."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if mask_keys and is_secret_key(k) and v not in (None, "", [], {}):
                out[k] = MASK
            else:
                out[k] = scrub(v, secrets, mask_keys)
        return out
    if isinstance(value, (list, tuple)):
        return [scrub(v, secrets, mask_keys) for v in value]
    if isinstance(value, str):
        return scrub_text(value, secrets)
    return value
