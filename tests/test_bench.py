"""``spacesim bench`` runs and reports every figure (speed itself is not asserted)."""

from __future__ import annotations

import json

import pytest

from sim.cli import main

KEYS = {
    "nhpp_arrivals_per_s",
    "queue_attempts_per_s",
    "engine_attempts_per_s",
    "engine_wall_s",
    "compile_s",
    "cached_start_s",
}


@pytest.mark.slow
def test_bench_quick_json_reports_every_figure(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--quick", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert set(res) >= KEYS
    assert all(res[k] > 0 for k in KEYS), res
    assert res["engine_attempts"] > 0
