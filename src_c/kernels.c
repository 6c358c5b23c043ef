/*
 * gdfast kernels: threads, instruction-set clones, and the two dtypes.
 *
 * The rules themselves are written once, in rules.inc and src_c/rules/<rule>.inc, and
 * compiled twice: with REAL = float (suffix _f32) and REAL = double (suffix _f64).
 * gd_rules[] below holds each rule's functions once (each rule file's GD_RULE line, gathered
 * by setup.py); gd_step and gd_step_rows dispatch through it.
 *
 * Build contract (setup.py): -O3 -fno-math-errno -ffp-contract=off, OpenMP
 * when available, never -ffast-math.  -fno-math-errno lets gcc vectorize
 * sqrt; -ffp-contract=off forbids fused multiply-adds, so the vector loop,
 * its scalar tail and every instruction-set clone round exactly like the
 * NumPy reference does, whatever the thread split.
 */
#include "gdfast.h"
#include "lowp.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

/* Function multi-versioning: each span loop is compiled for AVX-512, AVX2 and
 * the portable baseline; the dynamic loader picks one for the running CPU. */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(GD_NO_CLONES) && !defined(__clang__)
#define GD_CLONES_OF_KERNELS __attribute__((target_clones("avx512f", "avx2", "default")))
#define GD_HAVE_CLONES 1
/* The fused low-precision span loops (fused.inc): an AVX2 instance and an AVX-512 one (F, BW,
 * VL), the widest the CPU has used (gd_fused_instance); other CPUs stage. */
#define GD_FUSED_TARGET_AVX2 __attribute__((target("avx2")))
#define GD_FUSED_TARGET_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))
#define GD_FUSED_INSTANCES 2
#else
#define GD_CLONES_OF_KERNELS
#define GD_HAVE_CLONES 0
/* one instance, the build's own instruction set, on every CPU */
#define GD_FUSED_TARGET_AVX2
#define GD_FUSED_INSTANCES 1
#endif
#define GD_CLONES GD_CLONES_OF_KERNELS

/* Below 2 * GD_MIN_SPAN elements a thread team costs more than it gains. */
#define GD_MIN_SPAN ((int64_t)32768)
/* Spans start on multiples of 64 elements: a whole number of cache lines. */
#define GD_SPAN_ALIGN ((int64_t)64)

#include "threads.inc"

int64_t gd_min_elements_per_thread(void) { return GD_MIN_SPAN; }

const char *gd_kernel_isa(void)
{
#if GD_HAVE_CLONES
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return "avx512f";
    if (__builtin_cpu_supports("avx2")) return "avx2";
#endif
    return "default";
}

/* Threads worth using for n elements. */
static int gd_team_size(int64_t n)
{
    int64_t threads = gd_get_num_threads();
    int64_t useful = n / GD_MIN_SPAN;
    if (threads > useful) threads = useful;
    return threads < 1 ? 1 : (int)threads;
}

/* n rounded up to a multiple of `align` (64 elements; a multiple of the 8-bit block too when
 * a policy is set, so that no block is split between threads: SPEC L.6). */
static inline int64_t gd_padded(int64_t n, int64_t align)
{
    if (align == GD_SPAN_ALIGN) return (n + GD_SPAN_ALIGN - 1) & ~(GD_SPAN_ALIGN - 1); /* no policy */
    return (n + align - 1) / align * align;
}

/* A rule's fused low-precision segments (fused.inc), by instance (0 AVX2, 1 AVX-512) and
 * layout index (gd_fused_layout). */
#define GD_FUSED_LAYOUTS 48
typedef struct {
    gd_segment_fn segment_f32; /* the rule's gd_rules[] entry */
    gd_segment_fn segment[GD_FUSED_INSTANCES][GD_FUSED_LAYOUTS];
} gd_fused_rule;

/* A step over a list of tensors, for gd_parallel_for: the rule's segment functions (and its
 * fused ones of the instance that runs, by layout index, or NULL). */
typedef struct {
    const gd_tensors *t;
    const gd_hyper *h;
    gd_segment_fn segment_f32, segment_f64;
    int64_t align;
    const gd_segment_fn *fused;
} gd_step_work;

/* ---- staging (SPEC L.6): low-precision slots through float32 scratch -------------------- */

/* Elements a staged block aims at: a multiple of the 8-bit block size (at least one block).
 * 512 keeps the float32 scratch of four slots (8 KiB) in L1: 1.2-1.3x faster 8-bit steps than
 * 2048 (bench/lowp_step.c q8 and q8copy, 1e7, under load). */
#define GD_STAGE ((int64_t)512)
#define GD_STAGE_MAX (GD_STAGE > GD_LOWP_MAX_BLOCK ? GD_STAGE : GD_LOWP_MAX_BLOCK)

static gd_q8_map gd_maps[2]; /* [0] unsigned, [1] signed */

int gd_lowp_set_maps(const float *signed_code, const float *unsigned_code)
{
    return gd_q8_map_init(&gd_maps[1], signed_code) | gd_q8_map_init(&gd_maps[0], unsigned_code);
}

GD_CLONES static void gd_widen_span(float *restrict out, const uint16_t *restrict in, int64_t n,
                                    int format)
{
    if (format == GD_BF16) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) out[i] = GD_LOAD_BF16(in, i);
    } else {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) out[i] = GD_LOAD_F16(in, i);
    }
}

/* Elements `index` ... of a tensor rounded to 16 bits; `key`: the generator's (stochastic). */
GD_CLONES static void gd_narrow_span(uint16_t *restrict out, const float *restrict in, int64_t n,
                                     int format, int stochastic, uint32_t key, int64_t index)
{
    if (format == GD_BF16 && !stochastic) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) GD_STORE_BF16(out, i, in[i]);
    } else if (format == GD_BF16) {
        uint32_t element = (uint32_t)index; /* mod 2^32: the span stays within one key */
#pragma omp simd linear(element : 1)
        for (int64_t i = 0; i < n; i++) {
            GD_STORE_BF16_SR(out, i, in[i], key, element);
            element++;
        }
    } else if (!stochastic) {
#pragma omp simd
        for (int64_t i = 0; i < n; i++) GD_STORE_F16(out, i, in[i]);
    } else {
        uint32_t element = (uint32_t)index;
#pragma omp simd linear(element : 1)
        for (int64_t i = 0; i < n; i++) {
            GD_STORE_F16_SR(out, i, in[i], key, element);
            element++;
        }
    }
}

/* Elements [at, at + n) of tensor k rounded into `out`, stream `stream` (SPEC L.2/L.3). */
static void gd_narrow(const gd_tensors *t, int64_t k, uint16_t *out, const float *in, int64_t n,
                      int format, uint32_t stream, int64_t at)
{
    const gd_lowp *p = t->lowp;
    if (!p->stochastic) {
        gd_narrow_span(out, in, n, format, 0, 0, at);
        return;
    }
    for (int64_t i = 0; i < n;) {
        const int64_t index = at + i, len = gd_span_within_key(index, n - i);
        const uint32_t key = gd_random_key(p->seed, (uint64_t)t->step[k], (uint64_t)p->tensor[k],
                                           stream, (uint32_t)((uint64_t)index >> 32));
        gd_narrow_span(out + i, in + i, len, format, 1, key, index);
        i += len;
    }
}

/* Starts loading elements [at, at + n) of every slot of tensor k (and its master weights and
 * parameter copy).  The staged segment asks for the next stage's bytes before it works on
 * this one: with 8-bit state its compute (decode, the rule, absmax, encode) is long enough
 * to hide them, which the hardware's prefetcher does not manage on its own: Adam, 1e7
 * parameters, 8-bit state, one thread, 10.8 -> 8.7 ms (bench/lowp_step.c q8, interleaved);
 * a stage further ahead was no faster, and layouts without 8-bit state gained nothing.
 * Always inlined, as gd_row_prefetch (below) and for the same reason: gcc deletes the calls
 * of a function that only reads memory and prefetches. */
static inline __attribute__((always_inline)) void gd_stage_prefetch(const gd_tensors *t,
                                                                   int64_t k, int64_t at,
                                                                   int64_t n)
{
    const gd_lowp *p = t->lowp;
    const unsigned char *format = p->format + k * t->slots;
    for (int s = 0; s < t->slots; s++) {
        const int master = s == GD_SLOT_PARAM && p->master;
        const int eight_bit = format[s] == GD_Q8_SIGNED || format[s] == GD_Q8_UNSIGNED;
        const int64_t width = master || format[s] == GD_NATIVE ? 4 : eight_bit ? 1 : 2;
        const char *first = master ? (const char *)((const float *)p->master[k] + at)
                                   : (const char *)t->data[k * t->slots + s] + at * width;
        for (int64_t b = 0; b < n * width; b += 64) __builtin_prefetch(first + b);
    }
    if (p->param_copy) {
        const char *copy = (const char *)((const uint16_t *)p->param_copy[k] + at);
        for (int64_t b = 0; b < n * 2; b += 64) __builtin_prefetch(copy + b, 1);
    }
}

/* Elements [lo, lo + len) of tensor k (lo a multiple of the 8-bit block), staged: each block
 * of GD_STAGE-ish elements is widened into this thread's float32 scratch (a native slot and
 * the master weights are used in place), the rule's float32 segment runs on it, then what the
 * rule wrote is stored back in its format (SPEC L.6).  Element indices are the tensor's. */
static void gd_staged_segment(const gd_tensors *t, int64_t k, int64_t lo, int64_t len,
                              const gd_hyper *h, gd_segment_fn segment)
{
    static _Thread_local float scratch[GD_MAX_SLOTS][GD_STAGE_MAX] __attribute__((aligned(64)));
    const gd_lowp *p = t->lowp;
    const int slots = t->slots;
    const unsigned char *format = p->format + k * slots;
    const int64_t block = p->block_size;
    const int64_t stage = block >= GD_STAGE ? block : GD_STAGE / block * block;
    void *const *source = t->data + k * slots;
    float *const *absmax = p->absmax ? p->absmax + k * slots : NULL;
    float *master = p->master ? (float *)p->master[k] : NULL;
    uint16_t *copy = p->param_copy ? (uint16_t *)p->param_copy[k] : NULL;
    void *data[GD_MAX_SLOTS];
    gd_call_scalars scalars = {0}; /* the rule's per-call scalars, once for all the stages */
    const gd_tensors one = {1,
                            slots,
                            data,
                            t->size + k,
                            t->step + k,
                            t->is_double + k,
                            t->mu_product ? t->mu_product + k : NULL,
                            t->mu_product_is_double ? t->mu_product_is_double + k : NULL,
                            NULL,
                            &scalars};
    for (int64_t at = lo; at < lo + len; at += stage) {
        const int64_t n = lo + len - at < stage ? lo + len - at : stage;
        if (absmax && at + n < lo + len) /* 8-bit state: the next stage's bytes, meanwhile */
            gd_stage_prefetch(t, k, at + n, lo + len - at - n < stage ? lo + len - at - n : stage);
        for (int s = 0; s < slots; s++) { /* 1. load and widen */
            if (s == GD_SLOT_PARAM && master) {
                data[s] = master + at;
            } else if (format[s] == GD_NATIVE) {
                data[s] = (float *)source[s] + at;
            } else if (format[s] == GD_BF16 || format[s] == GD_F16) {
                gd_widen_span(scratch[s], (const uint16_t *)source[s] + at, n, format[s]);
                data[s] = scratch[s];
            } else {
                gd_q8_load_blocks(&gd_maps[format[s] == GD_Q8_SIGNED],
                                  (const uint8_t *)source[s] + at, absmax[s] + at / block, n,
                                  block, scratch[s]);
                data[s] = scratch[s];
            }
        }
        segment(&one, 0, 0, n, h); /* 2. the rule in float32 */
        for (int s = 0; s < slots; s++) { /* 3. store */
            if (s == GD_SLOT_GRAD || (format[s] == GD_NATIVE && s != GD_SLOT_PARAM)) continue;
            if (s == GD_SLOT_PARAM) {
                if (format[s] != GD_NATIVE)
                    gd_narrow(t, k, (uint16_t *)source[s] + at, (const float *)data[s], n, format[s],
                              0, at);
                if (copy)
                    gd_narrow(t, k, copy + at, (const float *)data[s], n, p->copy_format[k], 0, at);
            } else if (format[s] == GD_BF16 || format[s] == GD_F16) {
                gd_narrow(t, k, (uint16_t *)source[s] + at, scratch[s], n, format[s],
                          (uint32_t)(s - 1), at); /* stream 1 + j for state buffer j = s - 2 */
            } else {
                gd_q8_store_blocks(&gd_maps[format[s] == GD_Q8_SIGNED], scratch[s], n, block,
                                   (uint8_t *)source[s] + at, absmax[s] + at / block);
            }
        }
    }
}

/* ---- fused (fused.inc): the conversions inside the rule's own span loop ------------------ */

static int gd_fused_mode = 1; /* gd_lowp_set_fused */

/* The fused instance this CPU runs (gd_fused_mode: 1 the widest it has, 2 AVX2), or -1: staged. */
static int gd_fused_instance(void)
{
    if (gd_fused_mode == 0) return -1;
#if GD_HAVE_CLONES
    __builtin_cpu_init();
    if (gd_fused_mode == 1 && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        return 1;
    return __builtin_cpu_supports("avx2") ? 0 : -1;
#else
    return 0;
#endif
}

const char *gd_lowp_set_fused(int mode)
{
    gd_fused_mode = mode >= 0 && mode <= 2 ? mode : 1;
#if GD_HAVE_CLONES
    static const char *const names[] = {"staged", "avx2", "avx512"};
#else
    static const char *const names[] = {"staged", "build"};
#endif
    return names[gd_fused_instance() + 1];
}

/* Tensor k's layout index in fused.inc's table, or -1 when it is staged: float32 or 16-bit
 * parameter and gradient (their 16-bit ones and a parameter copy all bfloat16 or all float16),
 * float32 or bfloat16 state (every state buffer one format). */
static int gd_fused_layout(const gd_tensors *t, int64_t k)
{
    const gd_lowp *p = t->lowp;
    const unsigned char *format = p->format + k * t->slots;
    int half = GD_NATIVE; /* the 16-bit format of the parameter, gradient and copy */
    int mixed = 0;
#define GD_HALF_OF(f) (mixed |= (f) != GD_NATIVE && half != GD_NATIVE && (f) != half, \
                       half = (f) != GD_NATIVE ? (f) : half)
    const int copy = !(p->master && p->master[k]) && p->param_copy && p->param_copy[k];
    GD_HALF_OF(format[GD_SLOT_PARAM]);
    GD_HALF_OF(format[GD_SLOT_GRAD]);
    if (copy) GD_HALF_OF(p->copy_format[k]);
#undef GD_HALF_OF
    int param;
    if (p->master && p->master[k]) param = format[GD_SLOT_PARAM] != GD_NATIVE ? 1 : -1;
    else if (copy) param = format[GD_SLOT_PARAM] == GD_NATIVE ? 1 : -1;
    else param = format[GD_SLOT_PARAM] == GD_NATIVE ? 0 : 2;
    const int grad = format[GD_SLOT_GRAD] != GD_NATIVE;
    int state = t->slots > GD_SLOT_STATE ? format[GD_SLOT_STATE] : GD_NATIVE;
    for (int s = GD_SLOT_STATE; s < t->slots; s++)
        if (format[s] != state) state = -1;
    state = state == GD_NATIVE ? 0 : state == GD_BF16 ? 1 : -1;
    if (half != GD_NATIVE && half != GD_BF16 && half != GD_F16) return -1;
    if (mixed || param < 0 || state < 0 || t->is_double[k]) return -1;
    return (half == GD_F16) * 24 + param * 8 + grad * 4 + state * 2 + (p->stochastic != 0);
}

/* Elements [lo, lo + len) of tensor k through its fused segment, cut where the generator's
 * key changes (every 2^32 elements: SPEC L.2). */
static void gd_fused_segment(const gd_tensors *t, int64_t k, int64_t lo, int64_t len,
                             const gd_hyper *h, gd_segment_fn segment)
{
    for (int64_t at = lo; at < lo + len;) {
        const int64_t n = gd_span_within_key(at, lo + len - at);
        segment(t, k, at, n, h);
        at += n;
    }
}

/* Bytes of the vector loads the kernels' loops are aligned for (an AVX-512 register, a
 * cache line), and the shortest segment worth cutting for it. */
#define GD_LOAD_ALIGN ((uintptr_t)64)
#define GD_ALIGN_MIN ((int64_t)2048)

/* Elements of `item` bytes from `start` before the address reaches a multiple of
 * GD_LOAD_ALIGN; 0 when `len` < `min_len` or `start` is not a multiple of `item`. */
static inline int64_t gd_line_head(const void *start, uintptr_t item, int64_t len, int64_t min_len)
{
    const uintptr_t at = (uintptr_t)start;
    const int64_t head = (int64_t)((GD_LOAD_ALIGN - at % GD_LOAD_ALIGN) % GD_LOAD_ALIGN / item);
    return len >= min_len && at % item == 0 ? head : 0;
}

/* Elements [lo, lo + len) of native tensor k through `segment`, cut once where the
 * parameter's address reaches a multiple of GD_LOAD_ALIGN: the vector loop of the second
 * part then loads and stores whole cache lines (the parameter, and every other buffer that
 * shares its offset: NumPy's large arrays all start 16 bytes past a page, torch's on 64
 * bytes).  A vector that straddles two lines costs two accesses: 1e7 float32 elements in
 * NumPy arrays, one thread, the cut took Schedule-Free SGD's step from 3.76 to 2.99 ms and
 * the roofline loop's from 3.25 to 2.88 ms (bench/misaligned.c: 1.13x in a bare loop).
 * Only the element-wise segments run here (and the two-pass rules' second pass), whose
 * elements do not depend on where a segment starts: the bits are the same. */
static void gd_native_segment(const gd_tensors *t, int64_t k, int64_t lo, int64_t len,
                              const gd_hyper *h, gd_segment_fn segment)
{
    const uintptr_t item = t->is_double[k] ? 8 : 4;
    const int64_t head =
        gd_line_head((const char *)t->data[k * t->slots] + lo * item, item, len, GD_ALIGN_MIN);
    if (head > 0) segment(t, k, lo, head, h);
    segment(t, k, lo + head, len - head, h);
}

/* Runs the step's segments over elements [begin, end) of the padded index space (the
 * tensors laid end to end, each padded to a multiple of step->align elements).  cursor = (k,
 * offset of tensor k): where the calling thread's previous chunk of this step ended, so that a
 * thread's scan over a long list of tensors is done once per step, not once per chunk. */
static void gd_step_chunk(void *ctx, int64_t begin, int64_t end, int64_t cursor[2])
{
    const gd_step_work *step = (const gd_step_work *)ctx;
    const gd_tensors *t = step->t;
    const int64_t align = step->align;
    int64_t k = cursor[0], offset = cursor[1];
    while (k < t->count && offset + gd_padded(t->size[k], align) <= begin)
        offset += gd_padded(t->size[k++], align);
    for (; k < t->count && offset < end; offset += gd_padded(t->size[k++], align)) {
        const int64_t lo = begin > offset ? begin - offset : 0;
        const int64_t hi = end - offset < t->size[k] ? end - offset : t->size[k];
        if (hi > lo && t->lowp) { /* a policy: fused or staged (its arithmetic is float32) */
            const int layout = step->fused ? gd_fused_layout(t, k) : -1;
            const gd_segment_fn fused = layout >= 0 ? step->fused[layout] : NULL;
            if (fused)
                gd_fused_segment(t, k, lo, hi - lo, step->h, fused);
            else
                gd_staged_segment(t, k, lo, hi - lo, step->h, step->segment_f32);
        } else if (hi > lo)
            gd_native_segment(t, k, lo, hi - lo, step->h,
                              t->is_double[k] ? step->segment_f64 : step->segment_f32);
        if (offset + gd_padded(t->size[k], align) > end) break; /* tensor k goes on in the next chunk */
    }
    cursor[0] = k;
    cursor[1] = offset;
}

/* Elements per chunk for a step of `total` padded elements on `team` threads: about 16
 * chunks a thread, so that a thread that starts late or stalls leaves little to others,
 * within [GD_CHUNK_MIN, GD_CHUNK_MAX], whole cache lines. */
static int64_t gd_chunk_size(int64_t total, int team)
{
    int64_t chunk = gd_padded(total / ((int64_t)team * 16), GD_SPAN_ALIGN);
    if (chunk < GD_CHUNK_MIN) chunk = GD_CHUNK_MIN;
    if (chunk > GD_CHUNK_MAX) chunk = GD_CHUNK_MAX;
    return chunk;
}

/* Greatest common divisor, for the alignment of a policy's blocks. */
static int64_t gd_gcd(int64_t a, int64_t b)
{
    while (b) {
        const int64_t r = a % b;
        a = b;
        b = r;
    }
    return a;
}

/* One step over a list of tensors: the whole list on the calling thread when small, else
 * chunks of the padded index space shared by the calling thread and the helpers
 * (threads.inc).  Each element's math is the same whichever chunk it is in, so results do
 * not depend on the thread count or the chunking. */
static void gd_run_fused(const gd_tensors *t, const gd_hyper *h, gd_segment_fn segment_f32,
                         gd_segment_fn segment_f64, const gd_fused_rule *fused)
{
    int64_t align = GD_SPAN_ALIGN;
    if (t->lowp) align = GD_SPAN_ALIGN / gd_gcd(GD_SPAN_ALIGN, t->lowp->block_size) * t->lowp->block_size;
    int64_t total = 0;
    for (int64_t k = 0; k < t->count; k++) total += gd_padded(t->size[k], align);
    const int instance = fused ? gd_fused_instance() : -1;
    const gd_step_work step = {t, h, segment_f32, segment_f64, align,
                               instance >= 0 ? fused->segment[instance] : NULL};
    const int team = gd_team_size(total);
    if (team <= 1) { /* the common small step: straight to the segments */
        int64_t cursor[2] = {0, 0};
        gd_step_chunk((void *)&step, 0, total, cursor);
        return;
    }
    gd_parallel_for(total, gd_padded(gd_chunk_size(total, team), align), team, gd_step_chunk, (void *)&step);
}

/* The same without fused segments (every policy staged). */
static void gd_run(const gd_tensors *t, const gd_hyper *h, gd_segment_fn segment_f32,
                   gd_segment_fn segment_f64)
{
    gd_run_fused(t, h, segment_f32, segment_f64, NULL);
}

#define GD_CAT_(a, b) a##b
#define GD_CAT(a, b) GD_CAT_(a, b)

#define REAL float
#define IS_DOUBLE 0
#define SFX _f32
#define SQRT sqrtf
#define FABS fabsf
#include "rules.inc"
#undef REAL
#undef IS_DOUBLE
#undef SFX
#undef SQRT
#undef FABS

#define REAL double
#define IS_DOUBLE 1
#define SFX _f64
#define SQRT sqrt
#define FABS fabs
#include "rules.inc"
#undef REAL
#undef IS_DOUBLE
#undef SFX
#undef SQRT
#undef FABS

/* The catalogue: every rule's entry {name, segment_f32, segment_f64, prepare, rows}, as the
 * GD_RULE(...) line at the end of its file src_c/rules/<rule>.inc spells it (setup.py copies
 * those lines into rules_list.inc; rules.inc says more).  Nothing to add here for a new rule. */
const gd_rule gd_rules[] = {
#define GD_RULE(...) {__VA_ARGS__},
#define GD_RULE_ENTRIES
#include "rules_list.inc"
#undef GD_RULE_ENTRIES
#undef GD_RULE
};
/* The two-pass rules (src_c/two_pass.inc): pass 1 and finish of each (its gd_rules[] entry
 * holds pass 2), as the GD_TWO_PASS(...) line of its file src_c/rules/<rule>.inc spells it
 * (gathered by setup.py into rules_list.inc), then an end mark.  Nothing to add here. */
#undef GD_TWO_PASS
static const gd_two_pass_rule gd_two_pass_rules[] = {
#define GD_TWO_PASS(...) {__VA_ARGS__},
#define GD_TWO_PASS_ENTRIES
#include "rules_list.inc"
#undef GD_TWO_PASS_ENTRIES
#undef GD_TWO_PASS
    {NULL, NULL, NULL, NULL},
};

static const gd_two_pass_rule *gd_find_two_pass(const gd_rule *rule)
{
    for (const gd_two_pass_rule *r = gd_two_pass_rules; r->name; r++)
        if (strcmp(r->name, rule->name) == 0) return r;
    return NULL;
}

int gd_is_two_pass(const gd_rule *rule) { return gd_find_two_pass(rule) != NULL; }

void gd_step_two_pass(const gd_rule *rule, const gd_tensors *t, const gd_hyper *h,
                      const int64_t *matrix, double *scratch)
{
    const gd_two_pass_rule *two_pass = gd_find_two_pass(rule);
    const gd_two_pass_hyper first = {*h, matrix};
    if (two_pass) gd_two_pass(two_pass, rule, t, &first, scratch);
}

const int gd_rule_count = (int)(sizeof(gd_rules) / sizeof(gd_rules[0]));

const gd_rule *gd_find_rule(const char *name)
{
    for (int r = 0; r < gd_rule_count; r++)
        if (strcmp(gd_rules[r].name, name) == 0) return &gd_rules[r];
    return NULL;
}

/* The rule's fused segments (fused.inc's gd_fused_rules[]), or NULL. */
static const gd_fused_rule *gd_find_fused(const gd_rule *rule)
{
    for (size_t r = 0; r < sizeof(gd_fused_rules) / sizeof(gd_fused_rules[0]); r++)
        if (gd_fused_rules[r].segment_f32 == rule->segment_f32) return &gd_fused_rules[r];
    return NULL;
}

uint64_t gd_lowp_fused_layouts(const gd_rule *rule)
{
    const gd_fused_rule *fused = gd_find_fused(rule);
    const int instance = fused ? gd_fused_instance() : -1;
    uint64_t layouts = 0;
    for (int layout = 0; instance >= 0 && layout < GD_FUSED_LAYOUTS; layout++)
        if (fused->segment[instance][layout]) layouts |= (uint64_t)1 << layout;
    return layouts;
}

void gd_step(const gd_rule *rule, const gd_tensors *tensors, const gd_hyper *hyper)
{
    if (rule->prepare) rule->prepare(tensors, hyper);
    gd_run_fused(tensors, hyper, rule->segment_f32, rule->segment_f64,
                 tensors->lowp ? gd_find_fused(rule) : NULL);
}

void gd_roofline(const gd_tensors *tensors, const gd_hyper *hyper)
{
    gd_run(tensors, hyper, roofline_segment_f32, roofline_segment_f64);
}

#define GD_FIELD(field, is_int) {#field, offsetof(gd_hyper, field), is_int}
const gd_hyper_field gd_hyper_fields[] = {
    GD_FIELD(lr, 0),
    GD_FIELD(momentum, 0),
    GD_FIELD(beta1, 0),
    GD_FIELD(beta2, 0),
    GD_FIELD(eps, 0),
    GD_FIELD(rho, 0),
    GD_FIELD(grad_scale, 0),
    GD_FIELD(weight_decay, 0),
    GD_FIELD(dampening, 0),
    GD_FIELD(lr_decay, 0),
    GD_FIELD(momentum_decay, 0),
    GD_FIELD(maximize, 1),
    GD_FIELD(decoupled_weight_decay, 1),
    GD_FIELD(eps_inside, 1),
    GD_FIELD(lr_in_buffer, 1),
    GD_FIELD(eps_hat, 1),
    GD_FIELD(bias_correction, 1),
    GD_FIELD(max_of_v_hat, 1),
    GD_FIELD(centered, 1),
    GD_FIELD(momentum_schedule, 1),
    GD_FIELD(roofline_written, 1),
    /* each rule's own fields (their GD_HYPER lines, gathered in rules_list.inc) */
#define GD_IS_INT_int 1
#define GD_IS_INT_double 0
#define GD_HYPER(type, name) {#name, offsetof(gd_hyper, name), GD_IS_INT_##type},
#define GD_RULE_FIELDS
#include "rules_list.inc"
#undef GD_RULE_FIELDS
#undef GD_HYPER
    {NULL, 0, 0},
};
#undef GD_FIELD

/* ---- Row-sparse steps (gdfast.h) ------------------------------------------ */

/* Sorts the (index, position) pairs of `entries` by index, keeping equal indices in order
 * of position: a stable least-significant-digit radix sort, 11 bits a pass, as many passes
 * as row numbers below n_rows have bits.  `spare` holds as many pairs; returns whichever of
 * the two buffers holds the result. */
#define GD_RADIX_BITS 11
static int64_t *gd_sort_entries(int64_t *entries, int64_t *spare, int64_t n, int64_t n_rows)
{
    int bits = 0;
    while (bits < 63 && ((n_rows - 1) >> bits) > 0) bits++;
    for (int shift = 0; shift < bits; shift += GD_RADIX_BITS) {
        int64_t start[1 << GD_RADIX_BITS] = {0};
        const int64_t mask = (1 << GD_RADIX_BITS) - 1;
        for (int64_t i = 0; i < n; i++) start[(entries[2 * i] >> shift) & mask]++;
        int64_t total = 0;
        for (int64_t d = 0; d <= mask; d++) {
            const int64_t count = start[d];
            start[d] = total;
            total += count;
        }
        for (int64_t i = 0; i < n; i++) {
            const int64_t to = start[(entries[2 * i] >> shift) & mask]++;
            spare[2 * to] = entries[2 * i];
            spare[2 * to + 1] = entries[2 * i + 1];
        }
        int64_t *swap = entries;
        entries = spare;
        spare = swap;
    }
    return entries;
}
#undef GD_RADIX_BITS

/* Sum the gradient rows of group j (sorted[first..last)) into `sum`, from 0, in order of
 * occurrence: the additions numpy.add.at makes into a zeroed array. */
#define GD_SUM_ROWS(REAL_T)                                                               \
    do {                                                                                  \
        REAL_T *restrict sum = (REAL_T *)summed;                                          \
        const REAL_T *restrict v = (const REAL_T *)r->values + sorted[2 * first + 1] * dim; \
        _Pragma("omp simd") for (int64_t e = 0; e < dim; e++) sum[e] = (REAL_T)0 + v[e];   \
        for (int64_t p = first + 1; p < last; p++) {                                      \
            v = (const REAL_T *)r->values + sorted[2 * p + 1] * dim;                      \
            _Pragma("omp simd") for (int64_t e = 0; e < dim; e++) sum[e] = sum[e] + v[e]; \
        }                                                                                 \
    } while (0)

/* Starts loading the rows group j will read and write (its parameter and state rows, its
 * first gradient row) while an earlier group is being updated: the groups' rows ascend
 * but lie far apart, too far for the hardware's prefetcher.  Always inlined: as a function
 * of its own, which only reads memory and prefetches, gcc's interprocedural analysis
 * (-O1 and up) finds it pure and deletes every call, which left the row-sparse steps
 * without any prefetch (Adam, 20 000 rows of 64 floats: 5.3 ms, the floor without
 * prefetching 5.1-5.7 ms, with it 1.5-1.8 ms: bench/rows_roofline.c). */
static inline __attribute__((always_inline)) void gd_row_prefetch(const gd_rows *r,
                                                                 const int64_t *sorted,
                                                                 int64_t j)
{
    const int64_t first = r->group_start[j], row = sorted[2 * first];
    const size_t width = r->is_double ? sizeof(double) : sizeof(float);
    const size_t offset = (size_t)(row * r->dim) * width, bytes = (size_t)r->dim * width;
    const char *value = (const char *)r->values + (size_t)(sorted[2 * first + 1] * r->dim) * width;
    for (size_t b = 0; b < bytes; b += 64) {
        __builtin_prefetch((const char *)r->param + offset + b, 1);
        for (int s = 0; s < r->n_state; s++)
            __builtin_prefetch((const char *)r->state[s] + offset + b, 1);
        __builtin_prefetch(value + b, 0);
    }
}

/* Distinct row j: its summed gradient (in `summed`, one row of scratch), then the rule's
 * segment on that row alone, with the chunk's `scalars`: the rule's per-call scalars (Adam's
 * pow()s, square root and divisions) are computed for the chunk's first row only. */
static inline void gd_row_update(const gd_rows *r, const gd_hyper *h, gd_segment_fn segment,
                                 const int64_t *sorted, int64_t j, void *summed,
                                 gd_call_scalars *scalars)
{
    const int64_t first = r->group_start[j], last = r->group_start[j + 1];
    const int64_t row = sorted[2 * first], dim = r->dim;
    const size_t width = r->is_double ? sizeof(double) : sizeof(float);
    if (r->is_double)
        GD_SUM_ROWS(double);
    else
        GD_SUM_ROWS(float);
    void *data[GD_MAX_SLOTS];
    data[GD_SLOT_PARAM] = (char *)r->param + (size_t)(row * dim) * width;
    data[GD_SLOT_GRAD] = summed;
    for (int s = 0; s < r->n_state; s++)
        data[GD_SLOT_STATE + s] = (char *)r->state[s] + (size_t)(row * dim) * width;
    const unsigned char is_double = (unsigned char)r->is_double;
    const gd_tensors one = {1, GD_SLOT_STATE + r->n_state, data, &r->dim, &r->step,
                            &is_double, NULL, NULL, NULL, scalars};
    segment(&one, 0, 0, dim, h);
}
#undef GD_SUM_ROWS

/* A row-sparse step, for gd_parallel_for: distinct rows [begin, end). */
typedef struct {
    const gd_rows *r;
    const gd_hyper *h;
    gd_segment_fn segment;
    const int64_t *sorted;
    int64_t rows_per_chunk; /* the smallest chunk gd_parallel_for is given */
} gd_row_step;

/* Groups ahead whose rows are prefetched. */
#define GD_ROWS_AHEAD 4

/* Rows [begin, end) by one thread; the summed gradient row of each in turn goes to row
 * begin / rows_per_chunk of r->summed: this chunk's own (chunks start at least
 * rows_per_chunk apart), so it stays in the thread's cache, and the chunks' rows are the
 * first few of r->summed (row `begin` itself spread one touched row over every chunk's
 * stretch of the n_indices-row scratch: a fresh page, often a 2 MB huge page zeroed by the
 * kernel, per chunk and step). */
static void gd_row_chunk(void *ctx, int64_t begin, int64_t end, int64_t cursor[2])
{
    const gd_row_step *step = (const gd_row_step *)ctx;
    const gd_rows *r = step->r;
    (void)cursor;
    const size_t width = r->is_double ? sizeof(double) : sizeof(float);
    void *summed = (char *)r->summed + (size_t)(begin / step->rows_per_chunk * r->dim) * width;
    gd_call_scalars scalars = {0};
    for (int64_t j = begin; j < end && j < begin + GD_ROWS_AHEAD; j++)
        gd_row_prefetch(r, step->sorted, j);
    for (int64_t j = begin; j < end; j++) {
        if (j + GD_ROWS_AHEAD < end) gd_row_prefetch(r, step->sorted, j + GD_ROWS_AHEAD);
        gd_row_update(r, step->h, step->segment, step->sorted, j, summed, &scalars);
    }
}
#undef GD_ROWS_AHEAD

/* Sort the indices, find the distinct rows, then update them in chunks of rows shared by
 * the threads (the runtime of the dense steps). */
static int64_t gd_run_rows(const gd_rows *r, const gd_hyper *h, gd_segment_fn segment_f32,
                           gd_segment_fn segment_f64)
{
    const int64_t n = r->n_indices;
    gd_segment_fn segment = r->is_double ? segment_f64 : segment_f32;
    for (int64_t i = 0; i < n; i++) {
        r->order[2 * i] = r->indices[i];
        r->order[2 * i + 1] = i;
    }
    const int64_t *sorted = gd_sort_entries(r->order, r->order + 2 * n, n, r->n_rows);
    int64_t groups = 0;
    for (int64_t i = 0; i < n; i++)
        if (i == 0 || sorted[2 * i] != sorted[2 * i - 2]) r->group_start[groups++] = i;
    r->group_start[groups] = n;
    const int team = gd_team_size(groups * r->dim);
    int64_t rows_per_chunk = gd_chunk_size(groups * r->dim, team) / (r->dim > 0 ? r->dim : 1);
    if (rows_per_chunk < 1) rows_per_chunk = 1;
    const gd_row_step step = {r, h, segment, sorted, rows_per_chunk};
    gd_parallel_for(groups, rows_per_chunk, team, gd_row_chunk, (void *)&step);
    return groups;
}

int64_t gd_step_rows(const gd_rule *rule, const gd_rows *rows, const gd_hyper *hyper)
{
    return gd_run_rows(rows, hyper, rule->segment_f32, rule->segment_f64);
}
