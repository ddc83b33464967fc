# -*- coding: utf-8 -*-
# Copyright: (c) 2026, BIM Wall System operations team
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Prometheus textfile written on a host by the health check role: parsed as node_exporter would."""

from __future__ import annotations

import os
import stat

from prometheus_client.parser import text_string_to_metric_families

PLAYBOOK = "bim.wall_system.health_check"


def samples(path):
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_textfile_written_atomically_and_not_in_check_mode(fleet, run_playbook, tmp_path):
    path = str(tmp_path / "bim_health.prom")
    extra = {"bim_health_prometheus_textfile": path}
    checked = run_playbook(PLAYBOOK, limit="lite1", extra_vars=extra, check=True)
    assert checked.rc == 0, str(checked)
    assert not os.path.exists(path)

    fleet.set_app_metrics("lite1", cache_hit_rate=0.6)
    try:
        result = run_playbook(PLAYBOOK, limit="lite1", extra_vars=extra)
    finally:
        fleet.reset("lite1")
    assert result.rc == 0, str(result)
    values = samples(path)
    # the same names and labels as the fleet report's textfiles: host label = inventory name
    assert values[("bim_health_status", (("host", "lite1"), ("status", "degraded")))] == 1
    assert values[("bim_health_check_status", (("check", "cache"), ("host", "lite1"), ("status", "warning")))] == 1
    assert values[("bim_health_check_status", (("check", "database"), ("host", "lite1"), ("status", "healthy")))] == 1
    assert values[("bim_cache_hit_rate", (("check", "cache"), ("host", "lite1")))] == 0.6
    assert values[("bim_health_alerts", (("host", "lite1"), ("severity", "warning")))] == 1
    assert ("bim_system_cpu_cores", (("check", "system"), ("host", "lite1"))) in values
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644
    assert [f for f in os.listdir(tmp_path) if f.startswith(".bim_health.prom")] == []  # no temp file left
    # the textfile, the fleet summary and the fleet report (the alert state changes only when a rule fires)
    assert "changed=3" in result.stdout.split("PLAY RECAP")[-1]
