/*
 * gdfast's own dense step (src_c/kernels.c, linked in) timed per dtype policy, Adam, against
 * its float32 step, in one process: the fast loop for work on the kernels' staging (issue 12).
 *
 *   lowp_step N THREADS STEPS CONFIG...     (GD_MAPS: the two 8-bit maps, signed then unsigned)
 *
 * CONFIG: fp32 | bf16state | master | mastersr | copy | q8 | q8copy | f16state | bf16sr
 * Prints per config: name, median CPU ms per step / threads, median wall ms.  Build (the
 * kernels' flags; never -ffast-math) and maps:
 *   gcc -O3 -fno-math-errno -fno-trapping-math -ffp-contract=off -fopenmp -Isrc_c \
 *       bench/lowp_step.c src_c/kernels.c -o /tmp/lowp_step -lm
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

int main(int argc, char **argv)
{
    if (argc < 5) return 2;
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
    uint8_t *m8 = gd_alloc_state(n, 1), *v8 = gd_alloc_state(n, 1);
    const int64_t block = 256;
    float *am = gd_alloc_state(4 * (n / block + 1), 1), *av = gd_alloc_state(4 * (n / block + 1), 1);
    srand(1);
    for (int64_t i = 0; i < n; i++) {
        p32[i] = (float)rand() / RAND_MAX - 0.5f;
        g32[i] = 1e-3f * ((float)rand() / RAND_MAX - 0.5f);
        p16[i] = gd_f32_to_bf16(p32[i]);
        g16[i] = gd_f32_to_bf16(g32[i]);
    }
    gd_hyper h = {0};
    h.lr = 1e-3, h.beta1 = 0.9, h.beta2 = 0.999, h.eps = 1e-8, h.grad_scale = 1;
    const gd_rule *adam = gd_find_rule("adam");
    for (int c = 4; c < argc; c++) {
        const char *name = argv[c];
        unsigned char format[4] = {GD_NATIVE, GD_NATIVE, GD_NATIVE, GD_NATIVE};
        void *data[4] = {p32, g32, m32, v32};
        void *master[1] = {NULL}, *copy[1] = {NULL};
        float *absmax[4] = {NULL, NULL, am, av};
        const unsigned char copy_format[1] = {GD_BF16};
        const int64_t tensor[1] = {0};
        int stochastic = strstr(name, "sr") != NULL, lowp = strcmp(name, "fp32") != 0;
        if (strstr(name, "bf16state") || strstr(name, "master") || strstr(name, "copy") ||
            strstr(name, "bf16sr")) {
            format[2] = format[3] = GD_BF16, data[2] = m16, data[3] = v16;
        }
        if (strstr(name, "f16state") == name) format[2] = format[3] = GD_F16, data[2] = m16, data[3] = v16;
        if (strstr(name, "q8")) format[2] = GD_Q8_SIGNED, format[3] = GD_Q8_UNSIGNED, data[2] = m8, data[3] = v8;
        if (strstr(name, "master")) format[0] = GD_BF16, data[0] = p16, master[0] = p32;
        if (strstr(name, "bf16sr")) format[0] = GD_BF16, data[0] = p16;
        if (strstr(name, "copy")) copy[0] = c16;
        if (lowp) format[1] = GD_BF16, data[1] = g16;
        const gd_lowp policy = {format, master[0] ? master : NULL, copy[0] ? copy : NULL,
                                copy_format, absmax, tensor, block, 7, stochastic};
        int64_t step = 1;
        const unsigned char is_double = 0;
        const gd_tensors t = {1, 4, data, &n, &step, &is_double, NULL, NULL, lowp ? &policy : NULL};
        double *cpu = malloc(sizeof(double) * steps), *wall = malloc(sizeof(double) * steps);
        gd_step(adam, &t, &h);
        for (int s = 0; s < steps; s++) {
            step++;
            const double c0 = cpu_now(), w0 = now();
            gd_step(adam, &t, &h);
            wall[s] = now() - w0, cpu[s] = cpu_now() - c0;
        }
        qsort(cpu, steps, sizeof(double), cmp);
        qsort(wall, steps, sizeof(double), cmp);
        printf("%s %.3f %.3f\n", name, 1e3 * cpu[steps / 2] / threads, 1e3 * wall[steps / 2]);
        fflush(stdout);
        free(cpu), free(wall);
    }
    return 0;
}
