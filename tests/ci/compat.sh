#!/usr/bin/env bash
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# Compatibility stage of tests/run.sh: the collection declares requires_ansible ">=2.18.0".
# For each (python, ansible-core) pair below it builds a venv .venv-compat-<core>, then:
#   - ansible-galaxy collection install of the built tarball (with that ansible-core)
#   - ansible-doc of every module and plugin
#   - ansible-playbook --syntax-check of every playbook (as bim.wall_system.NAME)
#   - ansible-test sanity --local --python <py> on a subset of tests (validate-modules, yamllint,
#     ansible-doc, runtime-metadata, compile, import; 2.18: the documentation ones)
# BIM_COMPAT="3.13:2.21 3.11:2.18" selects the pairs (default: both).

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export ROOT
# shellcheck source=tests/ci/lib.sh
. "$ROOT/tests/ci/lib.sh"

PAIRS="${BIM_COMPAT:-3.13:2.21 3.11:2.18}"
# the full subset on the newest ansible-core; the oldest gets the documentation checks only
# (its compile/import coverage is the same python3.11 the main stages use)
sanity_tests_for() {
    case "$1" in
        2.18) echo "validate-modules ansible-doc runtime-metadata" ;;
        *) echo "validate-modules yamllint ansible-doc runtime-metadata compile import" ;;
    esac
}

tarballs=("$DIST_DIR"/bim-wall_system-*.tar.gz)
tarball="${tarballs[0]}"
if [ ! -f "$tarball" ]; then
    tarball="$(build_and_install_collection)"
fi

rc_all=0
for pair in $PAIRS; do
    py="${pair%%:*}"
    core="${pair##*:}"
    major="${core%%.*}"
    minor="${core#*.}"
    venv="$ROOT/.venv-compat-$core"
    banner "compat: ansible-core $core on python$py"

    if ! python="$(find_python "$py")"; then
        echo "compat ansible-core $core / python$py: SKIPPED (python$py is not installed)"
        continue
    fi
    ensure_venv "$venv" "$py" "ansible-core>=$core,<$major.$((minor + 1))" "$ROOT/meta/ee-requirements.txt"
    ensure_get_pip_standin "$venv"
    "$venv/bin/ansible" --version | sed -n 1p

    coll="$CACHE_DIR/collections-$core"
    rm -rf "$coll"
    mkdir -p "$coll"
    ANSIBLE_COLLECTIONS_PATH="$coll" "$venv/bin/ansible-galaxy" collection install --force -p "$coll" "$tarball" >/dev/null

    ensure_awx_collection || log "WARNING: awx.awx could not be fetched; awx_setup.yml is not syntax-checked"
    export ANSIBLE_COLLECTIONS_PATH="$coll:$AWX_COLLECTIONS_DIR" ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
    # ansible-test and the sanity venvs look up pythonX.Y on PATH
    python_dir="$(dirname "$python")"
    export PATH="$venv/bin:$python_dir:$PATH"

    installed="$coll/ansible_collections/bim/wall_system"
    failed=0

    # ansible-doc of every module and every other documented plugin the collection ships
    for kind in module callback filter test lookup inventory connection become; do
        names="$("$venv/bin/ansible-doc" -t "$kind" --list --json bim.wall_system 2>/dev/null \
            | "$venv/bin/python" -c 'import json, sys; print(" ".join(sorted(json.load(sys.stdin))))' 2>/dev/null || true)"
        for name in $names; do
            if "$venv/bin/ansible-doc" -t "$kind" "$name" >/dev/null 2>"$CACHE_DIR/ansible-doc.err"; then
                echo "ansible-doc -t $kind $name: ok"
            else
                echo "ansible-doc -t $kind $name: FAILED"
                cat "$CACHE_DIR/ansible-doc.err"
                failed=1
            fi
        done
    done
    # every module file must be listed (a module whose docs do not parse is missing from --list)
    for f in "$installed"/plugins/modules/*.py; do
        [ -f "$f" ] || continue
        name="bim.wall_system.$(basename "$f" .py)"
        if ! "$venv/bin/ansible-doc" -t module "$name" >/dev/null 2>"$CACHE_DIR/ansible-doc.err"; then
            echo "ansible-doc -t module $name: FAILED"
            cat "$CACHE_DIR/ansible-doc.err"
            failed=1
        fi
    done

    # every playbook parses (as the user runs it: bim.wall_system.NAME)
    for pb in "$installed"/playbooks/*.yml; do
        [ -f "$pb" ] || continue
        name="$(basename "$pb" .yml)"
        if (cd "$CACHE_DIR" && "$venv/bin/ansible-playbook" -i localhost, --syntax-check "bim.wall_system.$name" >/dev/null 2>"$CACHE_DIR/syntax.err"); then
            echo "ansible-playbook --syntax-check bim.wall_system.$name: ok"
        elif other="$(grep -oE "could not resolve the module_defaults group [a-z0-9_]+\.[a-z0-9_]+" "$CACHE_DIR/syntax.err" | awk '{print $NF}' | head -n1)" \
            && [ -n "$other" ] && [ "${other%%.*}" != bim ]; then
            # e.g. awx_setup needs awx.awx, an optional collection this offline machine cannot fetch
            echo "ansible-playbook --syntax-check bim.wall_system.$name: not checked (needs the collection $other)"
        else
            echo "ansible-playbook --syntax-check bim.wall_system.$name: FAILED"
            cat "$CACHE_DIR/syntax.err"
            failed=1
        fi
    done

    # a subset of sanity in a fresh ansible_collections/ copy
    copy="$ROOT/build/compat-$core/ansible_collections/bim/wall_system"
    mkdir -p "$copy"
    rsync -a --delete "$BUILD_COPY"/ "$copy"/
    args=()
    for t in $(sanity_tests_for "$core"); do args+=(--test "$t"); done
    if ! (cd "$copy" && "$venv/bin/ansible-test" sanity --local --python "$py" --requirements --color no "${args[@]}"); then
        echo "ansible-test sanity (ansible-core $core, python$py): FAILED"
        failed=1
    fi

    if [ "$failed" = 0 ]; then
        echo "compat ansible-core $core / python$py: PASSED"
    else
        echo "compat ansible-core $core / python$py: FAILED"
        rc_all=1
    fi
done
exit "$rc_all"
