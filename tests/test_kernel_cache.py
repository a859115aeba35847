"""The kernel cache directory: one per version of the kernel sources, old ones pruned."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numba

from sim.kernels import prune


def _make(base: Path, name: str, age_s: float) -> Path:
    d = base / name
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "f.nbi").write_bytes(b"x")
    t = time.time() - age_s
    os.utime(d, (t, t))
    return d


def test_prune_keeps_the_current_the_recent_and_the_newest_others(tmp_path: Path) -> None:
    day = 86_400.0
    current = _make(tmp_path, "0123456789abcdef", 10 * day)
    old = [_make(tmp_path, f"{i:016x}", (i + 2) * day) for i in range(1, 7)]  # 3 .. 8 days old
    fresh = _make(tmp_path, "fedcba9876543210", 60.0)  # used a minute ago
    other = _make(tmp_path, "not-a-digest", 30 * day)  # not ours
    removed = prune(tmp_path, str(current), keep=3)
    # the newest three others are the fresh one and the two youngest old ones
    assert sorted(removed) == sorted(old[2:])
    assert all(d.exists() for d in [current, fresh, other, *old[:2]])
    assert not any(d.exists() for d in old[2:])
    assert prune(tmp_path / "missing", str(current)) == []


def test_the_cache_in_use_is_named_by_the_sources_hash() -> None:
    name = Path(numba.config.CACHE_DIR).name
    assert len(name) == 16 and int(name, 16) >= 0
