# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input to the health check on the fleet: clear messages, no damage, no secret echoed."""

from __future__ import annotations

import json
import os

PLAYBOOK = "bim.wall_system.health_check"


def summary_of(result):
    path = os.path.join(result.cwd, "bim-reports", "health-summary.json")
    assert os.path.exists(path), str(result)
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def test_misspelt_engine_fails_the_host_and_raises_an_alert_whatever_fail_on_says(fleet, run_playbook, run_ansible):
    adhoc = run_ansible("lite1", "bim.wall_system.health_check", "engine=oracle sqlite_path=/nonexistent")
    assert adhoc.hosts == {"lite1": "failed"}, str(adhoc)
    assert "value of engine must be one of: postgresql, sqlite, got: oracle" in adhoc.stdout
    assert "Traceback" not in adhoc.stdout + adhoc.stderr
    # Through the playbook, with the default bim_health_fail_on (never): the fleet summary and the
    # report are written and the alert fires first, then the host fails with the reason.
    result = run_playbook(PLAYBOOK, limit="lite1", extra_vars={"bim_db_engine": "sqllite", "bim_health_fail_on": "never"})
    assert result.rc != 0, str(result)
    assert "The health check could not run on lite1" in result.stdout
    entry = summary_of(result)["hosts"]["lite1"]
    assert entry["status"] == "failed", str(result)
    assert "value of engine must be one of: postgresql, sqlite, got: sqllite" in entry["reasons"][0]
    assert "1 rule(s) firing" in result.stdout and "(unreachable)" not in result.stdout, str(result)
    with open(os.path.join(result.cwd, "bim-reports", "fleet-report.json"), encoding="utf-8") as handle:
        report = json.load(handle)
    assert report["hosts"][0]["overall_status"] == "failed"
    with open(os.path.join(result.cwd, "bim-reports", "alert-state.json"), encoding="utf-8") as handle:
        assert "Health Check Failed" in handle.read()


def test_missing_sqlite_file_is_an_error_and_never_created(fleet, run_playbook):
    missing = os.path.join(fleet.state_dir, "lite1", "data", "no-such-walls.db")
    result = run_playbook(PLAYBOOK, limit="lite1", extra_vars={"bim_sqlite_path": missing})
    entry = summary_of(result)["hosts"]["lite1"]
    assert entry["status"] == "unhealthy", str(result)
    assert any(r.startswith("database: error") and "does not exist" in r for r in entry["reasons"]), entry
    assert not any(r.startswith(("cache", "application", "system")) for r in entry["reasons"])
    assert not os.path.exists(missing)


def test_wrong_password_is_clear_and_never_echoed(fleet, run_playbook):
    wrong = "Wrong-Pass-7f3c9e1d"
    result = run_playbook(PLAYBOOK, limit="pg1", extra_vars={"bim_db_password": wrong})
    entry = summary_of(result)["hosts"]["pg1"]
    assert entry["status"] == "unhealthy", str(result)
    assert any("password authentication failed" in r for r in entry["reasons"]), entry
    with open(os.path.join(result.cwd, "bim-reports", "health-summary.json"), encoding="utf-8") as handle:
        report = handle.read()
    for text in (result.stdout, result.stderr, report):
        assert wrong not in text
        assert fleet.password not in text
    # verbose output prints the module's arguments: still masked
    verbose = run_playbook(PLAYBOOK, limit="pg1", extra_vars={"bim_db_password": wrong}, env={"ANSIBLE_VERBOSITY": "3"})
    assert "password authentication failed" in verbose.stdout
    assert wrong not in verbose.stdout + verbose.stderr


def test_unreachable_app_url_errors_app_checks_only(fleet, run_playbook):
    address = fleet.hosts["lite1"]["address"]
    result = run_playbook(PLAYBOOK, limit="lite1", extra_vars={"bim_app_url": "http://%s:1" % address})
    entry = summary_of(result)["hosts"]["lite1"]
    assert entry["status"] == "unhealthy", str(result)
    failed = sorted(r.split(":")[0] for r in entry["reasons"])
    assert failed == ["application", "cache", "geometric_operations"], entry["reasons"]
    assert result.rc == 0


def test_unknown_threshold_name_lists_valid_names(fleet, run_playbook):
    result = run_playbook(PLAYBOOK, limit="lite1", extra_vars={"bim_health_thresholds": {"cache_hit_ratio": 0.5}})
    entry = summary_of(result)["hosts"]["lite1"]
    assert entry["status"] == "failed"
    assert "unknown threshold name(s) cache_hit_ratio" in entry["reasons"][0]
    assert "cache_hit_rate" in entry["reasons"][0] and "database_response_time_ms" in entry["reasons"][0]


def test_bad_bim_schema_names_the_entry(fleet, run_playbook):
    """A typo in the inventory's bim_schema fails the host with the entry named, no traceback."""
    result = run_playbook(PLAYBOOK, limit="lite2", extra_vars={"bim_schema": {"walls": {"r_tree": "rtree_walls"}}})
    entry = summary_of(result)["hosts"]["lite2"]
    assert entry["status"] == "failed", str(result)
    assert "schema (bim_schema).walls: unknown setting 'r_tree'" in entry["reasons"][0], entry
    assert "Traceback" not in result.stdout + result.stderr
    # the right key declares the R*Tree the site schema lacks: an expected index, so an error
    result = run_playbook(PLAYBOOK, limit="lite2",
                          extra_vars={"bim_schema": {"intersections": {"rtree": "intersections_rtree"}}})
    entry = summary_of(result)["hosts"]["lite2"]
    assert entry["status"] == "unhealthy", str(result)
    assert any(r.startswith("database: error") and "intersections_rtree missing" in r for r in entry["reasons"]), entry
