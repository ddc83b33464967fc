# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL client programs (pg_dump, pg_restore, psql): where they are and their environment."""

from __future__ import annotations

import glob
import os
import shutil

from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError


def _installed_version(path):
    """Major version of a program path such as /usr/lib/postgresql/15/bin/x or /usr/pgsql-15/bin/x."""
    try:
        return float(path.split("/")[-3].replace("pgsql-", ""))
    except ValueError:
        return 0.0


def find_pg_tool(tool, major=None):
    """Path of client program ``tool``: the one of the server's ``major`` version when installed
    (pg_dump must not be older than the server), else the newest installed, else PATH."""
    candidates = []
    if major:
        candidates += ["/usr/lib/postgresql/%d/bin/%s" % (major, tool), "/usr/pgsql-%d/bin/%s" % (major, tool)]
    installed = glob.glob("/usr/lib/postgresql/*/bin/%s" % tool) + glob.glob("/usr/pgsql-*/bin/%s" % tool)
    candidates += sorted(installed, key=_installed_version, reverse=True)
    for path in candidates:
        if os.access(path, os.X_OK):
            return path
    found = shutil.which(tool)
    if found:
        return found
    number = "%d" % major if major else ""
    raise DatabaseError(
        "the PostgreSQL client program %s was not found on this host (looked in /usr/lib/postgresql/*/bin, "
        "/usr/pgsql-*/bin and PATH): install the client programs of PostgreSQL%s (Debian/Ubuntu: package "
        "postgresql-client%s; RHEL: postgresql%s)"
        % (tool, " " + number if number else "", "-" + number if number else "", number))


def libpq_environment(params):
    """Environment for libpq programs: the password travels in PGPASSWORD, never on the command line."""
    env = dict(os.environ)
    env["PGHOST"] = params.db_socket_dir or params.db_host
    env["PGPORT"] = str(params.db_port)
    env["PGUSER"] = params.db_user
    env["PGDATABASE"] = params.db_name
    env["PGCONNECT_TIMEOUT"] = str(params.connect_timeout)
    if params.db_password:
        env["PGPASSWORD"] = params.db_password
    else:
        env.pop("PGPASSWORD", None)
    return env
