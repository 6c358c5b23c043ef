/*
 * gd_pow_memo(base, exponent): pow(base, exponent), bit for bit, remembered per thread.
 *
 * LAMB's pass 1 asks for its bias corrections 1 − β^t once per block of 4096 elements
 * (rules/lamb.inc): the same two values many times a step.  (Row-sparse steps keep their
 * rule's per-call scalars for a chunk's rows instead: gdfast.h, gd_call_scalars.)  The
 * thread's last four (base, exponent) pairs and their results are kept;
 * a pair seen again (the same bits) returns the result computed then, so every caller gets
 * exactly what pow() returns.  Thread-local: no locks, no sharing between threads.
 */
#ifndef GDFAST_POW_MEMO_H
#define GDFAST_POW_MEMO_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#define GD_POW_MEMO_SIZE 4

static inline double gd_pow_memo(double base, double exponent)
{
    static _Thread_local struct { /* one thread-local object: one TLS look-up a call */
        struct {
            uint64_t base, exponent; /* the bits of the pair */
            double value;
        } entry[GD_POW_MEMO_SIZE];
        int filled, next;
    } memo;
    uint64_t base_bits, exponent_bits;
    memcpy(&base_bits, &base, sizeof base_bits);
    memcpy(&exponent_bits, &exponent, sizeof exponent_bits);
    for (int i = 0; i < memo.filled; i++)
        if (memo.entry[i].base == base_bits && memo.entry[i].exponent == exponent_bits)
            return memo.entry[i].value;
    const double value = pow(base, exponent);
    memo.entry[memo.next].base = base_bits;
    memo.entry[memo.next].exponent = exponent_bits;
    memo.entry[memo.next].value = value;
    memo.next = (memo.next + 1) % GD_POW_MEMO_SIZE;
    if (memo.filled < GD_POW_MEMO_SIZE) memo.filled++;
    return value;
}

#undef GD_POW_MEMO_SIZE
#endif /* GDFAST_POW_MEMO_H */
