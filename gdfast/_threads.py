"""How many threads the kernels use: set_num_threads, get_num_threads, threads().

The count is, in this order: the one set with set_num_threads / `with threads(n)`; else
OpenMP's (OMP_NUM_THREADS, or a limit threadpoolctl.threadpool_limits or
omp_set_num_threads put on the calling thread), capped at the CPUs this process may run
on (its affinity mask and its cgroup CPU quota).  A step uses fewer when it is too small
to gain from more.  Results do not depend on the count.

The threads are gdfast's own (src_c/threads.inc), not an OpenMP team: a step never waits
for a thread the operating system has not scheduled, and a forked child (os.fork,
multiprocessing's fork start method, torch DataLoader workers) starts its own helpers at
its first large step.  On a busy machine, where helpers start late or lose their CPU
mid-step, each step size whose steps with helpers have not clearly beaten the calling
thread alone runs on the calling thread alone (trying the helpers again now and then),
so that more threads do not make a step slower than one.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator

from . import _kernels

MAX_THREADS = _kernels.max_threads()


def _cgroup_cpu_quota(
    proc_cgroup: str = "/proc/self/cgroup", root: str = "/sys/fs/cgroup"
) -> int | None:
    """CPUs the cgroup CPU quota of this process allows (rounded up), None without one.
    The tightest quota of its cgroup and (v2) the cgroups above it."""
    limits = []
    try:
        with open(proc_cgroup, encoding="ascii") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controllers == "":  # cgroup v2: cpu.max = "<quota|max> <period>", up the tree
            while True:
                try:
                    with open(f"{root}{path.rstrip('/')}/cpu.max", encoding="ascii") as f:
                        quota, period = f.read().split()
                    if quota != "max":
                        limits.append(int(quota) / int(period))
                except (OSError, ValueError):
                    pass
                if path in ("/", ""):
                    break
                path = os.path.dirname(path)
        elif "cpu" in controllers.split(","):  # cgroup v1
            for mount in (f"{root}/cpu,cpuacct", f"{root}/cpu"):
                try:
                    with open(f"{mount}{path.rstrip('/')}/cpu.cfs_quota_us", encoding="ascii") as f:
                        quota = int(f.read())
                    with open(
                        f"{mount}{path.rstrip('/')}/cpu.cfs_period_us", encoding="ascii"
                    ) as f:
                        period = int(f.read())
                except (OSError, ValueError):
                    continue
                if quota > 0 and period > 0:
                    limits.append(quota / period)
                break
    return max(1, math.ceil(min(limits))) if limits else None


def _omp_num_threads() -> int | None:
    """OMP_NUM_THREADS's first level, when it is a positive integer."""
    try:
        value = int(os.environ.get("OMP_NUM_THREADS", "").split(",")[0])
    except ValueError:
        return None
    return value if value > 0 else None


def cpu_limit() -> int:
    """The CPUs this process may run on: its affinity mask, capped by its cgroup CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    quota = _cgroup_cpu_quota()
    return min(cpus, quota) if quota else cpus


def _set_cpu_limit() -> None:
    limit = cpu_limit()
    if not _kernels.openmp_enabled():  # no OpenMP runtime to read OMP_NUM_THREADS: read it here
        limit = min(limit, _omp_num_threads() or limit)
    _kernels.set_cpu_limit(limit)


_set_cpu_limit()
if hasattr(os, "register_at_fork"):  # a child may have another affinity or quota
    os.register_at_fork(after_in_child=_set_cpu_limit)

_requested: int | None = None


def set_num_threads(n: int | None) -> None:
    """Threads the kernels use from now on, 1 to MAX_THREADS (256); None restores the default.

    The default: OMP_NUM_THREADS (or a threadpoolctl limit), else one per CPU this process
    may run on, and never more than those CPUs.  A count you set is used as is, even above
    the CPU count (at most 256: more raise ValueError rather than start that many OS
    threads).  Threads start at the first step that uses them.  Steps below
    2 * min_elements_per_thread() elements run on the calling thread.  Results do not depend
    on the thread count.
    """
    global _requested
    if n is None:
        _kernels.set_num_threads(0)
        _requested = None
        return
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n: expected an int or None, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"n: expected at least 1 thread, got {n}")
    if n > MAX_THREADS:
        raise ValueError(
            f"n: expected at most {MAX_THREADS} threads (gdfast's cap; this "
            f"process may run on {cpu_limit()} CPUs), got {n}"
        )
    _kernels.set_num_threads(n)
    _requested = n


def get_num_threads() -> int:
    """Threads a large step uses now (1 when the platform has no threads)."""
    return _kernels.get_num_threads()


@contextlib.contextmanager
def threads(n: int | None) -> Iterator[None]:
    """`with gdfast.threads(n):` n threads inside the block (None: the default); the
    previous setting is restored on exit, also on an exception."""
    previous = _requested
    set_num_threads(n)
    try:
        yield
    finally:
        set_num_threads(previous)
