# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Putting the monitoring service on a host: the collection's own module_utils files, a launcher,
and the configuration file.

The files come from the running module's own import system: Ansible ships a module together with
every module_utils file it imports (directly or not), and ``bim.wall_system.monitoring_service``
imports the service. So the code written to the host is exactly, byte for byte, the code the
``health_check`` module runs from the same collection version, and nothing else of the
collection. :func:`collection_sources` reads it from wherever it was imported from (Ansible's
payload zip on a managed host, the source tree in tests).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import pkgutil
import shutil

from ansible_collections.bim.wall_system.plugins.module_utils.common.atomic import atomic_write

ROOT_PACKAGE = "ansible_collections.bim.wall_system.plugins.module_utils"
SERVICE_MODULE = ROOT_PACKAGE + ".monitoring.service"
LAUNCHER = """# BIM Wall System live monitoring (written by bim.wall_system.monitoring_service; do not edit).
# Run it as: {python} -I {launcher} --config CONFIG
import sys

sys.dont_write_bytecode = True  # the folder holds exactly what the module wrote
sys.path.insert(0, {lib!r})
from ansible_collections.bim.wall_system.plugins.module_utils.monitoring.service import main  # noqa: E402

sys.exit(main())
"""


class InstallError(Exception):
    """The service cannot be installed; the message is safe to show."""


def collection_sources(root_package=ROOT_PACKAGE):
    """``{relative path: source bytes}`` of every module_utils file importable here.

    Walks the package with ``pkgutil`` (it lists zip payloads and folders alike) and reads each
    file through its loader, so nothing depends on where the files were imported from.
    """
    root = importlib.import_module(root_package)
    names = [root_package]
    for info in pkgutil.walk_packages(root.__path__, prefix=root_package + "."):
        names.append(info.name)
    sources = {}
    for name in sorted(names):
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "get_source"):
            continue
        text = spec.loader.get_source(name)
        if text is None:
            continue
        parts = name.split(".")
        is_package = spec.submodule_search_locations is not None
        rel = os.path.join(*(parts + ["__init__.py"])) if is_package else os.path.join(*parts) + ".py"
        # a file-system or zip loader gives text; ansible-test's collection loader gives bytes
        sources[rel] = text if isinstance(text, bytes) else text.encode("utf-8")
    if not any(rel.endswith(os.path.join("monitoring", "service.py")) for rel in sources):
        raise InstallError("the monitoring service code is not importable here (%s)" % SERVICE_MODULE)
    return sources


def digest(files):
    """One SHA-256 over the (path, content) pairs: the version of what is installed."""
    total = hashlib.sha256()
    for rel in sorted(files):
        total.update(rel.encode("utf-8") + b"\0" + hashlib.sha256(files[rel]).digest())
    return total.hexdigest()


def launcher_path(dest):
    return os.path.join(dest, "bin", "bim-monitoring")


def command(dest, python, config_path):
    """The service's command line (argv)."""
    return [python, "-I", launcher_path(dest), "--config", config_path]


def code_files(dest, python, sources):
    """``{absolute path: bytes}`` of the code to install under ``dest``."""
    lib = os.path.join(dest, "lib")
    files = {os.path.join(lib, rel): data for rel, data in sources.items()}
    files[launcher_path(dest)] = LAUNCHER.format(python=python, launcher=launcher_path(dest), lib=lib).encode("utf-8")
    return files


def _differs(path, data, mode):
    try:
        if (os.stat(path).st_mode & 0o7777) != mode:
            return True
        with open(path, "rb") as handle:
            return handle.read() != data
    except OSError:
        return True


def stale_files(dest, files):
    """Files under ``dest/lib`` that the new code does not have (an older version's modules)."""
    lib = os.path.join(dest, "lib")
    stale = []
    for folder, dirs, names in os.walk(lib):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in names:
            path = os.path.join(folder, name)
            if path not in files:
                stale.append(path)
    return sorted(stale)


def plan(dest, python, config_path, config, sources):
    """What an install would change: ``{code, config, stale, files, digest}`` (nothing written)."""
    files = code_files(dest, python, sources)
    config_text = (json.dumps(config, indent=2, sort_keys=True) + "\n").encode("utf-8")
    return {
        "files": files,
        "config_text": config_text,
        "code": sorted(p for p, data in files.items() if _differs(p, data, 0o644)),
        "config": _differs(config_path, config_text, 0o600),
        "stale": stale_files(dest, files),
        "digest": digest({os.path.relpath(p, dest): data for p, data in files.items()}),
    }


def apply(dest, config_path, planned):
    """Write what ``planned`` says differs: code 0644 in 0755 folders (the service may run as
    another user), the configuration 0600 (it may hold the database password)."""
    try:
        for path in planned["code"]:
            os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
            atomic_write(path, planned["files"][path], mode=0o644)
        for path in planned["stale"]:
            os.unlink(path)
        if planned["config"]:
            os.makedirs(os.path.dirname(os.path.abspath(config_path)), mode=0o755, exist_ok=True)
            atomic_write(config_path, planned["config_text"], mode=0o600)
    except OSError as exc:
        raise InstallError("cannot install the monitoring service into %s: %s" % (
            dest, exc.strerror or exc))


def remove(dest, config_path):
    """Remove the installed code and configuration; True when something was there."""
    existed = os.path.exists(dest) or os.path.exists(config_path)
    try:
        if os.path.exists(dest):
            shutil.rmtree(dest)
        if os.path.exists(config_path):
            os.unlink(config_path)
    except OSError as exc:
        raise InstallError("cannot remove the monitoring service from %s: %s" % (dest, exc.strerror or exc))
    return existed
