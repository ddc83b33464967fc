# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hostile files streams against the configuration-files restore: crafted tars stored in a real
repository, staged and installed below a files_root inside tmp_path, with a folder outside it that
must never change."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import tarfile

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.repository.chunker import MAX_CHUNK_SIZE
from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import Repository
from ansible_collections.bim.wall_system.plugins.module_utils.repository.writer import ChunkSession
from ansible_collections.bim.wall_system.plugins.module_utils.restore import files_step
from ansible_collections.bim.wall_system.plugins.module_utils.restore.errors import RestoreError
from ansible_collections.bim.wall_system.plugins.module_utils.restore.files import put_back_files
from ansible_collections.bim.wall_system.plugins.module_utils.restore.files_stage import stage_files

CONF = "etc/bim"


def _snapshot(folder):
    """{relative path: (kind, mode, uid, gid, content digest or link target)} of everything in ``folder``."""
    out = {}
    for base, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(base, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                extra = os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                with open(path, "rb") as handle:
                    extra = hashlib.sha256(handle.read()).hexdigest()
            else:
                extra = None
            out[os.path.relpath(path, folder)] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid,
                                                  st.st_gid, extra)
    return out


def _member(name, data=b"", kind=tarfile.REGTYPE, mode=0o644, uid=0, gid=0, linkname=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid, info.gid = uid, gid
    info.linkname = linkname
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, io.BytesIO(data) if kind == tarfile.REGTYPE else None


def _tar(members):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, data)
    return out.getvalue()


def _entry(name, kind="file", data=b"", mode=0o640, uid=0, gid=0):
    entry = {"path": name, "type": kind, "mode": mode, "uid": uid, "gid": gid, "user": None, "group": None}
    if kind == "file":
        entry.update(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    return entry


def _manifest(repo, blob_chunks, include_paths=("/" + CONF,), entries=None, parents=None):
    """A manifest whose files stream is ``blob_chunks`` (list of bytes), stored in ``repo``."""
    chunks, size = ChunkSession(repo, workers=1).store_stream(blob_chunks)
    stream = {"kind": "tar", "size": size, "chunks": chunks}
    if entries is not None:
        stream.update(record_version=1, entries=entries, parents=parents or [])
    return {"id": "20261205T000000Z", "include_paths": list(include_paths), "streams": {"files": stream}}


@pytest.fixture
def place(tmp_path):
    """A repository, a files_root with an existing configuration folder, an outside folder, a state dir."""
    root = tmp_path / "root"
    (root / CONF).mkdir(parents=True)
    (root / CONF / "app.conf").write_bytes(b"old\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"keep me\n")
    repo = Repository(str(tmp_path / "repo"), create=True)

    class Place:
        pass

    p = Place()
    p.root, p.outside, p.repo, p.staging = str(root), str(outside), repo, str(tmp_path / "staging")
    p.before_outside = _snapshot(p.outside)
    p.before_root = _snapshot(p.root)
    return p


def _restore(place, manifest, keep=None):
    plan = stage_files(place.repo, manifest, place.staging)
    return files_step.install(plan, place.root, keep)


def _refused(place, manifest, words):
    with pytest.raises(RestoreError) as info:
        plan = stage_files(place.repo, manifest, place.staging)
        from ansible_collections.bim.wall_system.plugins.module_utils.restore.files import FilesRoot
        with FilesRoot(place.root) as root:
            for item in plan["items"]:
                root.check(item["path"], item["kind"])
        files_step.install(plan, place.root)
    assert words in str(info.value)
    assert _snapshot(place.outside) == place.before_outside
    assert _snapshot(place.root) == place.before_root
    return info.value


@pytest.mark.parametrize("name, words", [
    ("/" + CONF + "/app.conf", "absolute name"),
    (CONF + "/../../etc/cron.d/x", "not a plain relative name"),
    ("etc/cron.d/x", "not under the backup's include_paths"),
    (CONF + "//app.conf", "not a plain relative name"),
    (CONF + "/./app.conf", "not a plain relative name"),
])
def test_member_names_outside_the_include_paths_are_refused(place, name, words):
    tar = _tar([_member(name, b"pwned\n")])
    _refused(place, _manifest(place.repo, [tar]), words)


def test_a_member_the_record_does_not_name_is_refused(place):
    good = b"new\n"
    tar = _tar([_member(CONF + "/app.conf", good), _member(CONF + "/extra.conf", b"x")])
    manifest = _manifest(place.repo, [tar], entries=[_entry(CONF + "/app.conf", data=good)])
    _refused(place, manifest, "not in the backup's record")


def test_bytes_that_differ_from_the_record_are_refused(place):
    tar = _tar([_member(CONF + "/app.conf", b"forged\n")])
    manifest = _manifest(place.repo, [tar], entries=[_entry(CONF + "/app.conf", data=b"new\n")])
    _refused(place, manifest, "does not match the backup's record")


def test_symlink_and_hardlink_members_never_write_outside(place):
    tar = _tar([_member(CONF + "/link", kind=tarfile.SYMTYPE, linkname=place.outside),
                _member(CONF + "/link/secret", b"pwned\n")])
    # An older backup without a record: the symlink is never created, so the member below it
    # lands in a real folder inside files_root.
    out = _restore(place, _manifest(place.repo, [tar]))
    assert out["skipped"] == [CONF + "/link"]
    assert not os.path.islink(os.path.join(place.root, CONF, "link"))
    assert _snapshot(place.outside) == place.before_outside
    place.before_root = _snapshot(place.root)
    hard = _tar([_member(CONF + "/hard", kind=tarfile.LNKTYPE, linkname=os.path.join(place.outside, "secret"))])
    _refused(place, _manifest(place.repo, [hard]), "link, device or sparse")
    device = _tar([_member(CONF + "/dev", kind=tarfile.CHRTYPE)])
    _refused(place, _manifest(place.repo, [device]), "link, device or sparse")


def test_an_existing_symlink_under_files_root_is_never_followed(place):
    os.rename(os.path.join(place.root, CONF, "app.conf"), os.path.join(place.root, "app.conf.moved"))
    os.rmdir(os.path.join(place.root, CONF))
    os.symlink(place.outside, os.path.join(place.root, CONF))
    place.before_root = _snapshot(place.root)
    tar = _tar([_member(CONF + "/secret", b"pwned\n")])
    _refused(place, _manifest(place.repo, [tar]), "symlink")
    # A symlink in the place of a file: refused too (never replaced, never written through).
    os.unlink(os.path.join(place.root, CONF))
    os.mkdir(os.path.join(place.root, CONF))
    os.symlink(os.path.join(place.outside, "secret"), os.path.join(place.root, CONF, "app.conf"))
    place.before_root = _snapshot(place.root)
    tar = _tar([_member(CONF + "/app.conf", b"pwned\n")])
    _refused(place, _manifest(place.repo, [tar]), "a symlink is in its place")


def test_a_symlink_planted_between_check_and_install_is_not_followed(place):
    tar = _tar([_member(CONF, kind=tarfile.DIRTYPE, mode=0o755), _member(CONF + "/sub/x.conf", b"x\n")])
    plan = stage_files(place.repo, _manifest(place.repo, [tar]), place.staging)
    os.symlink(place.outside, os.path.join(place.root, CONF, "sub"))
    with pytest.raises(RestoreError, match="symlink"):
        files_step.install(plan, place.root)
    assert _snapshot(place.outside) == place.before_outside


def test_owner_and_mode_come_from_the_record_never_the_tar(place):
    data = b"[app]\n"
    tar = _tar([_member(CONF, kind=tarfile.DIRTYPE, mode=0o6777, uid=1234, gid=1234),
                _member(CONF + "/app.conf", data, mode=0o6777, uid=1234, gid=1234)])
    entries = [_entry(CONF, "dir", mode=0o750, uid=0, gid=0), _entry(CONF + "/app.conf", data=data, mode=0o640)]
    result = _restore(place, _manifest(place.repo, [tar], entries=entries))
    path = os.path.join(place.root, CONF, "app.conf")
    assert result["written"] == [path]
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert stat.S_IMODE(os.stat(os.path.join(place.root, CONF)).st_mode) == 0o750
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (0, 0)
    assert _snapshot(place.outside) == place.before_outside


def test_an_older_backup_never_takes_the_tars_owner_nor_set_id_bits(place):
    tar = _tar([_member(CONF + "/app.conf", b"new\n", mode=0o6755, uid=1234, gid=1234),
                _member(CONF + "/new.conf", b"n\n", mode=0o4755, uid=1234, gid=1234)])
    _restore(place, _manifest(place.repo, [tar]))
    for name in ("app.conf", "new.conf"):
        st = os.stat(os.path.join(place.root, CONF, name))
        assert stat.S_IMODE(st.st_mode) & 0o7000 == 0
        assert st.st_uid != 1234 and st.st_gid != 1234


def test_recorded_setuid_bits_are_dropped(place):
    data = b"x\n"
    tar = _tar([_member(CONF + "/tool", data, mode=0o4755)])
    manifest = _manifest(place.repo, [tar], entries=[_entry(CONF + "/tool", data=data, mode=0o6755)])
    _restore(place, manifest)
    assert stat.S_IMODE(os.stat(os.path.join(place.root, CONF, "tool")).st_mode) == 0o755


def test_missing_folders_get_their_recorded_mode_and_a_rollback_removes_them(place, tmp_path):
    data = b"v\n"
    tar = _tar([_member("opt/bim/conf", kind=tarfile.DIRTYPE, mode=0o750),
                _member("opt/bim/conf/a.conf", data, mode=0o600)])
    entries = [_entry("opt/bim/conf", "dir", mode=0o750), _entry("opt/bim/conf/a.conf", data=data, mode=0o600)]
    parents = [{"path": "opt", "mode": 0o755, "uid": 0, "gid": 0}, {"path": "opt/bim", "mode": 0o711, "uid": 0, "gid": 0}]
    manifest = _manifest(place.repo, [tar], include_paths=["/opt/bim/conf"], entries=entries, parents=parents)
    keep = str(tmp_path / "keep")
    _restore(place, manifest, keep)
    assert stat.S_IMODE(os.stat(os.path.join(place.root, "opt")).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(os.path.join(place.root, "opt/bim")).st_mode) == 0o711
    assert stat.S_IMODE(os.stat(os.path.join(place.root, "opt/bim/conf")).st_mode) == 0o750
    put_back_files(keep)
    assert _snapshot(place.root) == place.before_root


def test_a_rollback_puts_replaced_files_back(place, tmp_path):
    data = b"new\n"
    tar = _tar([_member(CONF + "/app.conf", data), _member(CONF + "/added.conf", b"a\n")])
    keep = str(tmp_path / "keep")
    out = _restore(place, _manifest(place.repo, [tar]), keep)
    assert len(out["written"]) == 2
    with open(os.path.join(keep, "index.json")) as handle:
        assert len(json.load(handle)["files"]) == 2
    back = put_back_files(keep)
    assert sorted(back["removed"]) == [os.path.join(place.root, CONF, "added.conf")]
    assert _snapshot(place.root) == place.before_root


def test_a_stream_that_is_not_a_tar_is_refused(place):
    _refused(place, _manifest(place.repo, [os.urandom(4096)]), "not a readable tar")


MEMORY_PROBE = r"""
import json, resource, sys
from ansible_collections.bim.wall_system.plugins.module_utils.repository.repository import Repository
from ansible_collections.bim.wall_system.plugins.module_utils.restore import files_step
from ansible_collections.bim.wall_system.plugins.module_utils.restore.files_stage import stage_files
repo_path, manifest_path, staging, root = sys.argv[1:5]
with open(manifest_path) as handle:
    manifest = json.load(handle)
plan = stage_files(Repository(repo_path), manifest, staging)
out = files_step.install(plan, root)
print(json.dumps({"maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "written": out["written"]}))
"""


def test_a_huge_member_from_one_repeated_chunk_keeps_memory_bounded(place, tmp_path, collection_env):
    """The reproduced case: a tiny repository repeating one chunk into a huge member (it repeated a
    16 MiB chunk, which readers now refuse as larger than any chunk a backup writes; here the
    largest allowed). Restoring it must not hold the member in memory (it used 2.1 GB); measured
    as the peak RSS of a child process."""
    piece = MAX_CHUNK_SIZE
    count = 512  # a 256 MiB member
    info = tarfile.TarInfo(CONF + "/huge.bin")
    info.size = piece * count
    header = info.tobuf(format=tarfile.PAX_FORMAT)
    zeros = bytes(piece)
    trailer = bytes(1024)
    manifest = _manifest(place.repo, [header] + [zeros] * count + [trailer])
    stored = sum(os.path.getsize(os.path.join(base, f)) for base, _d, files in os.walk(place.repo.chunks_dir)
                 for f in files)
    assert stored < 1024 * 1024  # the whole repository is tiny
    manifest_path = str(tmp_path / "manifest.json")
    with open(manifest_path, "w") as handle:
        json.dump(manifest, handle)
    proc = subprocess.run([sys.executable, "-c", MEMORY_PROBE, place.repo.path, manifest_path, place.staging,
                           place.root], capture_output=True, text=True, env=collection_env, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert os.path.getsize(os.path.join(place.root, CONF, "huge.bin")) == piece * count
    # A few chunks (stored, decompressed, and the repository reader's copy) and blocks in flight,
    # beside the interpreter with psycopg and cryptography loaded (about 70-170 MiB measured);
    # reading the member whole would need more than its 256 MiB on top of that.
    assert report["maxrss_kib"] < 200 * 1024, report
