"""Reader-side report helpers (``analysis.frames``, ``stats``, ``plots``, ``theme``) on real
archives: one run with the autoscaler, a 2x2 sweep and an Erlang B threshold search, each made
once by the real CLI (in parallel) and read back through ``sim.archive``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.patches import Rectangle
from scipy import stats as sps

from analysis import frames, plots, stats, theme
from sim.archive import read_events, read_summary, read_timeseries
from tests.conftest import make_archives

SURGE = ["experiment=bench_surge", "scenario.expected_arrivals=2000"]
JOBS = {
    "run": ["run", *SURGE, "autoscaler=target"],
    "sweep": ["sweep", *SURGE, "seed=1,2", "platform.nodes=1,2"],
    "threshold": [
        "threshold",
        "experiment=threshold_erlang_b",
        "workers=5",
        "service_rate_per_s=2",
        "max_reject_share=0.1",
        "hydra.sweeper.budget=16",
        "horizon_s=300",  # a shorter steady state: the same search, faster runs
    ],
}


@pytest.fixture(scope="module")
def archives(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The three archives' directories, made at once by ``spacesim`` subprocesses."""
    root = tmp_path_factory.mktemp("analysis")
    return make_archives(root, JOBS)


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    theme.apply()
    yield
    plt.close("all")


def _has_units(text: str) -> bool:
    return text.endswith(")") and "(" in text and text.index("(") < len(text) - 2


def _line(ax: Axes, gid: str) -> matplotlib.lines.Line2D:
    found = [ln for ln in ax.get_lines() if ln.get_gid() == gid]
    assert len(found) == 1, [ln.get_gid() for ln in ax.get_lines()]
    return found[0]


# ------------------------------------------------------------------------------------ theme


def test_labels_carry_units() -> None:
    assert theme.label("t_s") == "Time (s)"
    assert theme.label("concurrent") == "Listeners in the room (people)"
    assert theme.label("joined", total=True) == "Joins completed (people)"
    assert theme.label("some_new_share", "1") == "Some new share (share)"
    assert theme.label("platform.foo_count", "count") == "Foo count (count)"
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="no units"):
        theme.label_axes(ax, "Time", "Listeners (people)")


# ----------------------------------------------------------------------------------- frames


def test_timeline_is_the_archive_series_in_long_format(archives: dict[str, Path]) -> None:
    ts = read_timeseries(archives["run"])
    df = frames.timeline(archives["run"])
    assert list(df.columns) == frames.TIMELINE_COLUMNS
    present = set(df["series"])
    assert {"concurrent", "trying", "attempts", "joined", "nodes_up"} <= present
    assert all(ts[c].any() for c in present if c.startswith("rejected_"))
    one = df[df["series"] == "concurrent"]
    np.testing.assert_array_equal(one["t_s"].to_numpy(), ts["t_s"].to_numpy())
    np.testing.assert_array_equal(one["value"].to_numpy(), ts["concurrent"].to_numpy(float))
    assert set(one["units"]) == {"count"}
    assert set(df.loc[df["series"] == "goodput_per_s", "units"]) == {"1/s"}
    with pytest.raises(KeyError, match="no series"):
        frames.timeline(archives["run"], series=["no_such_column"])


def test_events_are_the_autoscalers(archives: dict[str, Path]) -> None:
    ev = frames.events(archives["run"])
    raw = read_events(archives["run"])
    assert len(ev) == len(raw) > 0
    assert "scale" in set(ev["kind"])
    assert ev["t_s"].is_monotonic_increasing
    assert frames.events(archives["sweep"]).empty or list(ev.columns) == list(raw.columns)


def test_summary_has_one_row_per_run_with_parameters(archives: dict[str, Path]) -> None:
    s = frames.summary(archives["sweep"])
    assert len(s) == 4
    assert {"seed", "platform.nodes"} <= set(s.attrs["parameters"])
    assert s["failed"].dtype == bool
    raw = read_summary(archives["sweep"])
    np.testing.assert_array_equal(s["joined"].to_numpy(), raw["joined"].to_numpy())


def test_threshold_frames_match_threshold_json(archives: dict[str, Path]) -> None:
    doc = json.loads((archives["threshold"] / "threshold.json").read_text())
    cells, runs = frames.threshold(archives["threshold"])
    assert len(cells) == len(doc["cells"]) == 1
    cell = cells.iloc[0]
    assert cell["estimate"] == doc["estimate"]
    assert (cell["ci_low"], cell["ci_high"]) == (doc["ci_low"], doc["ci_high"])
    assert cell["workers"] == 5 and cell["parameter"] == "arrival_rate_per_s"
    assert cell["log_scale"] and cell["increasing"]  # from multirun.yaml
    assert len(runs) == doc["runs"] == 16
    np.testing.assert_array_equal(runs["x"].to_numpy(), doc["cells"][0]["x"])
    np.testing.assert_array_equal(runs["failed"].to_numpy(), doc["cells"][0]["failed"])


# ------------------------------------------------------------------------------------ stats


def test_mean_ci_is_student_t() -> None:
    values = [1.0, 2.0, 3.0, 4.0, np.nan]
    ci = stats.mean_ci(values, 0.9)
    lo, hi = sps.t.interval(0.9, 3, loc=2.5, scale=sps.sem([1, 2, 3, 4]))
    assert ci.n == 4 and ci.mean == 2.5
    assert ci.low == pytest.approx(lo, rel=1e-12) and ci.high == pytest.approx(hi, rel=1e-12)
    assert np.isnan(stats.mean_ci([3.0]).low) and stats.mean_ci([]).n == 0


def test_wilson_interval() -> None:
    ci = stats.wilson(3, 10)
    assert (ci.low, ci.high) == pytest.approx((0.10779, 0.60322), abs=1e-5)  # textbook value
    assert stats.wilson(0, 5).low == 0.0 and stats.wilson(5, 5).high == 1.0


def test_grouped_statistics_over_a_summary(archives: dict[str, Path]) -> None:
    s = frames.summary(archives["sweep"])
    g = stats.grouped_ci(s, "platform.nodes", "joined")
    assert list(g["platform.nodes"]) == [1, 2] and list(g["n"]) == [2, 2]
    for _, row in g.iterrows():
        mine = s.loc[s["platform.nodes"] == row["platform.nodes"], "joined"]
        assert row["mean"] == pytest.approx(mine.mean())
        assert row["ci_low"] <= row["mean"] <= row["ci_high"]
    f = stats.failure_share(s, "platform.nodes")
    assert f["n"].sum() == 4 and f["failures"].sum() == s["failed"].sum()
    assert ((f["ci_low"] <= f["share"]) & (f["share"] <= f["ci_high"])).all()


def test_failure_probability_is_the_searchs_curve(archives: dict[str, Path]) -> None:
    cells, _ = frames.threshold(archives["threshold"])
    cell = cells.iloc[0]
    at = stats.failure_probability(cell, cell["curve_x"])
    np.testing.assert_allclose(at["p"].to_numpy(), cell["curve_p"], atol=1e-12)
    assert stats.failure_probability(cell, [cell["estimate"]])["p"].iloc[0] == pytest.approx(
        cell["target"]
    )
    grid = stats.failure_probability(cell, points=50)
    assert len(grid) == 50 and grid["p"].is_monotonic_increasing


# ------------------------------------------------------------------------------------ plots


def test_timeline_plot_draws_the_archive_series(archives: dict[str, Path]) -> None:
    df = frames.timeline(archives["run"], series=["concurrent", "trying"])
    ev = frames.events(archives["run"])
    ax = plots.timeline(df, events=ev)
    ts = read_timeseries(archives["run"])
    for name in ("concurrent", "trying"):
        line = _line(ax, f"{name}/0")
        np.testing.assert_array_equal(line.get_xdata(), ts["t_s"].to_numpy())
        np.testing.assert_array_equal(line.get_ydata(), ts[name].to_numpy(float))
    marks = [np.asarray(ln.get_xdata())[0] for ln in ax.get_lines() if ln.get_gid() == "event"]
    np.testing.assert_array_equal(sorted(marks), sorted(ev["t_s"].unique()))
    assert ax.get_xlabel() == "Time (s)" and ax.get_ylabel() == "Value (people)"
    legend = ax.get_legend()
    texts = [t.get_text() for t in legend.get_texts()] if legend is not None else []
    kinds = ", ".join(sorted(set(ev["kind"])))
    assert texts == ["Listeners in the room", "People trying", f"events ({kinds})"]
    one = plots.timeline(frames.timeline(archives["run"], series="nodes_up"))
    assert one.get_ylabel() == "Edge nodes up (count)" and one.get_legend() is None
    with pytest.raises(ValueError, match="different units"):
        plots.timeline(frames.timeline(archives["run"], series=["concurrent", "goodput_per_s"]))


def test_timeline_plot_of_several_runs(archives: dict[str, Path]) -> None:
    df = frames.timeline(archives["sweep"], series="concurrent")
    _, ax = plt.subplots()
    assert plots.timeline(df, ax=ax) is ax
    ts = read_timeseries(archives["sweep"])
    for run, part in ts.groupby("run"):
        np.testing.assert_array_equal(
            _line(ax, f"concurrent/{run}").get_ydata(), part["concurrent"]
        )
    assert ax.get_legend() is not None


def test_failure_curve_shows_the_estimate_and_interval(archives: dict[str, Path]) -> None:
    doc = json.loads((archives["threshold"] / "threshold.json").read_text())
    cells, runs = frames.threshold(archives["threshold"])
    ax = plots.failure_curve(runs, cells.iloc[0])
    assert np.asarray(_line(ax, "estimate").get_xdata())[0] == doc["estimate"]
    span = [p for p in ax.patches if p.get_gid() == "interval"]
    assert len(span) == 1
    rect = span[0]
    assert isinstance(rect, Rectangle)  # x in data units, y in axes units
    ends = [rect.get_x(), rect.get_x() + rect.get_width()]
    np.testing.assert_allclose(ends, [doc["ci_low"], doc["ci_high"]], rtol=1e-12)
    points = {c.get_gid(): c for c in ax.collections if isinstance(c, PathCollection)}
    cell = doc["cells"][0]
    failed = np.asarray(cell["failed"])
    ok_xy = np.asarray(points["ok"].get_offsets())
    fail_xy = np.asarray(points["fail"].get_offsets())
    np.testing.assert_allclose(np.sort(ok_xy[:, 0]), np.sort(np.asarray(cell["x"])[~failed]))
    assert set(ok_xy[:, 1]) == {0.0} and set(fail_xy[:, 1]) == {1.0}
    fit = _line(ax, "fit")
    want = stats.failure_probability(cells.iloc[0], fit.get_xdata())["p"]
    np.testing.assert_allclose(np.asarray(fit.get_ydata()), want)
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel() == "Arrival rate (1/s)" and _has_units(ax.get_ylabel())
    assert ax.get_legend() is not None


def test_capacity_curve_error_bars(archives: dict[str, Path]) -> None:
    cells, _ = frames.threshold(archives["threshold"])
    ax = plots.capacity_curve(cells, "workers")
    line = _line(ax, "thresholds")
    np.testing.assert_array_equal(line.get_xdata(), cells["workers"].to_numpy(float))
    np.testing.assert_array_equal(line.get_ydata(), cells["estimate"].to_numpy())
    segments = ax.collections[0].get_segments()  # type: ignore[attr-defined]
    np.testing.assert_allclose(
        segments[0][:, 1], [cells["ci_low"].iloc[0], cells["ci_high"].iloc[0]]
    )
    assert ax.get_xlabel() == "Join workers (count)"
    assert ax.get_ylabel() == "Arrival rate at threshold (1/s)"


def test_heatmap_of_replication_means(archives: dict[str, Path]) -> None:
    s = frames.summary(archives["sweep"])
    ax = plots.heatmap(s, "seed", "platform.nodes", "joined")
    mesh = ax.collections[0]
    table = s.pivot_table(index="platform.nodes", columns="seed", values="joined", aggfunc="mean")
    want = table.sort_index(ascending=False).to_numpy(float)
    np.testing.assert_array_equal(np.asarray(mesh.get_array()).reshape(want.shape), want)
    assert ax.get_xlabel() == "Seed (index)" and ax.get_ylabel() == "Edge nodes (count)"
    # whole numbers as such (not "2.0"), the y labels upright, highest on top
    assert [t.get_text() for t in ax.get_yticklabels()] == ["2", "1"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2"]
    assert all(t.get_rotation() == 0 for t in ax.get_yticklabels())
    cbar = mesh.colorbar
    assert cbar is not None and cbar.ax.get_ylabel() == "Joins completed (people)"


def test_policy_comparison(archives: dict[str, Path]) -> None:
    s = frames.summary(archives["sweep"])
    g = stats.grouped_ci(s, "platform.nodes", "goodput_joins_per_s")
    ax = plots.policy_comparison(g)
    line = _line(ax, "policies")
    np.testing.assert_array_equal(line.get_xdata(), g["mean"].to_numpy())
    assert [t.get_text() for t in ax.get_yticklabels()] == ["1", "2"]
    assert ax.get_xlabel() == "Goodput (joins/s)" and _has_units(ax.get_ylabel())
    f = stats.failure_share(s, "platform.nodes")
    ax = plots.policy_comparison(f)
    np.testing.assert_array_equal(_line(ax, "policies").get_xdata(), f["share"].to_numpy())
    assert ax.get_xlabel() == "Failure probability (share of runs)"


def test_frames_are_pandas(archives: dict[str, Path]) -> None:
    for df in (frames.timeline(archives["run"]), frames.summary(archives["sweep"])):
        assert isinstance(df, pd.DataFrame) and len(df)
