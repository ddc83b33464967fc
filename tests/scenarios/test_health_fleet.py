# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The operator's health check of the fleet: `ansible-playbook bim.wall_system.health_check`.

Each scenario breaks one host for real (application metrics, a stopped database, a stopped sshd,
an invalid spatial index), runs the playbook, and reads what the operator reads: the exit status
and bim-reports/health-summary.json. Every test restores the host in ``finally``.
"""

from __future__ import annotations

import json
import os

import psycopg
import pytest

PLAYBOOK = "bim.wall_system.health_check"
BASE = ["pg1", "pg2", "lite1", "lite2"]  # extra benchmark hosts, if any, are left out
# pg2 and lite2 run the "site" schema variant (tests/fleet/generate.py): names the code discovers


def summary_of(result):
    path = os.path.join(result.cwd, "bim-reports", "health-summary.json")
    assert os.path.exists(path), str(result)
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def statuses(summary):
    return {host: entry["status"] for host, entry in summary["hosts"].items()}


def pg_superuser(fleet, host):
    """psycopg connection as the cluster's superuser through the host's own Unix socket."""
    info = fleet.hosts[host]
    return psycopg.connect(host=info["db_socket_dir"], port=info["db_port"], user=info["db_user"],
                           dbname=info["db_name"], password=fleet.password, autocommit=True, connect_timeout=5)


def test_healthy_fleet_is_all_healthy(fleet, run_playbook):
    result = run_playbook(PLAYBOOK, limit=BASE)
    assert result.rc == 0, str(result)
    summary = summary_of(result)
    assert statuses(summary) == {h: "healthy" for h in BASE}, summary["problems"]
    assert summary["counts"] == {"healthy": 4} and summary["problems"] == []
    assert summary["kind"] == "health" and summary["total"] == 4
    # lite2 has no R*Tree on intersections and nobody declared one: information, not a fault
    assert any("intersections has no spatial index" in r for r in summary["hosts"]["lite2"]["recommendations"])
    assert not any("has no spatial index" in r for h in ("pg1", "pg2", "lite1")
                   for r in summary["hosts"][h]["recommendations"])
    # the timestamped copy is written too, and the summary is printed
    assert len([f for f in os.listdir(os.path.join(result.cwd, "bim-reports")) if f.startswith("health-summary-")]) == 1
    assert "Show the fleet summary" in result.stdout and '"healthy": 4' in result.stdout


@pytest.mark.parametrize("host", ["lite1", "pg2"])
def test_low_cache_hit_rate_degrades_that_host_only(fleet, run_playbook, host):
    fleet.set_app_metrics(host, cache_hit_rate=0.6)
    try:
        result = run_playbook(PLAYBOOK, limit=BASE)
    finally:
        fleet.reset(host)
    assert result.rc == 0, str(result)
    summary = summary_of(result)
    expected = {h: "healthy" for h in BASE}
    expected[host] = "degraded"
    assert statuses(summary) == expected, summary["problems"]
    entry = summary["hosts"][host]
    assert {"check": "cache", "metric": "cache_hit_rate", "value": 0.6, "threshold": 0.7,
            "severity": "warning"} in entry["alerts"]
    assert any(r.startswith("cache: warning") for r in entry["reasons"])
    assert summary["problems"] == [{"host": host, "status": "degraded", "reasons": entry["reasons"]}]


def test_stopped_database_makes_host_unhealthy_and_rest_are_checked(fleet, run_playbook):
    fleet.stop_db("pg2")
    try:
        result = run_playbook(PLAYBOOK, limit=BASE)
    finally:
        fleet.start_db("pg2")
    assert result.rc == 0, str(result)
    summary = summary_of(result)
    assert statuses(summary) == {"pg1": "healthy", "pg2": "unhealthy", "lite1": "healthy", "lite2": "healthy"}
    reasons = summary["hosts"]["pg2"]["reasons"]
    assert any(r.startswith("database: error") and "cannot connect" in r for r in reasons), reasons
    # only the database check failed: the application checks of pg2 still ran
    assert not any(r.startswith(("cache", "application", "memory", "system")) for r in reasons), reasons


def test_unreachable_host_is_listed_and_rest_complete(fleet, run_playbook):
    fleet.stop_sshd("pg1")
    try:
        result = run_playbook(PLAYBOOK, limit=BASE)
    finally:
        fleet.start_sshd("pg1")
    summary = summary_of(result)
    assert statuses(summary) == {"pg1": "unreachable", "pg2": "healthy", "lite1": "healthy", "lite2": "healthy"}, \
        str(result)
    assert summary["counts"] == {"unreachable": 1, "healthy": 3}
    assert summary["problems"][0]["host"] == "pg1" and summary["problems"][0]["reasons"]
    assert result.rc == 0, str(result)  # no fleet threshold set: the play reports, it does not fail


@pytest.mark.parametrize("host, index", [("pg1", "idx_walls_geometry"), ("pg2", "walls_outline_gist")])
def test_invalid_spatial_index_is_reported_with_reindex(fleet, run_playbook, host, index):
    """On the guide's schema (pg1) and on the site schema, whose walls GiST index is on outline."""
    # what an interrupted CREATE INDEX CONCURRENTLY leaves: the catalog marks the index invalid
    with pg_superuser(fleet, host) as conn:
        conn.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = %s::regclass", [index])
    try:
        result = run_playbook(PLAYBOOK, limit=BASE)
    finally:
        with pg_superuser(fleet, host) as conn:
            conn.execute("UPDATE pg_index SET indisvalid = true WHERE indexrelid = %s::regclass", [index])
    assert result.rc == 0, str(result)
    summary = summary_of(result)
    expected = {h: "healthy" for h in BASE}
    expected[host] = "unhealthy"
    assert statuses(summary) == expected
    entry = summary["hosts"][host]
    assert any("database: error" in r and index in r for r in entry["reasons"]), entry
    assert any("REINDEX INDEX CONCURRENTLY %s" % index in r for r in entry["recommendations"]), entry


def test_fleet_threshold_exceeded_fails_the_play(fleet, run_playbook):
    fleet.stop_db("pg2")
    try:
        failing = run_playbook(PLAYBOOK, limit=BASE, extra_vars={"bim_health_max_unhealthy_percent": 20})
        passing = run_playbook(PLAYBOOK, limit=BASE, extra_vars={"bim_health_max_unhealthy_percent": 50})
    finally:
        fleet.start_db("pg2")
    assert failing.rc != 0, str(failing)
    output = failing.stdout + failing.stderr
    assert "fleet health threshold exceeded" in output
    assert "1 of 4 hosts (25.0%) are unhealthy, more than the allowed 20%: pg2" in output
    # the summary is written and handed over even when the play fails
    assert statuses(summary_of(failing))["pg2"] == "unhealthy"
    assert passing.rc == 0, str(passing)
    assert statuses(summary_of(passing))["pg2"] == "unhealthy"


def test_fail_on_degraded_names_the_host(fleet, run_playbook):
    fleet.set_app_metrics("lite1", cache_hit_rate=0.6)
    try:
        result = run_playbook(PLAYBOOK, limit=BASE, extra_vars={"bim_health_fail_on": "degraded"})
    finally:
        fleet.reset("lite1")
    assert result.rc != 0, str(result)
    assert "lite1 at least degraded (bim_health_fail_on)" in result.stdout + result.stderr
    assert statuses(summary_of(result))["lite1"] == "degraded"


def test_check_mode_reports_without_writing(fleet, run_playbook):
    result = run_playbook(PLAYBOOK, limit=BASE, check=True)
    assert result.rc == 0, str(result)
    assert not os.path.exists(os.path.join(result.cwd, "bim-reports"))
    assert '"healthy": 4' in result.stdout
