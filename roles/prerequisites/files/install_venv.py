# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Create the virtualenv of bim.wall_system's host-side libraries (run by the role prerequisites).

    install_venv.py --venv DIR --stamp NAME [--wheelhouse DIR] --imports NAME... [--programs NAME...]
                    --packages REQ...

Runs with the host's own Python and its standard library only (the libraries are what it
installs). Under an exclusive lock on DIR.lock, so two playbooks that reach a bare host at the
same moment install once: the second finds the stamp the first wrote and changes nothing. The
stamp (DIR/NAME) is written last, after every import worked, so a killed install is redone.
With --wheelhouse, pip comes from the wheelhouse too and never asks an index (--no-index).
Prints one JSON object: {"changed", "venv", "source", "msg"}; exit status 1 on failure.
"""

from __future__ import annotations

import argparse
import fcntl
import glob
import json
import os
import shutil
import subprocess
import sys

STAMP_PREFIX = ".bim-prerequisites-"


def parse_args(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--venv", required=True)
    parser.add_argument("--stamp", required=True)
    parser.add_argument("--wheelhouse")
    parser.add_argument("--imports", nargs="+", required=True)
    parser.add_argument("--programs", nargs="+", default=[])
    parser.add_argument("--packages", nargs="+", required=True)
    return parser.parse_args(argv)


class InstallError(Exception):
    pass


def run(cmd, what):
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          check=False)
    if proc.returncode != 0:
        tail = proc.stdout.decode("utf-8", "replace").strip().splitlines()[-12:]
        raise InstallError("%s failed (%s): %s" % (what, describe_status(proc.returncode), " | ".join(tail)))


def describe_status(returncode):
    return "killed by signal %d" % -returncode if returncode < 0 else "exit status %d" % returncode


def venv_python(venv):
    return os.path.join(venv, "bin", "python")


def works(python):
    if not os.access(python, os.X_OK):
        return False
    return subprocess.run([python, "-c", ""], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, check=False).returncode == 0


def has_pip(python):
    return subprocess.run([python, "-m", "pip", "--version"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, check=False).returncode == 0


def wheelhouse_pip(wheelhouse):
    """pip runs from its own wheel ("python pip-X.whl/pip install ..."), so a host without
    ensurepip still gets pip: from the wheelhouse, never from an index."""
    wheels = sorted(glob.glob(os.path.join(wheelhouse, "pip-*.whl")))
    if not wheels:
        raise InstallError("the wheelhouse %s has no pip wheel (the controller's pip download adds it)" % wheelhouse)
    return os.path.join(wheels[-1], "pip")


def create_venv(venv, wheelhouse):
    """A new virtualenv; with ensurepip it comes with pip, else pip is taken from the wheelhouse."""
    import importlib.util
    with_pip = importlib.util.find_spec("ensurepip") is not None
    if not with_pip and not wheelhouse:
        raise InstallError("%s has no ensurepip (Debian: python3-venv) and no wheelhouse was given" % sys.executable)
    run([sys.executable, "-m", "venv"] + ([] if with_pip else ["--without-pip"]) + [venv],
        "python -m venv %s" % venv)
    python = venv_python(venv)
    if not has_pip(python):
        run([python, wheelhouse_pip(wheelhouse), "install", "--quiet", "--no-index", "--find-links", wheelhouse, "pip"],
            "installing pip from the wheelhouse")


def install(venv, packages, wheelhouse):
    python = venv_python(venv)
    source = ["--no-index", "--find-links", wheelhouse] if wheelhouse else []
    run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"] + source + list(packages),
        "pip install %s" % " ".join(packages))


def check_imports(venv, imports):
    script = ("import importlib, sys\nmissing = []\nfor name in sys.argv[1:]:\n    try:\n"
              "        importlib.import_module(name)\n    except Exception as exc:\n"
              "        missing.append('%s (%s)' % (name, exc))\nprint('; '.join(missing))\nsys.exit(1 if missing else 0)\n")
    proc = subprocess.run([venv_python(venv), "-c", script] + list(imports), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        raise InstallError("after the install %s still lacks: %s"
                           % (venv, proc.stdout.decode("utf-8", "replace").strip()))


def check_programs(venv, programs):
    missing = [name for name in programs if not os.access(os.path.join(venv, "bin", name), os.X_OK)]
    if missing:
        raise InstallError("after the install %s/bin still lacks: %s" % (venv, ", ".join(missing)))


def write_stamp(venv, stamp, packages):
    for old in glob.glob(os.path.join(venv, STAMP_PREFIX + "*")):
        os.unlink(old)
    path = os.path.join(venv, stamp)
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        handle.write("\n".join(packages) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(path + ".tmp", path)


def ensure(args):
    venv = os.path.abspath(args.venv)
    if not args.stamp.startswith(STAMP_PREFIX) or "/" in args.stamp:
        raise InstallError("the stamp must be a file name starting with %s" % STAMP_PREFIX)
    parent = os.path.dirname(venv)
    os.makedirs(parent, mode=0o755, exist_ok=True)
    lock = os.open(venv + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run on this host installs first; then we find its stamp
        python = venv_python(venv)
        if os.path.exists(os.path.join(venv, args.stamp)) and works(python):
            return {"changed": False, "venv": venv, "msg": "already installed"}
        if not (works(python) and has_pip(python)):
            if os.path.isfile(os.path.join(venv, "pyvenv.cfg")):
                shutil.rmtree(venv)  # a virtualenv whose creation was killed (no python, or no pip yet): built again
            elif os.path.lexists(venv):
                raise InstallError("%s exists and is not a virtualenv; move it away and run again" % venv)
            create_venv(venv, args.wheelhouse)
        install(venv, args.packages, args.wheelhouse)
        check_imports(venv, args.imports)
        check_programs(venv, args.programs)
        write_stamp(venv, args.stamp, args.packages)
        return {"changed": True, "venv": venv, "source": "wheelhouse" if args.wheelhouse else "index",
                "msg": "installed %s" % ", ".join(args.packages)}
    finally:
        os.close(lock)


def main(argv=None):
    try:
        result = ensure(parse_args(argv if argv is not None else sys.argv[1:]))
    except (InstallError, OSError) as exc:
        print(json.dumps({"changed": False, "failed": True, "msg": str(exc)}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
