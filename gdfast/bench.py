"""`python -m gdfast bench`: each rule's step time against the machine's memory limit.

An optimizer step moves memory: a rule with s state buffers reads the parameter,
the gradient and the s buffers and writes the parameter and the s buffers, so
(3 + 2 s) · itemsize bytes per element (Adam float32: 28 B).  For each rule ×
dtype × size × thread count the benchmark times, interleaved in the same run:

  gdfast      the C kernel, through `Optimizer.step` (the whole Python path)
  roofline    a C loop of gdfast's own with exactly that traffic and no math
              (gd_roofline): the limit, in the same run, on the same arrays
  reference   the NumPy reference (gdfast.reference), same API
  torch-*     torch.optim's for-loop, foreach and fused implementations of the
              rule when torch is importable and has them

and reports the median time per step, GB/s with the rule's byte count, percent of
the limit and the speed ratio of gdfast to each other backend.  The "model" case
is a 200-tensor model (30 of 512×512, 20 of 320×320, 150 vectors of 100-1000
elements, ~10M parameters) stepped as one list.

The limit moves the rule's own streams: its kernel's sweeps over the data
(Optimizer.sweeps), each a gd_roofline loop that reads the buffers the sweep reads and
writes those it writes.  A two-pass rule (LAMB, Adafactor: a tensor's norms before its
update) has two or three: LAMB reads θ, g, m, v and writes m, v, then reads θ, m, v and
writes θ (40 B per float32 element); factored Adafactor reads g (the sums of g²), then θ and
g (the norms), then reads θ, g and writes θ (24 B).  Three read streams and one written cost
more than two and one at the same byte count: LAMB's own sweeps take ~1.12x the two
element-wise roofline loops of the same bytes (one thread, 1e7 float32).  The rules whose step depends on a parameter's shape
(Adafactor's factored moments, Muon's orthogonalisation) are benched on one matrix of `size`
elements (matrix_shape: 1e7 is 3125 × 3200).  Muon's step is matrix products, not memory traffic:
its rows have no limit; its Newton-Schulz iteration (`newton_schulz`) and NumPy's general
product A X (m × m by m × n) on the same matrix are timed in the same rounds and reported in
GFLOP/s (the BLAS pinned to the row's thread count with threadpoolctl when installed), with
torch.optim.Muon as its torch column.

Two-thread memory bandwidth on a shared machine moves between levels from minute
to minute: every comparison here is interleaved round by round, so read ratios,
not absolute figures, across runs.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import math
import os
import platform
import statistics
import sys
import time
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from . import _kernels, get_num_threads, kernel_isa, openmp_enabled, optim, reference
from . import threads as kernel_threads
from ._version import __version__
from .catalogue.rules.muon import newton_schulz, newton_schulz_flops
from .rule_names import parse_list as parse_rules, rule_names

DEFAULT_SIZES = (1_000, 10_000, 100_000, 1_000_000, 10_000_000)
LARGE_SIZE = 100_000_000
MODEL = "model"
# The quick default (<= 2 minutes on 2 cores): the headline rules (plain SGD; Adam, the rule
# people use; RMSprop, which torch has no fused kernel for), float32, a small size (call
# overhead), one in cache (compute) and one in RAM (the memory limit); 1 thread and all.
# --full runs every rule, dtype and size, plus the 200-tensor model.
QUICK_RULES = ("SGD", "Adam", "RMSprop")
QUICK_DTYPES = ("float32",)
QUICK_SIZES = (10_000, 1_000_000, 10_000_000)
QUICK_ROUNDS = 5

# torch.optim counterparts: (class name, constructor options), from the declarations
# (gdfast.catalogue): the rule's default lr and the options that select the rule there.
# The traffic is the same as gdfast's rule; the formulas follow torch's own conventions.
TORCH_EQUIVALENT = {
    cls.rule: (
        cls.torch_equivalent.name,
        {"lr": cls.hyperparameter("lr").default, **cls.torch_equivalent.options},
    )
    for cls in optim.OPTIMIZERS
    if cls.torch_equivalent is not None
}
# torch.optim.Muon takes matrices only, so Muon's declaration names no counterpart (it cannot
# stand in for gdfast.Muon on every shape); on the bench's matrix it can.
TORCH_EQUIVALENT["Muon"] = ("Muon", {"lr": optim.Muon.hyperparameter("lr").default})

# The rules whose step depends on the parameter's shape: benched on a matrix (matrix_shape).
MATRIX_RULES = ("Adafactor", "Muon")
# The rules whose step is matrix products (no memory limit): timed against NumPy's matmul.
MATMUL_RULES = ("Muon",)


def matrix_shape(size: int) -> tuple[int, int]:
    """The most nearly square rows x columns of exactly `size` elements (rows <= columns):
    1e7 is 3125 x 3200, a prime size 1 x size."""
    rows = math.isqrt(size)
    while size % rows:
        rows -= 1
    return rows, size // rows


def case_shapes(rule: str, size: int | str) -> list[tuple[int, ...]]:
    """The parameters of a case: the 200-tensor model, a matrix (MATRIX_RULES), a vector."""
    if size == MODEL:
        return model_shapes()
    return [matrix_shape(int(size)) if rule in MATRIX_RULES else (int(size),)]


def sweep_bytes(sweeps: Sequence[tuple[tuple[str, ...], tuple[str, ...]]], itemsize: int) -> int:
    """Bytes per element of a parameter's sweeps (Optimizer.sweeps): each buffer read once
    per sweep, and written once more where the sweep writes it."""
    return sum(len(read) + 2 * len(written) for read, written in sweeps) * itemsize


def bytes_per_element(rule_class: Any, dtype: np.dtype, optimizer: Any = None) -> int:
    """Bytes a step moves per element of the first parameter of `optimizer` (else of the rule
    on a vector): its kernel's sweeps, an element-wise rule with s state buffers reading
    param, grad and the states and writing param and the states, 3 + 2s streams."""
    probe = optimizer if optimizer is not None else rule_class([np.zeros(8, dtype)])
    return sweep_bytes(probe.sweeps(0), np.dtype(dtype).itemsize)


def model_shapes(seed: int = 0) -> list[tuple[int, ...]]:
    """The 200-tensor model: 30 of 512×512, 20 of 320×320, 150 vectors of 100-1000."""
    rng = np.random.default_rng(seed)
    return [(512, 512)] * 30 + [(320, 320)] * 20 + [(int(n),) for n in rng.integers(100, 1001, 150)]


def _arrays(shapes: Sequence[tuple[int, ...]], dtype: np.dtype, rng: np.random.Generator):
    params = [rng.standard_normal(shape).astype(dtype) for shape in shapes]
    grads = [(rng.standard_normal(shape) * 1e-3).astype(dtype) for shape in shapes]
    return params, grads


class Case:
    """One rule × dtype × shapes: the backends to time, each a zero-argument step."""

    def __init__(
        self,
        rule: str,
        dtype: np.dtype,
        shapes: Sequence[tuple[int, ...]],
        with_reference: bool,
        with_torch: bool,
        seed: int = 0,
    ):
        rng = np.random.default_rng(seed)
        self.rule, self.dtype = rule, np.dtype(dtype)
        self.elements = int(sum(np.prod(shape, dtype=np.int64) for shape in shapes))
        rule_class = getattr(optim, rule)
        self.steps: dict[str, Callable[[], None]] = {}

        params, grads = _arrays(shapes, self.dtype, rng)
        optimizer = rule_class(params)
        self.bytes = sum(
            sweep_bytes(optimizer.sweeps(k), self.dtype.itemsize) * param.size
            for k, param in enumerate(optimizer.params)
        )
        self.steps["gdfast"] = lambda: optimizer.step(grads)
        # floating-point operations of the backends that report GFLOP/s (MATMUL_RULES)
        self.flops: dict[str, int] = {}
        if rule in MATMUL_RULES:
            if len(shapes) == 1:
                self._matmul_steps(grads[0])
        else:
            self._roofline_step(optimizer, rng)
        if with_reference:
            ref_params, ref_grads = _arrays(shapes, self.dtype, rng)
            ref_optimizer = getattr(reference, rule)(ref_params)
            self.steps["reference"] = lambda: ref_optimizer.step(ref_grads)
        if with_torch:
            self.steps.update(_torch_steps(rule, shapes, self.dtype, rng))

    def _roofline_step(self, optimizer: Any, rng) -> None:
        """The limit: gd_roofline over arrays of the parameters' shapes, sweep by sweep as the
        rule's kernel moves them (Optimizer.sweeps), the parameters with the same sweeps in
        one call per sweep."""
        groups: dict[Any, list[tuple[int, ...]]] = {}
        for k, param in enumerate(optimizer.params):
            groups.setdefault(optimizer.sweeps(k), []).append(param.shape)
        calls = []
        for sweeps, shapes in groups.items():
            names = {name for read, written in sweeps for name in (*read, *written)}
            arrays = {
                name: [(rng.standard_normal(shape) * 1e-3).astype(self.dtype) for shape in shapes]
                for name in sorted(names)
            }
            for read, written in sweeps:
                # the written buffers first (the mask's low bits), then the read ones; a
                # sweep of one buffer (a sum) names it twice: the second read is a cached one
                slots = [arrays[name] for name in (*written, *read)]
                if len(slots) == 1:
                    slots.append(slots[0])
                calls.append((slots[0], slots[1], tuple(slots[2:]), (1 << len(written)) - 1))

        def limit() -> None:
            for params, grads, states, written in calls:
                _kernels.roofline(params, grads, states, written)

        self.steps["roofline"] = limit

    def _matmul_steps(self, grad: np.ndarray) -> None:
        """Muon's Newton-Schulz iteration and NumPy's general product A X (m × m by the
        wide m × n matrix, one of the iteration's own products) on the step's matrix.  Not
        X Xᵀ: NumPy computes that as a symmetric product (syrk), half the flops."""
        rows, cols = grad.shape
        m, n = min(rows, cols), max(rows, cols)
        wide = np.ascontiguousarray(grad if rows <= cols else grad.T)
        square = np.ascontiguousarray(wide[:, :m])
        self.steps["newton-schulz"] = lambda: newton_schulz(grad)
        self.steps["matmul"] = lambda: square @ wide
        self.flops = {"newton-schulz": newton_schulz_flops(m, n), "matmul": 2 * m * m * n}


def _torch_steps(rule: str, shapes, dtype: np.dtype, rng) -> dict[str, Callable[[], None]]:
    """torch.optim's implementations of the rule that this torch has, ready to step."""
    import torch

    if rule not in TORCH_EQUIVALENT:  # declared without a torch.optim counterpart
        return {}
    name, options = TORCH_EQUIVALENT[rule]
    optimizer_class = getattr(torch.optim, name)
    steps = {}
    takes = inspect.signature(optimizer_class).parameters
    for backend, flags in (
        # a class with one implementation (torch.optim.Muon) is its for-loop
        ("torch-for-loop", {"foreach": False} if "foreach" in takes else {}),
        ("torch-foreach", {"foreach": True}),
        ("torch-fused", {"fused": True}),
    ):
        params_np, grads_np = _arrays(shapes, dtype, rng)
        params = [torch.nn.Parameter(torch.from_numpy(p)) for p in params_np]
        for param, grad in zip(params, grads_np):
            param.grad = torch.from_numpy(grad)
        try:
            optimizer = optimizer_class(params, **options, **flags)
            with torch.no_grad():
                optimizer.step()  # a fused kernel that does not exist fails here
        except (RuntimeError, TypeError, ValueError):
            continue
        steps[backend] = optimizer.step
    return steps


def _calls_for(step: Callable[[], None], seconds: float) -> int:
    """How many calls make one timing of about `seconds` (at least one)."""
    began = time.perf_counter()
    step()
    once = max(time.perf_counter() - began, 1e-7)
    return max(1, int(seconds / once))


def time_case(case: Case, rounds: int, seconds_per_timing: float) -> dict[str, float]:
    """Median seconds per step of each backend, timed round-robin (interleaved)."""
    calls = {backend: _calls_for(step, seconds_per_timing) for backend, step in case.steps.items()}
    samples: dict[str, list[float]] = {backend: [] for backend in case.steps}
    for _ in range(rounds):
        for backend, step in case.steps.items():
            n = calls[backend]
            began = time.perf_counter()
            for _ in range(n):
                step()
            samples[backend].append((time.perf_counter() - began) / n)
    return {backend: statistics.median(values) for backend, values in samples.items()}


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def header(with_torch: bool = True) -> dict[str, Any]:
    """The machine and versions; torch's version when it took part (`with_torch`)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "gdfast": __version__,
        "kernel_isa": kernel_isa(),
        "openmp": openmp_enabled(),
        "default_threads": get_num_threads(),
        "numpy": np.__version__,
        "python": platform.python_version(),
        "time": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
    }
    if with_torch and torch_available():
        import torch

        info["torch"] = torch.__version__
    return info


def estimate_seconds(
    cases: Sequence[tuple[str, str, int | str, int]],
    rounds: int,
    seconds_per_timing: float,
    with_reference: bool,
    with_torch: bool,
) -> float:
    """A rough forecast of run()'s wall time on one core: each backend's interleaved timings
    plus making its arrays and calibrating (~70 ns per element per backend, measured on the
    2-core CI machine), the reference's slow steps at large sizes (~3 ns per element)."""
    backends = 2 + with_reference + 3 * with_torch
    total = 0.0
    for _, _, size, _ in cases:
        elements = 10_000_000 if size == MODEL else int(size)
        total += backends * (rounds + 1) * seconds_per_timing + backends * elements * 70e-9
        if with_reference:
            total += (rounds + 1) * elements * 3e-9
    return total


def run(
    rules: Iterable[str],
    dtypes: Iterable[str],
    sizes: Iterable[int | str],
    threads: Iterable[int],
    rounds: int = 7,
    seconds_per_timing: float = 0.02,
    with_reference: bool = True,
    with_torch: bool | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Measure; returns {"header": ..., "rows": [one row per case and backend]}."""
    with_torch = torch_available() if with_torch is None else with_torch
    cases = [
        (rule, dtype, size, n)
        for n in threads
        for rule in rules
        for dtype in dtypes
        for size in sizes
    ]
    if progress:
        print(
            f"bench: {len(cases)} cases, about "
            f"{estimate_seconds(cases, rounds, seconds_per_timing, with_reference, with_torch):.0f}"
            f" s on an idle machine (more under load){'' if with_torch else '; torch absent'}",
            file=sys.stderr,
            flush=True,
        )
    rows = []
    bar = _progress(len(cases), progress)
    # torch's thread count is process-wide (and its OpenMP runtime may be gdfast's): restored
    torch_threads = _torch_module().get_num_threads() if with_torch else None
    try:
        for rule, dtype, size, n_threads in cases:
            if with_torch:
                _torch_module().set_num_threads(n_threads)
            case = Case(rule, np.dtype(dtype), case_shapes(rule, size), with_reference, with_torch)
            with kernel_threads(n_threads), _blas_threads(n_threads):
                medians = time_case(case, rounds, seconds_per_timing)
            limit = medians.get("roofline")  # none for MATMUL_RULES
            for backend, seconds in medians.items():
                row = {
                    "rule": rule,
                    "dtype": dtype,
                    "size": size,
                    "elements": case.elements,
                    "threads": n_threads,
                    "backend": backend,
                    "median_s": seconds,
                    "gbps": case.bytes / seconds / 1e9,
                    "percent_of_limit": None if limit is None else 100.0 * limit / seconds,
                    "gdfast_speedup": seconds / medians["gdfast"],
                }
                if backend in case.flops:
                    row["gflops"] = case.flops[backend] / seconds / 1e9
                rows.append(row)
            del case
            bar.update(f"{rule} {dtype} {size} t={n_threads}")
    finally:
        bar.close()
        if torch_threads is not None:
            _torch_module().set_num_threads(torch_threads)
    return {"header": header(with_torch), "rows": rows}


def _torch_module() -> Any:
    import torch

    return torch


def _blas_threads(n: int) -> Any:
    """NumPy's BLAS on n threads inside the block (threadpoolctl, when installed)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")


class _progress:
    """tqdm when installed and wanted, else a line on stderr per case."""

    def __init__(self, total: int, enabled: bool):
        self.total, self.done, self.enabled, self.bar = total, 0, enabled, None
        if enabled:
            try:
                from tqdm import tqdm

                self.bar = tqdm(
                    total=total, unit="case", file=sys.stderr, leave=False, dynamic_ncols=True
                )
            except ImportError:
                pass

    def update(self, label: str) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.set_postfix_str(label)
            self.bar.update()
        elif self.enabled:
            print(f"[{self.done}/{self.total}] {label}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


BACKEND_LABELS = {
    "reference": "x reference",
    "torch-for-loop": "x torch loop",
    "torch-foreach": "x foreach",
    "torch-fused": "x fused",
}

# Muon's rows: GFLOP/s of its iteration and of NumPy's matmul (MATMUL_RULES)
MATMUL_LABELS = {"newton-schulz": "NS GFLOP/s", "matmul": "matmul GFLOP/s"}

EXPLANATION = """\
columns:
  rule, dtype, size   the case; size is the number of parameters in one tensor, or "model":
                      200 tensors (30 of 512x512, 20 of 320x320, 150 vectors), ~10M in all;
                      Adafactor and Muon: one matrix of that size (1e7: 3125x3200)
  thr                 threads of the kernels (and of torch)
  step                median wall time of one gdfast step (Optimizer.step, Python path included)
  GB/s                the step's memory traffic / its time: (3 + 2 x state buffers) x bytes per
                      element (Adam float32: 28 B per parameter), 3 more for a two-pass rule
                      (LAMB, Adafactor: its second pass reads param and grad, writes param)
  limit GB/s          the same traffic moved by gd_roofline, a C loop of gdfast's own with no
                      arithmetic (two loops for a two-pass rule), timed in the same rounds on
                      arrays of the same sizes; "-" for Muon (matrix products, not traffic)
  % limit             100 x roofline time / gdfast time. 100% = the step runs at the speed of
                      bare memory traffic. It can exceed 100%: at small sizes the two differ in
                      call path and cache state (the limit is measured, not a hard bound), and on
                      a shared machine single samples of either are noisy (medians of interleaved
                      rounds, still: read ratios, not single figures)
  x <backend>         gdfast's speed-up: that backend's median step time / gdfast's (>1: gdfast
                      is faster); reference = gdfast.reference (NumPy); torch loop / foreach /
                      fused = torch.optim with foreach=False / foreach=True / fused=True
                      ("-": torch has no such implementation of the rule; torch.optim.Muon has
                      one, shown as its loop)
  NS / matmul GFLOP/s Muon: its Newton-Schulz iteration (5 steps on the step's matrix, flops
                      counted as the code computes them) and NumPy's general product A X (m x m
                      by the m x n matrix, one of the iteration's own), timed in the same
                      rounds (the BLAS's speed on that shape)"""


def format_table(result: dict[str, Any]) -> str:
    """The rows as an aligned text table, a header line and an explanation of each column."""
    info = result["header"]
    lines = [
        f"gdfast {info['gdfast']} ({info['kernel_isa']} kernels, OpenMP "
        f"{'on' if info['openmp'] else 'off'}) on {info['cpu']}, {info['cores']} cores; "
        f"numpy {info['numpy']}, "
        + (
            f"torch {info['torch']}"
            if "torch" in info
            else "torch not installed (or --no-torch): no torch columns"
        )
    ]
    by_case: dict[tuple, dict[str, dict]] = {}
    for row in result["rows"]:
        key = (row["rule"], row["dtype"], row["size"], row["threads"])
        by_case.setdefault(key, {})[row["backend"]] = row
    others = [b for b in BACKEND_LABELS if any(b in backends for backends in by_case.values())]
    matmul = [b for b in MATMUL_LABELS if any(b in backends for backends in by_case.values())]
    titles = [
        "rule",
        "dtype",
        "size",
        "thr",
        "step",
        "GB/s",
        "limit GB/s",
        "% limit",
        *(BACKEND_LABELS[b] for b in others),
        *(MATMUL_LABELS[b] for b in matmul),
    ]
    table = []
    for (rule, dtype, size, threads), backends in by_case.items():
        fast, limit = backends["gdfast"], backends.get("roofline")
        size_text = f"{size:,}" if size != MODEL else f"model {fast['elements'] / 1e6:.1f}M"
        table.append(
            [
                rule,
                dtype,
                size_text,
                str(threads),
                _duration(fast["median_s"]),
                f"{fast['gbps']:.1f}" if limit else "-",
                f"{limit['gbps']:.1f}" if limit else "-",
                f"{fast['percent_of_limit']:.0f}%" if limit else "-",
                *(f"{backends[b]['gdfast_speedup']:.2f}" if b in backends else "-" for b in others),
                *(f"{backends[b]['gflops']:.1f}" if b in backends else "-" for b in matmul),
            ]
        )
    widths = [max(len(cell) for cell in column) for column in zip(titles, *table)]

    def line(cells: Sequence[str]) -> str:
        # first two columns left-aligned (names), the rest right-aligned (numbers)
        return "  ".join(
            cell.ljust(width) if index < 2 else cell.rjust(width)
            for index, (cell, width) in enumerate(zip(cells, widths))
        ).rstrip()

    lines += [line(titles), "  ".join("-" * width for width in widths)]
    lines += [line(cells) for cells in table]
    lines += ["", EXPLANATION]
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    return f"{seconds * 1e3:.2f} ms"


def _size(text: str) -> int | str:
    if text == MODEL:
        return MODEL
    try:
        value = int(float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size such as 1e6 or 'model', got {text!r}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a size >= 1, got {text!r}")
    return value


def _csv(choices: Sequence[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        items = [item.strip() for item in text.split(",") if item.strip()]
        unknown = [item for item in items if item not in choices]
        if unknown or not items:
            raise argparse.ArgumentTypeError(
                f"expected a comma-separated subset of {', '.join(choices)}; got {text!r}"
            )
        return items

    return parse


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="step time of every rule against the memory limit, reference and torch",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--rules",
        type=parse_rules,
        default=None,
        help="comma-separated rules in any case, or all (default: the quick set; --full: all)",
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="today's whole matrix: every rule, float32 and float64, sizes "
        "1e3-1e7 and the model, 7 rounds (~15-20 minutes on 2 cores)",
    )
    parser.add_argument(
        "--dtypes",
        type=_csv(["float32", "float64"]),
        default=None,
        help="comma-separated dtypes (default: float32; --full: both)",
    )
    parser.add_argument(
        "--sizes",
        type=lambda t: [_size(x) for x in t.split(",")],
        default=None,
        help="comma-separated sizes, e.g. 1e3,1e6,model "
        "(default 1e4,1e6,1e7; --full: 1e3,1e4,1e5,1e6,1e7,model)",
    )
    parser.add_argument("--large", action="store_true", help="add 1e8 parameters")
    parser.add_argument(
        "--threads",
        type=lambda t: [int(x) for x in t.split(",")],
        default=None,
        help="comma-separated thread counts (default: 1 and all)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help=f"interleaved rounds, the median is reported (default {QUICK_ROUNDS}; --full: 7)",
    )
    parser.add_argument("--no-reference", action="store_true", help="skip the NumPy reference")
    parser.add_argument("--no-torch", action="store_true", help="skip torch even if installed")
    parser.add_argument("--json", metavar="FILE", help="write the rows and header as JSON")
    parser.add_argument("--plot", metavar="FILE.png", help="chart GB/s per rule (matplotlib)")
    parser.add_argument("--quiet", action="store_true", help="no progress indicator")
    parser.set_defaults(command=main)


def main(args: argparse.Namespace) -> int:
    full = args.full
    rules = args.rules or list(rule_names() if full else QUICK_RULES)
    dtypes = args.dtypes or (["float32", "float64"] if full else list(QUICK_DTYPES))
    sizes = args.sizes or (list(DEFAULT_SIZES) + [MODEL] if full else list(QUICK_SIZES))
    rounds = args.rounds or (7 if full else QUICK_ROUNDS)
    if args.large:
        sizes = sizes + [LARGE_SIZE]
    threads = args.threads or sorted({1, get_num_threads()})
    if any(n < 1 for n in threads) or rounds < 1:
        raise SystemExit("bench: --threads and --rounds must be >= 1")
    result = run(
        rules,
        dtypes,
        sizes,
        threads,
        rounds=rounds,
        with_reference=not args.no_reference,
        with_torch=False if args.no_torch else None,
        progress=not args.quiet,
    )
    print(format_table(result))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=1)
    if args.plot:
        from .viz import plot_benchmark

        plot_benchmark(result, args.plot)
    return 0
