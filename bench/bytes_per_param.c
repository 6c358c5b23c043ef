/*
 * Bytes per parameter: what an Adam step costs at each memory layout of issue 12, next to a
 * loop with exactly its traffic and next to nothing else (the memory limit of that layout).
 *
 *   bytes_per_param N THREADS STEPS HUGE NT CONFIG...
 *
 * N parameters, an OpenMP team of THREADS (static schedule, chunks of 4096 elements), STEPS
 * steps per configuration, interleaved (step s of every configuration before step s + 1 of
 * any), buffers on transparent huge pages when HUGE=1 (lowp.h gd_alloc_state), the write-only
 * bf16 copy-out through non-temporal stores when NT=1, the buffers' starts staggered by
 * 4 KiB + 64 B each when the environment has STAGGER=1.  Prints, per configuration, one line:
 *   name bytes_per_param median_ms min_ms p90_ms median_cpu_ms min_cpu_ms
 * (wall-clock times of a step; the CPU time of the process during the step, divided by THREADS:
 * on a loaded machine, the time the step's work took when it ran)
 * Configurations (bytes moved per parameter; "master" = fp32 master weights):
 *   traffic28 traffic22 traffic20 traffic16 traffic14   the pure-traffic loops
 *   adam28    fp32 param, fp32 grad, fp32 m and v                     (28)
 *   adam22    bf16 param (no master), bf16 grad, fp32 m and v         (22)
 *   adam20    master, bf16 grad, bf16 m and v, bf16 copy-out          (20), nearest
 *   adam20sr  the same, m and v stochastically rounded                (20)
 *   adam16q8  master, bf16 grad, 8-bit m and v (blocks of 256), bf16 copy-out (16 + 8/256)
 *   adam14sr  bf16 param (no master, stochastic), bf16 grad, bf16 m and v (14)
 * Built by bench/bytes_per_param.py with the project's flags (no -ffast-math).
 */
#include <emmintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../src_c/lowp.h"

#define CHUNK 4096

/* The project's instruction-set clones (src_c/kernels.c GD_CLONES). */
#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#define Q8_BLOCK 256

typedef struct {
    int64_t n;
    float *p, *g, *m, *v;                /* fp32 */
    uint16_t *g16, *m16, *v16, *c16, *p16; /* bf16 */
    uint8_t *qm, *qv;                    /* 8-bit */
    float *am, *av;                      /* absmax per block */
    gd_q8_map *signed_map, *unsigned_map;
    int nt;
} buffers;

typedef struct {
    float beta1, one_minus_beta1, beta2, one_minus_beta2, step_size, inv_sqrt_c2, eps;
    uint64_t step;
} hyper;

/* The copy-out: c16[0..n) = tmp, through the cache or around it. */
static inline void copy_out(uint16_t *restrict dst, const uint16_t *restrict tmp, int64_t n, int nt)
{
    if (nt && ((uintptr_t)dst & 15) == 0 && n % 8 == 0) {
        for (int64_t i = 0; i < n; i += 8)
            _mm_stream_si128((__m128i *)(dst + i), _mm_load_si128((const __m128i *)(tmp + i)));
    } else {
        memcpy(dst, tmp, (size_t)n * 2);
    }
}

/* ---- the pure-traffic loops: each buffer read / written as its configuration does ---- */

/* fp32 master read and written, bf16 gradient read, two state buffers of type T read and
 * written, the bf16 copy-out written. */
#define TRAFFIC_WITH_MASTER(s1, s2, T)                                                      \
    do {                                                                                    \
        _Pragma("omp simd") for (int64_t i = 0; i < n; i++)                                 \
        {                                                                                   \
            p[i] += (float)g16[i];                                                          \
            s1[i] = (T)(s1[i] + g16[i]);                                                    \
            s2[i] = (T)(s2[i] + g16[i]);                                                    \
            tmp[i] = (uint16_t)(g16[i] + 1);                                                \
        }                                                                                   \
        copy_out(b->c16 + lo, tmp, n, b->nt);                                               \
    } while (0)
CLONES static void traffic(const buffers *b, int bytes, int64_t lo, int64_t n)
{
    float *restrict p = b->p + lo, *restrict m = b->m + lo, *restrict v = b->v + lo;
    const float *restrict g = b->g + lo;
    const uint16_t *restrict g16 = b->g16 + lo;
    uint16_t *restrict m16 = b->m16 + lo, *restrict v16 = b->v16 + lo, *restrict p16 = b->p16 + lo;
    uint8_t *restrict qm = b->qm + lo, *restrict qv = b->qv + lo;
    uint16_t tmp[CHUNK] __attribute__((aligned(64)));
    switch (bytes) {
    case 28:
#pragma omp simd
        for (int64_t i = 0; i < n; i++) { p[i] += g[i]; m[i] += g[i]; v[i] += g[i]; }
        break;
    case 22:
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            p16[i] = (uint16_t)(p16[i] + g16[i]);
            m[i] += (float)g16[i];
            v[i] += (float)g16[i];
        }
        break;
    case 20:
        TRAFFIC_WITH_MASTER(m16, v16, uint16_t);
        break;
    case 16:
        TRAFFIC_WITH_MASTER(qm, qv, uint8_t);
        break;
    default: /* 14 */
#pragma omp simd
        for (int64_t i = 0; i < n; i++) {
            p16[i] = (uint16_t)(p16[i] + g16[i]);
            m16[i] = (uint16_t)(m16[i] + g16[i]);
            v16[i] = (uint16_t)(v16[i] + g16[i]);
        }
        break;
    }
}

/* ---- prototype fused Adam steps: load -> widen/dequantize -> fp32 math -> round -> store -- */
#define ADAM_MATH(gv, mv, vv, pv)                                                 \
    mv = h->beta1 * mv + h->one_minus_beta1 * gv;                                 \
    vv = h->beta2 * vv + h->one_minus_beta2 * gv * gv;                            \
    pv = pv - h->step_size * mv / (sqrtf(vv) * h->inv_sqrt_c2 + h->eps)

CLONES static void adam28(const buffers *b, const hyper *h, int64_t lo, int64_t n)
{
    float *restrict p = b->p + lo, *restrict m = b->m + lo, *restrict v = b->v + lo;
    const float *restrict g = b->g + lo;
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float gv = g[i], mv = m[i], vv = v[i], pv = p[i];
        ADAM_MATH(gv, mv, vv, pv);
        m[i] = mv; v[i] = vv; p[i] = pv;
    }
}

CLONES static void adam22(const buffers *b, const hyper *h, int64_t lo, int64_t n)
{
    uint16_t *restrict p16 = b->p16 + lo;
    const uint16_t *restrict g16 = b->g16 + lo;
    float *restrict m = b->m + lo, *restrict v = b->v + lo;
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float gv = GD_LOAD_BF16(g16, i), mv = m[i], vv = v[i], pv = GD_LOAD_BF16(p16, i);
        ADAM_MATH(gv, mv, vv, pv);
        m[i] = mv; v[i] = vv; GD_STORE_BF16(p16, i, pv);
    }
}

CLONES static void adam20(const buffers *b, const hyper *h, int64_t lo, int64_t n, int sr)
{
    float *restrict p = b->p + lo;
    const uint16_t *restrict g16 = b->g16 + lo;
    uint16_t *restrict m16 = b->m16 + lo, *restrict v16 = b->v16 + lo;
    uint16_t tmp[CHUNK] __attribute__((aligned(64)));
    const uint32_t key_m = gd_random_key(7, h->step, 0, 1, 0);
    const uint32_t key_v = gd_random_key(7, h->step, 0, 2, 0);
/* STORE_M, STORE_V: how m and v are rounded to bf16. */
#define ADAM20_LOOP(STORE_M, STORE_V)                                                           \
    _Pragma("omp simd") for (int64_t i = 0; i < n; i++)                                         \
    {                                                                                           \
        float gv = GD_LOAD_BF16(g16, i), mv = GD_LOAD_BF16(m16, i), vv = GD_LOAD_BF16(v16, i); \
        float pv = p[i];                                                                        \
        ADAM_MATH(gv, mv, vv, pv);                                                              \
        p[i] = pv;                                                                              \
        STORE_M;                                                                                \
        STORE_V;                                                                                \
        GD_STORE_BF16(tmp, i, pv);                                                              \
    }
    if (sr) {
        ADAM20_LOOP(GD_STORE_BF16_SR(m16, i, mv, key_m, lo + i),
                    GD_STORE_BF16_SR(v16, i, vv, key_v, lo + i))
    } else {
        (void)key_m;
        (void)key_v;
        ADAM20_LOOP(GD_STORE_BF16(m16, i, mv), GD_STORE_BF16(v16, i, vv))
    }
#undef ADAM20_LOOP
    copy_out(b->c16 + lo, tmp, n, b->nt);
}

CLONES static void adam16q8(const buffers *b, const hyper *h, int64_t lo, int64_t n)
{
    float *restrict p = b->p + lo;
    const uint16_t *restrict g16 = b->g16 + lo;
    uint8_t *restrict qm = b->qm + lo, *restrict qv = b->qv + lo;
    float *restrict am = b->am + lo / Q8_BLOCK, *restrict av = b->av + lo / Q8_BLOCK;
    const gd_q8_map *ms = b->signed_map, *mu = b->unsigned_map;
    uint16_t tmp[CHUNK] __attribute__((aligned(64)));
    float mn[Q8_BLOCK] __attribute__((aligned(64))), vn[Q8_BLOCK] __attribute__((aligned(64)));
    for (int64_t s = 0; s < n; s += Q8_BLOCK) {
        const int64_t len = n - s < Q8_BLOCK ? n - s : Q8_BLOCK;
        const float scale_m = am[s / Q8_BLOCK], scale_v = av[s / Q8_BLOCK];
#pragma omp simd
        for (int64_t i = 0; i < len; i++) {
            float gv = GD_LOAD_BF16(g16, s + i);
            float mv = gd_q8_decode(ms, qm[s + i], scale_m);
            float vv = gd_q8_decode(mu, qv[s + i], scale_v);
            float pv = p[s + i];
            ADAM_MATH(gv, mv, vv, pv);
            p[s + i] = pv;
            mn[i] = mv;
            vn[i] = vv;
            GD_STORE_BF16(tmp, s + i, pv);
        }
        am[s / Q8_BLOCK] = gd_q8_quantize_block(ms, mn, len, qm + s);
        av[s / Q8_BLOCK] = gd_q8_quantize_block(mu, vn, len, qv + s);
    }
    copy_out(b->c16 + lo, tmp, n, b->nt);
}

CLONES static void adam14sr(const buffers *b, const hyper *h, int64_t lo, int64_t n)
{
    uint16_t *restrict p16 = b->p16 + lo, *restrict m16 = b->m16 + lo, *restrict v16 = b->v16 + lo;
    const uint16_t *restrict g16 = b->g16 + lo;
    const uint32_t key_p = gd_random_key(7, h->step, 0, 0, 0);
    const uint32_t key_m = gd_random_key(7, h->step, 0, 1, 0);
    const uint32_t key_v = gd_random_key(7, h->step, 0, 2, 0);
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        float gv = GD_LOAD_BF16(g16, i), mv = GD_LOAD_BF16(m16, i), vv = GD_LOAD_BF16(v16, i);
        float pv = GD_LOAD_BF16(p16, i);
        ADAM_MATH(gv, mv, vv, pv);
        GD_STORE_BF16_SR(p16, i, pv, key_p, lo + i);
        GD_STORE_BF16_SR(m16, i, mv, key_m, lo + i);
        GD_STORE_BF16_SR(v16, i, vv, key_v, lo + i);
    }
}

static const struct {
    const char *name;
    double bytes;
} CONFIGS[] = {
    {"traffic28", 28}, {"traffic22", 22}, {"traffic20", 20}, {"traffic16", 16},
    {"traffic14", 14}, {"adam28", 28},    {"adam22", 22},    {"adam20", 20},
    {"adam20sr", 20},  {"adam16q8", 16 + 16.0 / Q8_BLOCK},   {"adam14sr", 14},
};
#define N_CONFIGS ((int)(sizeof(CONFIGS) / sizeof(CONFIGS[0])))

static void run_chunk(int config, const buffers *b, const hyper *h, int64_t lo, int64_t n)
{
    switch (config) {
    case 0: traffic(b, 28, lo, n); break;
    case 1: traffic(b, 22, lo, n); break;
    case 2: traffic(b, 20, lo, n); break;
    case 3: traffic(b, 16, lo, n); break;
    case 4: traffic(b, 14, lo, n); break;
    case 5: adam28(b, h, lo, n); break;
    case 6: adam22(b, h, lo, n); break;
    case 7: adam20(b, h, lo, n, 0); break;
    case 8: adam20(b, h, lo, n, 1); break;
    case 9: adam16q8(b, h, lo, n); break;
    default: adam14sr(b, h, lo, n); break;
    }
}

static double clock_s(clockid_t clock)
{
    struct timespec t;
    clock_gettime(clock, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The k-th buffer starts k * (4 KiB + 64 B) into its allocation when STAGGER=1: buffers that
 * all start on a 2 MiB boundary (huge pages) would otherwise map element i of every stream to
 * the same cache set and the same 4 KiB alias. */
static void *alloc_or_die(size_t bytes, int huge)
{
    static int count = 0;
    const char *stagger = getenv("STAGGER");
    const size_t offset = stagger && atoi(stagger) ? (size_t)(count++ % 16) * (4096 + 64) : 0;
    char *p = gd_alloc_state(bytes + offset, huge);
    if (!p) {
        fprintf(stderr, "out of memory (%zu bytes)\n", bytes);
        exit(1);
    }
    return p + offset;
}

int main(int argc, char **argv)
{
    if (argc < 7) {
        fprintf(stderr, "usage: %s N THREADS STEPS HUGE NT CONFIG...\n", argv[0]);
        return 2;
    }
    const int64_t n = (int64_t)atof(argv[1]);
    const int threads = atoi(argv[2]), steps = atoi(argv[3]), huge = atoi(argv[4]);
    int chosen[N_CONFIGS], n_chosen = 0;
    for (int a = 6; a < argc; a++)
        for (int c = 0; c < N_CONFIGS; c++)
            if (!strcmp(argv[a], CONFIGS[c].name)) chosen[n_chosen++] = c;
    buffers b = {.n = n, .nt = atoi(argv[5])};
    const size_t f = (size_t)n * 4, h2 = (size_t)n * 2, q = (size_t)n, blocks = (size_t)(n / Q8_BLOCK + 1) * 4;
    b.p = alloc_or_die(f, huge); b.g = alloc_or_die(f, huge);
    b.m = alloc_or_die(f, huge); b.v = alloc_or_die(f, huge);
    b.g16 = alloc_or_die(h2, huge); b.m16 = alloc_or_die(h2, huge); b.v16 = alloc_or_die(h2, huge);
    b.c16 = alloc_or_die(h2, huge); b.p16 = alloc_or_die(h2, huge);
    b.qm = alloc_or_die(q, huge); b.qv = alloc_or_die(q, huge);
    b.am = alloc_or_die(blocks, huge); b.av = alloc_or_die(blocks, huge);
    b.signed_map = alloc_or_die(sizeof(gd_q8_map), 0);
    b.unsigned_map = alloc_or_die(sizeof(gd_q8_map), 0);
    /* The two dynamic maps (float32), from the file GD_MAPS (the Python driver writes it). */
    float code_s[256], code_u[256];
    FILE *maps = fopen(getenv("GD_MAPS") ? getenv("GD_MAPS") : "", "rb");
    if (!maps || fread(code_s, 4, 256, maps) != 256 || fread(code_u, 4, 256, maps) != 256) {
        fprintf(stderr, "GD_MAPS: a file with the two dynamic maps (2 x 256 float32)\n");
        return 2;
    }
    fclose(maps);
    if (gd_q8_map_init(b.signed_map, code_s) || gd_q8_map_init(b.unsigned_map, code_u)) return 3;
    /* First touch by the team that will use the memory; realistic values. */
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int64_t i = 0; i < n; i++) {
        const float x = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
        b.p[i] = x; b.g[i] = 1e-3f * x; b.m[i] = 1e-4f * x; b.v[i] = 1e-8f * (x * x + 0.1f);
        b.g16[i] = gd_f32_to_bf16(b.g[i]); b.m16[i] = gd_f32_to_bf16(b.m[i]);
        b.v16[i] = gd_f32_to_bf16(b.v[i]); b.p16[i] = gd_f32_to_bf16(x); b.c16[i] = 0;
    }
    for (int64_t s = 0; s < n; s += Q8_BLOCK) {
        const int64_t len = n - s < Q8_BLOCK ? n - s : Q8_BLOCK;
        b.am[s / Q8_BLOCK] = gd_q8_quantize_block(b.signed_map, b.m + s, len, b.qm + s);
        b.av[s / Q8_BLOCK] = gd_q8_quantize_block(b.unsigned_map, b.v + s, len, b.qv + s);
    }
    double *times = malloc(sizeof(double) * (size_t)steps * N_CONFIGS);
    double *cpu = malloc(sizeof(double) * (size_t)steps * N_CONFIGS);
    const int64_t chunks = (n + CHUNK - 1) / CHUNK;
    for (int s = 0; s < steps + 1; s++) { /* step 0: warm-up, not counted */
        for (int k = 0; k < n_chosen; k++) {
            hyper h = {0.9f, 0.1f, 0.999f, 0.001f, 1e-3f, 1.0f, 1e-8f, (uint64_t)s + 1};
            const double t0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
#pragma omp parallel for schedule(static) num_threads(threads)
            for (int64_t c = 0; c < chunks; c++) {
                const int64_t lo = c * CHUNK;
                run_chunk(chosen[k], &b, &h, lo, n - lo < CHUNK ? n - lo : CHUNK);
            }
            if (s > 0) {
                times[k * steps + s - 1] = clock_s(CLOCK_MONOTONIC) - t0;
                cpu[k * steps + s - 1] = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
            }
        }
    }
    for (int k = 0; k < n_chosen; k++) {
        double *t = times + k * steps, *u = cpu + k * steps;
        qsort(t, (size_t)steps, sizeof(double), cmp_double);
        qsort(u, (size_t)steps, sizeof(double), cmp_double);
        printf("%s %.4f %.3f %.3f %.3f %.3f %.3f\n", CONFIGS[chosen[k]].name,
               CONFIGS[chosen[k]].bytes, 1e3 * t[steps / 2], 1e3 * t[0], 1e3 * t[(steps * 9) / 10],
               1e3 * u[steps / 2] / threads, 1e3 * u[0] / threads);
    }
    return 0;
}
