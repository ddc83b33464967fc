# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a program the collection ran ended, in words an operator reads in a message."""

from __future__ import annotations

import signal


def describe_exit(returncode):
    """``"exit code 1"``, or ``"killed by signal 9 (SIGKILL)"`` for a negative ``returncode``
    (Python's subprocess reports a death by signal N as -N; "rc=-9" with no text told nothing)."""
    if returncode is not None and returncode < 0:
        try:
            name = " (%s)" % signal.Signals(-returncode).name
        except ValueError:
            name = ""
        return "killed by signal %d%s" % (-returncode, name)
    return "exit code %s" % returncode


def failure_text(what, returncode, output=""):
    """``"<what> failed (<how it ended>): <output>"``, without a dangling colon when the program
    said nothing."""
    output = (output or "").strip()
    return "%s failed (%s)%s" % (what, describe_exit(returncode), ": " + output if output else "")
