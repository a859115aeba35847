"""The audio benchmark: a 1.5 M-listener room over two hours with the fan-out and presence on.

Each run is its own process through the project's command line (``bench_engine.run_once``),

    spacesim run experiment=bench_audio scenario.expected_arrivals=1.9e6 output.archive=false \\
        engine.progress=false hydra.run.dir=DIR

and reports the simulation's wall time (``wall_s``), the whole command's time, the peak of
concurrent listeners and the process's peak resident memory. Runs alternate with the same room
without the fan-out and presence (``platform.fanout.enabled=false platform.presence.enabled=
false``), so the ratio of their wall times, pair by pair, is what the audio path costs.

Usage: python benchmarks/bench_audio.py [--repeat 3] [--arrivals 1.9e6] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_engine import run_once  # the benchmarks are scripts, not a package

AUDIO = ["experiment=bench_audio"]  # conf/experiment/bench_audio.yaml
SILENT = [*AUDIO, "platform.fanout.enabled=false", "platform.presence.enabled=false"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--arrivals", type=float, default=1.9e6)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        run_once(1e4, work, AUDIO)  # compile / fill the kernel cache
        pairs = [
            (run_once(args.arrivals, work, AUDIO), run_once(args.arrivals, work, SILENT))
            for _ in range(args.repeat)
        ]
    audio = [a for a, _ in pairs]
    s = audio[0]["summary"]
    row = {
        "expected_arrivals": args.arrivals,
        "peak_concurrent": s["peak_concurrent"],
        "sim_end_s": s["sim_end_s"],
        "audio_delivered_ratio": s["audio_delivered_ratio"],
        "wall_s_median": statistics.median(r["wall_s"] for r in audio),
        "wall_s_max": max(r["wall_s"] for r in audio),
        "command_s_median": statistics.median(r["command_s"] for r in audio),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in audio),
        "silent_wall_s_median": statistics.median(b["wall_s"] for _, b in pairs),
        "ratio": [a["wall_s"] / b["wall_s"] for a, b in pairs],
    }
    if args.json:
        print(json.dumps(row, indent=2))
        return
    ratios = row["ratio"]
    print(
        f"room of {row['peak_concurrent']:,} listeners over {row['sim_end_s']:.0f} s: "
        f"sim {row['wall_s_median']:.2f} s (max {row['wall_s_max']:.2f}), command "
        f"{row['command_s_median']:.2f} s, peak {row['peak_rss_mb']:.0f} MB; without fan-out "
        f"and presence {row['silent_wall_s_median']:.2f} s: ratio {statistics.median(ratios):.2f}"
        f" [{min(ratios):.2f}, {max(ratios):.2f}]",
        flush=True,
    )


if __name__ == "__main__":
    main()
