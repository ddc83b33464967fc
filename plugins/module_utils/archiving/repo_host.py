# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""pgBackRest repositories on a repository host reached over SSH (``repoN-host``).

pgBackRest runs the OS ``ssh`` client as the database's OS user (``archive_command`` runs as
that user) and starts ``pgbackrest ... remote`` on the repository host. It has no option for a
key or a known_hosts file, only ``cmd-ssh`` (the program to run as ssh). The collection therefore
gives it, in the archive folder's ``ssh/`` (owned by that user, 0700):

- ``ssh``: a wrapper that runs OpenSSH with the collection's key (``repo_host_key_file``, copied
  there 0600 so the OS user can read it), ``StrictHostKeyChecking=yes`` and its own known_hosts;
- ``known_hosts``: the repository hosts' keys, checked against (and recorded in, on first use)
  the collection's known_hosts file exactly as the SFTP copies do (``host_keys.py``): a changed
  key stops the configuration with both fingerprints, and OpenSSH refuses any other key later.

pgBackRest 2.45 runs ``backup`` only where the repositories are: with a repository host as repo1
it refuses a backup from the database host ("backup command must be run on the repository
host"). The collection keeps repo1 local and puts a repository host second (``repo2``): backup,
archive-push and restore then run beside the cluster, pgBackRest writing both repositories.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess

from ansible_collections.bim.wall_system.plugins.module_utils.archiving import pgbackrest, replica_host_key
from ansible_collections.bim.wall_system.plugins.module_utils.archiving.common import ArchiveError, checked, os_user, run_as

OPENSSH_ORDER = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
                 "rsa-sha2-512", "rsa-sha2-256")


def remote_repositories(repositories):
    """``(index, repository)`` of the repositories on a repository host; refuses one as repo1 (see
    the module docstring)."""
    remote = [(n, r) for n, r in enumerate(repositories, start=1) if r.get("host")]
    if remote and repositories[0].get("host"):
        raise ArchiveError("pgBackRest 2.45 runs backups only beside its repositories when repo1 is on a repository "
                           "host; keep repo1 local and put the repository host second (repositories: [{path: ...}, "
                           "{path: ..., host: ...}])")
    return remote


def _address(repo):
    port = int(repo.get("host_port") or 22)
    return port, repo["host"] if port == 22 else "[%s]:%d" % (repo["host"], port)


def ssh_files(archive_dir, user, remote, opts, write, check_mode=False):
    """Write the ssh wrapper, key copy and known_hosts for the ``remote`` repositories with
    ``write(path, text, owner, mode)`` (the caller's compare-first writer, honouring check mode).
    Returns (the wrapper's path for pgBackRest's ``cmd-ssh``, the hosts trusted on first use); the
    wrapper is None when there is no repository host."""
    if not remote:
        return None, []
    key = opts.get("repo_host_key_file")
    if not key or not os.path.isfile(key):
        raise ArchiveError("a pgBackRest repository host needs repo_host_key_file, the private key pgBackRest's "
                           "ssh logs in with (%r is not a file)" % (key,))
    ssh_dir = os.path.join(archive_dir, "ssh")
    lines, first_use = [], []
    for _index, repo in remote:
        port, name = _address(repo)
        line, status, print_ = replica_host_key.pin(
            "%s:%d" % (repo["host"], port), opts.get("known_hosts_file"), key_types=OPENSSH_ORDER,
            strict=bool(opts.get("strict_host_key_checking")), record=not check_mode)
        lines.append("%s %s\n" % (name, line))
        if status in ("recorded", "new"):
            first_use.append("%s (%s)" % (name, print_))
    with open(key, encoding="utf-8") as handle:
        write(os.path.join(ssh_dir, "id_repo"), handle.read(), user, 0o600)
    write(os.path.join(ssh_dir, "known_hosts"), "".join(sorted(set(lines))), user, 0o600)
    wrapper = os.path.join(ssh_dir, "ssh")
    write(wrapper, "#!/bin/sh\n# Written by bim.wall_system.continuous_archiving: pgBackRest's ssh (cmd-ssh).\n"
                   "exec %s -i %s -o IdentitiesOnly=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=%s "
                   "-o GlobalKnownHostsFile=/dev/null -o BatchMode=yes \"$@\"\n" % (
                       shutil.which("ssh") or "/usr/bin/ssh", shlex.quote(os.path.join(ssh_dir, "id_repo")),
                       shlex.quote(os.path.join(ssh_dir, "known_hosts"))), user, 0o700)
    return wrapper, first_use


# ---- backups run on the repository host --------------------------------------------------------
def remote_files(repo, stanza):
    """Where the repository host keeps this stanza's configuration, lock and log folders: beside
    the repository folder (``host_config`` when given)."""
    base = os.path.join(os.path.dirname(repo["path"].rstrip("/")), "pgbackrest-" + stanza)
    return {"config": repo.get("host_config") or base + ".conf", "lock": base + "-lock", "log": base + "-log",
            "known_hosts": base + "-known_hosts", "ssh": base + "-ssh"}


def render_remote_config(index, repo, stanza, retention, pg):
    """The repository host's pgbackrest.conf for ``stanza`` (its repository under the database host's
    number for it, ``index``: the database host passes its ``repoN-*`` options as they are, the
    database host reached back over SSH as ``pg1-host`` for the backups run there) and the text of the ssh
    wrapper it names as ``cmd-ssh``: OpenSSH's own trust on first use (``accept-new``) in a
    known_hosts file beside the repository, or ``yes`` in strict mode."""
    files = remote_files(repo, stanza)
    lines = ["# Written by bim.wall_system.continuous_archiving: changes here are overwritten.",
             "[global]", "repo%d-path=%s" % (index, repo["path"])]
    lines += pgbackrest.retention_lines("repo%d-" % index, retention)
    lines += ["lock-path=" + files["lock"], "log-path=" + files["log"], "log-level-console=warn",
              "log-level-file=info", "start-fast=y", "compress-type=zst", "process-max=2", "cmd-ssh=" + files["ssh"]]
    lines += ["", "[%s]" % stanza, "pg1-host=" + pg["host"], "pg1-host-user=" + pg["user"],
              "pg1-host-config=" + pg["config"], "pg1-host-cmd=" + pg["cmd"], "pg1-path=" + pg["data_dir"],
              "pg1-port=%d" % int(pg["port"])]
    lines += ["pg1-socket-path=" + pg["socket_dir"]] if pg.get("socket_dir") else []
    lines += ["pg1-user=" + pg["db_user"]] if pg.get("db_user") else []
    wrapper = "#!/bin/sh\n# Written by bim.wall_system.continuous_archiving: pgBackRest's ssh to %s.\nexec ssh %s\"$@\"\n" % (
        pg["host"], "".join("%s " % shlex.quote(a) for a in (
            ["-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "UserKnownHostsFile=" + files["known_hosts"],
             "-o", "StrictHostKeyChecking=" + ("yes" if pg.get("strict") else "accept-new")]
            + (["-i", pg["key_file"]] if pg.get("key_file") else []))))
    return "\n".join(lines) + "\n", wrapper


def prepare_remote_backups(ctx, remote, wrapper, write, changes):
    """Everything a backup run on each repository host needs; returns the descriptor's
    ``remote_backups``. On this host: a password file and the pgbackrest wrapper that reads it
    (``pg1-host-cmd``: the repository host's pgBackRest starts it over SSH, where no PGPASSWORD
    can be passed). On each repository host, written over pgBackRest's ssh: its configuration and
    ssh wrapper."""
    pg_user = ctx["opts"].get("repo_host_pg_user") or "postgres"
    pgpass = os.path.join(ctx["archive_dir"], "pgpass")
    password = (ctx["params"].db_password or "").replace("\\", "\\\\").replace(":", "\\:")
    write(pgpass, "*:*:*:*:%s\n" % password if password else "", pg_user, 0o600)
    cmd = os.path.join(ctx["archive_dir"], "pgbackrest-remote")
    write(cmd, "#!/bin/sh\n# Written by bim.wall_system.continuous_archiving: pgBackRest started by a repository host.\n"
               "PGPASSFILE=%s exec pgbackrest \"$@\"\n" % shlex.quote(pgpass), pg_user, 0o700)
    pg = {"host": ctx["opts"].get("pg_host_address") or ctx["params"].db_host, "user": pg_user, "cmd": cmd,
          "config": ctx["config"], "data_dir": ctx["data_dir"], "port": ctx["params"].db_port,
          "socket_dir": ctx["params"].db_socket_dir, "db_user": ctx["params"].db_user,
          "key_file": ctx["opts"].get("repo_host_pg_key_file"), "strict": ctx["opts"].get("strict_host_key_checking")}
    out = {}
    for index, repo in remote:
        files = remote_files(repo, ctx["stanza"])
        text, ssh_text = render_remote_config(index, repo, ctx["stanza"], ctx["opts"].get("retention"), pg)
        for path, content, mode in ((files["config"], text, "600"), (files["ssh"], ssh_text, "700")):
            if put_remote_file(wrapper, repo, path, content, ctx["user"], changes.check_mode, mode=mode):
                changes.add("write %s on the repository host %s" % (path, repo["host"]))
        if not changes.check_mode:
            checked(remote_argv(wrapper, repo, "mkdir -p -m 700", shlex.quote(files["lock"]), shlex.quote(files["log"])),
                    "creating pgBackRest's folders on %s" % repo["host"], user=ctx["user"], timeout=120)
        out[str(index)] = {"ssh": remote_argv(wrapper, repo)[:-1], "config": files["config"], "repo": index}
    return out


def remote_argv(wrapper, repo, *command):
    """argv running ``command`` (a shell command line) on the repository host through pgBackRest's ssh."""
    return [wrapper] + (["-p", str(int(repo["host_port"]))] if repo.get("host_port") else []) + [
        "%s@%s" % (repo.get("host_user") or "pgbackrest", repo["host"]), " ".join(command)]


def put_remote_file(wrapper, repo, path, text, user, check_mode, mode="600"):
    """Write ``text`` to ``path`` on the repository host when it differs; True when it did (or would)."""
    if check_mode and not os.path.exists(wrapper):  # a first plan: nothing set up to look with yet
        return True
    rc, current, _err = run_as(remote_argv(wrapper, repo, "cat", shlex.quote(path)), user=user, timeout=120)
    if rc == 0 and current == text:
        return False
    if check_mode:
        return True
    folder = shlex.quote(os.path.dirname(path))
    tmp = shlex.quote(path + ".tmp")
    argv = remote_argv(wrapper, repo, "mkdir -p %s && umask 077 && cat > %s && chmod %s %s && mv %s %s" % (
        folder, tmp, mode, tmp, tmp, shlex.quote(path)))
    proc = subprocess.run(argv, input=text.encode("utf-8"), capture_output=True, timeout=120, check=False,
                          **_as_user(user))
    if proc.returncode != 0:
        raise ArchiveError("cannot write %s on the repository host %s: %s" % (
            path, repo["host"], proc.stderr.decode("utf-8", "replace").strip()[-500:]))
    return True


def _as_user(user):
    if not user or os.geteuid() != 0:
        return {}
    uid, gid, home = os_user(user)
    return {"user": uid, "group": gid, "extra_groups": [], "env": dict(os.environ, HOME=home), "cwd": "/"}
