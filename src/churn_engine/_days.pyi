"""Type stub of the day-number pass (src/churn_engine/_days.pyx)."""

import numpy as np
import numpy.typing as npt

UNITS: dict[str, int]

def scan_days(
    ts_segments: list[np.ndarray],
    amount_segments: list[npt.NDArray[np.int64]] | None,
    out_days: npt.NDArray[np.int32] | None,
    unit: str,
    threads: int,
) -> tuple[int, int, bool]: ...
