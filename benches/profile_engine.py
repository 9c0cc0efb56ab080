#!/usr/bin/env python
"""Where churn-engine's time and memory go, stage by stage.

Runs ``Scorer().run`` on a cached Parquet log of ``benches/peers.py`` (or
generates one), in memory (a pyarrow Table loaded first) or from the path,
and prints for each stage of ``ScoreResult.stats.timings``: wall time, RSS
at its start its peak RSS above the loaded input (the kernel's
high-water mark is reset at every stage through ``/proc/self/clear_refs``)
and its minor page faults (first touches of freshly allocated memory),
then the top of a cProfile of one more run.

Usage::

    PYTHONPATH=src python benches/profile_engine.py --customers 1000000 [--string-ids]
        [--parquet] [--repeat 3] [--top 25]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import itertools
import pstats
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import peers


def _faults() -> int:
    """Minor page faults of this process so far (first touches of fresh memory)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--string-ids", action="store_true")
    parser.add_argument("--parquet", action="store_true", help="score the path, not a table")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--top", type=int, default=25, help="cProfile lines to show")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", type=Path, default=peers.DEFAULT_DATA_DIR)
    args = parser.parse_args()

    peers.ensure_engine_importable()
    import pyarrow.parquet as pq

    import churn_engine

    path = peers.ensure_data(args.data_dir, args.customers, args.string_ids, args.seed)
    data: object = str(path)
    input_bytes = 0
    if not args.parquet:
        data = pq.read_table(path, columns=peers.COLUMNS)
        input_bytes = data.nbytes  # type: ignore[attr-defined]
    gc.collect()
    loaded = peers.rss_bytes()
    scorer = churn_engine.Scorer()

    best = None
    first_marks: list[tuple[str, float, int, int, int]] = []
    for _ in range(args.repeat):
        marks: list[tuple[str, float, int, int, int]] = []

        def progress(stage: str, marks: list[tuple[str, float, int, int, int]] = marks) -> None:
            marks.append(
                (stage, time.perf_counter(), peers.rss_bytes(), peers.peak_rss_bytes(), _faults())
            )
            peers.reset_peak_rss()

        gc.collect()
        peers.reset_peak_rss()
        start = time.perf_counter()
        result = scorer.run(data, progress=progress)
        end = time.perf_counter()
        marks.append(("end", end, peers.rss_bytes(), peers.peak_rss_bytes(), _faults()))
        out_bytes = result.customers.estimated_size()
        total = end - start
        if not first_marks:
            first_marks = marks
        if best is None or total < best[0]:
            best = (total, marks, dict(result.stats.timings), out_bytes)
        del result

    assert best is not None
    total, _marks, timings, out_bytes = best
    mb = peers.MB
    print(
        f"{path.name}: {'Parquet path' if args.parquet else 'pyarrow Table'}, "
        f"input {input_bytes / mb:.0f} MB, output frame {out_bytes / mb:.0f} MB, "
        f"best of {args.repeat}: {total:.3f} s"
    )
    print("wall s from the best run; RSS, peak and page faults from the first run (a fresh "
          "process: later runs reuse memory the allocators kept)")  # fmt: skip
    print(f"{'stage':<12} {'wall s':>8} {'share':>6} {'RSS at start MB':>16} "
          f"{'peak above input MB':>20} {'page faults':>12}")  # fmt: skip
    for (stage, _t, rss, _h, f0), (_n, _t2, _r2, peak_after, f1) in itertools.pairwise(first_marks):
        seconds = timings.get(stage, float("nan"))
        print(f"{stage:<12} {seconds:>8.3f} {seconds / total:>6.0%} {(rss - loaded) / mb:>16.0f} "
              f"{(peak_after - loaded) / mb:>20.0f} {f1 - f0:>12,}")  # fmt: skip
    print(f"{'total':<12} {total:>8.3f}")

    gc.collect()
    prof = cProfile.Profile()
    prof.enable()
    scorer.run(data)
    prof.disable()
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(args.top)
    print("\ncProfile of one more run, by own time (tottime):")
    print("\n".join(line for line in text.getvalue().splitlines() if line.strip()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
