/*
 * Sums of squares of a list of tensors in a fixed order (gdfast.h, "Reductions"): the
 * global gradient norm of clipping (gdfast.torch's max_grad_norm), the per-tensor norms of
 * trust ratios (LAMB).  docs/spec-reductions.md defines the order; in short:
 *
 *   each tensor is cut into blocks of GD_SUM_BLOCK elements (the last one shorter), in
 *   memory order; in a block, element i goes into lane i mod GD_SUM_LANES as
 *   lane = lane + (double)x * (double)x, in element order, every lane from +0.0; the
 *   block's sum is ((0 + lane 0) + lane 1) + ... + lane 15; a tensor's sum is its block
 *   sums added in block order from 0; the total is the tensors' sums added in list order
 *   from 0.
 *
 * Everything is IEEE double arithmetic with no reassociation (no -ffast-math, and
 * -ffp-contract=off: no fused multiply-add), so every instruction-set clone gives the same
 * bits.  The lanes are written out: the compiler vectorizes the loop over the 16
 * independent lanes as it is (2 AVX-512 or 4 AVX2 registers), no reordering needed.
 *
 * Threads: the blocks are shared by the threads of the dense step runtime (gd_step, so the
 * thread count, the helpers and the busy-machine verdict of threads.inc are the steps'
 * own).  Each block is summed whole by one thread into its own slot of the caller's
 * scratch; the calling thread then adds the slots in order.  No sum depends on the thread
 * count.  The runtime is driven through gd_step's public contract: a "tensor" of 64 index
 * units per block, whose spans always start and end on multiples of 64 (gdfast.h), so a
 * span is a whole number of blocks.  (For the runtime's thread-team decision a block of
 * 4096 elements, which reads 16 or 32 KiB and writes nothing, counts as 64 elements of a
 * step: threads start at 2 * 32768 * 64 = 4M elements, where the read of a block costs as
 * much as a step of a much smaller size would.)
 */
#include "gdfast.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(GD_NO_CLONES) && !defined(__clang__)
#define GD_SUM_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define GD_SUM_CLONES
#endif

/* Index units of the runtime's space per block (its spans are whole multiples of 64). */
#define GD_SUM_UNITS ((int64_t)64)

int64_t gd_sum_blocks(const int64_t *size, int64_t count)
{
    int64_t blocks = 0;
    for (int64_t k = 0; k < count; k++) blocks += (size[k] + GD_SUM_BLOCK - 1) / GD_SUM_BLOCK;
    return blocks;
}

/* Each cache line is asked for GD_SUM_AHEAD bytes before it is read: one thread reading one
 * stream waits on memory otherwise (measured on this project's 2-core EPYC machine: 40 MB of
 * float32 summed in 3.5 ms without, 2.8-3.0 ms with 2-16 KiB ahead).  A prefetch never
 * faults (past the end of the data it is dropped) and changes no result. */
#define GD_SUM_AHEAD 8192
#if defined(__GNUC__)
#define GD_SUM_PREFETCH(address) __builtin_prefetch(address)
#else
#define GD_SUM_PREFETCH(address) ((void)0)
#endif

/* One lane's addition, for the vector loop over whole groups of lanes and the tail. */
#define GD_SUM_LANE(j, value)                         \
    do {                                              \
        const double v_ = (double)(value);            \
        lane[j] = lane[j] + v_ * v_;                  \
    } while (0)

#define GD_SUM_BLOCK_FN(name, REAL_T)                                         \
    GD_SUM_CLONES static double name(const REAL_T *restrict x, int64_t n)     \
    {                                                                         \
        double lane[GD_SUM_LANES] = {0};                                      \
        int64_t base = 0;                                                     \
        for (; base + GD_SUM_LANES <= n; base += GD_SUM_LANES) {              \
            for (size_t at = 0; at < GD_SUM_LANES * sizeof(REAL_T); at += 64)  \
                GD_SUM_PREFETCH((const char *)(x + base) + GD_SUM_AHEAD + at); \
            for (int j = 0; j < GD_SUM_LANES; j++) GD_SUM_LANE(j, x[base + j]); \
        }                                                                     \
        for (int j = 0; base + j < n; j++) GD_SUM_LANE(j, x[base + j]);       \
        double sum = 0;                                                       \
        for (int j = 0; j < GD_SUM_LANES; j++) sum = sum + lane[j];           \
        return sum;                                                           \
    }
GD_SUM_BLOCK_FN(gd_sum_block_f32, float)
GD_SUM_BLOCK_FN(gd_sum_block_f64, double)
#undef GD_SUM_BLOCK_FN
#undef GD_SUM_LANE

/* The job, with the runtime's view of it first (the segment gets a pointer to that view). */
typedef struct {
    gd_tensors units;           /* one tensor of GD_SUM_UNITS per block (the runtime's) */
    int64_t count;
    const void *const *data;
    const int64_t *size;
    const unsigned char *is_double;
    double *block_sums;         /* one slot per block, tensor after tensor */
} gd_sum_job;

/* Blocks [lo / 64, (lo + len) / 64): each summed whole into its slot.  A thread scans the
 * tensor list from the start for its first block (a few adds per tensor, once a span). */
static void gd_sum_segment(const gd_tensors *t, int64_t k, int64_t lo, int64_t len,
                           const gd_hyper *h)
{
    const gd_sum_job *job = (const gd_sum_job *)t;
    (void)k;
    (void)h;
    const int64_t first = lo / GD_SUM_UNITS, last = (lo + len) / GD_SUM_UNITS;
    int64_t tensor = 0, tensor_first = 0; /* tensor holding block `b`, its first block */
    for (int64_t b = first; b < last; b++) {
        while (b >= tensor_first + (job->size[tensor] + GD_SUM_BLOCK - 1) / GD_SUM_BLOCK)
            tensor_first += (job->size[tensor++] + GD_SUM_BLOCK - 1) / GD_SUM_BLOCK;
        const int64_t start = (b - tensor_first) * GD_SUM_BLOCK;
        const int64_t n = job->size[tensor] - start < GD_SUM_BLOCK ? job->size[tensor] - start
                                                                   : GD_SUM_BLOCK;
        job->block_sums[b] =
            job->is_double[tensor]
                ? gd_sum_block_f64((const double *)job->data[tensor] + start, n)
                : gd_sum_block_f32((const float *)job->data[tensor] + start, n);
    }
}

static const gd_rule gd_sum_rule = {
    .name = "sum_of_squares",
    .segment_f32 = gd_sum_segment,
    .segment_f64 = gd_sum_segment,
    .prepare = NULL,
    .rows = 0,
};

/* Whether n elements from x hold an inf or a NaN (a block whose sum is not finite: with
 * float64 data that may also be the squares overflowing). */
static int gd_has_nonfinite(const void *x, int is_double, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(is_double ? ((const double *)x)[i] : (double)((const float *)x)[i]))
            return 1;
    return 0;
}

double gd_sum_of_squares(int64_t count, const void *const *data, const int64_t *size,
                         const unsigned char *is_double, double *block_sums,
                         double *per_tensor, unsigned char *nonfinite)
{
    const int64_t blocks = gd_sum_blocks(size, count);
    if (blocks > 0) {
        const int64_t units_size = blocks * GD_SUM_UNITS, no_step = 0;
        const unsigned char units_dtype = 0;
        const gd_hyper unused = {0};
        gd_sum_job job = {
            .units = {.count = 1, .slots = 0, .data = NULL, .size = &units_size,
                      .step = &no_step, .is_double = &units_dtype},
            .count = count,
            .data = data,
            .size = size,
            .is_double = is_double,
            .block_sums = block_sums,
        };
        gd_step(&gd_sum_rule, &job.units, &unused);
    }
    double total = 0;
    for (int64_t k = 0, b = 0; k < count; k++) {
        double sum = 0;
        unsigned char bad = 0;
        for (int64_t start = 0; start < size[k]; start += GD_SUM_BLOCK, b++) {
            sum = sum + block_sums[b];
            if (!isfinite(block_sums[b]) && !bad) {
                const int64_t n = size[k] - start < GD_SUM_BLOCK ? size[k] - start : GD_SUM_BLOCK;
                const size_t width = is_double[k] ? sizeof(double) : sizeof(float);
                bad = (unsigned char)gd_has_nonfinite((const char *)data[k] + (size_t)start * width,
                                                      is_double[k], n);
            }
        }
        per_tensor[k] = sum;
        if (nonfinite) nonfinite[k] = bad;
        total = total + sum;
    }
    return total;
}
