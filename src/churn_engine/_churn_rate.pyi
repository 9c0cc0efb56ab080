"""Type stub of the churn-rate sweep (src/churn_engine/_churn_rate.pyx)."""

import numpy as np
import numpy.typing as npt

MAX_HORIZON: int

def sweep(
    offsets: npt.NDArray[np.int64],
    day: npt.NDArray[np.int32],
    series: npt.NDArray[np.int32] | None,
    horizons: npt.NDArray[np.int64],
    window_start: int,
    n_days: int,
) -> dict[str, npt.NDArray[np.int64]]: ...
