"""A synthetic user-behaviour event log (pv / fav / cart / buy), for demos,
tests and benchmarks of :func:`churn_engine.funnel`.

:func:`generate_events` draws the log with numpy, vectorised, in chunks of
users so that memory stays proportional to the output. Its shape follows the
public Taobao UserBehavior log (about 100 million events of a million users
over nine days, 2017-11-25 .. 2017-12-03):

- About 100 events per user on average, very unevenly spread: a user's
  activity is lognormal, and the exact number of events is split between
  users multinomially (so the log has exactly ``n_events`` rows).
- Behaviours: about 89.5 % ``pv``, 5.5 % ``cart``, 2.9 % ``fav`` and 2 %
  ``buy``. Each user has their own propensities (beta distributions around
  those shares), so some users never buy and others buy on several days:
  over nine days about two users in three buy, and most buyers buy on two
  or more days.
- A user is active on about 70 % of the ``days`` (each user with their own
  chance; Saturdays and Sundays are busier) and spreads their events over
  those days. An event's time of day that follows a
  diurnal curve (quiet at night, busiest in the evening), in whole seconds,
  in UTC.
- Items are drawn with a heavy-tailed popularity (about one item per 25
  events); each item belongs to one category (about 440 items per category).
- Rows are sorted by user, then time, as in the public file; user ids are
  increasing with small random gaps.

The result is deterministic for a given ``seed`` and the same arguments.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from ._generate import _check_int
from ._prepare_events import BEHAVIOURS
from .errors import ConfigError

__all__ = ["generate_events"]

_EVENTS_PER_USER = 100
_EVENTS_PER_ITEM = 25
_ITEMS_PER_CATEGORY = 440
_ACTIVITY_SIGMA = 1.0  # lognormal sigma of a user's activity
# beta(a, b) propensities per user: mean a / (a + b) is the behaviour's share
_FAV_BETA = (0.8, 26.8)  # ~2.9 %
_CART_BETA = (1.5, 25.8)  # ~5.5 %
_BUY_BETA = (1.2, 58.8)  # ~2.0 %
_PRESENCE_BETA = (3.0, 1.3)  # chance that a user is active on a given day, ~70 %
_WEEKEND_WEIGHT = 1.25  # ... times this on Saturdays and Sundays
# share of the day's events in each hour (UTC), quiet at night, busiest 20-22 h
_HOUR_WEIGHTS = np.array(
    [2.5, 1.4, 0.8, 0.5, 0.4, 0.5, 1.0, 2.0, 3.0, 3.8, 4.3, 4.5,
     4.6, 4.6, 4.6, 4.5, 4.6, 4.8, 5.2, 5.8, 6.8, 7.5, 7.0, 4.5]
)  # fmt: skip
_CHUNK_USERS = 50_000  # fixed, so that results do not depend on memory
_MAX_EVENTS = 10_000_000_000
_MAX_DAYS = 366
_EPOCH = dt.date(1970, 1, 1)


def generate_events(
    n_events: int,
    *,
    users: int | None = None,
    days: int = 9,
    start: dt.date = dt.date(2017, 11, 25),
    seed: int = 0,
    taobao_columns: bool = False,
) -> pl.DataFrame:
    """Generate a synthetic user-behaviour event log.

    Parameters
    ----------
    n_events : int
        Number of events (rows), >= 0.
    users : int, optional
        Number of users (>= 1); default ``max(1, n_events // 100)``. Users
        who draw no event do not appear in the log.
    days : int
        Length of the period in days (1..366).
    start : datetime.date
        First day of the period (UTC).
    seed : int
        Seed of the random generator (>= 0); the same seed gives the same log.
    taobao_columns : bool
        Name and type the columns as the public Taobao UserBehavior log
        (``user_id, item_id, category_id, behavior_type, timestamp`` with
        ``timestamp`` in integer epoch seconds) instead of the defaults of
        :func:`churn_engine.funnel`.

    Returns
    -------
    polars.DataFrame
        Columns ``user_id``, ``item_id``, ``category_id`` (Int64),
        ``behavior`` (String: pv, fav, cart or buy) and ``ts``
        (Datetime("us", "UTC")); sorted by user, then time.

    Examples
    --------
    >>> events = generate_events(10_000, seed=1)
    >>> events.columns
    ['user_id', 'item_id', 'category_id', 'behavior', 'ts']
    """
    n_events = _check_int("n_events", n_events, 0, _MAX_EVENTS)
    n_users = (
        max(1, n_events // _EVENTS_PER_USER)
        if users is None
        else _check_int("users", users, 1, _MAX_EVENTS)
    )
    days = _check_int("days", days, 1, _MAX_DAYS)
    seed = _check_int("seed", seed, 0, None)
    if not isinstance(start, dt.date) or isinstance(start, dt.datetime):
        raise ConfigError(f"start must be a datetime.date (not a datetime), got {start!r}")
    if not isinstance(taobao_columns, bool):
        raise ConfigError(f"taobao_columns must be True or False, got {taobao_columns!r}")
    start_day = (start - _EPOCH).days
    if start_day + days > (dt.date.max - _EPOCH).days:
        raise ConfigError(f"start={start} plus days={days} is after year 9999")

    root = np.random.SeedSequence(seed)
    split_ss, id_ss, item_ss, chunk_ss = root.spawn(4)
    counts = _events_per_user(np.random.default_rng(split_ss), n_events, n_users)
    id_gaps = np.random.default_rng(id_ss).geometric(0.8, size=n_users)
    user_ids = np.cumsum(id_gaps, dtype=np.int64)  # increasing, from 1, with gaps
    del id_gaps
    item_rng = np.random.default_rng(item_ss)
    n_items = max(1, n_events // _EVENTS_PER_ITEM)
    n_categories = max(1, n_items // _ITEMS_PER_CATEGORY)
    item_ids = item_rng.permutation(n_items).astype(np.int64) + 1
    category_ids = item_rng.permutation(n_categories).astype(np.int64) + 1
    # skewed: low category indices hold more items
    item_category = category_ids[(n_categories * item_rng.random(n_items) ** 2).astype(np.int64)]

    weekday = (start_day + np.arange(days) + 3) % 7  # 1970-01-01 was a Thursday (3)
    day_weights = np.where(weekday >= 5, _WEEKEND_WEIGHT, 1.0)
    hour_weights = _HOUR_WEIGHTS / _HOUR_WEIGHTS.sum()

    n_chunks = -(-n_users // _CHUNK_USERS)
    chunk_seeds = chunk_ss.spawn(n_chunks)
    parts: list[pl.DataFrame] = []
    for index in range(n_chunks):
        lo = index * _CHUNK_USERS
        hi = min(n_users, lo + _CHUNK_USERS)
        if not counts[lo:hi].any():
            continue
        parts.append(
            _chunk(
                np.random.default_rng(chunk_seeds[index]),
                counts[lo:hi],
                user_ids[lo:hi],
                item_ids,
                item_category,
                day_weights,
                hour_weights,
                start_day,
            )
        )
    if parts:
        frame = pl.concat(parts, rechunk=True) if len(parts) > 1 else parts[0]
    else:
        frame = pl.DataFrame(
            schema={"user_id": pl.Int64, "item_id": pl.Int64, "category_id": pl.Int64,
                    "behavior": pl.UInt8, "ts": pl.Int64}
        )  # fmt: skip
    del parts
    behaviour = pl.Series(BEHAVIOURS, dtype=pl.String).gather(frame["behavior"])
    if taobao_columns:
        return frame.with_columns(behavior_type=behaviour, timestamp=frame["ts"]).select(
            "user_id", "item_id", "category_id", "behavior_type", "timestamp"
        )
    ts = (frame["ts"] * 1_000_000).cast(pl.Datetime("us", "UTC"))
    return frame.with_columns(behavior=behaviour, ts=ts)


def _events_per_user(rng: np.random.Generator, n_events: int, n_users: int) -> np.ndarray:
    """Exactly ``n_events`` split between users by lognormal activity."""
    activity = rng.lognormal(0.0, _ACTIVITY_SIGMA, size=n_users)
    activity /= activity.sum()
    # np.multinomial checks that all but the last share sum to <= 1: round off
    activity[-1] = max(0.0, 1.0 - activity[:-1].sum())
    return rng.multinomial(n_events, activity).astype(np.int64)


def _event_days(
    rng: np.random.Generator, owner: np.ndarray, size: int, day_weights: np.ndarray
) -> np.ndarray:
    """The day (0-based) of each event: each user is active on some of the
    days (each day with the user's own probability, higher at weekends, at
    least one day) and spreads their events evenly over them."""
    days = day_weights.size
    presence = rng.beta(*_PRESENCE_BETA, size=size)
    active = rng.random((size, days)) < np.minimum(1.0, presence[:, None] * day_weights)
    idle = np.flatnonzero(~active.any(axis=1))
    active[idle, rng.integers(0, days, size=idle.size)] = True
    users_of, active_days = np.nonzero(active)  # row-major: grouped by user
    n_active = np.bincount(users_of, minlength=size)
    first = np.cumsum(n_active) - n_active
    pick = (rng.random(owner.size) * n_active[owner]).astype(np.int64)
    return active_days[first[owner] + pick].astype(np.int64)


def _chunk(
    rng: np.random.Generator,
    counts: np.ndarray,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    item_category: np.ndarray,
    day_weights: np.ndarray,
    hour_weights: np.ndarray,
    start_day: int,
) -> pl.DataFrame:
    """The events of one chunk of users, sorted by user then time.

    Returns ``user_id``, ``item_id``, ``category_id``, ``behavior`` (UInt8
    index into :data:`BEHAVIOURS`) and ``ts`` (Int64 epoch seconds).
    """
    size = counts.size
    # -- per user: behaviour propensities (cumulative thresholds fav, cart, buy)
    fav = rng.beta(*_FAV_BETA, size=size)
    cart = rng.beta(*_CART_BETA, size=size)
    buy = rng.beta(*_BUY_BETA, size=size)
    total = fav + cart + buy
    scale = np.where(total > 0.9, 0.9 / np.maximum(total, 1e-300), 1.0)  # keep some pv
    fav, cart, buy = fav * scale, cart * scale, buy * scale

    # -- per event
    owner = np.repeat(np.arange(size, dtype=np.int64), counts)
    n = owner.size
    draw = rng.random(n)
    # behaviour 0 pv, 1 fav, 2 cart, 3 buy: buy is the lowest band of draw
    behaviour = np.zeros(n, dtype=np.uint8)
    b_buy, b_cart, b_fav = buy[owner], cart[owner], fav[owner]
    behaviour[draw < b_buy + b_cart + b_fav] = 1
    behaviour[draw < b_buy + b_cart] = 2
    behaviour[draw < b_buy] = 3
    del draw, b_buy, b_cart, b_fav

    day = _event_days(rng, owner, size, day_weights)
    hour = rng.choice(24, size=n, p=hour_weights).astype(np.int64)
    seconds = (start_day + day) * 86_400 + hour * 3_600 + rng.integers(0, 3_600, size=n)
    del day, hour
    item = (item_ids.size * rng.random(n) ** 3).astype(np.int64)  # heavy-tailed popularity

    order = np.lexsort((seconds, owner))
    return pl.DataFrame(
        {
            "user_id": user_ids[owner[order]],
            "item_id": item_ids[item[order]],
            "category_id": item_category[item[order]],
            "behavior": behaviour[order],
            "ts": seconds[order],
        }
    )
