/*
 * gdfast's thread runtime (src_c/threads.inc, compiled into kernels.c): the declarations
 * the Python layer needs beyond gdfast.h's gd_set_num_threads / gd_get_num_threads.
 */
#ifndef GDFAST_THREADS_H
#define GDFAST_THREADS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Most threads a step may use (gd_set_num_threads refuses more; the caller checks). */
#define GD_MAX_THREADS 256

/* The CPUs this process may use (affinity, cgroup quota; the Python layer works them out):
 * the default thread count never exceeds it.  n <= 0: unknown (no cap). */
void gd_set_cpu_limit(int n);
/* Helper threads running now (0 before the first parallel step and in a forked child
 * until its first parallel step). */
int gd_helper_threads(void);
/* Counts since the process (or forked child) started, of steps large enough for helpers:
 * all of them; those run on the caller alone because recent steps of their size with
 * helpers were, on a smoothed average, no clear gain over the caller alone (backing off,
 * threads.inc GD_GAIN); and the steps with helpers slower than the caller alone would
 * have been. */
enum { GD_STAT_STEPS = 0, GD_STAT_BACKED_OFF = 1, GD_STAT_SLOWER = 2, GD_STATS = 3 };
void gd_thread_stats(int64_t counts[GD_STATS]);

#ifdef __cplusplus
}
#endif

#endif /* GDFAST_THREADS_H */
