"""The fan-out, presence and attack configuration: a bad value of every parameter is refused.

Each case names the key, the value as the message shows it and words of the allowed part; the
boundary values are accepted (``sim.config.FanoutConfig``, ``PresenceConfig``, ``AttackConfig``).
"""

from __future__ import annotations

import pytest

from sim.hydra_app import check_overrides
from tests.conftest import typed_config
from tests.test_config import _bad

FLOOD, VOLUME = "attack=join_flood", "attack=volumetric"


BAD = [
    _bad("platform.fanout.speakers=14", "14", "[1, 13]"),
    _bad("platform.fanout.speakers=0", "0", "[1, 13]"),
    _bad("platform.fanout.speaker_kbps=0", "0.0", "> 0"),
    _bad("platform.fanout.sfu_streams=0", "0", ">= 1"),
    _bad("platform.fanout.sfu_mbps=-1", "-1.0", "> 0"),
    _bad("platform.fanout.segment_s=0", "0.0", "> 0"),
    _bad("platform.fanout.bitrate_kbps=0", "0.0", "> 0"),
    _bad("platform.fanout.playlist_bytes=0", "0.0", "> 0"),
    _bad("platform.fanout.playlist_polls_per_segment=-1", "-1.0", ">= 0"),
    _bad("platform.fanout.ladder_kbps=[64,96]", "96.0", "< the one before (64.0)",
         key="platform.fanout.ladder_kbps[1]"),
    _bad("platform.fanout.ladder_kbps=[128]", "128.0", "< the one before (96.0)",
         key="platform.fanout.ladder_kbps[0]"),
    _bad("platform.fanout.degrade=true", "True", "a ladder_kbps"),
    _bad("platform.fanout.stall_reconnect_s=0", "0.0", "> 0"),
    _bad("platform.fanout.stall_reconnect_share=1.5", "1.5", "[0, 1]"),
    _bad("platform.fanout.edge.requests_per_s=0", "0.0", "> 0"),
    _bad("platform.fanout.edge.egress_gbps=-1", "-1.0", "> 0"),
    _bad("platform.fanout.edge.ingress_gbps=0", "0.0", "> 0"),
    _bad("platform.fanout.relay.hit_ratio=1.1", "1.1", "[0, 1]"),
    _bad("platform.fanout.relay.nodes=0", "0", ">= 1"),
    _bad("platform.fanout.origin.egress_gbps=0", "0.0", "> 0"),
    _bad("platform.presence.mode=gossip", "'gossip'", "aggregate, broadcast"),
    _bad("platform.presence.on_saturation=panic", "'panic'", "delay_joins, drop_connections"),
    _bad("platform.presence.interval_s=0", "0.0", "> 0"),
    _bad("platform.presence.capacity_msgs_per_s=0", "0.0", "> 0"),
    _bad("platform.presence.max_lag_s=-1", "-1.0", ">= 0"),
    _bad("platform.presence.drop_share_per_s=2", "2.0", "[0, 1]"),
    _bad("attack.bot_retry_s=0", "0.0", "> 0", FLOOD),
    _bad("attack.bot_max_attempts=0", "0", ">= 1", FLOOD),
    _bad("attack.target=core", "'core'", "ingress, egress", VOLUME),
    _bad("attack.detect_delay_s=-1", "-1.0", ">= 0", FLOOD),
    _bad("attack.efficacy=1.5", "1.5", "[0, 1]", FLOOD),
    _bad("attack.false_positive=-0.1", "-0.1", "[0, 1]", FLOOD),
    _bad("attack.join_flood=[{t_s: 5, rate_per_s: 10}]", "1", "at least 2",
         key="attack.join_flood"),
    _bad("attack.join_flood=[{t_s: 5, rate_per_s: 10}, {t_s: 5, rate_per_s: 0}]", "5.0",
         "> the previous", key="attack.join_flood[1].t_s"),
    _bad("attack.join_flood=[{t_s: 0, rate_per_s: -1}, {t_s: 5, rate_per_s: 0}]", "-1.0",
         ">= 0", key="attack.join_flood[0].rate_per_s"),
    _bad("attack.join_flood=[{t_s: 0, rate_per_s: 1, shape: exp, tau_s: 3}, {t_s: 5, "
         "rate_per_s: 0}]", "'exp'", "linear", key="attack.join_flood[0].shape"),
    _bad("attack.volumetric=[{t_s: 0, gbps: -3}, {t_s: 5, gbps: 0}]", "-3.0", ">= 0",
         key="attack.volumetric[0].gbps"),
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "key", "value", "allowed"), BAD)
def test_a_bad_value_is_refused_naming_key_value_and_what_is_allowed(
    overrides: list[str], key: str, value: str, allowed: str
) -> None:
    problems = check_overrides(overrides)
    assert problems, f"{overrides} was accepted"
    assert any(f"{key} = {value}; allowed: " in p and allowed in p for p in problems), problems


def test_the_boundary_values_are_accepted() -> None:
    overrides = [
        "platform.fanout.enabled=true", "platform.fanout.speakers=13",
        "platform.fanout.ladder_kbps=[64,32]", "platform.fanout.degrade=true",
        "platform.fanout.playlist_polls_per_segment=0", "platform.fanout.stall_reconnect_share=0",
        "platform.fanout.relay.hit_ratio=0", "platform.fanout.edge.hit_ratio=1",
        "platform.fanout.edge.coalesce=false", "platform.presence.enabled=true",
        "platform.presence.mode=broadcast", "platform.presence.max_lag_s=0",
        "platform.presence.on_saturation=drop_connections", "platform.presence.drop_share_per_s=1",
        "attack=join_flood", "attack.efficacy=0", "attack.false_positive=1",
        "attack.detect_delay_s=0", "attack.bot_max_attempts=1",
    ]  # fmt: skip
    assert check_overrides(overrides) == []


def test_attack_start_and_mitigation_times() -> None:
    cfg = typed_config(["attack=join_flood"]).attack
    assert cfg.start_s() == 60.0  # the ramp from 0 at 60 s
    assert cfg.mitigation_s() == 180.0
    assert typed_config(["attack=none"]).attack.start_s() == float("inf")
    vol = typed_config(["attack=volumetric", "attack.detect_delay_s=null"]).attack
    assert vol.start_s() == 60.0 and vol.mitigation_s() == float("inf")
