"""Type stub of the compiled funnel kernel (src/churn_engine/_funnel.pyx)."""

import numpy as np
import numpy.typing as npt

N_BEHAVIOURS: int
N_MASKS: int
MAX_USERS: int

def day_histogram(
    out_counts: npt.NDArray[np.int64], day_segments: list[npt.NDArray[np.int32]], min_day: int
) -> None: ...
def funnel_pass(
    out_events: npt.NDArray[np.int64],
    out_day_masks: npt.NDArray[np.int64],
    out_user_masks: npt.NDArray[np.int64],
    out_buy_days: npt.NDArray[np.int64],
    user_segments: list[np.ndarray],
    user_base: int,
    day_segments: list[npt.NDArray[np.int32]],
    behaviour_segments: list[npt.NDArray[np.uint8]],
    day_index: npt.NDArray[np.int32],
    day_offsets: npt.NDArray[np.int64],
    min_day: int,
    n_users: int,
) -> None: ...
def count_distinct(
    out_bits: npt.NDArray[np.uint8], value_segments: list[npt.NDArray[np.int64]], base: int
) -> int: ...
