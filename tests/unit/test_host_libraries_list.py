# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host-side Python libraries are one list, meta/ee-requirements.txt: the role prerequisites,
the execution environment, the test requirements and the docs all read or name that list and
nothing else. (That the role's defaults alone are enough for every module is proven on bare
hosts by tests/scenarios/test_quick_start.py.)"""

from __future__ import annotations

import os
import re

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LIST = os.path.join(ROOT, "meta", "ee-requirements.txt")
# Docs that name the libraries, each on the line that says "host-side libraries:".
DOCS = ("README.md", "docs/health.md", "docs/awx.md")


def listed(kind="import"):
    """{name: requirement} of the list's lines of ``kind`` ("requirement  # import: NAME" or
    "requirement  # bin: NAME")."""
    entries = {}
    with open(LIST, encoding="utf-8") as handle:
        for line in handle:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            match = re.match(r"^(\S+)\s+#\s*(import|bin):\s*(\S+)\s*$", line)
            assert match, "line without '# import: NAME' or '# bin: NAME' in %s: %r" % (LIST, line)
            if match.group(2) == kind:
                entries[match.group(3)] = match.group(1)
    return entries


def read(relative):
    with open(os.path.join(ROOT, relative), encoding="utf-8") as handle:
        return handle.read()


def test_the_list_names_every_library_the_modules_import_on_hosts():
    names = set(listed())
    assert {"psycopg", "zstandard", "pyfastcdc", "paramiko", "redis"} <= names
    # every optional third-party import of module_utils is in the list (an import the list lacks
    # is a module that fails on hosts the role prepared, as pyfastcdc once did)
    imported = set()
    for folder, _dirs, files in os.walk(os.path.join(ROOT, "plugins", "module_utils")):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(folder, name), encoding="utf-8") as handle:
                    text = handle.read()
                imported |= set(re.findall(r"^\s+import (psycopg|zstandard|pyfastcdc|paramiko|redis|cryptography)\b",
                                           text, re.M))
    assert imported <= names, "imported on hosts but not in %s: %s" % (LIST, sorted(imported - names))


def test_the_role_reads_the_list_and_keeps_no_copy_of_it():
    defaults = yaml.safe_load(read("roles/prerequisites/defaults/main.yml"))
    variables = yaml.safe_load(read("roles/prerequisites/vars/main.yml"))
    assert defaults["bim_prerequisites_packages"] == "{{ __bim_prerequisites_listed_packages }}"
    assert defaults["bim_prerequisites_imports"] == "{{ __bim_prerequisites_listed_imports }}"
    assert defaults["bim_prerequisites_programs"] == "{{ __bim_prerequisites_listed_programs }}"
    assert "litestream" in listed("bin")  # the continuous archiving of SQLite runs it
    assert "meta/ee-requirements.txt" in variables["__bim_prerequisites_list"]
    for text in (read("roles/prerequisites/defaults/main.yml"), read("roles/prerequisites/vars/main.yml")):
        for requirement in list(listed().values()) + list(listed("bin").values()):
            assert requirement not in text


def test_the_execution_environment_and_the_tests_install_the_list():
    ee = yaml.safe_load(read("meta/execution-environment.yml"))
    assert ee["dependencies"]["python"] == "ee-requirements.txt"
    assert "-r ../meta/ee-requirements.txt" in read("tests/requirements.txt").splitlines()


def test_the_docs_name_the_same_libraries():
    names = set(listed())
    for doc in DOCS:
        lines = [line for line in read(doc).splitlines() if "host-side libraries:" in line]
        assert lines, "%s has no line naming the host-side libraries" % doc
        for line in lines:
            named = set(re.findall(r"`([a-z0-9_]+)`", line.split("host-side libraries:", 1)[1]))
            assert named == names, "%s names %s, the list has %s" % (doc, sorted(named), sorted(names))
