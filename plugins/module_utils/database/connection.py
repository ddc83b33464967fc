# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection options shared by every module, and their plain-Python form.

Modules start from ``database_argument_spec()`` and add their own options; the library
receives a ``ConnectionParams`` built with ``ConnectionParams.from_params(module.params)``,
so nothing below the module layer depends on Ansible types.
"""

from __future__ import annotations

import dataclasses

from ansible_collections.bim.wall_system.plugins.module_utils.database.schema import validate_override

ENGINES = ("postgresql", "sqlite")


def database_argument_spec():
    """Argument spec of the connection options documented in doc fragment ``connection``."""
    return dict(
        engine=dict(type="str", required=True, choices=list(ENGINES)),
        db_host=dict(type="str", default="localhost"),
        db_port=dict(type="int", default=5432),
        db_user=dict(type="str", default="postgres"),
        db_password=dict(type="str", no_log=True),
        db_socket_dir=dict(type="path"),
        db_name=dict(type="str", default="bim_walls"),
        db_namespace=dict(type="str"),
        sqlite_path=dict(type="path"),
        connect_timeout=dict(type="int", default=10),
        schema=dict(type="dict"),
    )


def database_required_if():
    """``required_if`` rules that go with ``database_argument_spec()``."""
    return [("engine", "sqlite", ("sqlite_path",))]


@dataclasses.dataclass(frozen=True)
class ConnectionParams:
    """Where a BIM database lives. ``repr`` hides the password so it never reaches a log."""

    engine: str
    db_host: str = "localhost"
    db_port: int = 5432
    db_user: str = "postgres"
    db_password: str | None = dataclasses.field(default=None, repr=False)
    db_socket_dir: str | None = None
    db_name: str = "bim_walls"
    # PostgreSQL schema (namespace) of the BIM tables, put first in every session's search_path;
    # None: the first schema of the role's own search_path (usually public).
    db_namespace: str | None = None
    sqlite_path: str | None = None
    connect_timeout: int = 10
    # The operator's schema override (inventory bim_schema), validated: {table: {setting: name}}.
    # Left out of the hash (a dict has none); equality still compares it.
    schema: dict | None = dataclasses.field(default=None, hash=False)

    def __post_init__(self):
        # raises schema.SchemaOverrideError (a ValueError) with a message naming the bad entry
        object.__setattr__(self, "schema", validate_override(self.schema))

    @classmethod
    def from_params(cls, params):
        """Pick the connection fields out of a module's (or a role's) parameter dict.

        Raises ``SchemaOverrideError`` when ``schema`` is malformed (modules turn it into ``msg``)."""
        names = [f.name for f in dataclasses.fields(cls)]
        return cls(**{name: params[name] for name in names if params.get(name) is not None})

    def describe(self):
        """A secret-free description for messages: 'postgresql db1:5432/bim_walls'."""
        if self.engine == "sqlite":
            return "sqlite %s" % self.sqlite_path
        where = self.db_socket_dir or "%s:%s" % (self.db_host, self.db_port)
        return "postgresql %s/%s" % (where, self.db_name)
