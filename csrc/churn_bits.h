/* Bit helpers shared by the kernel's C files. */
#ifndef CHURN_BITS_H
#define CHURN_BITS_H

#include <stdint.h>

/* Number of bits needed to write x (0 for 0). */
static inline int churn_bit_length(uint64_t x) { return x ? 64 - __builtin_clzll(x) : 0; }

#endif
