/*
 * gdfast's own dense step (src_c/kernels.c, linked in) timed per dtype policy, Adam, against
 * its float32 step, in one process: the fast loop for work on the kernels' staging (issue 12).
 *
 *   lowp_step N THREADS STEPS CONFIG...     (GD_MAPS: the two 8-bit maps, signed then unsigned)
 *
 * GD_RULE=name times another rule with two state buffers instead of Adam (adamax, nadam,
 * radam, adadelta, rprop; their usual hyper-parameters, from step 100 on).
 *
 * CONFIG (every low-precision one with bfloat16 gradients):
 *   fp32       float32 everything (the reference of the ratios)
 *   bf16state  float32 parameter, bfloat16 state                     fused (src_c/fused.inc)
 *   master     bfloat16 parameter + float32 master, bfloat16 state   fused
 *   mastersr   the same, stochastic rounding                         fused
 *   copy       float32 parameter + bfloat16 copy-out, bfloat16 state fused (the moonshot layout)
 *   bf16       bfloat16 parameter and state, no master                fused
 *   bf16sr     the same, stochastic                                  fused
 *   bf16params bfloat16 parameter, float32 state, no master           fused
 *              (DeepSpeed's bfloat16 layout, gdfast.torch's default for bfloat16 parameters)
 *   q8 | q8copy | f16state                                           staged
 * float16 (helper f16; float32 state):
 *   f16-master float16 parameter + float32 master, float16 gradient  fused (torch AMP's)
 *   f16-copy   float32 parameter and gradient + float16 copy-out     fused
 *   f16-grad   float32 parameter, float16 gradient                   fused
 *   (each with "sr" for stochastic rounding: f16-mastersr, f16-copysr)
 * A name ending in "-staged" runs that configuration through the staged path (gd_lowp_set_fused(0)),
 * one ending in "-avx2" through the AVX2 instance of the fused loops on an AVX-512 CPU.
 * OMP_WAIT_POLICY is passive unless set (see main).  Prints per config: name, median CPU ms
 * per step / threads, median wall ms, its bytes per parameter, the median CPU ms of a plain C loop with exactly that traffic (same threads), and
 * the step's CPU-time ratio to the last fp32 run and to that loop.  Build (the kernels' flags;
 * never -ffast-math) and maps:
 *   gcc -O3 -fno-math-errno -fno-trapping-math -ffp-contract=off -fopenmp -Isrc_c \
 *       bench/lowp_step.c src_c/kernels.c src_c/reduce.c -o /tmp/lowp_step -lm
 *   python -c "import numpy as np; from gdfast.formats import DYNAMIC_SIGNED as s, \
 *       DYNAMIC_UNSIGNED as u; np.concatenate([s, u]).astype(np.float32).tofile('/tmp/maps.bin')"
 *   GD_MAPS=/tmp/maps.bin /tmp/lowp_step 1e7 1 9 fp32 bf16state master copy q8 fp32
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <omp.h>

#include "../src_c/gdfast.h"
#include "../src_c/lowp.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static double cpu_now(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

static int cmp(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The traffic of a configuration with next to no math: parameter (float or 16-bit) read and
 * written, gradient read, two state buffers read and written, a 16-bit copy written. */
#define TRAFFIC(name, PT, GT, ST)                                                           \
    static void name(PT *restrict p, const GT *restrict g, ST *restrict m, ST *restrict v,  \
                     uint16_t *restrict copy, int64_t n)                                    \
    {                                                                                       \
        _Pragma("omp parallel for simd schedule(static)") for (int64_t i = 0; i < n; i++) { \
            p[i] = (PT)(p[i] + g[i]);                                                       \
            m[i] = (ST)(m[i] + g[i]);                                                       \
            v[i] = (ST)(v[i] + g[i]);                                                       \
            if (copy) copy[i] = (uint16_t)g[i];                                             \
        }                                                                                   \
    }
TRAFFIC(traffic_f32, float, float, float)
TRAFFIC(traffic_p32_s16, float, uint16_t, uint16_t)
TRAFFIC(traffic_p16_s16, uint16_t, uint16_t, uint16_t)
TRAFFIC(traffic_p32_s8, float, uint16_t, uint8_t)
TRAFFIC(traffic_p32_g16_s32, float, uint16_t, float)
TRAFFIC(traffic_p16_g16_s32, uint16_t, uint16_t, float)

int main(int argc, char **argv)
{
    if (argc < 5) return 2;
    /* libgomp's idle threads (the traffic loops' team) spin for a while after each loop by
     * default, taking the cores gdfast's own helpers need in the step that follows (2 threads
     * on 2 cores: q8 12.8 ms CPU / 15.3 ms wall per step, 6.1 / 6.7 ms with passive waiting).
     * libgomp reads the setting at load time, so the program runs itself again with it. */
    if (getenv("OMP_WAIT_POLICY") == NULL) {
        setenv("OMP_WAIT_POLICY", "passive", 1);
        execv("/proc/self/exe", argv);
    }
    const int64_t n = (int64_t)atof(argv[1]);
    const int threads = atoi(argv[2]), steps = atoi(argv[3]);
    float maps[512];
    FILE *f = fopen(getenv("GD_MAPS"), "rb");
    if (!f || fread(maps, sizeof(float), 512, f) != 512) return 3;
    fclose(f);
    if (gd_lowp_set_maps(maps, maps + 256)) return 4;
    gd_set_num_threads(threads);
    float *p32 = gd_alloc_state(4 * n, 1), *g32 = gd_alloc_state(4 * n, 1);
    float *m32 = gd_alloc_state(4 * n, 1), *v32 = gd_alloc_state(4 * n, 1);
    uint16_t *p16 = gd_alloc_state(2 * n, 1), *g16 = gd_alloc_state(2 * n, 1);
    uint16_t *m16 = gd_alloc_state(2 * n, 1), *v16 = gd_alloc_state(2 * n, 1);
    uint16_t *c16 = gd_alloc_state(2 * n, 1);
    uint16_t *p16h = gd_alloc_state(2 * n, 1), *g16h = gd_alloc_state(2 * n, 1); /* float16 */
    uint8_t *m8 = gd_alloc_state(n, 1), *v8 = gd_alloc_state(n, 1);
    const int64_t block = 256;
    float *am = gd_alloc_state(4 * (n / block + 1), 1), *av = gd_alloc_state(4 * (n / block + 1), 1);
    srand(1);
    for (int64_t i = 0; i < n; i++) {
        p32[i] = (float)rand() / RAND_MAX - 0.5f;
        g32[i] = 1e-3f * ((float)rand() / RAND_MAX - 0.5f);
        p16[i] = gd_f32_to_bf16(p32[i]);
        g16[i] = gd_f32_to_bf16(g32[i]);
        p16h[i] = gd_f32_to_f16(p32[i]);
        g16h[i] = gd_f32_to_f16(g32[i]);
    }
    gd_hyper h = {0};
    h.lr = 1e-3, h.beta1 = 0.9, h.beta2 = 0.999, h.eps = 1e-8, h.grad_scale = 1;
    h.rho = 0.9, h.rectify_threshold = 5, h.eta_minus = 0.5, h.eta_plus = 1.2;
    h.step_size_min = 1e-6, h.step_size_max = 50;
    const char *rule_name = getenv("GD_RULE") ? getenv("GD_RULE") : "adam";
    char padded[64];
    snprintf(padded, sizeof padded, " %s ", rule_name);
    if (!strstr(" adam adamax nadam radam adadelta rprop ", padded)) {
        fprintf(stderr, "GD_RULE=%s: expected a rule with two state buffers: adam adamax nadam "
                        "radam adadelta rprop\n", rule_name);
        return 5;
    }
    const gd_rule *adam = gd_find_rule(rule_name);
    if (strcmp(rule_name, "adadelta") == 0) h.lr = 1, h.eps = 1e-6;
    double fp32_ms = 0;
    for (int c = 4; c < argc; c++) {
        const char *name = argv[c];
        gd_lowp_set_fused(strstr(name, "-staged") ? 0 : strstr(name, "-avx2") ? 2 : 1);
        unsigned char format[4] = {GD_NATIVE, GD_NATIVE, GD_NATIVE, GD_NATIVE};
        void *data[4] = {p32, g32, m32, v32};
        void *master[1] = {NULL}, *copy[1] = {NULL};
        float *absmax[4] = {NULL, NULL, am, av};
        unsigned char copy_format[1] = {GD_BF16};
        const int64_t tensor[1] = {0};
        int stochastic = strstr(name, "sr") != NULL, lowp = strncmp(name, "fp32", 4) != 0;
        const int bf16_param = strstr(name, "bf16sr") || strncmp(name, "bf16-", 5) == 0 ||
                               strcmp(name, "bf16") == 0;
        if (strstr(name, "bf16state") || strstr(name, "master") || strstr(name, "copy") || bf16_param) {
            format[2] = format[3] = GD_BF16, data[2] = m16, data[3] = v16;
        }
        if (strstr(name, "f16state") == name) format[2] = format[3] = GD_F16, data[2] = m16, data[3] = v16;
        if (strstr(name, "q8")) format[2] = GD_Q8_SIGNED, format[3] = GD_Q8_UNSIGNED, data[2] = m8, data[3] = v8;
        if (strstr(name, "master")) format[0] = GD_BF16, data[0] = p16, master[0] = p32;
        if (bf16_param || strncmp(name, "bf16params", 10) == 0) format[0] = GD_BF16, data[0] = p16;
        if (strstr(name, "copy")) copy[0] = c16;
        if (lowp) format[1] = GD_BF16, data[1] = g16;
        if (strncmp(name, "f16-", 4) == 0) { /* the float16 cases: float32 state */
            format[2] = format[3] = GD_NATIVE, data[2] = m32, data[3] = v32;
            format[1] = strstr(name, "copy") ? GD_NATIVE : GD_F16;
            data[1] = strstr(name, "copy") ? (void *)g32 : (void *)g16h;
            if (master[0]) format[0] = GD_F16, data[0] = p16h;
            copy_format[0] = GD_F16;
        }
        const gd_lowp policy = {format, master[0] ? master : NULL, copy[0] ? copy : NULL,
                                copy_format, absmax, tensor, block, 7, stochastic};
        int64_t step = 100;
        const unsigned char is_double = 0;
        const gd_tensors t = {1, 4, data, &n, &step, &is_double, NULL, NULL, lowp ? &policy : NULL};
        double *cpu = malloc(sizeof(double) * steps), *wall = malloc(sizeof(double) * steps);
        double *loop = malloc(sizeof(double) * steps);
        /* the same-traffic loop: the parameter slot as stored (master: the float32 one, its
         * 16-bit rounding as the copy), bfloat16 gradient, the state's bytes */
        const int q8 = format[2] == GD_Q8_SIGNED, param16 = format[0] != GD_NATIVE && !master[0];
        const int copies = master[0] || copy[0];
        const double bytes = (param16 ? 4 : 8) + (format[1] != GD_NATIVE ? 2 : 4) + (q8 ? 4 : format[2] != GD_NATIVE ? 8 : 16) +
                             (copies ? 2 : 0);
        omp_set_num_threads(threads);
        gd_step(adam, &t, &h);
        for (int s = 0; s < steps; s++) {
            step++;
            double c0 = cpu_now(), w0 = now();
            gd_step(adam, &t, &h);
            wall[s] = now() - w0, cpu[s] = cpu_now() - c0;
            c0 = cpu_now();
            if (!lowp || (format[1] == GD_NATIVE && format[2] == GD_NATIVE))
                traffic_f32(p32, g32, m32, v32, copies ? c16 : NULL, n);
            else if (format[2] == GD_NATIVE && param16) traffic_p16_g16_s32(p16, g16, m32, v32, NULL, n);
            else if (format[2] == GD_NATIVE) traffic_p32_g16_s32(p32, g16h, m32, v32, copies ? c16 : NULL, n);
            else if (q8) traffic_p32_s8(p32, g16, m8, v8, copies ? c16 : NULL, n);
            else if (param16) traffic_p16_s16(p16, g16, m16, v16, NULL, n);
            else traffic_p32_s16(p32, g16, m16, v16, copies ? c16 : NULL, n);
            loop[s] = cpu_now() - c0;
        }
        qsort(cpu, steps, sizeof(double), cmp);
        qsort(wall, steps, sizeof(double), cmp);
        qsort(loop, steps, sizeof(double), cmp);
        const double ms = 1e3 * cpu[steps / 2] / threads, loop_ms = 1e3 * loop[steps / 2] / threads;
        if (!lowp) fp32_ms = ms;
        printf("%-18s cpu %7.3f ms  wall %7.3f ms  %2.0f B/param  same-traffic loop %7.3f ms  "
               "x fp32 %.2f  x loop %.2f\n",
               name, ms, 1e3 * wall[steps / 2], bytes, loop_ms, fp32_ms > 0 ? ms / fp32_ms : 0.0,
               ms / loop_ms);
        fflush(stdout);
        free(cpu), free(wall), free(loop);
    }
    return 0;
}
