# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Credentials inside URLs: split off, masked, and every form of them found for masking."""

from __future__ import annotations

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.common.urls import (
    mask_text, redact_url, secret_url_parts, split_credentials, url_secrets)


def test_split_credentials_decodes_and_keeps_the_rest():
    assert split_credentials("http://bim:p%40ss%3Aw0rd@app.example:8080/api?x=1") == (
        "http://app.example:8080/api?x=1", "bim", "p@ss:w0rd")
    assert split_credentials("http://app.example:8080") == ("http://app.example:8080", None, None)
    assert split_credentials(None) == (None, None, None)


@pytest.mark.parametrize("url, shown", [
    ("http://bim:secret-pw@10.0.0.5:8080/x", "http://********@10.0.0.5:8080/x"),
    ("https://token-only-user@app/", "https://********@app/"),
    ("http://app:8080", "http://app:8080"),
])
def test_redact_url(url, shown):
    assert redact_url(url) == shown


def test_url_secrets_cover_raw_and_decoded_forms_and_skip_tiny_ones():
    assert url_secrets("http://bim:p%40ssword@h/") == ["bim:p%40ssword", "p%40ssword", "p@ssword"]
    assert url_secrets("http://h/") == []
    assert "pw" not in url_secrets("http://u:pw@h/")


def test_secret_url_parts_mask_an_echoed_path_or_token():
    url = "https://hooks.slack.example/services/T0ABCDEFG1/B0HIJKLMN2/xyzSECRETtoken1234"
    parts = secret_url_parts(url)
    for echoed in ("unknown hook /services/T0ABCDEFG1/B0HIJKLMN2/xyzSECRETtoken1234",
                   "invalid_token xyzSECRETtoken1234", "no route services/T0ABCDEFG1/B0HIJKLMN2/xyzSECRETtoken1234"):
        masked = mask_text(echoed, parts)
        assert "xyzSECRETtoken1234" not in masked and "********" in masked
    assert "services" not in parts  # a short, common segment is no secret
