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
 * Threads: the blocks are shared by the threads of the step runtime (gd_parallel_for,
 * threads.h: its helpers and its busy-machine verdict are the steps' own), in chunks of whole
 * blocks.  Each block is summed whole by one thread into its own slot of the caller's
 * scratch; the calling thread then adds the slots in order.  No sum depends on the thread
 * count.  A thread is used per GD_SUM_THREAD_BLOCKS blocks (2M elements: a block, which reads
 * 16 or 32 KiB and writes nothing, costs what 64 elements of a step do, and a step uses a
 * thread per 32768 elements), so threads start at 4M elements.
 */
#include "gdfast.h"
#include "threads.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(GD_NO_CLONES) && !defined(__clang__)
#define GD_SUM_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define GD_SUM_CLONES
#endif

/* Blocks per thread of a sum (see above); a chunk of the runtime: about 16 a thread, within
 * [GD_SUM_CHUNK_MIN, GD_SUM_CHUNK_MAX] blocks (1M to 4M elements). */
#define GD_SUM_THREAD_BLOCKS ((int64_t)512)
#define GD_SUM_CHUNK_MIN ((int64_t)256)
#define GD_SUM_CHUNK_MAX ((int64_t)1024)

static inline int64_t gd_blocks_of(int64_t size) { return (size + GD_SUM_BLOCK - 1) / GD_SUM_BLOCK; }

int64_t gd_sum_blocks(const int64_t *size, int64_t count)
{
    int64_t blocks = 0;
    for (int64_t k = 0; k < count; k++) blocks += gd_blocks_of(size[k]);
    return blocks;
}

/* In the four-block loop each cache line is asked for GD_SUM_AHEAD bytes before it is read
 * (a prefetch never faults, past the end of the data it is dropped, and changes no result).
 * Measured on this project's 2-core EPYC (AVX2), 40 MB of float32 from memory, one thread:
 * one block at a time 3.2 ms, with prefetching 2.7 ms, four blocks side by side with
 * prefetching 1.6-1.9 ms; from cache (1 MB) four blocks side by side read as fast as one
 * block without prefetching (~32 GB/s), one block with prefetching only half as fast, so the
 * one-block function (short or odd blocks, mostly small tensors, in cache) does not. */
#define GD_SUM_AHEAD 8192
#if defined(__GNUC__)
#define GD_SUM_PREFETCH(address) __builtin_prefetch(address)
#else
#define GD_SUM_PREFETCH(address) ((void)0)
#endif

/* One lane's addition: lane j of `lanes` (of one block) gets the square of `value`. */
#define GD_SUM_LANE(lanes, j, value)                  \
    do {                                              \
        const double v_ = (double)(value);            \
        lanes[j] = lanes[j] + v_ * v_;                \
    } while (0)

/* A block's lanes added in order. */
static inline double gd_sum_lanes(const double lane[GD_SUM_LANES])
{
    double sum = 0;
    for (int j = 0; j < GD_SUM_LANES; j++) sum = sum + lane[j];
    return sum;
}

/* One block of n elements (n <= GD_SUM_BLOCK, any). */
#define GD_SUM_BLOCK_FN(name, REAL_T)                                           \
    GD_SUM_CLONES static double name(const REAL_T *restrict x, int64_t n)       \
    {                                                                           \
        double lane[GD_SUM_LANES] = {0};                                        \
        int64_t base = 0;                                                       \
        for (; base + GD_SUM_LANES <= n; base += GD_SUM_LANES)                  \
            for (int j = 0; j < GD_SUM_LANES; j++) GD_SUM_LANE(lane, j, x[base + j]); \
        for (int j = 0; base + j < n; j++) GD_SUM_LANE(lane, j, x[base + j]);   \
        return gd_sum_lanes(lane);                                              \
    }

/* Four whole blocks at once, each with its own lanes (so each sum is exactly the one-block
 * function's): four memory streams in flight instead of one, which a single thread needs
 * to read at the memory's speed (measured: 40 MB in ~1.9 ms against ~3.0 ms one block at a
 * time, interleaved, on this project's machine). */
#define GD_SUM_FOUR_FN(name, REAL_T)                                            \
    GD_SUM_CLONES static void name(const REAL_T *restrict x0, const REAL_T *restrict x1, \
                                   const REAL_T *restrict x2, const REAL_T *restrict x3, \
                                   double sums[4])                              \
    {                                                                           \
        double l0[GD_SUM_LANES] = {0}, l1[GD_SUM_LANES] = {0};                  \
        double l2[GD_SUM_LANES] = {0}, l3[GD_SUM_LANES] = {0};                  \
        for (int64_t base = 0; base < GD_SUM_BLOCK; base += GD_SUM_LANES) {     \
            for (size_t at = 0; at < GD_SUM_LANES * sizeof(REAL_T); at += 64) { \
                GD_SUM_PREFETCH((const char *)(x0 + base) + GD_SUM_AHEAD + at);  \
                GD_SUM_PREFETCH((const char *)(x1 + base) + GD_SUM_AHEAD + at);  \
                GD_SUM_PREFETCH((const char *)(x2 + base) + GD_SUM_AHEAD + at);  \
                GD_SUM_PREFETCH((const char *)(x3 + base) + GD_SUM_AHEAD + at);  \
            }                                                                   \
            for (int j = 0; j < GD_SUM_LANES; j++) {                            \
                GD_SUM_LANE(l0, j, x0[base + j]);                               \
                GD_SUM_LANE(l1, j, x1[base + j]);                               \
                GD_SUM_LANE(l2, j, x2[base + j]);                               \
                GD_SUM_LANE(l3, j, x3[base + j]);                               \
            }                                                                   \
        }                                                                       \
        sums[0] = gd_sum_lanes(l0);                                             \
        sums[1] = gd_sum_lanes(l1);                                             \
        sums[2] = gd_sum_lanes(l2);                                             \
        sums[3] = gd_sum_lanes(l3);                                             \
    }
GD_SUM_BLOCK_FN(gd_sum_block_f32, float)
GD_SUM_BLOCK_FN(gd_sum_block_f64, double)
GD_SUM_FOUR_FN(gd_sum_four_f32, float)
GD_SUM_FOUR_FN(gd_sum_four_f64, double)
#undef GD_SUM_BLOCK_FN
#undef GD_SUM_FOUR_FN
#undef GD_SUM_LANE

/* The job: the tensors, and a slot per block for its sum. */
typedef struct {
    int64_t count;
    const void *const *data;
    const int64_t *size;
    const unsigned char *is_double;
    double *block_sums;         /* one slot per block, tensor after tensor */
} gd_sum_job;

/* Where a walk over the blocks is: the tensor holding the current block, its first block. */
typedef struct {
    int64_t tensor, tensor_first;
} gd_sum_cursor;

/* Block b (at or after the cursor's): its first element, its length and its dtype. */
static const void *gd_sum_locate(const gd_sum_job *job, gd_sum_cursor *at, int64_t b,
                                 int64_t *n, int *is_double)
{
    while (b >= at->tensor_first + gd_blocks_of(job->size[at->tensor]))
        at->tensor_first += gd_blocks_of(job->size[at->tensor++]);
    const int64_t start = (b - at->tensor_first) * GD_SUM_BLOCK, size = job->size[at->tensor];
    *n = size - start < GD_SUM_BLOCK ? size - start : GD_SUM_BLOCK;
    *is_double = job->is_double[at->tensor];
    return (const char *)job->data[at->tensor] +
           (size_t)start * (*is_double ? sizeof(double) : sizeof(float));
}

/* Block b summed alone into its slot. */
static void gd_sum_one(const gd_sum_job *job, gd_sum_cursor *at, int64_t b)
{
    int64_t n;
    int is_double;
    const void *x = gd_sum_locate(job, at, b, &n, &is_double);
    job->block_sums[b] = is_double ? gd_sum_block_f64(x, n) : gd_sum_block_f32(x, n);
}

/* Blocks [first, last), each summed whole into its slot (gd_parallel_for's chunk: `cursor`
 * unused, every quarter walks from the first tensor).  The chunk is cut into
 * four quarters read side by side: each quarter's next whole block (GD_SUM_BLOCK elements)
 * go together when all four are of one dtype; a short block (a tensor's last) is summed
 * alone where its quarter meets it, and what is left of a quarter when another one ends,
 * alone too.  Which blocks go together changes no sum. */
static void gd_sum_chunk(void *ctx, int64_t first, int64_t last, int64_t cursor[2])
{
    const gd_sum_job *job = (const gd_sum_job *)ctx;
    (void)cursor;
    const int64_t quarter = (last - first + 3) / 4;
    gd_sum_cursor at[4] = {{0, 0}, {0, 0}, {0, 0}, {0, 0}};
    int64_t next[4], end[4];
    for (int s = 0; s < 4; s++) {
        next[s] = first + s * quarter < last ? first + s * quarter : last;
        end[s] = first + (s + 1) * quarter < last ? first + (s + 1) * quarter : last;
    }
    for (;;) {
        const void *x[4];
        int64_t n[4];
        int is_double[4], ready = 1;
        for (int s = 0; s < 4 && ready; s++) {
            for (;;) { /* the quarter's next whole block; short ones alone on the way */
                if (next[s] == end[s]) {
                    ready = 0;
                    break;
                }
                x[s] = gd_sum_locate(job, &at[s], next[s], &n[s], &is_double[s]);
                if (n[s] == GD_SUM_BLOCK) break;
                gd_sum_one(job, &at[s], next[s]++);
            }
        }
        if (!ready) break;
        if (is_double[0] == is_double[1] && is_double[0] == is_double[2] &&
            is_double[0] == is_double[3]) {
            double sums[4];
            if (is_double[0])
                gd_sum_four_f64(x[0], x[1], x[2], x[3], sums);
            else
                gd_sum_four_f32(x[0], x[1], x[2], x[3], sums);
            for (int s = 0; s < 4; s++) job->block_sums[next[s]++] = sums[s];
        } else {
            for (int s = 0; s < 4; s++) gd_sum_one(job, &at[s], next[s]++);
        }
    }
    for (int s = 0; s < 4; s++)
        while (next[s] < end[s]) gd_sum_one(job, &at[s], next[s]++);
}

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
        gd_sum_job job = {count, data, size, is_double, block_sums};
        int64_t team = gd_get_num_threads();
        if (team > blocks / GD_SUM_THREAD_BLOCKS) team = blocks / GD_SUM_THREAD_BLOCKS;
        if (team < 1) team = 1;
        int64_t chunk = blocks / (team * 16);
        if (chunk < GD_SUM_CHUNK_MIN) chunk = GD_SUM_CHUNK_MIN;
        if (chunk > GD_SUM_CHUNK_MAX) chunk = GD_SUM_CHUNK_MAX;
        gd_parallel_for(blocks, chunk, (int)team, gd_sum_chunk, &job);
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
