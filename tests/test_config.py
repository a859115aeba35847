"""Configuration: every group option composes; bad input is refused before anything runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sim.cli import main
from sim.config import Config
from sim.hydra_app import check_overrides, conf_dir
from tests.conftest import typed_config

GROUPS = (
    "scenario",
    "platform",
    "admission",
    "client",
    "engine",
    "output",
    "criterion",
    "autoscaler",
    "attack",
)


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
    # the dynamics (most of their cases go through check_overrides below, for speed)
    (["engine.kind=fast"], "engine.kind", "batched, reference"),
    (["platform.crash_after_s=0"], "platform.crash_after_s", "> 0"),
    (["autoscaler=target", "autoscaler.max_step=0"], "autoscaler.max_step", "[1, 1000000]"),
    (["admission=aimd", "admission.decrease_factor=1"], "admission.decrease_factor", "(0, 1)"),
    (["client=decorrelated_jitter", "client.cap_s=0.1"], "client.cap_s", ">= base_s"),
    (["client.throttle_k=0.5"], "client.throttle_k", ">= 1"),
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


CAP, ROOM = "admission=concurrency_cap", "admission=waiting_room"
AIMD, CREDIT = "admission=aimd", "admission=credit"
DECORRELATED, TARGET = "client=decorrelated_jitter", "autoscaler=target"
ACTIONS = "cap_listeners, waiting_room, add_nodes, drain_nodes, crash_nodes, end_room"


def _bad(setting: str, shown: str, allowed: str, *before: str, key: str | None = None) -> Any:
    """A case: overrides ``[*before, setting]``, the key named (``setting``'s unless given), the
    value as the message shows it (its repr after conversion), words of the allowed part."""
    key = key or setting.split("=", 1)[0]
    return pytest.param([*before, setting], key, shown, allowed, id=f"{key}={shown}")


def _action(actions: str, key: str, shown: str, allowed: str) -> Any:
    return _bad(f"scenario.actions={actions}", shown, allowed, key=f"scenario.actions{key}")


# a bad value for every parameter of the new admission policies, the clients, the platform's
# placement, control plane and health, the engine, the autoscaler, the criterion and the actions
NEW_BAD = [
    _bad("admission.max_listeners=-1", "-1", ">= 0", CAP),
    _bad("admission.max_joins_in_flight=-1", "-1", ">= 0", CAP),
    _bad("admission.retry_after_s=-1", "-1.0", ">= 0", CAP),
    _bad("admission.release_per_s=0", "0.0", "> 0", ROOM),
    _bad("admission.max_wait_s=-1", "-1.0", ">= 0", ROOM),
    _bad("admission.capacity=-1", "-1", "[0, 100000000]", ROOM),
    _bad("admission.retry_after_s=-5", "-5.0", ">= 0", ROOM),
    # aimd: min 5, initial 100, max 10000 (conf/admission/aimd.yaml)
    _bad("admission.target_delay_s=0", "0.0", "> 0", AIMD),
    _bad("admission.window_s=0", "0.0", "> 0", AIMD),
    _bad("admission.retry_after_s=-1", "-1.0", ">= 0", AIMD),
    _bad("admission.min_rate_per_s=-1", "-1.0", ">= 0", AIMD),
    _bad("admission.initial_rate_per_s=1", "1.0", ">= min_rate_per_s (5.0)", AIMD),
    _bad("admission.max_rate_per_s=50", "50.0", ">= initial_rate_per_s (100.0)", AIMD),
    _bad("admission.increase_per_s=-1", "-1.0", ">= 0", AIMD),
    _bad("admission.decrease_factor=0", "0.0", "(0, 1)", AIMD),
    _bad("admission.burst_s=0", "0.0", "> 0", AIMD),
    # credit: min 4, initial 100, max 100000
    _bad("admission.target_delay_s=-1", "-1.0", "> 0", CREDIT),
    _bad("admission.window_s=0", "0.0", "> 0", CREDIT),
    _bad("admission.retry_after_s=-1", "-1.0", ">= 0", CREDIT),
    _bad("admission.min_credits=0.5", "0.5", ">= 1", CREDIT),
    _bad("admission.initial_credits=2", "2.0", ">= min_credits (4.0)", CREDIT),
    _bad("admission.max_credits=50", "50.0", ">= initial_credits (100.0)", CREDIT),
    _bad("admission.additive_credits=-1", "-1.0", ">= 0", CREDIT),
    _bad("admission.beta=0", "0.0", "(0, 1]", CREDIT),
    _bad("admission.beta=1.5", "1.5", "(0, 1]", CREDIT),
    # every client: the default full_jitter, and the shipped options that set these
    _bad("client.patience=forever", "'forever'", "none, fixed, exponential, lognormal"),
    _bad("client.patience=sometimes", "'sometimes'", "lognormal", "client=immediate"),
    _bad("client.patience_mean_s=0", "0.0", "> 0"),
    _bad("client.patience_cv=0", "0.0", "> 0"),
    _bad("client.retry_budget=1.5", "1.5", "[0, 1]"),
    _bad("client.retry_budget=-0.1", "-0.1", "[0, 1]", "client=retry_budget"),
    _bad("client.budget_window_s=0.5", "0.5", "[1, 3600]"),
    _bad("client.throttle_k=0.5", "0.5", ">= 1", "client=adaptive_throttle"),
    _bad("client.throttle_window_s=4000", "4000.0", "[1, 3600]"),
    _bad("client.reconnect_mean_s=-1", "-1.0", ">= 0"),
    _bad("client.reconnect_min_s=-1", "-1.0", ">= 0"),
    _bad("client.cap_s=0.1", "0.1", ">= base_s (0.5)", DECORRELATED),
    _bad("client.base_s=0", "0.0", "> 0", DECORRELATED),
    # platform: placement, control plane, health
    _bad("platform.placement_choices=1", "1", "[2, 64]"),
    _bad("platform.placement_choices=65", "65", "[2, 64]"),
    _bad("platform.placement_load_bound=0.5", "0.5", ">= 1"),
    _bad("platform.placement_vnodes=0", "0", ">= 1"),
    _bad("platform.auth_workers=0", "0", ">= 1"),
    _bad("platform.auth_service_mean_s=0", "0.0", "> 0"),
    _bad("platform.auth_queue_cap=-1", "-1", ">= 0"),
    _bad("platform.auth_timeout_s=0", "0.0", "> 0"),
    _bad("platform.cpu_cores=0", "0.0", "> 0"),
    _bad("platform.cpu_per_join_worker=-1", "-1.0", ">= 0"),
    _bad("platform.cpu_per_listener=-0.1", "-0.1", ">= 0"),
    _bad("platform.memory_mb=0", "0.0", "> 0"),
    _bad("platform.memory_per_connection_mb=-1", "-1.0", ">= 0"),
    _bad("platform.overload_share=0", "0.0", "(0, 10]"),
    _bad("platform.overload_share=11", "11.0", "(0, 10]"),
    _bad("platform.crash_after_s=-5", "-5.0", "> 0"),
    _bad("platform.restart_s=-1", "-1.0", ">= 0"),
    _bad("platform.warmup_s=-1", "-1.0", ">= 0"),
    # engine, autoscaler
    _bad("engine.kind=fast", "'fast'", "batched, reference"),
    _bad("autoscaler.policy=magic", "'magic'", "none, target"),
    _bad("autoscaler.target_utilisation=0", "0.0", "(0, 1]", TARGET),
    _bad("autoscaler.target_utilisation=1.5", "1.5", "(0, 1]", TARGET),
    _bad("autoscaler.interval_s=0", "0.0", "> 0", TARGET),
    _bad("autoscaler.provisioning_delay_s=-1", "-1.0", ">= 0", TARGET),
    _bad("autoscaler.max_step=0", "0", "[1, 1000000]", TARGET),
    _bad("autoscaler.cooldown_s=-1", "-1.0", ">= 0", TARGET),
    _bad("autoscaler.max_nodes=0", "0", "[1, 1000000]", TARGET),
    # criterion
    _bad("criterion.name=''", "''", "non-empty"),
    _bad("criterion.stable_share=0", "0.0", "(0, 1]"),
    _bad("criterion.metastable_goodput_share=1.5", "1.5", "(0, 1]"),
    _bad("criterion.stable_p99_s=0", "0.0", "> 0"),
    _bad("criterion.stable_hold_s=-1", "-1.0", "> 0"),
    _bad("criterion.metastable_hold_s=0", "0.0", "> 0"),
    _bad("criterion.deadline_s=0", "0.0", "> 0"),
    _bad("criterion.max_abandoned_share=1", "1.0", "[0, 1)"),
    _bad("criterion.trigger_end_s=-1", "-1.0", ">= the scenario's start (0 s"),
    _bad("criterion.metastable_fails=maybe", "'maybe'", "bool"),
    # scenario.actions
    _action("[{t_s: 10, do: explode}]", "[0].do", "'explode'", f"one of {ACTIONS}"),
    _action(
        "[{t_s: 10, do: crash_nodes, count: 1}, {t_s: 5, do: oops}]", "[1].do", "'oops'", ACTIONS
    ),
    _action("[{t_s: -1, do: crash_nodes, count: 1}]", "[0].t_s", "-1.0", "the scenario's start (0"),
    _action("[{t_s: 10, do: add_nodes, count: 0}]", "[0].count", "0", ">= 1"),
    _action("[{t_s: 10, do: drain_nodes}]", "[0].count", "0", ">= 1"),
    _action("[{t_s: 10, do: crash_nodes, count: -2}]", "[0].count", "-2", ">= 1"),
    _action("[{t_s: 10, do: waiting_room}]", "[0].value", "None", "the release rate"),
    _action("[{t_s: 10, do: waiting_room, value: 0}]", "[0].value", "0.0", "> 0"),
    _action("[{t_s: 10, do: cap_listeners, value: -5}]", "[0].value", "-5.0", ">= 0"),
    _action("[{t_s: 10, do: drain_nodes, count: 1, for_s: -1}]", "[0].for_s", "-1.0", ">= 0"),
    _action("[{t_s: 10, do: end_room, for_s: -30}]", "[0].for_s", "-30.0", ">= 0"),
    _action("[{t_s: 10, do: end_room, share: 1.5}]", "[0].share", "1.5", "[0, 1]"),
    _action("[{t_s: 10, do: end_room, share: -0.1}]", "[0].share", "-0.1", "[0, 1]"),
    _action(
        "[{t_s: 10, do: waiting_room, value: 5, max_wait_s: -1}]", "[0].max_wait_s", "-1.0", ">= 0"
    ),
    _action(
        "[{t_s: 10, do: crash_nodes, count: 1, nodes: 3}]", "[0].nodes", "3", "ActionConfig"
    ),
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "key", "value", "allowed"), NEW_BAD)
def test_a_bad_value_of_a_new_parameter_is_refused_naming_it(
    overrides: list[str], key: str, value: str, allowed: str
) -> None:
    problems = check_overrides(overrides)
    assert problems, f"{overrides} was accepted"
    assert any(f"{key} = {value}; allowed: " in p and allowed in p for p in problems), problems
    assert all(f"{key} = " in p for p in problems), f"something else blamed: {problems}"


@pytest.mark.parametrize(
    "overrides",
    [
        [
            "admission=concurrency_cap", "admission.max_listeners=0",
            "admission.max_joins_in_flight=null", "admission.retry_after_s=0",
            "client=decorrelated_jitter", "client.cap_s=0.5", "client.base_s=0.5",
            "client.patience=lognormal", "client.patience_cv=0.1", "client.retry_budget=0",
            "client.budget_window_s=1", "client.throttle_k=1", "client.throttle_window_s=3600",
            "client.reconnect_mean_s=0", "client.reconnect_min_s=0",
            "platform.placement_choices=64", "platform.placement_load_bound=1",
            "platform.placement_vnodes=1", "platform.auth_workers=1", "platform.auth_queue_cap=0",
            "platform.cpu_per_join_worker=0", "platform.cpu_per_listener=0",
            "platform.memory_per_connection_mb=0", "platform.overload_share=10",
            "platform.crash_after_s=0.5", "platform.restart_s=0", "platform.warmup_s=0",
            "autoscaler=target", "autoscaler.target_utilisation=1", "autoscaler.cooldown_s=0",
            "autoscaler.provisioning_delay_s=0", "autoscaler.max_step=1", "autoscaler.max_nodes=1",
            "criterion.max_abandoned_share=0", "criterion.deadline_s=null",
            "criterion.trigger_end_s=0", "criterion.metastable_fails=false",
            "engine.kind=reference",
            "scenario.actions=[{t_s: 0, do: cap_listeners, value: 0}, {t_s: 1, do: cap_listeners},"
            " {t_s: 2, do: waiting_room, value: 0.5, max_wait_s: 0},"
            " {t_s: 3, do: end_room, share: 0}, {t_s: 4, do: end_room, share: 1, for_s: 0},"
            " {t_s: 5, do: add_nodes, count: 1}, {t_s: 6, do: drain_nodes, count: 1, for_s: 0}]",
        ],
        [
            "admission=aimd", "admission.min_rate_per_s=0", "admission.initial_rate_per_s=0",
            "admission.max_rate_per_s=0", "admission.increase_per_s=0",
            "admission.decrease_factor=0.99", "client.retry_budget=1", "client.throttle_k=null",
        ],
        [
            "admission=credit", "admission.min_credits=1", "admission.initial_credits=1",
            "admission.max_credits=1", "admission.beta=1", "admission.additive_credits=0",
            "admission.retry_after_s=0",
        ],
        ["admission=waiting_room", "admission.capacity=0", "admission.max_wait_s=0"],
    ],
    ids=["boundaries", "aimd", "credit", "waiting_room"],
)  # fmt: skip
def test_the_boundary_values_of_the_new_parameters_are_accepted(overrides: list[str]) -> None:
    assert check_overrides(overrides) == []


@pytest.mark.parametrize(
    "override",
    [
        "scenario.session_mean_s=inf",  # segfaulted in the peak tally before it was refused
        "platform.join_service_mean_s=inf",  # never finished
        "engine.tick_s=inf",
        "platform.restart_s=inf",
        "criterion.stable_p99_s=-inf",
        "client.cap_s=inf",
    ],
)
def test_an_infinite_value_is_refused_naming_its_key(override: str) -> None:
    key = override.partition("=")[0]
    problems = check_overrides([override])
    assert problems and all(key in p for p in problems), problems
    assert any("finite" in p or "number" in p for p in problems)


@pytest.mark.parametrize("override", ["admission=false", "client=null", "attack=1"])
def test_a_group_option_that_yaml_reads_as_no_string_is_refused_naming_the_group(
    override: str,
) -> None:
    group = override.partition("=")[0]
    problems = check_overrides([override])
    assert len(problems) == 1 and problems[0].startswith(f"invalid config: {group} = "), problems
    assert "one of " in problems[0] and "none" in problems[0]


@pytest.mark.parametrize(
    "override", ["platform.fanout.enabled=5", "criterion.metastable_fails=3", "output.archive=0"]
)
def test_a_number_for_a_bool_key_is_refused(override: str) -> None:
    key, _, value = override.partition("=")
    assert check_overrides([override]) == [
        f"invalid config: {key} = '{value}'; allowed: a bool: true or false"
    ]


def test_true_and_false_and_sweeps_of_them_pass_the_bool_check() -> None:
    assert (
        check_overrides(["platform.fanout.enabled=true", "criterion.metastable_fails=False"]) == []
    )
    assert check_overrides(["platform.fanout.enabled=true,false"], multirun=True) == []
