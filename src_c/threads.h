/*
 * gdfast's thread runtime (src_c/threads.inc, compiled into kernels.c): its parallel loop,
 * for the C drivers (the dense and row-sparse steps in kernels.c, the sums of squares in
 * reduce.c), and what the Python layer needs beyond gdfast.h's gd_set_num_threads /
 * gd_get_num_threads.
 */
#ifndef GDFAST_THREADS_H
#define GDFAST_THREADS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Does elements [begin, end) of a job; `cursor` is the calling thread's scratch for the job
 * (zero at its first chunk), which lets a thread resume a scan where it left off. */
typedef void (*gd_chunk_fn)(void *ctx, int64_t begin, int64_t end, int64_t cursor[2]);

/* Runs fn over [0, total) in chunks of `chunk` with up to `team` threads, the caller one of
 * them (team <= 1: the caller alone, one call over [0, total)).  Returns when every chunk is
 * done.  Which thread does a chunk is not fixed: fn must give the same result whatever
 * thread runs it, and chunks must not write what another chunk reads.  A second caller while
 * the pool is busy, and a step size the runtime has seen lose with helpers (a busy machine),
 * run on the calling thread alone. */
void gd_parallel_for(int64_t total, int64_t chunk, int team, gd_chunk_fn fn, void *ctx);

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
