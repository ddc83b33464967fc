# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Install the awx.awx collection for the syntax check and lint of playbooks/awx_setup.yml.

Galaxy is not reachable from the build machines, but the Ansible community package on PyPI
(``ansible``) ships awx.awx. This downloads that wheel with pip (no install, no dependencies) and
extracts only ``ansible_collections/awx/awx`` into a collections folder. Users with Galaxy
access install it the ordinary way: ``ansible-galaxy collection install -r collections/requirements.yml``.

    python tests/awx_collection.py [--dest ~/.ansible/collections] [--ansible 12.3.0]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

DEFAULT_ANSIBLE = "12.3.0"  # ships awx.awx 24.6.1
PREFIX = "ansible_collections/awx/awx/"


def installed_version(dest):
    try:
        with open(os.path.join(dest, PREFIX, "MANIFEST.json"), encoding="utf-8") as handle:
            return json.load(handle)["collection_info"]["version"]
    except (OSError, ValueError, KeyError):
        return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", default=os.path.expanduser("~/.ansible/collections"))
    parser.add_argument("--ansible", default=DEFAULT_ANSIBLE, help="version of the ansible package to take it from")
    args = parser.parse_args(argv)
    have = installed_version(args.dest)
    if have:
        print("awx.awx %s already in %s" % (have, args.dest))
        return 0
    with tempfile.TemporaryDirectory(prefix="bim-awx-") as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        "ansible==%s" % args.ansible, "-d", tmp], check=True)
        wheel = glob.glob(os.path.join(tmp, "ansible-*.whl"))[0]
        target = os.path.join(args.dest, PREFIX)
        staging = target.rstrip("/") + ".partial"
        shutil.rmtree(staging, ignore_errors=True)
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():
                if name.startswith(PREFIX) and not name.endswith("/"):
                    out = os.path.join(staging, name[len(PREFIX):])
                    os.makedirs(os.path.dirname(out), exist_ok=True)
                    with archive.open(name) as src, open(out, "wb") as dst:
                        shutil.copyfileobj(src, dst)
        shutil.rmtree(target, ignore_errors=True)
        os.rename(staging, target)
    print("awx.awx %s installed in %s" % (installed_version(args.dest), args.dest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
