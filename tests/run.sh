#!/usr/bin/env bash
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# The test command behind `make test` and `.ci/run`.
#
#   tests/run.sh                 every stage, in order, failing fast
#   tests/run.sh sanity units    only the stages named (setup always runs; it is a fast no-op when done)
#   STAGES="lint changelog" tests/run.sh
#   tests/run.sh --list          list the stages
#
# Stages: build sanity units lint changelog fleet molecule compat
#   build      ansible-galaxy collection build + install of the tarball into .cache/collections,
#              and a check that the tarball carries no test/dev files
#   sanity     ansible-test sanity --local --python 3.11 --requirements (in build/ansible_collections/...)
#   units      ansible-test units --local --python 3.11 --requirements
#   lint       ansible-lint --profile production on roles/ playbooks/ extensions/
#   changelog  antsibull-changelog lint
#   fleet      tests/fleet/fleet.py up, then pytest tests/scenarios against the INSTALLED collection
#   molecule   cd extensions && molecule test -s health_check
#   compat     ansible-core 2.21 on python3.13 and 2.18 on python3.11: sanity subset, syntax-check, ansible-doc
# The fleet is always torn down at exit (fleet.py down), whatever happened; BIM_KEEP_FLEET=1 keeps it
# (for developers sharing one machine). BIM_KEEP_GOING=1 runs the later stages after a failure (the
# exit status is still non-zero). BIM_FLEET_NET=127.0.50 BIM_FLEET_STATE_DIR=/var/tmp/bim-fleet-2
# run a second fleet beside someone else's. BIM_PYTEST_ARGS adds pytest options to the fleet stage
# (scenario files named there, tests/scenarios/..., are run instead of the whole folder).
# The last line printed is "stages: N passed, N failed, N skipped".

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT
# shellcheck source=tests/ci/lib.sh
. "$ROOT/tests/ci/lib.sh"

ALL_STAGES=(setup build sanity units lint changelog fleet molecule compat)
TEST_PYTHON="${BIM_TEST_PYTHON:-3.11}"
APT_PACKAGES=(postgresql-15-postgis-3 openssh-server sqlite3 zstd pgbackrest rsync git shellcheck chromium cron prometheus prometheus-node-exporter prometheus-alertmanager)

if [ "${1:-}" = "--list" ] || [ "${1:-}" = "-l" ]; then
    printf '%s\n' "${ALL_STAGES[@]:1}"
    exit 0
fi
if [ "${1:-}" = "--help" ] || [ "${1:-}" = "-h" ]; then
    sed -n '4,24p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi

if [ "$#" -gt 0 ]; then
    read -r -a SELECTED <<<"$*"
elif [ -n "${STAGES:-}" ]; then
    read -r -a SELECTED <<<"$STAGES"
else
    SELECTED=("${ALL_STAGES[@]:1}")
fi
for s in "${SELECTED[@]}"; do
    [ "$s" = setup ] && die "setup always runs; name the other stages"
    case " ${ALL_STAGES[*]} " in
        *" $s "*) ;;
        *) die "unknown stage '$s'; stages are: ${ALL_STAGES[*]}" ;;
    esac
done

selected() {
    case " ${SELECTED[*]} " in *" $1 "*) return 0 ;; esac
    return 1
}

PASSED=0
FAILED=0
SKIPPED=0
SUMMARY=()
FLEET_STARTED=0

fleet_down() {
    if [ "${BIM_KEEP_FLEET:-0}" = 1 ]; then
        log "BIM_KEEP_FLEET=1: the fleet is left running"
        return 0
    fi
    if [ -f "$ROOT/tests/fleet/fleet.py" ] && { [ "$FLEET_STARTED" = 1 ] || [ -d "${BIM_FLEET_STATE_DIR:-/var/tmp/bim-fleet}" ]; }; then
        banner "teardown: fleet.py down"
        (cd "$ROOT" && "$VENV/bin/python" tests/fleet/fleet.py down) || log "WARNING: fleet.py down failed"
    fi
}

print_summary() {
    banner "summary"
    local line
    for line in "${SUMMARY[@]}"; do
        printf '  %s\n' "$line"
    done
    printf '\nstages: %d passed, %d failed, %d skipped\n' "$PASSED" "$FAILED" "$SKIPPED"
}

on_exit() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    if selected fleet || selected molecule; then
        fleet_down
    fi
    print_summary
    if [ "$FAILED" -gt 0 ] && [ "$rc" -eq 0 ]; then
        rc=1
    fi
    exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

# A stage function returns 0 (passed), 1 (failed) or 77 (skipped: nothing to test yet).
run_stage() {
    local name="$1" start end rc
    banner "stage: $name"
    start=$(date +%s)
    set +e
    ( set -euo pipefail; "stage_$name" )
    rc=$?
    set -e
    end=$(date +%s)
    case "$rc" in
        0)
            PASSED=$((PASSED + 1))
            SUMMARY+=("PASSED   $name ($((end - start)) s)")
            ;;
        77)
            SKIPPED=$((SKIPPED + 1))
            SUMMARY+=("SKIPPED  $name ($((end - start)) s) - see the stage output above")
            ;;
        *)
            FAILED=$((FAILED + 1))
            SUMMARY+=("FAILED   $name ($((end - start)) s, exit $rc)")
            if [ "${BIM_KEEP_GOING:-0}" = 1 ] && [ "$name" != setup ]; then
                banner "FAILED: stage $name (exit $rc) - BIM_KEEP_GOING=1: going on"
                return 0
            fi
            banner "FAILED: stage $name (exit $rc) - stopping here (fail fast)"
            local s rest=0
            for s in "${SELECTED[@]}"; do
                [ "$rest" = 1 ] && SUMMARY+=("NOT RUN  $s")
                [ "$s" = "$name" ] && rest=1
            done
            exit "$rc"
            ;;
    esac
}

# ---------------------------------------------------------------- setup (always)
stage_setup() {
    ensure_apt "${APT_PACKAGES[@]}"
    ensure_venv "$VENV" "$TEST_PYTHON" "$ROOT/tests/requirements.txt"
    ensure_get_pip_standin "$VENV"
    ensure_services
    # Grafana's dashboard schema (@grafana/schema) and tsc, for the dashboard test of the fleet stage
    ensure_npm_packages "$ROOT/tests/grafana" "$CACHE_DIR/grafana-schema"
    make_build_copy
}

# ---------------------------------------------------------------- stages
stage_build() {
    local tarball
    tarball="$(build_and_install_collection)"
    log "built and installed $tarball into $COLLECTIONS_DIR"
    # the built collection must not carry tests, benchmarks, molecule extensions or dev files
    local bad
    # (any top-level hidden folder counts: .hypothesis, .pytest_cache, .ansible, ...)
    bad="$(tar -tzf "$tarball" | grep -E '^(\./)?(tests|bench|extensions|demo|build|bim-demo|bim-reports|\.[^/]+)(/|$)|__pycache__|\.pyc$|(^|/)Makefile$' || true)"
    if [ -n "$bad" ]; then
        log "the built tarball contains files it must not ship:"
        printf '%s\n' "$bad" | head -n 20 >&2
        return 1
    fi
    log "tarball content: $(tar -tzf "$tarball" | wc -l) entries, no test/dev files"
    # the installed copy is what scenario tests and the demo use
    "$VENV/bin/ansible-galaxy" collection list -p "$COLLECTIONS_DIR" bim.wall_system
}

stage_sanity() {
    cd "$BUILD_COPY"
    "$VENV/bin/ansible-test" sanity --local --python "$TEST_PYTHON" --requirements --color no
}

stage_units() {
    cd "$BUILD_COPY"
    if [ -z "$(find tests/unit -name 'test_*.py' 2>/dev/null | head -n1)" ]; then
        log "no unit tests under tests/unit yet"
        return 77
    fi
    # A child Python a unit test starts finds the collection through the PYTHONPATH that
    # tests/unit/conftest.py sets for the session (no file in the shared venv).
    "$VENV/bin/ansible-test" units --local --python "$TEST_PYTHON" --requirements --color no
}

stage_lint() {
    cd "$BUILD_COPY"
    local targets=() d
    for d in roles playbooks extensions; do
        [ -n "$(find "$d" -name '*.yml' 2>/dev/null | head -n1)" ] && targets+=("$d")
    done
    if [ "${#targets[@]}" -eq 0 ]; then
        log "nothing to lint yet (no YAML under roles/ playbooks/ extensions/)"
        return 77
    fi
    # playbooks/awx_setup.yml needs awx.awx to load (module_defaults group)
    ensure_awx_collection || log "WARNING: awx.awx could not be fetched; the lint of awx_setup.yml will fail"
    PATH="$VENV/bin:$PATH" ANSIBLE_COLLECTIONS_PATH="$COLLECTIONS_DIR:$ROOT/build:$AWX_COLLECTIONS_DIR" \
        "$VENV/bin/ansible-lint" --offline --nocolor --profile production "${targets[@]}"
}

stage_changelog() {
    cd "$ROOT"
    "$VENV/bin/antsibull-changelog" lint
}

stage_fleet() {
    cd "$ROOT"
    [ -f tests/fleet/fleet.py ] || { log "tests/fleet/fleet.py does not exist yet"; return 77; }
    collection_env
    FLEET_STARTED=1
    local up_args=()
    # In CI start from nothing: a fleet folder left by an earlier run whose processes were ended
    # must not be taken for a running fleet. Developers sharing a machine keep theirs.
    if [ "${CI:-}" = true ]; then up_args+=(--fresh); fi
    "$VENV/bin/python" tests/fleet/fleet.py up "${up_args[@]}"
    if [ -z "$(find tests/scenarios -name 'test_*.py' 2>/dev/null | head -n1)" ]; then
        log "no scenario tests under tests/scenarios yet"
        return 77
    fi
    local extra=() arg targets=(tests/scenarios)
    read -r -a extra <<<"${BIM_PYTEST_ARGS:-}"
    # scenario files or node ids named in BIM_PYTEST_ARGS replace the whole folder
    for arg in "${extra[@]}"; do
        case "$arg" in tests/scenarios/*) targets=() ;; esac
    done
    # --durations: every run's log names the slowest scenarios (the suite is kept under 40 minutes).
    "$VENV/bin/python" -m pytest "${targets[@]}" -p no:cacheprovider -ra --durations=15 "${extra[@]}"
}

stage_molecule() {
    [ -d "$ROOT/extensions/molecule/health_check" ] || { log "extensions/molecule/health_check does not exist yet"; return 77; }
    cd "$ROOT/extensions"
    collection_env
    FLEET_STARTED=1
    NO_COLOR=1 ANSIBLE_NOCOLOR=1 "$VENV/bin/molecule" test -s health_check
}

stage_compat() {
    "$ROOT/tests/ci/compat.sh"
}

# ---------------------------------------------------------------- main
# setup always runs first (system packages, venv, get_pip stand-in, build copy); a fast no-op when done
SELECTED=(setup "${SELECTED[@]}")
for s in "${SELECTED[@]}"; do
    # the stage runs in a subshell; remember here that it may start the fleet
    case "$s" in fleet | molecule) FLEET_STARTED=1 ;; esac
    run_stage "$s"
done
