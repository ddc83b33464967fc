# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL: restore, swap and rollback primitives.

These methods act on whole databases of the server the engine points at, through a separate
administrative connection to the ``postgres`` maintenance database (autocommit: CREATE, DROP,
ALTER DATABASE cannot run in a transaction). The orchestration that makes a swap crash-safe
(journal, recovery, restore points) lives in ``module_utils/restore/``; here are the single steps.
Every identifier goes through ``psycopg.sql.Identifier``.
"""

from __future__ import annotations

import dataclasses
import re
import subprocess
import threading
import time

from ansible_collections.bim.wall_system.plugins.module_utils.database.api_restore import Restores
from ansible_collections.bim.wall_system.plugins.module_utils.database.errors import DatabaseError, MissingLibraryError
from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_tools import libpq_environment
from ansible_collections.bim.wall_system.plugins.module_utils.common.process import failure_text

try:
    import psycopg
    from psycopg import sql
    HAS_PSYCOPG = True
    PSYCOPG_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - depends on the host
    HAS_PSYCOPG = False
    PSYCOPG_IMPORT_ERROR = str(exc)

MAINTENANCE_DB = "postgres"
MAX_IDENTIFIER = 63


def _no_secret(text, password):
    if password and text:
        return text.replace(password, "********")
    return text


# pg_restore's processes share one stderr and write the "pg_restore: " prefix apart from the
# message, so with -j a message can lose its prefix to a neighbouring line (seen: "finished item
# 4117 ...", " finished item ...", "pg_restore: pg_restore: creating ..."). Messages are read
# with every leading prefix stripped; a line left empty is an orphaned prefix.
_PREFIXES = re.compile(r"^(?:\s*pg_restore:)*\s*")
# --verbose progress messages: kept out of error messages; launched and finished items are reported.
_PROGRESS = re.compile(r"^(connecting|creating|processing|launching|finished|entering|executing|"
                       r"implied|setting|disabling|enabling|dropping)\b")
_ITEM = re.compile(r"^(launching|finished) item \d+ (.*)$")
# Kinds of the TOC items reported to a listener; a kind another starts with (INDEX) comes after it.
_KINDS = ("TABLE DATA", "FK CONSTRAINT", "SEQUENCE SET", "INDEX ATTACH", "MATERIALIZED VIEW DATA",
          "CONSTRAINT", "INDEX", "TRIGGER", "RULE", "POLICY", "STATISTICS", "SEQUENCE OWNED BY")


def _read_messages(pipe, messages, on_progress):
    """Collect pg_restore's messages from ``pipe`` (its stderr); report launched and finished
    items to ``on_progress``."""
    for raw in pipe:
        line = raw.decode("utf-8", "replace").rstrip("\n")
        text = _PREFIXES.sub("", line, count=1)
        match = _ITEM.match(text)
        if match and on_progress is not None:
            rest = match.group(2)
            for kind in _KINDS:
                if rest.startswith(kind + " "):
                    break
            else:
                kind = rest.split(" ", 1)[0]
            try:
                on_progress(match.group(1), kind, rest[len(kind) + 1:])
            except Exception:  # a listener must never stop the restore
                pass
            continue
        if text and not _PROGRESS.match(text):
            messages.append(line)
    pipe.close()


# Settings whose stored value is a list of separately quoted items (as pg_dump's
# variable_is_guc_list_quote): replayed item by item, any other value as one string literal.
_LIST_SETTINGS = ("local_preload_libraries", "search_path", "session_preload_libraries",
                  "shared_preload_libraries", "temp_tablespaces", "unix_socket_directories")


def _setting_value(name, value):
    """The SQL of a stored ``name=value`` setting's value, for ``SET name TO <this>``."""
    if name.lower() not in _LIST_SETTINGS:
        return sql.Literal(value)
    items, current, quoted, index = [], "", False, 0
    while index < len(value):
        char = value[index]
        if char == '"' and quoted and value[index + 1:index + 2] == '"':
            current += '"'  # a doubled quote inside a quoted item
            index += 1
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            items.append(current.strip())
            current = ""
        else:
            current += char
        index += 1
    items.append(current.strip())
    return sql.SQL(", ").join(sql.Literal(item) for item in items if item != "")


class PostgresRestoreMixin(Restores):
    """Restore methods of the PostgreSQL engine (need only ``self.params``)."""

    def restore_target(self, **options):
        # imported here: the target builds on restore/, which imports this engine
        from ansible_collections.bim.wall_system.plugins.module_utils.database.postgresql.pg_target import PostgresTarget
        return PostgresTarget(self.params, **options)

    # ---- connections -------------------------------------------------------------------
    def _admin_connect(self, dbname=MAINTENANCE_DB):
        """An autocommit connection to ``dbname`` (default: the maintenance database)."""
        if not HAS_PSYCOPG:
            raise MissingLibraryError("psycopg", PSYCOPG_IMPORT_ERROR)
        p = self.params
        kwargs = dict(dbname=dbname, user=p.db_user, port=p.db_port, connect_timeout=p.connect_timeout,
                      autocommit=True, application_name=self.restore_application_name())
        kwargs["host"] = p.db_socket_dir or p.db_host
        if p.db_password:
            kwargs["password"] = p.db_password
        try:
            return psycopg.connect(**kwargs)
        except psycopg.Error as exc:
            raise DatabaseError("cannot connect to database %s on %s: %s" % (
                dbname, p.describe(), _no_secret(str(exc).strip(), p.db_password)))

    def restore_application_name(self):
        """application_name of this engine's administrative sessions: names the live database, so
        a later run can find (and end) the sessions a killed run left on the server."""
        return ("bim restore %s" % self.params.db_name)[:63]

    def end_sessions_of_dead_runs(self, timeout=30.0):
        """End the server sessions a killed run of a restore on this database left behind.

        A statement such as ``ALTER DATABASE ... RENAME`` keeps running on the server after its
        client died; until its session is gone the state of the databases is not settled.
        Returns how many sessions were ended.
        """
        ended = 0
        deadline = time.monotonic() + timeout
        name = self.restore_application_name()
        while True:
            rows = self._admin("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE application_name = %s AND pid <> pg_backend_pid()", (name,), fetch=True)
            ended += sum(1 for r in rows if r[0])
            left = self._admin("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                               "AND pid <> pg_backend_pid()", (name,), fetch=True)[0][0]
            if not left:
                return ended
            if time.monotonic() > deadline:
                raise DatabaseError("%d sessions of an earlier restore did not end within %ss" % (left, timeout))
            time.sleep(0.1)

    def _admin(self, query, args=None, dbname=MAINTENANCE_DB, fetch=False):
        conn = self._admin_connect(dbname)
        try:
            with conn.cursor() as cur:
                cur.execute(query, args)
                if fetch:
                    return cur.fetchall()
                return None
        except psycopg.Error as exc:
            text = query.as_string(conn) if hasattr(query, "as_string") else str(query)
            raise DatabaseError("%s failed on %s: %s" % (text.split("(")[0][:80], self.params.describe(),
                                                         _no_secret(str(exc).strip(), self.params.db_password)))
        finally:
            conn.close()

    def engine_for_database(self, name):
        """A new (not yet connected) engine of the same server for database ``name``."""
        return type(self)(dataclasses.replace(self.params, db_name=name))

    # ---- databases ---------------------------------------------------------------------
    def database_exists(self, name):
        rows = self._admin("SELECT 1 FROM pg_database WHERE datname = %s", (name,), fetch=True)
        return bool(rows)

    def databases_like(self, prefix):
        """Names of the databases whose name starts with ``prefix`` (sorted)."""
        rows = self._admin("SELECT datname FROM pg_database WHERE left(datname, %s) = %s ORDER BY datname",
                           (len(prefix), prefix), fetch=True)
        return [r[0] for r in rows]

    def database_invalid(self, name):
        """True for a database an interrupted DROP DATABASE left invalid (PostgreSQL >= 15.4)."""
        rows = self._admin("SELECT datconnlimit = -2 FROM pg_database WHERE datname = %s", (name,), fetch=True)
        return bool(rows and rows[0][0])

    def database_owner(self, name):
        rows = self._admin("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (name,), fetch=True)
        return rows[0][0] if rows else None

    def database_size(self, name):
        rows = self._admin("SELECT pg_database_size(%s)", (name,), fetch=True)
        return int(rows[0][0])

    def create_database(self, name, owner=None):
        """CREATE DATABASE ``name`` from template0 (an empty database pg_restore fills)."""
        if len(name) > MAX_IDENTIFIER:
            raise DatabaseError("database name %r is longer than %d characters" % (name, MAX_IDENTIFIER))
        query = sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
        if owner:
            query = sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0").format(
                sql.Identifier(name), sql.Identifier(owner))
        self._admin(query)

    def drop_database(self, name):
        """DROP DATABASE IF EXISTS ``name`` WITH (FORCE): its sessions are ended first."""
        self._admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def rename_database(self, old, new):
        if len(new) > MAX_IDENTIFIER:
            raise DatabaseError("database name %r is longer than %d characters" % (new, MAX_IDENTIFIER))
        self._admin(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(old), sql.Identifier(new)))

    def copy_database_properties(self, source, target):
        """Give database ``target`` the database-level properties of ``source`` that pg_dump
        (without --create) does not carry: its privileges (GRANT/REVOKE ... ON DATABASE), its
        settings (ALTER [ROLE ...] DATABASE ... SET) and its connection limit. Without them a
        swapped-in copy would, say, let PUBLIC connect again or lose its statement_timeout.
        Returns the statements run (no secrets: privileges and settings only)."""
        done = []
        conn = self._admin_connect()
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT oid, datacl IS NOT NULL, datconnlimit FROM pg_database WHERE datname = %s", (source,))
                row = cur.fetchone()
                if row is None:
                    return done
                oid, has_acl, limit = row
                statements = []
                if has_acl:
                    # A NULL datacl means the defaults, which a new database has already.
                    owner = sql.Identifier(self.database_owner(target))
                    statements.append(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC, {}").format(
                        sql.Identifier(target), owner))
                    cur.execute("SELECT a.privilege_type, a.grantee = 0, pg_get_userbyid(a.grantee), a.is_grantable"
                                " FROM pg_database d, aclexplode(d.datacl) a WHERE d.oid = %s ORDER BY 3, 1", (oid,))
                    for privilege, public, grantee, grantable in cur.fetchall():
                        statements.append(sql.SQL("GRANT {} ON DATABASE {} TO {}{}").format(
                            sql.SQL(privilege), sql.Identifier(target), sql.SQL("PUBLIC") if public else sql.Identifier(grantee),
                            sql.SQL(" WITH GRANT OPTION") if grantable else sql.SQL("")))
                if limit != -1:
                    statements.append(sql.SQL("ALTER DATABASE {} CONNECTION LIMIT {}").format(
                        sql.Identifier(target), sql.Literal(limit)))
                cur.execute("SELECT CASE WHEN s.setrole = 0 THEN NULL ELSE pg_get_userbyid(s.setrole) END, c.item"
                            " FROM pg_db_role_setting s, unnest(s.setconfig) AS c(item) WHERE s.setdatabase = %s"
                            " ORDER BY 1 NULLS FIRST, 2", (oid,))
                for role, item in cur.fetchall():
                    name, _sep, value = item.partition("=")
                    scope = sql.SQL("ALTER ROLE {} IN DATABASE {}").format(sql.Identifier(role), sql.Identifier(target)) \
                        if role else sql.SQL("ALTER DATABASE {}").format(sql.Identifier(target))
                    statements.append(scope + sql.SQL(" SET {} TO {}").format(sql.Identifier(name), _setting_value(name, value)))
                for statement in statements:
                    cur.execute(statement)
                    done.append(statement.as_string(conn))
        except psycopg.Error as exc:
            raise DatabaseError("copying the properties of database %s to %s failed: %s" % (
                source, target, _no_secret(str(exc).strip(), self.params.db_password)))
        finally:
            conn.close()
        return done

    def set_allow_connections(self, name, allow):
        self._admin(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
            sql.Identifier(name), sql.SQL("true" if allow else "false")))

    def allows_connections(self, name):
        rows = self._admin("SELECT datallowconn FROM pg_database WHERE datname = %s", (name,), fetch=True)
        return bool(rows and rows[0][0])

    def terminate_sessions(self, name, timeout=30.0):
        """End every session on database ``name`` (except ours); wait until none is left.

        Returns the number of sessions that were ended.
        """
        ended = 0
        deadline = time.monotonic() + timeout
        while True:
            rows = self._admin(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()", (name,), fetch=True)
            ended += sum(1 for r in rows if r[0])
            left = self._admin("SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                               (name,), fetch=True)[0][0]
            if not left:
                return ended
            if time.monotonic() > deadline:
                raise DatabaseError("%d sessions on database %s did not end within %ss" % (left, name, timeout))
            time.sleep(0.1)

    # ---- pg_restore --------------------------------------------------------------------
    def server_major_version(self):
        rows = self._admin("SHOW server_version_num", fetch=True)
        return int(rows[0][0]) // 10000

    def _tool_env_args(self, dbname):
        """Environment and arguments of a client program working on database ``dbname``.

        ``-d`` takes a connection string whenever its value holds ``=``: the name always goes
        as ``dbname='...'`` (quotes and backslashes escaped), so any name means that database."""
        quoted = "dbname='%s'" % dbname.replace("\\", "\\\\").replace("'", "\\'")
        return libpq_environment(dataclasses.replace(self.params, db_name=dbname)), ["-d", quoted]

    def archive_toc(self, archive_path):
        """``pg_restore -l`` of an archive file: the list of its TOC entries (lines)."""
        proc = subprocess.run([self.pg_tool("pg_restore"), "-l", archive_path], capture_output=True, check=False)
        if proc.returncode != 0:
            raise DatabaseError(failure_text("pg_restore -l", proc.returncode,
                                             proc.stderr.decode("utf-8", "replace").strip()[-2000:]))
        return proc.stdout.decode("utf-8", "replace").splitlines()

    def restore_archive(self, dbname, archive_path=None, stream=None, jobs=1, use_list=None, on_progress=None):
        """Run ``pg_restore --exit-on-error`` of a custom-format archive into existing ``dbname``.

        ``archive_path`` (seekable file; needed for ``jobs`` > 1) or ``stream`` (a file-like
        object piped into pg_restore's stdin with jobs=1). ``use_list``: a ``-L`` list file.
        ``on_progress(event, kind, tag)``: called from a reader thread for each TOC item a
        parallel pg_restore reports ``launching`` or ``finished`` (its ``--verbose`` lines), e.g.
        ``("finished", "CONSTRAINT", "walls walls_pkey")``. Returns the command (without
        secrets) that ran.
        """
        env, conn_args = self._tool_env_args(dbname)
        cmd = [self.pg_tool("pg_restore"), "--exit-on-error", "--no-password"] + conn_args
        if use_list:
            cmd += ["-L", use_list]
        if archive_path is not None and jobs and jobs > 1:
            cmd += ["-j", str(int(jobs))]
        if on_progress is not None:
            cmd.append("--verbose")
        if archive_path is not None:
            cmd.append(archive_path)
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL if stream is None else subprocess.PIPE,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        messages = []
        reader = threading.Thread(target=_read_messages, args=(proc.stderr, messages, on_progress),
                                  name="bim-pg-restore-stderr")
        reader.daemon = True
        reader.start()
        try:
            if stream is not None:
                try:
                    while True:
                        block = stream.read(1024 * 1024)
                        if not block:
                            break
                        proc.stdin.write(block)
                    proc.stdin.close()
                except BrokenPipeError:
                    pass
            rc = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            reader.join()
        if rc != 0:
            text = _no_secret("\n".join(messages).strip(), self.params.db_password)
            raise DatabaseError(failure_text("pg_restore into database %s" % dbname, rc, text[-2000:]))
        return " ".join(cmd)

    # ---- checks of a restored copy -----------------------------------------------------
    def check_btree_indexes(self, dbname):
        """amcheck's ``bt_index_check`` on every btree index of ``dbname``.

        Creates the amcheck extension when missing and drops it again afterwards, so the
        checked database ends up exactly as restored. Returns a list of problems (strings).
        """
        conn = self._admin_connect(dbname)
        problems = []
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_extension WHERE extname = 'amcheck'")
                had = bool(cur.fetchall())
                if not had:
                    try:
                        cur.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
                    except psycopg.Error as exc:
                        return ["amcheck is not available on the server: %s" % str(exc).strip()]
                try:
                    cur.execute(
                        "SELECT c.oid::regclass::text, c.oid FROM pg_index i "
                        "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am am ON am.oid = c.relam "
                        "JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE am.amname = 'btree' AND c.relpersistence <> 't' "
                        "AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%%' "
                        "ORDER BY 1")
                    for name, oid in cur.fetchall():
                        try:
                            cur.execute("SELECT bt_index_check(%s::oid::regclass)", (oid,))
                        except psycopg.Error as exc:
                            problems.append("btree index %s: %s" % (name, str(exc).strip()))
                finally:
                    if not had:
                        cur.execute("DROP EXTENSION IF EXISTS amcheck")
        finally:
            conn.close()
        return problems

    def invalid_indexes(self, dbname):
        """Indexes of ``dbname`` that PostgreSQL marks invalid or not ready."""
        rows = self._admin(
            "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "WHERE NOT (i.indisvalid AND i.indisready)", dbname=dbname, fetch=True)
        return [r[0] for r in rows]
