"""Untrusted configs: a ``_target_`` (or logging factory) that is not one of spacesim's classes
or the Hydra plugins it runs with is refused before anything runs (``sim.targets``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from sim import targets
from sim.hydra_app import check_overrides, check_targets
from tests.test_cli import spacesim

PROBE = "pathlib.Path.touch"  # harmless, but leaves a file behind when it is called


@pytest.mark.parametrize(
    "value",
    [
        "sim.callbacks.MergeSweep",
        "hydra_plugins.spacesim_sweepers.DesignSweeper",
        "hydra_plugins.spacesim_sweepers.ThresholdSweeper",
        "hydra_plugins.spacesim_sweepers.CalibrationSweeper",
        "hydra._internal.core_plugins.basic_launcher.BasicLauncher",
        "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
        "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
        "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
        "hydra_plugins.hydra_ray_launcher.ray_launcher.RayLauncher",
    ],
)
def test_spacesim_classes_and_its_plugins_are_allowed(value: str) -> None:
    assert targets.allowed_target(value)


@pytest.mark.parametrize(
    "value",
    [
        "os.system",
        "builtins.eval",
        PROBE,
        "subprocess.run",
        "sim.hydra_app.Path.touch",  # re-exported by a module of ours: not defined there
        "sim.hydra_app.Path",
        "sim.cli.sys.exit",
        "sim.runner.run_job",  # ours, but not a class
        "sim.no_such_module.Thing",
        "sim",
        "hydra_plugins.hydra_ray_launcher.ray_aws_launcher.RayAWSLauncher",  # not shipped
        "simx.Thing",
        " sim.callbacks.MergeSweep",
        "sim.callbacks.MergeSweep()",
        "",
        3,
        None,
    ],
)
def test_anything_else_is_refused(value: object) -> None:
    assert not targets.allowed_target(value)


def test_a_refused_target_is_never_imported() -> None:
    import sys

    assert not targets.allowed_target("antigravity.fly")
    assert "antigravity" not in sys.modules


def test_overrides_are_checked_as_given_every_value_of_a_sweep() -> None:
    found = targets.override_problems(
        [
            "+hydra.callbacks.x._target_=os.system",
            "hydra.sweeper._target_=builtins.eval",
            "+y._target_=sim.callbacks.MergeSweep,os.remove",
            "+z={_target_: subprocess.run, args: [ls]}",
            "+hydra.job_logging.handlers.h={class: pathlib.Path.touch}",
            "seed=1,2,3",
            "hydra.launcher.n_jobs=2",
        ]
    )
    assert len(found) == 5
    assert "hydra.callbacks.x._target_ = 'os.system'" in found[0]
    assert "hydra.sweeper._target_ = 'builtins.eval'" in found[1]
    assert "y._target_ = 'os.remove'" in found[2]
    assert "z._target_ = 'subprocess.run'" in found[3]
    assert "hydra.job_logging.handlers.h.class = 'pathlib.Path.touch'" in found[4]
    assert all(len(m.splitlines()) == 1 for m in found)
    assert targets.override_problems(["seed=1,2", "hydra/launcher=joblib", "admission=none"]) == []


def test_a_composed_config_is_walked_lists_logging_and_interpolations() -> None:
    cfg = OmegaConf.create(
        {
            "ok": {"_target_": "sim.callbacks.MergeSweep"},
            "items": [{"deep": {"_target_": "os.system"}}],
            "env": {"_target_": "${oc.env:NO_SUCH_VARIABLE_HERE}"},
            "alias": {"_target_": "${ok._target_}"},
            "hydra": {
                "job_logging": {
                    "handlers": {
                        "good": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout"},
                        "bad": {"class": "os.system", "stream": "ext://os.environ"},
                    },
                    "formatters": {"f": {"()": "builtins.eval"}},
                },
                "sweeper": {"params": {"+q._target_": "os.remove"}},
            },
        }
    )
    found = targets.config_problems(cfg)
    keys = [m.split(" = ")[0].removeprefix("refused: ") for m in found]
    assert keys == [
        "items[0].deep._target_",
        "env._target_",
        "hydra.job_logging.handlers.bad.class",
        "hydra.job_logging.handlers.bad.stream",
        "hydra.job_logging.formatters.f.()",
        "hydra.sweeper.params.+q._target_",
    ]


def test_the_project_configs_pass() -> None:
    for overrides, multirun in [
        ([], False),
        (["seed=1,2", "hydra/launcher=joblib"], True),
        (["seed=1,2", "hydra/launcher=ray_local"], True),
        (["seed=1,2", "hydra/launcher=slurm"], True),
        (["seed=1,2", "hydra/launcher=submitit_local"], True),
        (["hydra/sweeper=threshold", "experiment=threshold_erlang_b"], True),
        (["hydra/sweeper=calibrate", "experiment=calibrate_trump_2024"], True),
        (["sweep=sobol_demo"], True),
    ]:
        assert check_targets(overrides, multirun) == [], overrides


def test_a_config_dir_cannot_smuggle_a_target_in(tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    (tmp_path / "cd" / "experiment").mkdir(parents=True)
    (tmp_path / "cd" / "experiment" / "evil.yaml").write_text(
        "# @package _global_\nhydra:\n  callbacks:\n    y:\n"
        f"      _target_: {PROBE}\n      _args_: [{probe}]\n"
    )
    argv = ["-m", "--config-dir", str(tmp_path / "cd"), "experiment=evil"]
    found = check_overrides(["experiment=evil"], True, argv=argv)
    assert found and f"hydra.callbacks.y._target_ = '{PROBE}'" in found[0]
    argv = [f"--config-dir={tmp_path / 'cd'}", "experiment=evil"]
    assert check_targets(["experiment=evil"], False, argv=argv) == found
    assert not probe.exists()


def test_the_guard_refuses_before_hydra_calls_anything(tmp_path: Path) -> None:
    guarded = targets.guarded(instantiate)
    probe = tmp_path / "probe"
    with pytest.raises(targets.UntrustedTarget, match=r"_target_ = 'pathlib\.Path\.touch'"):
        guarded(OmegaConf.create({"_target_": PROBE, "_args_": [str(probe)]}))
    with pytest.raises(targets.UntrustedTarget):
        guarded({"_target_": PROBE, "_args_": [str(probe)]})
    assert not probe.exists()
    assert type(guarded({"_target_": "sim.callbacks.MergeSweep"})).__name__ == "MergeSweep"


def _refused(out: object, probe: Path, key: str) -> None:
    import subprocess

    assert isinstance(out, subprocess.CompletedProcess)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert f"{key} = '{PROBE}'" in lines[0] and "allowed:" in lines[0]
    assert len(lines) <= 2 and "Traceback" not in out.stderr
    assert not probe.exists()


def test_run_refuses_an_untrusted_callback(tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    out = spacesim(
        "run",
        f"+hydra.callbacks.x._target_={PROBE}",
        f"+hydra.callbacks.x._args_=[{probe}]",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
    )
    _refused(out, probe, "hydra.callbacks.x._target_")
    assert not (tmp_path / "run").exists() and not (tmp_path / "results").exists()


def test_a_multirun_refuses_an_untrusted_callback(tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    out = spacesim(
        "run",
        "-m",
        "seed=1,2",
        f"+hydra.callbacks.x._target_={PROBE}",
        f"+hydra.callbacks.x._args_=[{probe}]",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        cwd=tmp_path,
    )
    _refused(out, probe, "hydra.callbacks.x._target_")
    assert not (tmp_path / "sweep").exists() and not (tmp_path / "results").exists()


def test_threshold_refuses_an_untrusted_target(tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    out = spacesim(
        "threshold",
        "experiment=threshold_erlang_b",
        f"+hydra.callbacks.x={{_target_: {PROBE}, _args_: [{probe}]}}",
        f"hydra.sweep.dir={tmp_path / 'sweep'}",
        cwd=tmp_path,
    )
    _refused(out, probe, "hydra.callbacks.x._target_")
    assert not (tmp_path / "sweep").exists() and not (tmp_path / "results").exists()


def test_the_guard_wraps_hydra_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import hydra.core.plugins
    import hydra.utils

    for module in (hydra.utils, hydra.core.plugins):  # restored after the test
        monkeypatch.setattr(module, "instantiate", module.instantiate)
    targets.install_guard()
    first = hydra.utils.instantiate
    targets.install_guard()
    assert hydra.utils.instantiate is first and hasattr(first, "__wrapped__")
    assert hasattr(hydra.core.plugins.instantiate, "__wrapped__")
    with pytest.raises(targets.UntrustedTarget):
        hydra.utils.instantiate({"_target_": "os.getcwd"})


def test_resume_refuses_a_target_from_multirun_yaml(tmp_path: Path) -> None:
    probe = tmp_path / "probe"
    sweep = tmp_path / "sweep"
    sweep.mkdir()
    (sweep / "multirun.yaml").write_text(
        "hydra:\n  overrides:\n    hydra: []\n    task:\n"
        f"      - +hydra.callbacks.x._target_={PROBE}\n"
        f"      - +hydra.callbacks.x._args_=[{probe}]\n"
        "      - seed=1,2\n"
    )
    out = spacesim("sweep", "--resume", str(sweep), cwd=tmp_path)
    _refused(out, probe, "hydra.callbacks.x._target_")
    assert sorted(p.name for p in sweep.iterdir()) == ["multirun.yaml"]
