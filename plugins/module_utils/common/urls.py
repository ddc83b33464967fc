# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Credentials inside URLs (``scheme://user:password@host/...``, a webhook's secret path): taken
out before a URL is shown, so no result, message or report carries them."""

from __future__ import annotations

import base64
import urllib.parse

MASK = "********"


def split_credentials(url):
    """``(url without userinfo, username, password)``; username and password are decoded (None
    when absent). A URL that does not parse comes back unchanged with no credentials."""
    if not url:
        return url, None, None
    try:
        parts = urllib.parse.urlsplit(url)
        username, password = parts.username, parts.password
    except ValueError:
        return url, None, None
    if username is None and password is None:
        return url, None, None
    host = parts.netloc.rsplit("@", 1)[1]
    clean = urllib.parse.urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return (clean, urllib.parse.unquote(username) if username is not None else None,
            urllib.parse.unquote(password) if password is not None else None)


def redact_url(url):
    """``url`` with its userinfo (user and password) replaced by ********."""
    clean, username, password = split_credentials(url)
    if username is None and password is None:
        return url
    scheme, rest = clean.split("://", 1) if "://" in clean else ("", clean)
    return "%s://%s@%s" % (scheme, MASK, rest) if scheme else "%s@%s" % (MASK, rest)


def url_secrets(url):
    """The strings of ``url`` that are secret, in every form they may be echoed in: the raw
    userinfo, the password raw and decoded. Masking these in a text removes the credentials.
    Strings under 4 characters are left out: masking them would garble every message, and
    the URL itself is never shown with its userinfo (redact_url) in the first place."""
    if not url:
        return []
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return []
    found = []
    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        found.append(userinfo)
        if ":" in userinfo:
            raw = userinfo.split(":", 1)[1]
            found += [raw, urllib.parse.unquote(raw)]
    return [s for s in dict.fromkeys(found) if len(s) >= 4]


def secret_url_parts(url):
    """For a URL that is a secret as a whole (a Slack webhook: the path is the key): the path,
    its decoded form, the query, and the userinfo. Servers echo the path alone, not the URL."""
    if not url:
        return []
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return [url]
    found = [url] + url_secrets(url)
    path = parts.path.strip("/")
    if path:
        found += [parts.path, path, urllib.parse.unquote(path)]
        # an endpoint may echo one segment alone (the token); short ones ("services") are no secret
        found += [segment for segment in path.split("/") if len(segment) >= 10]
    if parts.query:
        found.append(parts.query)
    return [s for s in dict.fromkeys(found) if s and len(s) >= 4]


def mask_text(text, secrets):
    """``text`` with every string of ``secrets`` replaced by ******** (longest first)."""
    text = str(text)
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def basic_auth_header(username, password):
    """The ``Authorization`` header value of HTTP basic authentication."""
    token = "%s:%s" % (username or "", password or "")
    return "Basic " + base64.b64encode(token.encode("utf-8")).decode("ascii")
