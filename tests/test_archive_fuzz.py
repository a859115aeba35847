"""Untrusted archives: truncated, bit-flipped, foreign or crafted files read back consistently or
raise ``ArchiveError`` (a ``ValueError`` naming the file), never another exception, a hang or a
crash; nothing is ever unpickled."""

from __future__ import annotations

import faulthandler
import json
import pickle
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import pytest

from sim.archive import (
    ArchiveError,
    merge_sweep,
    open_archive,
    read_config,
    read_events,
    read_record,
    read_summary,
    read_timeseries,
    write_run,
)
from sim.archive.inspect import describe
from tests.test_archive import record

ROOT = Path(__file__).resolve().parent.parent
HANG_S = 60  # a read that takes longer has hung: dump the stacks and stop


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """A real run file and a real sweep of two runs, written by the writer and the merge."""
    root = tmp_path_factory.mktemp("archives")
    write_run(root / "run", record(job_num=None))
    for i in range(2):
        write_run(root / "sweep" / str(i), record(seed=i + 1, job_num=i))
    merge_sweep(root / "sweep")
    return {
        "run": (root / "run" / "run.h5").read_bytes(),
        "sweep": (root / "sweep" / "sweep.h5").read_bytes(),
    }


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    faulthandler.dump_traceback_later(HANG_S, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


def read_everything(path: Path) -> None:
    """Read all of an archive through the public API, checking what comes back is whole."""
    table = read_summary(path)
    assert isinstance(table, pd.DataFrame) and {"run", "status"} <= set(table.columns)
    with open_archive(path) as a:
        ids = a.run_ids()
        assert isinstance(a.problems(), list)
    assert len(table) == len(ids)
    ts = read_timeseries(path)
    assert isinstance(ts, pd.DataFrame) and "run" in ts.columns
    events = read_events(path)
    assert list(events.columns) == ["run", "t_s", "kind", "target", "detail"]
    for run in ids:
        assert isinstance(read_config(path, run), dict)
        rec = read_record(path, run)
        assert rec["run"] == run and isinstance(rec["summary"], dict)
    info = describe(path)
    json.dumps(info)  # JSON-ready
    assert len(info["runs"]) == len(ids)


def outcome(path: Path) -> str:
    """``ok`` or ``ArchiveError``; any other exception fails the test, naming the case."""
    try:
        read_everything(path)
    except ArchiveError as exc:
        assert str(path) in str(exc), exc
        return "ArchiveError"
    except Exception as exc:  # pragma: no cover - what the fuzz looks for
        pytest.fail(f"{path.name}: {type(exc).__name__}: {exc}")
    return "ok"


def cut_points(n: int) -> list[int]:
    """20 lengths: empty, inside the superblock, around the first objects, halfway, one short."""
    fixed = [0, 1, 4, 8, 12, 24, 48, 64, 96, 512, 1024, 2048, 4096, 6000]
    spread = [n * k // 8 for k in range(2, 8)]
    return sorted({c for c in fixed + spread + [n - 1] if c < n})[:20]


@pytest.mark.parametrize("kind", ["run", "sweep"])
def test_truncated_copies_are_refused(kind: str, sources: dict[str, bytes], tmp_path: Path) -> None:
    data = sources[kind]
    seen = []
    for cut in cut_points(len(data)):
        p = tmp_path / f"{kind}_cut{cut}.h5"
        p.write_bytes(data[:cut])
        seen.append(outcome(p))
    assert len(seen) >= 18 and set(seen) == {"ArchiveError"}


@pytest.mark.parametrize(("kind", "seed"), [("run", 1), ("sweep", 2)])
def test_bit_flipped_copies_read_or_are_refused(
    kind: str, seed: int, sources: dict[str, bytes], tmp_path: Path
) -> None:
    data = sources[kind]
    rng = random.Random(seed)
    seen = []
    for i in range(40):
        b = bytearray(data)
        # most flips anywhere; every fifth copy in the superblock and the root object
        span = 512 if i % 5 == 0 else len(b)
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(span)] ^= 1 << rng.randrange(8)
        p = tmp_path / f"{kind}_flip{i}.h5"
        p.write_bytes(bytes(b))
        seen.append(outcome(p))
    assert "ArchiveError" in seen


def test_foreign_and_unknown_version_files_are_refused(
    sources: dict[str, bytes], tmp_path: Path
) -> None:
    (tmp_path / "text.h5").write_text("not hdf5 at all\n")
    (tmp_path / "zeros.h5").write_bytes(bytes(4096))
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.create_dataset("x", data=np.arange(3))
    for name, version in [("v2", "2.0.0"), ("v9", "9.1.0"), ("junk", "one"), ("empty", "")]:
        p = tmp_path / f"{name}.h5"
        p.write_bytes(sources["run"])
        with h5py.File(p, "r+") as f:
            f.attrs["schema_version"] = version
    p = tmp_path / "intversion.h5"
    p.write_bytes(sources["run"])
    with h5py.File(p, "r+") as f:
        f.attrs["schema_version"] = 2
    for p in sorted(tmp_path.glob("*.h5")):
        assert outcome(p) == "ArchiveError", p.name
    with pytest.raises(ArchiveError, match=r"v2\.h5: schema version 2\.0\.0 is not supported"):
        read_summary(tmp_path / "v2.h5")


def _crafted(path: Path, sources: dict[str, bytes], edit: Any) -> Path:
    path.write_bytes(sources["run"])
    with h5py.File(path, "r+") as f:
        edit(f)
    return path


def test_attributes_and_datasets_of_unexpected_types_are_refused(
    sources: dict[str, bytes], tmp_path: Path
) -> None:
    payload = np.void(pickle.dumps({"boom": 1}))

    def vlen_units(f: h5py.File) -> None:  # the type a bit flip made, which crashed HDF5
        d = f["timeseries/t_s"]
        del d.attrs["units"]
        values = np.empty(1, dtype=object)
        values[0] = np.array([1, 2], dtype=np.int32)
        d.attrs.create("units", data=values, dtype=h5py.vlen_dtype(np.int32))

    def opaque_status(f: h5py.File) -> None:
        f.attrs["status"] = payload

    def opaque_column(f: h5py.File) -> None:
        del f["timeseries/attempts"]
        f["timeseries"].create_dataset("attempts", data=np.array([payload] * 4))

    def reference_yaml(f: h5py.File) -> None:
        f["config"].attrs.create("yaml", data=f["summary"].ref, dtype=h5py.ref_dtype)

    def long_double_summary(f: h5py.File) -> None:
        del f["summary"]
        f.create_dataset("summary", data=np.zeros(1, dtype=[("arrivals", np.longdouble)]))

    def two_d_series(f: h5py.File) -> None:
        del f["timeseries/t_s"]
        f["timeseries"].create_dataset("t_s", data=np.zeros((2, 2)))

    def bad_yaml(f: h5py.File) -> None:
        f["config"].attrs["yaml"] = "a: [unclosed\n  b: {"

    edits = [vlen_units, opaque_status, opaque_column, reference_yaml, long_double_summary]
    edits += [two_d_series, bad_yaml]
    for edit in edits:
        p = _crafted(tmp_path / f"{edit.__name__}.h5", sources, edit)
        assert outcome(p) == "ArchiveError", edit.__name__


def test_nothing_is_ever_unpickled(
    sources: dict[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("something was unpickled")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(np, "load", refuse)
    for kind, data in sources.items():
        (tmp_path / f"{kind}.h5").write_bytes(data)
        read_everything(tmp_path / f"{kind}.h5")
    for source in sorted((ROOT / "sim" / "archive").glob("*.py")):
        text = source.read_text()
        assert "pickle" not in text and "allow_pickle" not in text, source.name


def test_the_cli_reports_damaged_files_in_one_line(
    sources: dict[str, bytes], tmp_path: Path
) -> None:
    data = sources["sweep"]
    cases = {
        "empty.h5": b"",
        "superblock.h5": data[:40],
        "half.h5": data[: len(data) // 2],
        "text.h5": b"hello, not an archive\n",
    }
    flipped = bytearray(data)
    for at in range(0, 512, 7):  # the superblock and root object header, well mangled
        flipped[at] ^= 0x5A
    cases["flipped.h5"] = bytes(flipped)
    unknown = tmp_path / "unknown.h5"
    unknown.write_bytes(sources["run"])
    with h5py.File(unknown, "r+") as f:
        f.attrs["schema_version"] = "3.0.0"
    for name, blob in cases.items():
        (tmp_path / name).write_bytes(blob)
    exe = str(Path(sys.executable).with_name("spacesim"))
    names = [*cases, unknown.name]
    procs = {
        name: subprocess.Popen(
            [exe, "inspect", str(tmp_path / name)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in names
    }
    for name, proc in procs.items():
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 2, (name, err)
        assert out == "" and "Traceback" not in err, (name, err)
        lines = err.strip().splitlines()
        assert len(lines) == 1 and str(tmp_path / name) in lines[0], (name, err)
        assert lines[0].startswith("spacesim inspect: "), (name, err)
