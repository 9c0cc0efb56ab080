# cython: language_level=3
"""C declarations of the behaviour-funnel kernel (src/churn_engine/_funnel.pyx)."""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t


cdef extern from "churn_status.h":
    int CHURN_OK
    int CHURN_ERR_TOO_MANY
    int CHURN_ERR_BAD_CODE


cdef struct funnel_segment:
    # one chunk of aligned event columns; exactly one of ids / codes is set
    const int64_t *ids        # user ids; the user's code is id - user_base
    const int32_t *codes      # dense user codes
    const int32_t *days       # days since 1970-01-01
    const uint8_t *behaviours  # 0 pv, 1 fav, 2 cart, 3 buy
    int64_t n


cdef struct funnel_user:
    uint32_t stamp     # 1 + index of the last day the user was seen (0: not yet)
    uint8_t day_mask   # behaviours on that day (bit b for behaviour b)
    uint8_t all_mask   # behaviours over the whole period
    uint8_t buy_days   # days with a buy, counted up to 2
    uint8_t spare
