# shellcheck shell=bash
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Shared helpers for tests/run.sh and demo/run.sh (sourced, not executed).
# Everything here is idempotent: a second call is a fast no-op when the thing is already there.

: "${ROOT:?ROOT must be set to the repository root before sourcing tests/ci/lib.sh}"

VENV="${BIM_VENV:-$ROOT/.venv}"
CACHE_DIR="$ROOT/.cache"
COLLECTIONS_DIR="$CACHE_DIR/collections"
DIST_DIR="$CACHE_DIR/dist"
BUILD_COPY="$ROOT/build/ansible_collections/bim/wall_system"
export INSTALLED_COLLECTION="$COLLECTIONS_DIR/ansible_collections/bim/wall_system"
# ansible-core used by `make test` / `make demo` (the collection supports 2.18 - 2.21; see tests/ci/compat.sh).
ANSIBLE_CORE_SPEC="${ANSIBLE_CORE_SPEC:-ansible-core>=2.19,<2.20}"

export PIP_DISABLE_PIP_VERSION_CHECK=1
# ansible-core needs a UTF-8 locale; C.UTF-8 exists on every Debian
export LANG=C.UTF-8 LC_ALL=C.UTF-8
export DEBIAN_FRONTEND=noninteractive

log() { printf '%s\n' "$*" >&2; }

banner() {
    local line='=================================================================='
    printf '\n%s\n== %s\n%s\n' "$line" "$*" "$line"
}

die() {
    log "ERROR: $*"
    exit 1
}

# find_python 3.11 -> prints the path of a python3.11 interpreter (PATH, then pyenv versions).
find_python() {
    local ver="$1" cand
    for cand in "python$ver" "/usr/bin/python$ver" "/usr/local/bin/python$ver"; do
        if command -v "$cand" >/dev/null 2>&1 && "$cand" -c 'import sys' >/dev/null 2>&1; then
            command -v "$cand"
            return 0
        fi
    done
    local pyenv_root="${PYENV_ROOT:-$HOME/.pyenv}"
    for cand in "$pyenv_root"/versions/"$ver".*/bin/python"$ver"; do
        if [ -x "$cand" ]; then
            echo "$cand"
            return 0
        fi
    done
    return 1
}

# ensure_apt pkg... -> installs the Debian packages that are missing; `apt-get update` at most once per run.
__BIM_APT_UPDATED="${__BIM_APT_UPDATED:-0}"
# DPkg::Lock::Timeout: several test runs on one machine may install at once; wait for the lock.
ensure_apt() {
    local missing=() pkg
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$pkg")
        fi
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    command -v apt-get >/dev/null 2>&1 || die "missing packages ${missing[*]} and no apt-get to install them"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    if [ "$__BIM_APT_UPDATED" != 1 ]; then
        log "apt-get update (missing: ${missing[*]})"
        local try
        for try in 1 2 3; do
            $sudo apt-get -o DPkg::Lock::Timeout=600 update -qq >/dev/null && break
            [ "$try" = 3 ] && die "apt-get update failed 3 times"
            log "apt-get update failed; retrying in 10 s"
            sleep 10
        done
        __BIM_APT_UPDATED=1
        export __BIM_APT_UPDATED
    fi
    log "apt-get install ${missing[*]}"
    # Packages must not start services: a system sshd on 0.0.0.0:22 (openssh-server's postinst)
    # would take port 22 from the test fleet's per-host sshds on 127.0.10.x:22. policy-rc.d
    # answering 101 is Debian's documented way to say "no service starts" to invoke-rc.d.
    local policy=/usr/sbin/policy-rc.d made_policy=0 rc=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\n# written by bim.wall_system tests/ci/lib.sh during apt-get install\nexit 101\n' | $sudo tee "$policy" >/dev/null
        $sudo chmod 0755 "$policy"
        made_policy=1
    fi
    local apt_log
    apt_log="$(mktemp /tmp/bim-apt.XXXXXX.log)"
    $sudo apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" </dev/null >"$apt_log" 2>&1 || rc=$?
    if [ "$made_policy" = 1 ]; then $sudo rm -f "$policy"; fi
    if [ "$rc" -ne 0 ]; then
        tail -n 40 "$apt_log" >&2
        log "apt-get install failed (exit $rc); full output: $apt_log"
        return "$rc"
    fi
    rm -f "$apt_log"
}

# quiet_pip -> drops pip's warnings about absent local index folders of this machine's pip config
quiet_pip() {
    grep -v "is ignored: it is neither a file nor a directory" || true
}

# ensure_venv VENV_DIR PYTHON_VERSION REQUIREMENT_ARGS... -> creates the venv and pip-installs
# the requirements; skipped when the stamp (hash of the arguments and requirement files) matches.
ensure_venv() {
    local dir="$1" pyver="$2"
    shift 2
    local python
    python="$(find_python "$pyver")" || die "python$pyver not found (looked in PATH and pyenv versions)"
    local stamp_src="$pyver $*" arg
    for arg in "$@"; do
        if [ -f "$arg" ]; then
            stamp_src+="$(cat "$arg")"
            # nested -r includes, relative to the file
            local inc
            while read -r inc; do
                if [ -f "$(dirname "$arg")/$inc" ]; then stamp_src+="$(cat "$(dirname "$arg")/$inc")"; fi
            done < <(sed -n 's/^-r[[:space:]]*//p' "$arg")
        fi
    done
    local stamp
    stamp="$(printf '%s' "$stamp_src" | sha256sum | cut -c1-16)"
    # one stamp file per requirement set, so `make demo` and `make test` share the venv
    if [ -x "$dir/bin/python" ] && [ -f "$dir/.bim-stamp-$stamp" ]; then
        log "venv $dir is up to date"
        return 0
    fi
    if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
        # Debian's own pythonX.Y ships venv/ensurepip in a separate package
        ensure_apt "python$pyver-venv"
    fi
    if [ -e "$dir" ] && ! "$dir/bin/python" -m pip --version >/dev/null 2>&1; then
        log "venv $dir is broken (no working python/pip): recreating it"
        rm -rf "$dir"
    fi
    if [ ! -x "$dir/bin/python" ]; then
        log "creating venv $dir with $python"
        "$python" -m venv "$dir"
        "$dir/bin/python" -m pip install -q --upgrade pip 2>&1 | quiet_pip
    fi
    local pip_args=() a
    for a in "$@"; do
        if [ -f "$a" ]; then pip_args+=(-r "$a"); else pip_args+=("$a"); fi
    done
    log "pip install into $dir: $*"
    "$dir/bin/python" -m pip install -q "${pip_args[@]}" 2>&1 | quiet_pip
    touch "$dir/.bim-stamp-$stamp"
}

# ensure_get_pip_standin VENV_DIR -> ansible-test bootstraps pip into its sanity venvs with a
# get-pip.py it downloads from a host this machine cannot reach; it uses a cached copy first.
# The stand-in uses the interpreter's bundled pip instead. The version is read from ansible-test.
ensure_get_pip_standin() {
    local dir="$1" reqpy versions v
    reqpy="$(find "$dir"/lib/python3*/site-packages/ansible_test/_internal -name python_requirements.py 2>/dev/null | head -n1)"
    [ -n "$reqpy" ] || die "ansible_test not found in $dir"
    versions="$(grep -oE "pip='[0-9.]+'" "$reqpy" | grep -oE "[0-9.]+" | sort -u)"
    [ -n "$versions" ] || die "could not read the pip version ansible-test asks for from $reqpy"
    mkdir -p "$HOME/.ansible/test/cache"
    for v in $versions; do
        local f="$HOME/.ansible/test/cache/get_pip_${v//./_}.py"
        if [ ! -s "$f" ]; then
            printf 'import ensurepip; ensurepip.bootstrap(upgrade=True)\n' >"$f"
            log "wrote get_pip stand-in $f"
        fi
    done
}

# ensure_npm_packages SRC_DIR DEST_DIR -> `npm ci` of SRC_DIR's package.json + package-lock.json into
# DEST_DIR (outside the build copy); skipped when DEST_DIR holds the same lock file. Uses the
# machine's Node.js and npm (Debian's nodejs and npm when there are none).
ensure_npm_packages() {
    local src="$1" dest="$2"
    if [ -f "$dest/package-lock.json" ] && [ -d "$dest/node_modules" ] && cmp -s "$src/package-lock.json" "$dest/package-lock.json"; then
        return 0
    fi
    command -v npm >/dev/null 2>&1 || ensure_apt nodejs npm
    mkdir -p "$dest"
    cp "$src/package.json" "$src/package-lock.json" "$dest/"
    log "npm ci in $dest"
    (cd "$dest" && npm ci --no-audit --no-fund --loglevel=error >&2)
}

# make_build_copy -> build/ansible_collections/bim/wall_system, a copy of the tree without
# .git/.venv/build/.cache (ansible-test needs the ansible_collections/NS/NAME layout).
make_build_copy() {
    mkdir -p "$BUILD_COPY"
    local excludes=(--exclude=/.git --exclude='/.venv*' --exclude=/build --exclude=/.cache
        --exclude=/tests/output --exclude=/bim-demo --exclude=/bim-reports --exclude=/.ansible
        --exclude=__pycache__ --exclude='*.pyc' --exclude=.pytest_cache --exclude='/*.tar.gz'
        --exclude=/.molecule --exclude=.ansible)
    ensure_apt rsync git
    rsync -a --delete "${excludes[@]}" "$ROOT"/ "$BUILD_COPY"/
    # The copy lives inside the repository, whose .gitignore hides build/: without a git
    # repository of its own, ansible-test would find the outer one and see no files at all.
    # `git ls-files --others --exclude-standard` of an empty repository lists every file the
    # copy's .gitignore does not exclude, which is what ansible-test should check.
    [ -d "$BUILD_COPY/.git" ] || git -C "$BUILD_COPY" init -q
}

# build_and_install_collection -> ansible-galaxy collection build + install of the tarball into
# .cache/collections; prints the tarball path.
build_and_install_collection() {
    local galaxy="$VENV/bin/ansible-galaxy"
    rm -rf "$DIST_DIR"
    mkdir -p "$DIST_DIR" "$COLLECTIONS_DIR"
    (cd "$ROOT" && "$galaxy" collection build --force --output-path "$DIST_DIR" . >&2)
    local tarballs tarball
    tarballs=("$DIST_DIR"/bim-wall_system-*.tar.gz)
    tarball="${tarballs[0]}"
    [ -f "$tarball" ] || die "ansible-galaxy collection build produced no tarball"
    ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS_DIR" "$galaxy" collection install --force -p "$COLLECTIONS_DIR" "$tarball" >&2
    echo "$tarball"
}

# ensure_services -> the machine's PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379), which the
# unit tests use, are started by the machine; start them the same way when they are down.
ensure_services() {
    if command -v pg_isready >/dev/null 2>&1 && ! pg_isready -q -h 127.0.0.1 -p 5432; then
        log "PostgreSQL on 127.0.0.1:5432 is down: starting it"
        local ver=""
        ver="$(find /etc/postgresql -mindepth 1 -maxdepth 1 -type d -printf '%f\n' 2>/dev/null | sort -V | tail -n1)"
        if [ -z "$ver" ] || ! pg_ctlcluster --skip-systemctl-redirect "$ver" main start; then
            log "WARNING: could not start PostgreSQL"
        fi
    fi
    if command -v redis-cli >/dev/null 2>&1 && ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
        log "Redis on 127.0.0.1:6379 is down: starting it"
        mkdir -p /var/lib/redis /var/log/redis
        redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
            --dir /var/lib/redis --logfile /var/log/redis/ci.log || log "WARNING: could not start Redis"
    fi
    return 0
}

# ensure_awx_collection -> awx.awx (needed by playbooks/awx_setup.yml's module_defaults group) in
# $AWX_COLLECTIONS_DIR, extracted from the `ansible` wheel on PyPI by tests/awx_collection.py
# (Galaxy is not reachable here). Prints nothing; returns non-zero when it could not be fetched.
export BIM_AWX_COLLECTIONS="${BIM_AWX_COLLECTIONS:-$HOME/.cache/bim-awx-collections}"
AWX_COLLECTIONS_DIR="$BIM_AWX_COLLECTIONS"
ensure_awx_collection() {
    [ -f "$ROOT/tests/awx_collection.py" ] || return 0
    [ -f "$AWX_COLLECTIONS_DIR/ansible_collections/awx/awx/MANIFEST.json" ] && return 0
    log "fetching awx.awx into $AWX_COLLECTIONS_DIR (tests/awx_collection.py)"
    "$VENV/bin/python" "$ROOT/tests/awx_collection.py" --dest "$AWX_COLLECTIONS_DIR" >&2
}

# collection_env -> environment for ansible commands that must use the INSTALLED collection only.
collection_env() {
    export ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS_DIR"
    export ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
    # scenario tests import module_utils helpers too: from the same installed copy
    export PYTHONPATH="$COLLECTIONS_DIR${PYTHONPATH:+:$PYTHONPATH}"
    export PATH="$VENV/bin:$PATH"
}
