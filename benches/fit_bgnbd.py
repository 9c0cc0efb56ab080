"""Time a BG/NBD fit on customers simulated from the model (docs/models.md).

    python benches/fit_bgnbd.py --customers 5000000

Ages T are whole days, uniform on 1..730; recency is cut to whole days, as
in a daily summary (``--continuous`` keeps it exact: fewer repeated triples).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from churn_engine import _bgnbd
from churn_engine.models import BetaGeo

TRUE = {"r": 0.25, "alpha": 40.0, "a": 0.5, "b": 2.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--continuous", action="store_true", help="do not round recency")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    T = rng.integers(1, 731, args.customers).astype(np.float64)
    frequency, recency = _bgnbd.simulate(np.array(list(TRUE.values())), T, rng)
    if not args.continuous:
        recency = np.floor(recency)

    # CPU time too: on a shared machine the wall time mostly measures the neighbours
    wall, cpu = time.perf_counter(), time.process_time()
    model = BetaGeo().fit(frequency, recency, T)
    fitted = time.perf_counter() - wall, time.process_time() - cpu
    wall, cpu = time.perf_counter(), time.process_time()
    model.p_alive(frequency, recency, T)
    model.expected_purchases(30.0, frequency, recency, T)
    predicted = time.perf_counter() - wall, time.process_time() - cpu

    print(f"customers            {args.customers:,}")
    print(f"distinct triples     {model.n_patterns_:,}")
    print(f"fit                  {fitted[0]:.2f} s wall, {fitted[1]:.2f} s CPU")
    print(f"p_alive + expected   {predicted[0]:.2f} s wall, {predicted[1]:.2f} s CPU")
    print("true    ", TRUE)
    print("fitted  ", {k: round(v, 4) for k, v in model.params_.items()})


if __name__ == "__main__":
    main()
