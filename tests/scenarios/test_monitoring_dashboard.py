# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Grafana dashboard loaded against Grafana's own schema.

Grafana publishes its dashboard schema as TypeScript types (npm ``@grafana/schema``, generated
from the dashboard kind). The dashboard file that role monitoring writes is assigned, as an object
literal, to a variable of type ``Dashboard`` and compiled with ``tsc --strict``: a missing required
field, a wrong type or an unknown key (TypeScript's excess property check) fails the compile.
``tests/run.sh`` installs the two npm packages into .cache/grafana-schema (tests/grafana/package*.json).

Its queries are run against a real Prometheus in test_monitoring_fleet.py.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from ansible_collections.bim.wall_system.plugins.module_utils.health.runner import thresholds_for
from ansible_collections.bim.wall_system.plugins.module_utils.monitoring.export import DASHBOARD_FILE, build_files

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMA_DIR = os.environ.get("BIM_GRAFANA_SCHEMA_DIR", os.path.join(ROOT, ".cache", "grafana-schema"))
TSC = os.path.join(SCHEMA_DIR, "node_modules", ".bin", "tsc")


# The schema's string enums (ThresholdsMode.Absolute = "absolute", ...) as the strings the JSON holds:
# Json<T> is T with every enum replaced by the union of its values; everything else, excess property
# checks included, stays as Grafana declares it.
JSON_FORM = """import type { Dashboard } from "@grafana/schema";

type Json<T> = T extends string ? `${T}`
  : T extends number | boolean | null | undefined ? T
  : T extends Array<infer U> ? Array<Json<U>>
  : T extends object ? { [K in keyof T]: Json<T[K]> }
  : T;

"""


def compile_against_schema(tmp_path, dashboard):
    if not os.path.exists(TSC):
        pytest.fail("tsc and @grafana/schema are missing in %s (tests/run.sh installs them)" % SCHEMA_DIR)
    os.symlink(os.path.join(SCHEMA_DIR, "node_modules"), tmp_path / "node_modules")
    source = tmp_path / "dashboard.ts"
    source.write_text(JSON_FORM + "export const dashboard: Json<Dashboard> = %s;\n" % json.dumps(dashboard, indent=2))
    return subprocess.run([TSC, "--noEmit", "--strict", "--target", "es2022", "--module", "node16",
                           "--moduleResolution", "node16", "--skipLibCheck", str(source)],
                          cwd=str(tmp_path), capture_output=True, text=True, timeout=300, check=False)


def dashboard_file():
    files, _skipped = build_files({"pg1": thresholds_for(), "lite1": thresholds_for({"cache_hit_rate": 0.8})}, [])
    return json.loads(files[DASHBOARD_FILE])


def test_dashboard_compiles_against_grafanas_schema(tmp_path):
    proc = compile_against_schema(tmp_path, dashboard_file())
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]


def test_schema_check_can_fail(tmp_path):
    """An unknown dashboard key and a grid position with a string width are refused."""
    dashboard = dashboard_file()
    dashboard["refreshEvery"] = "30s"
    dashboard["panels"][1]["gridPos"]["w"] = "8"
    proc = compile_against_schema(tmp_path, dashboard)
    assert proc.returncode != 0
    assert "refreshEvery" in proc.stdout and "gridPos" in proc.stdout + proc.stderr or "string" in proc.stdout
