"""Type stub of the lifetimes-style summary kernel (src/churn_engine/_summary.pyx)."""

import numpy as np
import numpy.typing as npt

_F64 = npt.NDArray[np.float64]

def period_summary(
    offsets: npt.NDArray[np.int64],
    period: npt.NDArray[np.int32],
    amount: npt.NDArray[np.float64],
    as_of_period: int,
    include_first: bool,
    multiplier: float,
    threads: int,
) -> tuple[_F64, _F64, _F64, _F64]: ...
