"""Configuration: every group option composes; bad input is refused before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from sim.cli import main
from sim.config import Config
from sim.hydra_app import check_overrides, conf_dir
from tests.conftest import typed_config

GROUPS = ("scenario", "platform", "admission", "client", "engine", "output", "criterion", "autoscaler")


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (conf_dir() / group).glob("*.yaml"))


@pytest.mark.parametrize(
    ("group", "option"),
    [(g, o) for g in GROUPS for o in _options(g)]
    + [("experiment", o) for o in _options("experiment")],
)
def test_every_group_option_composes_and_validates(group: str, option: str) -> None:
    cfg = typed_config([f"{group}={option}"])
    assert isinstance(cfg, Config)
    assert check_overrides([f"{group}={option}"]) == []


def test_default_config_is_typed() -> None:
    cfg = typed_config([])
    assert cfg.seed == 0
    assert cfg.platform.nodes >= 1
    assert cfg.admission.policy == "token_bucket"


def test_bench_surge_scales_with_expected_arrivals() -> None:
    cfg = typed_config(["experiment=bench_surge", "scenario.expected_arrivals=1e5"])
    s = 1e5 / 8134.8
    assert cfg.scenario.scale() == pytest.approx(s, rel=1e-6)  # 8134.8 is rounded
    assert cfg.platform.nodes == round(4 * s) == 49
    assert cfg.admission.rate_per_s == pytest.approx(80 * s)  # type: ignore[attr-defined]
    assert cfg.admission.burst == pytest.approx(100 * s)  # type: ignore[attr-defined]
    assert cfg.platform.join_service_mean_s == pytest.approx(1 / 6)
    assert cfg.client.max_attempts == 6


BAD = [
    # (overrides, key named, words of the allowed part)
    (["seed=abc"], "seed", "Integer"),
    (["engine.tick_s=fast"], "engine.tick_s", "Float"),
    (["admission.rate_per_s=-5"], "admission.rate_per_s", ">= 0"),
    (["platform.nodes=0"], "platform.nodes", ">= 1"),
    (["platform.join_workers=0"], "platform.join_workers", ">= 1"),
    (["admission=foo"], "admission", "token_bucket"),
    (["client.retry=foo"], "client.retry", "full_jitter"),
    (["platform.placement=foo"], "platform.placement", "power_of_two"),
    (["seed=???"], "seed", "required"),
    (["admission.rate_per_s=???"], "admission.rate_per_s", "required"),
    (["scenario.session_mean_s=-1"], "scenario.session_mean_s", "> 0"),
    (["-m", "seed=1,-3"], "seed", "2**63"),
    (["platform.foo=3"], "platform.foo", "join_workers"),
    (["experiment=bench_surg"], "experiment", "bench_surge"),
    (["+foo=1"], "foo", "a key of the config"),
    (["client=none", "client.max_attempts=6"], "client.max_attempts", "retry none"),
    (["seed=null"], "seed", "not null"),
]


@pytest.mark.parametrize(("args", "key", "allowed"), BAD)
def test_bad_input_exits_2_names_key_value_allowed_and_writes_nothing(
    args: list[str], key: str, allowed: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    status = main(["run", *args, f"hydra.run.dir={out}", f"hydra.sweep.dir={out}"])
    err = capsys.readouterr().err
    assert status == 2
    assert f"{key} = " in err, err
    assert allowed in err, err
    shown = args[-1].split("=", 1)[1].split(",")[-1]
    assert repr(shown) in err or f"= {shown}" in err, err
    assert not out.exists()


def test_problems_are_all_reported_at_once() -> None:
    problems = check_overrides(["platform.nodes=0", "platform.join_timeout_s=-2"])
    assert any("platform.nodes" in p for p in problems)
    assert any("platform.join_timeout_s" in p for p in problems)


def test_profile_points_must_increase() -> None:
    problems = check_overrides(["scenario.profile.1.t_s=0"])
    assert any("scenario.profile[1].t_s" in p for p in problems), problems
