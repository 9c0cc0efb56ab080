"""Type stub of the compiled kernel (src/churn_engine/_kernel.pyx)."""

import numpy as np
import numpy.typing as npt

STATUS_NAMES: tuple[str, str, str]
REASON_KEYS: tuple[str, ...]
REASON_HORIZON_BASE: int
NULL_DAY: int

class Grouped:
    rows: npt.NDArray[np.int64] | None
    part_offsets: npt.NDArray[np.int64]
    groups: npt.NDArray[np.int64]
    no_purchase: int
    #: how packed rows hold key, category, day and amount (None: 24-byte rows)
    packing: dict[str, int] | None
    #: every float amount is whole cents: money is summed in cents, exactly
    cents: bool

STRING_UTF8: int
STRING_LARGE_UTF8: int
STRING_VIEW: int

def encode_strings(
    out_ranks: npt.NDArray[np.int32],
    chunks: list[tuple[int, int, np.ndarray, list[npt.NDArray[np.uint8]]]],
    threads: int,
    part_bits: int = -1,
    hash_mask: int = 0xFFFFFFFFFFFFFFFF,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8]]: ...
def string_key_plan(
    chunks: list[tuple[int, int, np.ndarray, list[npt.NDArray[np.uint8]]]], threads: int
) -> npt.NDArray[np.uint8] | None: ...
def string_keys(
    out_keys: npt.NDArray[np.int64],
    plan: npt.NDArray[np.uint8],
    chunks: list[tuple[int, int, np.ndarray, list[npt.NDArray[np.uint8]]]],
    threads: int,
    portable: bool = False,
) -> None: ...
def string_keys_decode(
    keys: npt.NDArray[np.int64], plan: npt.NDArray[np.uint8], threads: int = 1
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]: ...
def string_hash(value: npt.NDArray[np.uint8]) -> int: ...
def group_rows(
    id_segments: list[np.ndarray],
    rank_of_code: npt.NDArray[np.int32] | None,
    day_segments: list[npt.NDArray[np.int32]],
    amount_segments: list[npt.NDArray[np.int64]],
    cat_segments: list[npt.NDArray[np.int32]] | None,
    n_rows: int,
    integer_amounts: bool,
    threads: int,
    packed: bool = False,
) -> Grouped: ...
def group_statistics(
    grouped: Grouped, integer_amounts: bool, threads: int, consume: bool = False
) -> dict[str, np.ndarray]: ...
def statistics_arrays(n: int, integer_amounts: bool) -> dict[str, np.ndarray]: ...
def category_priors(
    cat: npt.NDArray[np.int32],
    n_orders: npt.NDArray[np.int64],
    interval_mean: npt.NDArray[np.float64],
    fixed_prior: npt.NDArray[np.float64],
    threads: int = 1,
) -> npt.NDArray[np.float64]: ...
def cycle_status(
    cat: npt.NDArray[np.int32],
    n_orders: npt.NDArray[np.int64],
    interval_mean: npt.NDArray[np.float64],
    last_day: npt.NDArray[np.int32],
    priors: npt.NDArray[np.float64],
    horizon_days: npt.NDArray[np.int32],
    as_of_day: int,
    prior_weight: float,
    at_risk_cycles: float,
    churn_cycles: float,
    threads: int,
) -> dict[str, np.ndarray]: ...
def quantile_cuts(
    values: np.ndarray, bins: int, threads: int = 1, negate: bool = False
) -> npt.NDArray[np.float64]: ...
def rfm_scores(
    recency_days: npt.NDArray[np.int64],
    n_orders: npt.NDArray[np.int64],
    money: np.ndarray,
    r_cuts: npt.NDArray[np.float64],
    f_cuts: npt.NDArray[np.float64],
    m_cuts: npt.NDArray[np.float64],
    threads: int,
) -> tuple[npt.NDArray[np.int8], npt.NDArray[np.int8], npt.NDArray[np.int8]]: ...
def occasions(
    grouped: Grouped,
    occasion_offsets: npt.NDArray[np.int64],
    integer_amounts: bool,
    threads: int,
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float64]]: ...
