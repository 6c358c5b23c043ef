"""A small harness for bad-input tests: every case must end in a clear refusal.

A *case* builds some objects (an optimizer, arrays, a file...) and calls one public entry
point with one bad input.  Its outcome is one of

    clear     TypeError or ValueError whose message names the argument (one of the case's
              `names`), and every watched array and step count bitwise as before
    modified  it raised, but a watched array or step count had changed
    silent    it returned normally: the bad input was accepted
    unclear   another exception type, or a message naming none of `names`
    crash     the interpreter died (signal, abort) running it
    sanitizer a sanitizer (AddressSanitizer/UBSan) reported while it ran

`run_cases(module, names)` runs the cases of `module.CASES` in child interpreters, one
after another in the same child for speed; when a child dies, the case it was running is
a crash and a new child continues with the next case.  Children inherit the environment,
so LD_PRELOAD=libasan.so ASAN_OPTIONS=... applies to them (see test_fuzz_optim.py).

Reusable: a case module defines CASES, a list of `Case`; nothing here is specific to
the optimizers.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from typing import Any, Callable, Iterable

import numpy as np

OUTCOMES = ("clear", "modified", "silent", "unclear", "crash", "sanitizer")
SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "runtime error:",
    "ERROR: LeakSanitizer",
    "WARNING: ThreadSanitizer",
)


@dataclasses.dataclass(frozen=True)
class Case:
    """One bad input.  `setup()` returns (call, watched): `call()` makes the bad call;
    `watched` is an iterable of objects whose contents must not change (ndarrays,
    optimizers, lists of them).  `names`: the message must contain one of them."""

    id: str
    setup: Callable[[], tuple[Callable[[], Any], Any]]
    names: tuple[str, ...]


def snapshot(watched: Any) -> list:
    """The bytes of everything reachable in `watched` (arrays, optimizers, containers)."""
    out: list = []

    def visit(item: Any) -> None:
        if isinstance(item, np.ndarray):
            out.append((item.dtype.str, item.shape, item.tobytes()))
        elif hasattr(item, "state_names") and hasattr(item, "params"):  # an optimizer
            visit(list(item.params))
            visit([list(item.state[name]) for name in item.state_names])
            out.append(tuple(item.steps))
            out.append(repr(sorted(item._hyper.items())))
        elif isinstance(item, dict):
            for key in sorted(item, key=repr):
                visit(item[key])
        elif isinstance(item, (list, tuple)):
            for element in item:
                visit(element)

    visit(watched)
    return out


def classify(case: Case) -> tuple[str, str]:
    """(outcome, detail) of running `case` in this interpreter."""
    call, watched = case.setup()
    before = snapshot(watched)
    try:
        call()
    except (TypeError, ValueError) as error:
        message = str(error)
        if snapshot(watched) != before:
            return "modified", f"{type(error).__name__}: {message}"
        if not any(name in message for name in case.names):
            return "unclear", f"{type(error).__name__}: {message} (expected one of {case.names})"
        return "clear", f"{type(error).__name__}: {message}"
    except Exception as error:  # noqa: BLE001 - what the harness measures
        return "unclear", f"{type(error).__name__}: {error}"
    return "silent", "returned normally"


def child_main(module_name: str, start: int) -> None:
    """Run the cases of `module_name` from index `start`, one JSON line per event."""
    module = __import__(module_name)
    for index, case in enumerate(module.CASES[start:], start):
        print(json.dumps({"start": index}), flush=True)
        print(f"#case {index}", file=sys.stderr, flush=True)  # sanitizer reports follow
        outcome, detail = classify(case)
        print(json.dumps({"index": index, "outcome": outcome, "detail": detail[:300]}), flush=True)


def run_cases(
    module_name: str, n_cases: int, env: dict | None = None, timeout: float = 300
) -> list[dict]:
    """Every case of `module_name`.CASES, in child interpreters; one dict per case:
    {"id", "outcome", "detail"}, in order."""
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join([here] + [p for p in (env.get("PYTHONPATH"),) if p])
    results: dict[int, dict] = {}
    start = 0
    while start < n_cases:
        child = subprocess.run(
            [sys.executable, "-c", f"import fuzzing; fuzzing.child_main({module_name!r}, {start})"],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )
        running = None
        for line in child.stdout.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if "start" in event:
                running = event["start"]
            else:
                results[event["index"]] = event
                running = None
        reports: dict[int, list[str]] = {}
        current = start
        for line in child.stderr.splitlines():
            if line.startswith("#case "):
                current = int(line.split()[1])
            elif any(marker in line for marker in SANITIZER_MARKERS):
                reports.setdefault(current, []).append(line)
        for index, lines in reports.items():
            results[index] = {
                "index": index,
                "outcome": "sanitizer",
                "detail": " | ".join(lines[:3])[:600],
            }
        if child.returncode == 0:
            break
        blamed = running if running is not None else current
        if blamed not in reports:
            tail = " | ".join(child.stderr.strip().splitlines()[-3:])
            results[blamed] = {
                "index": blamed,
                "outcome": "crash",
                "detail": f"exit status {child.returncode}; {tail}"[:600],
            }
        start = blamed + 1
    return [
        results.get(index, {"index": index, "outcome": "crash", "detail": "no result"})
        for index in range(n_cases)
    ]


def table(results: Iterable[dict]) -> dict[str, int]:
    """Count of each outcome, every outcome listed."""
    counts = dict.fromkeys(OUTCOMES, 0)
    for result in results:
        counts[result["outcome"]] += 1
    return counts
