#!/usr/bin/env bash
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
#
# The demo behind `make demo`:
#   1. installs what it needs (apt: sqlite3 zstd rsync; venv .venv with ansible-core + the libraries)
#   2. builds the collection (ansible-galaxy collection build) and installs the tarball into
#      .cache/collections (ansible-galaxy collection install)
#   3. creates a local SQLite BIM installation in ./bim-demo/ (data from tests/fleet/generate.py,
#      the stand-in application tests/fleet/app_server.py on a free loopback port) and an
#      inventory for it (ansible_connection: local, no interpreter: the playbooks' prerequisites
#      role gives the host its virtualenv, /opt/bim-wall-system/venv, as on any bare host)
#   4. runs bim.wall_system.health_check and, when the installed collection has them, backup,
#      verify_backups and recovery_drill; prints the fleet summary.
# Environment: BIM_DEMO_DIR (default ./bim-demo), BIM_DEMO_WALLS (default 5000), BIM_DEMO_PYTHON (3.11).

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export ROOT
# shellcheck source=tests/ci/lib.sh
. "$ROOT/tests/ci/lib.sh"

DEMO_DIR="${BIM_DEMO_DIR:-$ROOT/bim-demo}"
WALLS="${BIM_DEMO_WALLS:-5000}"
PYVER="${BIM_DEMO_PYTHON:-3.11}"
DEMO_PLAYBOOKS=(health_check backup verify_backups recovery_drill)

banner "demo 1/4: system packages and venv"
ensure_apt sqlite3 zstd rsync
# the demo needs only ansible-core and the collection's host-side libraries; `make test` adds the rest
ensure_venv "$VENV" "$PYVER" "$ANSIBLE_CORE_SPEC" "$ROOT/meta/ee-requirements.txt"
PY="$VENV/bin/python"

banner "demo 2/4: ansible-galaxy collection build + install into .cache/collections"
tarball="$(build_and_install_collection)"
echo "installed $(basename "$tarball") into $COLLECTIONS_DIR"
collection_env

banner "demo 3/4: a local SQLite BIM installation in $DEMO_DIR"
mkdir -p "$DEMO_DIR/data" "$DEMO_DIR/repo" "$DEMO_DIR/app"
chmod 0700 "$DEMO_DIR/repo"
DB="$DEMO_DIR/data/bim_walls.db"
if [ ! -s "$DB" ]; then
    "$PY" "$ROOT/tests/fleet/generate.py" sqlite --path "$DB" --walls "$WALLS"
else
    echo "reusing $DB (remove $DEMO_DIR to start over)"
fi

# the stand-in BIM application (GET /health, GET /metrics) on a free loopback port, driven by
# tests/fleet/appctl.py (the same start/stop commands the test fleet gives its hosts)
APP_DIR="$DEMO_DIR/app"
APPCTL=("$PY" "$ROOT/tests/fleet/appctl.py")
if [ -f "$APP_DIR/config.json" ]; then
    "${APPCTL[@]}" stop "$APP_DIR" >/dev/null 2>&1 || true
fi
APP_PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
APP_URL="http://127.0.0.1:$APP_PORT"
cat >"$APP_DIR/config.json" <<EOF
{"address": "127.0.0.1", "port": $APP_PORT, "state_file": "$APP_DIR/state.json",
 "pid_file": "$APP_DIR/app.pid", "log_file": "$APP_DIR/app.log"}
EOF
APP_START="${APPCTL[*]} start $APP_DIR"
APP_STOP="${APPCTL[*]} stop $APP_DIR"
stop_app() {
    "${APPCTL[@]}" stop "$APP_DIR" >/dev/null 2>&1 || true
}
trap stop_app EXIT
"${APPCTL[@]}" reset "$APP_DIR" >/dev/null
"${APPCTL[@]}" start "$APP_DIR"
echo "stand-in application on $APP_URL (stop: $APP_STOP)"

cat >"$DEMO_DIR/inventory.yml" <<EOF
# Demo inventory written by demo/run.sh: one SQLite BIM installation on this machine.
all:
  children:
    bim:
      hosts:
        demo-lite:
          ansible_connection: local
          bim_db_engine: sqlite
          bim_sqlite_path: "$DB"
          bim_data_dir: "$DEMO_DIR/data"
          bim_app_url: "$APP_URL"
          bim_app_service: bim-wall-system
          bim_app_stop_command: "$APP_STOP"
          bim_app_start_command: "$APP_START"
          bim_backup_repository: "$DEMO_DIR/repo"
EOF
echo "inventory: $DEMO_DIR/inventory.yml"

banner "demo 4/4: playbooks"
cd "$DEMO_DIR"
ran=()
for pb in "${DEMO_PLAYBOOKS[@]}"; do
    if [ ! -f "$INSTALLED_COLLECTION/playbooks/$pb.yml" ]; then
        echo "(bim.wall_system.$pb is not in this version of the collection yet; skipped)"
        continue
    fi
    case "$pb" in
        verify_backups | recovery_drill)
            if [[ " ${ran[*]} " != *" backup "* ]]; then
                echo "(bim.wall_system.$pb needs a backup first; skipped)"
                continue
            fi
            ;;
    esac
    echo "+ ansible-playbook -i inventory.yml bim.wall_system.$pb"
    ansible-playbook -i inventory.yml "bim.wall_system.$pb"
    ran+=("$pb")
done
[ "${#ran[@]}" -gt 0 ] || die "no playbook of the demo exists in the installed collection yet"

if [[ " ${ran[*]} " == *" backup "* ]]; then
    # The fleet report (HTML) shows each host's backup age and last drill: render it again now
    # that the backup and drill summaries exist.
    echo "+ ansible-playbook -i inventory.yml bim.wall_system.health_check   (fleet report with backup and drill)"
    ansible-playbook -i inventory.yml bim.wall_system.health_check > "$DEMO_DIR/health-report-run.log" \
        || { cat "$DEMO_DIR/health-report-run.log"; die "the final health check failed"; }
fi

banner "fleet summary"
"$PY" "$ROOT/demo/summary.py" "$DEMO_DIR/bim-reports"
echo
trap - EXIT
echo "Demo done: ran ${ran[*]}. Files: $DEMO_DIR (inventory.yml, bim-reports/, repo/, data/)."
if [ -f "$DEMO_DIR/bim-reports/fleet-report.html" ]; then
    echo "Fleet report (open it in a browser): $DEMO_DIR/bim-reports/fleet-report.html"
fi
echo "The stand-in application keeps running on $APP_URL; stop it with: $APP_STOP"
echo "The README's commands work in a shell that has run this line (ansible-playbook and the collection):"
echo "  export PATH=\"$VENV/bin:\$PATH\" ANSIBLE_COLLECTIONS_PATH=\"$COLLECTIONS_DIR\""
echo "then, e.g.: cd $DEMO_DIR && ansible-playbook -i inventory.yml bim.wall_system.health_check"
