"""sim.compare: AIC/BIC of calibrated fits on their band likelihood, and its CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from sim import compare


def _doc(event: str, loss: float, k: int, inside: list[bool], experiment: str) -> dict:
    points = [
        {"id": f"p{i}", "inside": ok, "low": 0.0, "high": 1.0, "value": 0.5}
        for i, ok in enumerate(inside)
    ]
    return {
        "event": event,
        "overrides": [f"experiment={experiment}", "seed=1"],
        "parameters": {f"x{j}": {"lo": 0, "hi": 1} for j in range(k)},
        "band_loss": loss,
        "inside_all_bands": all(inside),
        "data_points": points,
    }


def _write(tmp: Path, name: str, doc: dict) -> Path:
    d = tmp / name
    d.mkdir()
    (d / "calibration.json").write_text(json.dumps(doc))
    return d


def test_scores_follow_the_definitions() -> None:
    fits = [
        ("organic", "a", _doc("e", 21.0, 4, [True, False, False, True, True, True], "o")),
        ("attack", "b", _doc("e", 1.0, 6, [True] * 6, "a")),
        ("cap", "c", _doc("e", 3.0, 6, [True] * 5 + [False], "c")),
    ]
    scores = {s.name: s for s in compare.compare(fits)}
    assert scores["organic"].aic == pytest.approx(21 + 8)
    assert scores["attack"].aic == pytest.approx(1 + 12)
    assert scores["cap"].bic == pytest.approx(3 + 6 * math.log(6))
    assert scores["attack"].delta_aic == 0
    assert scores["cap"].delta_aic == pytest.approx(2.0)
    assert sum(s.weight for s in scores.values()) == pytest.approx(1.0)
    # the weights are exp(-dAIC / 2) normalised
    assert scores["cap"].weight / scores["attack"].weight == pytest.approx(math.exp(-1.0))
    assert scores["organic"].outside == ("p1", "p2")
    line = compare.answer(list(scores.values()))
    assert "favour attack" in line and "not strongly" in line and "cap dAIC 2.0" in line
    assert "ruled out (dAIC >= 10): organic" in line


def test_an_even_race_is_called_undecided() -> None:
    fits = [
        ("a", "a", _doc("e", 2.0, 6, [True] * 3, "a")),
        ("b", "b", _doc("e", 2.5, 6, [True] * 3, "b")),
    ]
    assert "cannot tell" in compare.answer(compare.compare(fits))


def test_fits_of_other_events_or_data_are_refused() -> None:
    a = ("a", "a", _doc("e", 1.0, 2, [True] * 3, "a"))
    with pytest.raises(ValueError, match="different events"):
        compare.compare([a, ("b", "b", _doc("f", 1.0, 2, [True] * 3, "b"))])
    with pytest.raises(ValueError, match="different data points"):
        compare.compare([a, ("b", "b", _doc("e", 1.0, 2, [True] * 4, "b"))])
    with pytest.raises(ValueError, match="at least 2"):
        compare.compare([a])


def test_cli_reads_sweep_dirs_names_them_and_writes_json(tmp_path: Path) -> None:
    a = _write(tmp_path, "s1", _doc("e", 1.0, 2, [True] * 3, "fit_attack"))
    b = _write(tmp_path, "s2", _doc("e", 9.0, 2, [True, False, True], "fit_organic"))
    out = tmp_path / "cmp.json"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "sim.compare",
            str(a),
            str(b / "calibration.json"),
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert "the data clearly favour fit_attack" in r.stdout
    doc = json.loads(out.read_text())
    assert [f["name"] for f in doc["fits"]] == ["fit_attack", "fit_organic"]
    assert doc["fits"][1]["delta_aic"] == pytest.approx(8.0)


def test_cli_refuses_a_missing_or_bad_document(tmp_path: Path) -> None:
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "calibration.json").write_text("{not json")
    for target in (tmp_path / "nothing", tmp_path / "bad"):
        r = subprocess.run(
            [sys.executable, "-m", "sim.compare", str(target), str(target)],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 2
        assert "calibration" in r.stderr and "Traceback" not in r.stderr


def test_spacesim_compare_is_the_same_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sim.cli import main

    a = _write(tmp_path, "s1", _doc("e", 4.0, 2, [True] * 3, "x"))
    b = _write(tmp_path, "s2", _doc("e", 4.5, 2, [True] * 3, "y"))
    assert main(["compare", str(a), str(b)]) == 0
    assert "cannot tell these explanations apart" in capsys.readouterr().out
