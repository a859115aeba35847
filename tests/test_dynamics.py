"""What acts between ticks: overload crashes, restarts and warm-up, the operator's actions, the
autoscaler and the control plane; conservation with all of them, determinism, and convergence as
the tick shrinks.

Row convention (``docs/metrics.md``, ``sim/engine.py``): the row ``t_s = T`` holds the counts of the
tick ``[T - tick_s, T)`` and the state at ``T`` recorded *before* the components that act between
ticks wake (restarts, health, operator, autoscaler all run after the ticker at ``T``). A node that
crashes or comes up at the tick end ``T`` therefore shows in ``nodes_up`` from the row
``T + tick_s`` on, and the listeners a crash at ``T`` dropped are counted in the row ``T + tick_s``.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
import re
from typing import Any

import numpy as np
import pytest

from sim.config import Config
from sim.engine import Engine, RunResult, simulate
from sim.model.health import utilisation
from tests.conftest import typed_config

# crashes from overload: 0.02 cores per listener on 8 cores, overloaded at 0.95 -> ~380 listeners
CRASH = ("platform.crash_after_s=10", "platform.cpu_per_listener=0.02", "platform.restart_s=30")
WARM = (*CRASH, "platform.warmup_s=20")
# max_nodes=7 makes the ceiling bind (orders of 2, then 3 wanted but 1 allowed)
AUTOSCALE = (
    "autoscaler=target",
    "autoscaler.provisioning_delay_s=30",
    "platform.nodes=4",
    "admission=none",
    "autoscaler.max_nodes=7",
)
AUTH_TINY = ("platform.auth_workers=1", "platform.auth_service_mean_s=0.1", "admission=none")
VOLATILE = ("wall_s",)
# what a run with nothing between ticks may change with the tick (tests/test_engine.py): the tick
# grid, and the verdict read off the per-tick series
TICK_GRID = ("ticks", "sim_end_s", "failure_time_s", "time_to_stable_s", "stability_lost_s",
             "goodput_joins_per_s", "metastable_since_s",
             "start_delay_s", "room_end_s")  # fmt: skip
NODES = 16  # platform=default
CAP = 1000  # its connections_per_node


def actions(*items: str) -> str:
    return f"scenario.actions=[{', '.join(items)}]"


CAP_LISTENERS = (
    actions(
        "{t_s: 50, do: cap_listeners, value: 3000}", "{t_s: 200, do: cap_listeners, value: null}"
    ),
)
WAITING_ROOM = (actions("{t_s: 90, do: waiting_room, value: 50, max_wait_s: 5}"),)
ADD = (actions("{t_s: 90, do: add_nodes, count: 4, for_s: 30}"),)
DRAIN = (actions("{t_s: 90, do: drain_nodes, count: 4, for_s: 30}"),)
CRASH_NODES = (actions("{t_s: 90, do: crash_nodes, count: 4}"),)  # down for restart_s = 60
END_ROOM = (actions("{t_s: 90, do: end_room, for_s: 60, share: 0.5}"),)
EVERYTHING = (
    *CRASH,
    "platform.warmup_s=10",
    "platform.nodes=8",
    "autoscaler=target",
    "autoscaler.provisioning_delay_s=30",
    "platform.auth_workers=8",
    "platform.auth_service_mean_s=0.02",
    "client.patience=exponential",
    "client.patience_mean_s=60",
    actions(
        "{t_s: 40, do: cap_listeners, value: 5000}",
        "{t_s: 70, do: drain_nodes, count: 2, for_s: 20}",
        "{t_s: 100, do: crash_nodes, count: 2}",
        "{t_s: 120, do: add_nodes, count: 2, for_s: 15}",
        "{t_s: 150, do: waiting_room, value: 100}",
        "{t_s: 250, do: end_room, for_s: 30, share: 0.7}",
    ),
)


@functools.cache
def _config(overrides: tuple[str, ...]) -> Config:
    return typed_config(list(overrides))


def _variant(cfg: Config, seed: int, tick_s: float) -> Config:
    return dataclasses.replace(
        cfg, seed=seed, engine=dataclasses.replace(cfg.engine, tick_s=tick_s)
    )


@functools.cache
def _run(overrides: tuple[str, ...], seed: int = 0, tick_s: float = 1.0) -> RunResult:
    """One run, shared by the tests that read it (composing a config costs ~1 s)."""
    return simulate(_variant(_config(overrides), seed, tick_s))


def _stable(summary: dict[str, Any], drop: tuple[str, ...] = VOLATILE) -> dict[str, Any]:
    """The summary without ``drop``, NaN made comparable."""
    nan = "nan"
    return {
        k: nan if isinstance(v, float) and math.isnan(v) else v
        for k, v in summary.items()
        if k not in drop
    }


def _of_kind(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["kind"] == kind]


def _dropped_by(event: dict[str, Any]) -> int:
    m = re.search(r"; (\d+) listeners dropped;", event["detail"])
    assert m, event
    return int(m.group(1))


def _rows(ts: dict[str, np.ndarray], lo: float, hi: float = math.inf) -> np.ndarray:
    """The rows ``lo < t_s <= hi`` (the ticks that end in that interval)."""
    return (ts["t_s"] > lo + 1e-9) & (ts["t_s"] <= hi + 1e-9)


def _row(ts: dict[str, np.ndarray], t: float) -> int:
    i = int(np.flatnonzero(np.isclose(ts["t_s"], t))[0])
    return i


# ---------------------------------------------------------------------------------------------
# conservation


@pytest.mark.parametrize(
    ("overrides", "crashes", "all_reconnect"),
    [
        pytest.param(CRASH, True, True, id="overload-crashes"),
        pytest.param(WARM, True, True, id="crashes-warm-up"),
        pytest.param(CAP_LISTENERS, False, True, id="cap_listeners"),
        pytest.param(WAITING_ROOM, False, True, id="waiting_room"),
        pytest.param(ADD, False, True, id="add_nodes"),
        pytest.param(DRAIN, False, True, id="drain_nodes"),
        pytest.param(CRASH_NODES, True, True, id="crash_nodes"),
        pytest.param(END_ROOM, True, False, id="end_room"),
        pytest.param(AUTOSCALE, False, True, id="autoscaler"),
        pytest.param(AUTH_TINY, False, True, id="auth"),
        pytest.param(EVERYTHING, True, False, id="everything"),
    ],
)
def test_counts_are_conserved_with_every_dynamic(
    overrides: tuple[str, ...], crashes: bool, all_reconnect: bool
) -> None:
    r = _run(overrides)
    s, ts = r.summary, r.timeseries
    assert not s["engine_failed"], s["failure_reason"]
    # everyone who came (a new listener or a dropped one reconnecting) joined or gave up
    assert s["arrivals"] + s["reconnects"] == s["joined"] + s["abandoned"]
    assert ts["joining"].sum() == s["joined"]
    assert s["attempts"] == ts["joining"].sum() + sum(s["rejected"].values())
    assert ts["attempts"].sum() == s["attempts"]
    for reason, n in s["rejected"].items():
        assert ts[f"rejected_{reason}"].sum() == n, reason
    # the drops: summary == series == what the crash events say
    crash_events = _of_kind(r.events, "crash")
    assert s["crashes"] == len(crash_events)
    assert s["dropped"] == ts["dropped"].sum() == sum(_dropped_by(e) for e in crash_events)
    assert ts["reconnects"].sum() == s["reconnects"] <= s["dropped"]
    if all_reconnect:  # every crash but end_room brings every dropped listener back
        assert s["reconnects"] == s["dropped"]
    if crashes:
        assert s["dropped"] > 0 and s["reconnects"] > 0
    else:
        assert s["dropped"] == s["crashes"] == 0
    # every join completes (a join in flight on a crashed node at the crash) and everyone leaves
    assert ts["joined"].sum() == ts["left"].sum() == s["joined"]
    assert ts["concurrent"][-1] == 0 and ts["trying"][-1] == 0
    # every connection is handed back (a crashed node's queued releases are stale, not lost)
    assert ts["connections"][-1] == ts["waiting"][-1] == ts["retries_pending"][-1] == 0
    assert np.all(ts["connections"] >= 0) and np.all(ts["concurrent"] >= 0)
    assert np.all(ts["trying"] >= 0)


def test_end_room_brings_back_a_share_of_the_dropped_within_a_binomial_bound() -> None:
    r = _run(END_ROOM)
    s, ts = r.summary, r.timeseries
    d, k = s["dropped"], s["reconnects"]
    # everyone connected at the end (row 90: the state before the operator acts) was dropped,
    # and every dropped listener held a connection then
    assert ts["concurrent"][_row(ts, 90)] <= d <= ts["connections"][_row(ts, 90)]
    assert d > 1000
    # each dropped listener comes back with probability 0.5: Binomial(d, 0.5), z = 5
    assert abs(k - 0.5 * d) <= 5 * math.sqrt(d * 0.5 * 0.5), (k, d)


# ---------------------------------------------------------------------------------------------
# crashes from overload, restarts, warm-up


def _walk_crashes_and_restarts(
    events: list[dict[str, Any]], restart_s: float, tick_s: float
) -> list[tuple[int, float, float]]:
    """Check that every crashed node is down until one restart at ``t + restart_s`` rounded up
    to a tick end (and says so), and return ``(node, crashed at, back at)``."""
    down: dict[int, tuple[float, float]] = {}
    spells: list[tuple[int, float, float]] = []
    for e in events:
        if e["kind"] not in ("crash", "restart"):
            continue
        node = int(e["target"].removeprefix("node "))
        t = e["t_s"]
        if e["kind"] == "crash":
            assert node not in down, f"node {node} crashed at {t} while down"
            back = math.ceil((t + restart_s) / tick_s - 1e-9) * tick_s
            assert f"down until {back:g} s" in e["detail"], e
            down[node] = (t, back)
        else:
            assert node in down, f"node {node} restarted at {t} without a crash"
            crashed, back = down.pop(node)
            assert t == pytest.approx(back), (node, crashed, t, back)
            spells.append((node, crashed, t))
    assert not down, f"nodes never restarted: {down}"
    return spells


def test_overload_crashes_nodes_that_stay_down_until_their_restart() -> None:
    r = _run(CRASH)
    s, ts = r.summary, r.timeseries
    crash_events = _of_kind(r.events, "crash")
    assert crash_events, "no crash: the scenario no longer overloads the nodes"
    for e in crash_events:
        m = re.match(r"overloaded \(utilisation ([\d.]+)\) for 10 s;", e["detail"])
        assert m, e
        assert float(m.group(1)) >= 0.95 - 0.005  # overload_share (printed with 2 decimals)
    spells = _walk_crashes_and_restarts(r.events, 30.0, 1.0)
    assert len(spells) == len(crash_events)
    # nodes_up, row by row: a node is out in the rows crashed < t_s <= back
    expected = np.full(ts["t_s"].size, NODES)
    for _node, crashed, back in spells:
        expected -= _rows(ts, crashed, back)
    np.testing.assert_array_equal(ts["nodes_up"], expected)
    assert ts["nodes_up"].min() < NODES
    # connections are held only on nodes up, within their caps
    assert np.all(ts["connections"] >= 0)
    assert np.all(ts["connections"] <= ts["nodes_up"] * CAP)
    assert s["peak_concurrent"] <= NODES * CAP
    assert ts["concurrent"].max() <= s["peak_concurrent"]


def test_crash_restart_and_warm_up_tick_by_tick(monkeypatch: pytest.MonkeyPatch) -> None:
    """An Engine stepped by its own ticker, the fleet read after every tick's restarts (exactly
    what the health monitor then sees): the crash rule replayed, the caps during warm-up."""
    restart_s, warmup_s, crash_after_s, tick = 29.5, 20.0, 10.0, 1.0
    cfg = _config(
        (
            f"platform.crash_after_s={crash_after_s}",
            "platform.cpu_per_listener=0.02",
            f"platform.restart_s={restart_s}",
            f"platform.warmup_s={warmup_s}",
        )
    )
    p = cfg.platform
    eng = Engine(cfg)
    params = np.array(
        [p.cpu_cores, p.cpu_per_join_worker, p.cpu_per_listener, p.memory_mb,
         p.memory_per_connection_mb]
    )  # fmt: skip
    seen: list[tuple[float, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    act = eng.restarts.act

    def watched(t: float) -> None:
        act(t)
        f = eng.fleet
        util = np.zeros(f.size)
        utilisation(t, f.free, f.cn, f.up, params, util)
        seen.append((t, f.up.copy(), f.cn.copy(), f.cap.copy(), util))

    monkeypatch.setattr(eng.restarts, "act", watched)
    result = eng.run()
    assert not result.summary["engine_failed"]
    t_s = np.array([x[0] for x in seen])
    up = np.array([x[1] for x in seen])
    cn = np.array([x[2] for x in seen])
    cap = np.array([x[3] for x in seen])
    util = np.array([x[4] for x in seen])
    assert np.all(cn <= cap), "a node holds more connections than its cap"

    # the crash rule: overloaded (>= overload_share) at crash_after_s / tick tick ends in a row
    run = np.zeros(up.shape[1], dtype=np.int64)
    predicted = set()
    for i, t in enumerate(t_s):
        over = util[i] >= p.overload_share
        run = np.where(over, run + 1, 0)
        for node in np.flatnonzero(run * tick >= crash_after_s - 1e-9):
            predicted.add((float(t), int(node)))
            run[node] = 0
    observed = {(e["t_s"], int(e["target"].split()[1])) for e in _of_kind(result.events, "crash")}
    assert observed, "no crash"
    assert observed == predicted

    # restarts at the first tick end >= t + 29.5 s, i.e. t + 30; down in between
    spells = _walk_crashes_and_restarts(result.events, restart_s, tick)
    assert all(back - crashed == 30.0 for _, crashed, back in spells)
    expected_up = np.ones_like(up)
    expected_up[:, p.nodes :] = 0
    for node, crashed, back in spells:
        expected_up[(t_s > crashed) & (t_s < back), node] = 0
    np.testing.assert_array_equal(up, expected_up)

    # warm-up: the cap for the tick that starts at t is the share of the warm-up done by its end,
    # so from the restart tick on 50, 100, ..., 1000 (reached warmup_s after the restart)
    crashes_of = {n: sorted(c for m, c, _ in spells if m == n) for n, _, _ in spells}
    ramped = 0
    for node, _crashed, back in spells:
        nxt = min([c for c in crashes_of[node] if c > back], default=math.inf)
        window = (t_s >= back) & (t_s <= nxt)
        done = np.minimum(1.0, (t_s[window] - back + tick) / warmup_s)
        np.testing.assert_array_equal(cap[window, node], np.floor(p.connections_per_node * done))
        ramped += int((done < 1.0).sum())
    assert ramped > 0
    never = [n for n in range(p.nodes) if n not in crashes_of]
    assert np.all(cap[:, never] == p.connections_per_node)


def test_warm_up_changes_the_run() -> None:
    cold, warm = _run(CRASH).summary, _run(WARM).summary
    assert _stable(cold) != _stable(warm)
    # a restarted node with a cap still ramping turns attempts away as full
    assert cold["rejected"]["full"] == 0 < warm["rejected"]["full"]


def test_utilisation_kernel_by_hand() -> None:
    # params: cpu_cores, cpu_per_join_worker, cpu_per_listener, memory_mb, memory_per_connection_mb
    params = np.array([4.0, 1.0, 0.1, 100.0, 3.0])
    t = 1.0
    free = np.array(
        [
            [0.5, 2.0],  # one busy worker (free at 2.0 > t); free at 0.5 is idle
            [1.0, 1.0],  # free exactly at t: idle (busy means free > t)
            [5.0, 5.0],  # both busy
            [9.0, 9.0],  # down: 0 whatever it holds
        ]
    )
    cn = np.array([10, 30, 0, 500], dtype=np.int64)
    up = np.array([1, 1, 1, 0], dtype=np.int64)
    out = np.full(4, -1.0)
    utilisation(t, free, cn, up, params, out)
    expected = [
        max((1 * 1.0 + 10 * 0.1) / 4, 10 * 3.0 / 100),  # cpu 0.5 > memory 0.3
        max((0 * 1.0 + 30 * 0.1) / 4, 30 * 3.0 / 100),  # memory 0.9 > cpu 0.75
        max((2 * 1.0 + 0 * 0.1) / 4, 0.0),  # cpu 0.5 from the workers alone
        0.0,
    ]
    np.testing.assert_allclose(out, expected)
    np.testing.assert_allclose(out, [0.5, 0.9, 0.5, 0.0])


# ---------------------------------------------------------------------------------------------
# operator actions (default scenario: the surge peaks at 60 s; 16 nodes of 1000 connections)


def _operator_events(r: RunResult, do: str) -> list[dict[str, Any]]:
    return [e for e in r.events if e["kind"] == "operator" and e["target"] == do]


def test_cap_listeners_caps_the_connections_and_rejects_as_cap() -> None:
    r, base = _run(CAP_LISTENERS), _run(())
    ts = r.timeseries
    assert [e["t_s"] for e in _operator_events(r, "cap_listeners")] == [50.0, 200.0]
    assert base.timeseries["connections"].max() > 3000  # the cap matters
    capped = _rows(ts, 50 + 1.0, 200)  # from the tick after the action
    assert ts["connections"][capped].max() <= 3000
    assert ts["connections"][capped].max() >= 2900  # ... and binds
    assert ts["rejected_cap"][_rows(ts, -1, 50)].sum() == 0
    assert ts["rejected_cap"][capped].sum() > 0
    assert ts["rejected_cap"][_rows(ts, 200)].sum() == 0  # value: null lifts it


def test_waiting_room_switch_holds_people_and_replaces_the_bucket() -> None:
    r, base = _run(WAITING_ROOM), _run(())
    ts = r.timeseries
    assert len(_operator_events(r, "waiting_room")) == 1
    before, after = _rows(ts, -1, 90), _rows(ts, 90)
    assert ts["held"][before].max() == 0
    assert ts["rejected_bucket"][before].sum() > 0
    assert ts["rejected_bucket"][after].sum() == 0  # the token bucket is gone
    assert ts["held"][_rows(ts, 91, 120)].min() > 0  # people hear hold music
    # released at 50/s: at most 50 (+1 at the edge) admitted a tick
    assert ts["admitted"][_rows(ts, 91)].max() <= 51
    # held longer than max_wait_s = 5 s: they leave the hold queue (hold_timeout)
    assert ts["rejected_hold_timeout"][before].sum() == 0
    assert ts["rejected_hold_timeout"][_rows(ts, 95, 120)].min() > 0
    assert base.summary["rejected"]["hold_timeout"] == 0
    assert r.summary["rejected"] != base.summary["rejected"]


def test_add_nodes_brings_count_nodes_up_after_for_s() -> None:
    r = _run(ADD)
    ts = r.timeseries
    ups = [e for e in r.events if e["kind"] == "operator" and e["detail"] == "up"]
    assert [e["t_s"] for e in ups] == [120.0] * 4
    assert sorted(e["target"] for e in ups) == [f"node {i}" for i in range(16, 20)]
    assert np.all(ts["nodes_up"][_rows(ts, -1, 120)] == NODES)
    assert np.all(ts["nodes_up"][_rows(ts, 120)] == NODES + 4)


def test_drain_nodes_takes_them_out_for_for_s_and_keeps_their_listeners() -> None:
    r = _run(DRAIN)
    s, ts = r.summary, r.timeseries
    assert np.all(ts["nodes_up"][_rows(ts, -1, 90)] == NODES)
    assert np.all(ts["nodes_up"][_rows(ts, 90, 120)] == NODES - 4)
    assert np.all(ts["nodes_up"][_rows(ts, 120)] == NODES)
    assert s["dropped"] == s["reconnects"] == s["crashes"] == 0
    # during the surge the room keeps filling: nobody was cut off when the nodes were drained
    assert ts["connections"][_row(ts, 91)] >= ts["connections"][_row(ts, 90)]


def test_crash_nodes_drops_their_listeners_who_reconnect() -> None:
    r = _run(CRASH_NODES)
    s, ts = r.summary, r.timeseries
    crashes = _of_kind(r.events, "crash")
    assert len(crashes) == 4 and all(e["t_s"] == 90.0 for e in crashes)
    assert all(e["detail"].startswith("operator") for e in crashes)
    assert s["dropped"] > 0 and s["reconnects"] > 0
    assert ts["dropped"][_row(ts, 91)] == s["dropped"]  # counted in the next tick
    # they reconnect after reconnect_min_s (1 s) + Exp(reconnect_mean_s = 5 s): none in the
    # tick [90, 91); the mean delay, from the rows' midpoints, is 6 s within 5 standard errors
    # (5 / sqrt(dropped)) and the binning error (< 0.05 s for 1 s bins)
    k = ts["reconnects"]
    assert k[_row(ts, 91)] == 0 < k[_row(ts, 92)]
    delay = float(((ts["t_s"] - 0.5 - 90) * k).sum() / k.sum())
    assert abs(delay - 6.0) <= 5 * 5 / math.sqrt(s["dropped"]) + 0.05, delay
    assert ts["connections"][_row(ts, 91)] < ts["connections"][_row(ts, 90)] - 1000
    # down for platform.restart_s (60 s), then back
    assert np.all(ts["nodes_up"][_rows(ts, 90, 150)] == NODES - 4)
    assert np.all(ts["nodes_up"][_rows(ts, 150)] == NODES)
    _walk_crashes_and_restarts(r.events, 60.0, 1.0)


def test_end_room_takes_every_node_down_for_for_s() -> None:
    r = _run(END_ROOM)
    ts = r.timeseries
    during, outside = _rows(ts, 90, 150), ~_rows(ts, 90, 150)
    assert np.all(ts["nodes_up"][during] == 0)
    assert np.all(ts["nodes_up"][outside] == NODES)
    assert ts["concurrent"][_row(ts, 91)] == ts["connections"][_row(ts, 91)] == 0
    assert ts["rejected_down"][during].min() > 0
    assert ts["rejected_down"][outside].sum() == 0
    assert ts["joining"][during].sum() == 0
    assert ts["joining"][_rows(ts, 150, 200)].sum() > 0  # the relaunched room fills again
    # those who come back come to the relaunched room: reconnect_min_s (1 s) after it at the
    # earliest, i.e. from the tick [151, 152) on
    assert ts["reconnects"][_rows(ts, -1, 151)].sum() == 0
    assert ts["reconnects"][_rows(ts, 151, 160)].sum() > 0


DRAIN_THEN_END = (
    actions(
        "{t_s: 80, do: drain_nodes, count: 4, for_s: 30}",  # back at 110, were it not for the end
        "{t_s: 90, do: end_room, for_s: 60, share: 0.5}",
    ),
)
CRASH_THEN_END = (
    actions(
        "{t_s: 80, do: crash_nodes, count: 4}",  # back at 140 (restart_s = 60), ditto
        "{t_s: 90, do: end_room, for_s: 60, share: 0.5}",
    ),
)


@pytest.mark.parametrize("overrides", [DRAIN_THEN_END, CRASH_THEN_END], ids=["drained", "down"])
def test_end_room_keeps_the_nodes_out_already_out_until_the_relaunch(
    overrides: tuple[str, ...],
) -> None:
    ts = _run(overrides).timeseries
    assert np.all(ts["nodes_up"][_rows(ts, 90, 150)] == 0)
    assert ts["joining"][_rows(ts, 90, 150)].sum() == 0
    assert np.all(ts["nodes_up"][_rows(ts, 150)] == NODES)


def test_end_room_drops_the_listeners_of_drained_nodes_too() -> None:
    """``end_room``: "every node crashes, a share of the listeners come back to the room
    relaunched for_s later". A drained node holds listeners of the room (a drain keeps them):
    when the room ends they are dropped like everyone else's, not kept through the relaunch."""
    r = _run(DRAIN_THEN_END)
    ts = r.timeseries
    assert ts["connections"][_row(ts, 91)] == 0
    assert ts["concurrent"][_row(ts, 91)] == 0
    assert r.summary["dropped"] >= ts["concurrent"][_row(ts, 90)]


# ---------------------------------------------------------------------------------------------
# the autoscaler


def _orders(r: RunResult) -> list[tuple[float, float, int]]:
    """``(t_s, utilisation, nodes)`` of every order."""
    out = []
    for e in r.events:
        if e["kind"] == "scale" and e["target"] == "fleet":
            m = re.fullmatch(
                r"utilisation ([\d.]+|inf) > ([\d.]+): (\d+) nodes ordered", e["detail"]
            )
            assert m, e
            out.append((e["t_s"], float(m.group(1)), int(m.group(3))))
    return out


def test_autoscaler_orders_nodes_that_come_up_after_the_delay() -> None:
    r = _run(AUTOSCALE)
    cfg = _config(AUTOSCALE).autoscaler
    ts = r.timeseries
    orders = _orders(r)
    assert orders, "nothing ordered under a surge on 4 nodes"
    ups = [e for e in r.events if e["kind"] == "scale" and e["target"] != "fleet"]
    assert all(e["detail"] == "up" for e in ups)
    # each order's nodes come up provisioning_delay_s later (orders are on the 10 s grid)
    expected_ups = sorted(t + cfg.provisioning_delay_s for t, _, n in orders for _ in range(n))
    assert sorted(e["t_s"] for e in ups) == expected_ups
    added = sorted(int(e["target"].split()[1]) for e in ups)
    assert added == list(range(4, 4 + len(ups)))
    expected = np.full(ts["t_s"].size, 4)
    for t, _, n in orders:
        expected += n * _rows(ts, t + cfg.provisioning_delay_s)
    np.testing.assert_array_equal(ts["nodes_up"], expected)
    for t, util, _ in orders:
        assert util > cfg.target_utilisation
        assert t % cfg.interval_s == 0
    gaps = np.diff([t for t, _, _ in orders])
    assert np.all(gaps >= cfg.cooldown_s), gaps
    # never above max_nodes, and the ceiling is reached (so it is what stopped the orders)
    assert ts["nodes_up"].max() == cfg.max_nodes == 4 + sum(n for _, _, n in orders)


def test_autoscaler_and_add_nodes_share_the_fleet() -> None:
    """The fleet has room for max(nodes + added, autoscaler.max_nodes); the autoscaler fills it
    to max_nodes before the operator's nodes arrive. The run must still end (not raise) and the
    operator's nodes come up."""
    r = simulate(_config((*AUTOSCALE, actions("{t_s: 10, do: add_nodes, count: 2, for_s: 150}"))))
    assert not r.summary["engine_failed"]
    ups = [e for e in r.events if e["kind"] == "operator" and e["detail"] == "up"]
    assert [e["t_s"] for e in ups] == [160.0, 160.0]


def test_autoscaler_orders_nothing_while_under_its_target() -> None:
    light = ("autoscaler=target", "scenario.expected_arrivals=1000")  # 16 nodes, ~6% busy
    r = _run(light)
    assert not [e for e in r.events if e["kind"] == "scale"]
    assert np.all(r.timeseries["nodes_up"] == NODES)
    assert r.summary["joined"] > 900


# ---------------------------------------------------------------------------------------------
# the control plane


def test_a_tiny_auth_service_rejects_most_attempts() -> None:
    s = _run(AUTH_TINY).summary  # 1 worker of 0.1 s: 10 joins/s against a 200/s surge
    rejected = s["rejected"]
    others = sum(n for reason, n in rejected.items() if reason != "auth")
    assert rejected["auth"] > others
    assert rejected["auth"] > 0.5 * s["attempts"]
    assert _run(("admission=none",)).summary["rejected"]["auth"] == 0


def test_join_latency_includes_the_auth_time() -> None:
    plain = _run(()).summary
    # enough workers that nobody waits: each join takes an extra Exp(0.5 s) in the control plane
    authed = _run(("platform.auth_workers=1000", "platform.auth_service_mean_s=0.5")).summary
    assert authed["rejected"]["auth"] == 0
    assert authed["join_latency_p50_s"] > plain["join_latency_p50_s"] + 0.2
    assert authed["join_latency_p50_s"] >= 0.5 * math.log(2) - 0.02  # the auth time's median


# ---------------------------------------------------------------------------------------------
# determinism


def _same_run(a: RunResult, b: RunResult) -> bool:
    if _stable(a.summary) != _stable(b.summary) or a.events != b.events:
        return False
    if a.timeseries.keys() != b.timeseries.keys():
        return False
    return all(
        np.array_equal(a.timeseries[k], b.timeseries[k], equal_nan=True) for k in a.timeseries
    )


def test_same_seed_same_run_with_every_dynamic() -> None:
    first = _run(EVERYTHING)
    s = first.summary
    assert s["crashes"] > 0 and _orders(first) and _operator_events(first, "end_room")
    again = simulate(_variant(_config(EVERYTHING), 0, 1.0))
    assert _same_run(first, again)
    other = _run(EVERYTHING, seed=1)
    assert _stable(other.summary) != _stable(s)


# ---------------------------------------------------------------------------------------------
# convergence as the tick shrinks
#
# Between-tick components act at tick ends: overload is sampled at tick ends and counted from the
# start of the first overloaded tick, a crash happens at a tick end, a restart waits for the next
# tick end. Each is an O(tick) displacement in time, so the results should converge as the tick
# shrinks. The scenario is the overload crash one with the CPU of the join workers set to 0: the
# busy-worker term of the utilisation flips on the scale of the service time (1/6 s), and with it
# the overload streak, so with cpu_per_join_worker = 1 the results keep moving until the tick is
# well under 1/6 s (peak_concurrent means of 5575, 5799, 6068, 6438 at 2, 1, 0.5, 0.25 s over 6
# seeds); with it 0, overload follows the connection count, which moves on the scale of seconds.
# 0.03 cores per listener and 60 s sessions keep the run short (arrivals end at 300 s; the health
# monitor ticks until the last listener left) while all 16 nodes still crash.

CONVERGE = (
    "platform.crash_after_s=10",
    "platform.cpu_per_listener=0.03",
    "platform.cpu_per_join_worker=0",
    "platform.restart_s=30",
    "scenario.session_mean_s=60",
)
STILL = CONVERGE[1:]  # the same room without crashes: nothing acts between ticks
TICKS = (2.0, 1.0, 0.5, 0.25)
SEEDS = (1, 2, 3, 4, 5, 6)
METRICS = ("joined_share", "peak_concurrent", "dropped", "mean_crash_s")


def _metrics(r: RunResult) -> list[float]:
    s = r.summary
    crash_t = [e["t_s"] for e in _of_kind(r.events, "crash")]
    return [
        s["joined"] / (s["arrivals"] + s["reconnects"]),
        s["peak_concurrent"],
        s["dropped"],
        float(np.mean(crash_t)) if crash_t else math.nan,
    ]


@pytest.fixture(scope="module")
def by_tick() -> dict[float, np.ndarray]:
    """``{tick_s: array (seed, metric)}``."""
    return {
        tick: np.array([_metrics(_run(CONVERGE, seed, tick)) for seed in SEEDS]) for tick in TICKS
    }


def test_results_converge_as_the_tick_shrinks(by_tick: dict[float, np.ndarray]) -> None:
    assert np.all(by_tick[1.0][:, METRICS.index("dropped")] > 0)  # the nodes do crash
    # d[k]: the change of the mean over the seeds from TICKS[k] to TICKS[k + 1]. The seeds are
    # the same at every tick, so the differences are paired: their standard error is
    # sd(per-seed differences) / sqrt(n).
    d, se = [], []
    for a, b in itertools.pairwise(TICKS):
        diff = by_tick[b] - by_tick[a]
        d.append(diff.mean(axis=0))
        se.append(diff.std(axis=0, ddof=1) / math.sqrt(len(SEEDS)))
    d_, se_ = np.array(d), np.array(se)
    report = {
        m: (d_[:, i].round(4).tolist(), se_[:, i].round(4).tolist()) for i, m in enumerate(METRICS)
    }
    outcome = [METRICS.index(m) for m in ("joined_share", "peak_concurrent", "dropped")]
    # The outcomes: at the finest pair the mean difference is noise, |d| <= 5 standard errors
    # (t with 5 degrees of freedom: P(|T| > 5) ~ 0.4% for a difference that is only noise) ...
    assert np.all(np.abs(d_[-1, outcome]) <= 5 * se_[-1, outcome] + 1e-12), report
    # ... and less than the change between the coarsest pair
    assert np.all(np.abs(d_[-1, outcome]) < np.abs(d_[0, outcome])), report
    # The crash times are not noise but quantised: an overload is seen at the first tick end
    # after it starts and counted from that tick's start, so a crash comes between 0 and 1 tick
    # early, half a tick on average; halving the tick delays it by a quarter of the coarser tick
    # on average. The change shrinks with the tick, and matches TICKS[k] / 4 within 5 standard
    # errors (+ 0.05 s for the cascade: a crash moves the load onto the other nodes).
    t = METRICS.index("mean_crash_s")
    assert d_[0, t] > d_[1, t] > d_[2, t] > 0, report
    for k, tick in enumerate(TICKS[:-1]):
        assert abs(d_[k, t] - tick / 4) <= 5 * se_[k, t] + 0.05, (tick, report)


def test_the_tick_only_matters_when_something_acts_between_ticks(
    by_tick: dict[float, np.ndarray],
) -> None:
    # without a between-tick component the tick is moot (tests/test_engine.py): identical runs
    for seed in SEEDS[:2]:
        coarse, fine = _run(STILL, seed, 2.0).summary, _run(STILL, seed, 0.25).summary
        grid = (*VOLATILE, *TICK_GRID)
        assert _stable(coarse, grid) == _stable(fine, grid)
    # with crashes every seed's run depends on it
    assert np.all(np.any(by_tick[2.0] != by_tick[1.0], axis=1))


def test_the_tail_after_a_crash_counts_only_the_connections_still_held() -> None:
    """Once only departures are left (the vectorised tail), every connection held is a listener
    connected: the release records a crash made stale must not be counted as held."""
    r = _run((actions("{t_s: 90, do: crash_nodes, count: 4}"),))
    ts = r.timeseries
    last_attempt = ts["t_s"][np.flatnonzero(ts["attempts"])[-1]]
    tail = ts["t_s"] > last_attempt + 120  # every join long done
    assert tail.sum() > 100 and r.summary["dropped"] > 0
    assert (ts["waiting"][tail] == 0).all()
    np.testing.assert_array_equal(ts["connections"][tail], ts["concurrent"][tail])
