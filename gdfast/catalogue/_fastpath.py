"""The step's helpers: compiled when gdfast._kernels is built, pure Python otherwise.

The reference (gdfast.reference) needs the aliasing check of gradients and the busy flag
of an optimizer, nothing else of the compiled extension; with these fallbacks it imports
and runs where nothing was built (a docs build, a machine without a compiler).  The
fallbacks are the same checks, only slower.
"""

from __future__ import annotations

import bisect
from typing import Any, Iterable

try:
    from .._kernels import OwnedMemory, concurrent_use
except ImportError:  # no compiled extension: the same logic in Python

    def concurrent_use(owner: str, call: str) -> RuntimeError:
        """The RuntimeError of a call made while the optimizer is busy in another thread."""
        return RuntimeError(
            f"{owner}.{call}: this optimizer is busy in another thread (a step, "
            "load_state_dict or state_dict is running); an optimizer serves one thread at a "
            "time: use one optimizer per thread, or a lock around its calls"
        )

    class OwnedMemory:  # type: ignore[no-redef]
        """The byte ranges of the buffers a step writes, sorted and disjoint, with a label
        each, for the aliasing check of gradients (gdfast._kernels.OwnedMemory's logic)."""

        def __init__(self, spans: Iterable[tuple[tuple[int, int], str]]):
            ordered = sorted(
                ((start, stop), label) for (start, stop), label in spans if stop > start
            )
            self.starts = [span[0][0] for span in ordered]
            self.stops = [span[0][1] for span in ordered]
            self.labels = [span[1] for span in ordered]

        def overlapping(self, start: int, stop: int) -> Any:
            """The label of the owned buffer that [start, stop) meets, or None: only the
            last range starting below `stop` can (the ranges are disjoint)."""
            if stop <= start:
                return None
            low = bisect.bisect_left(self.starts, stop)
            if low > 0 and self.stops[low - 1] > start:
                return self.labels[low - 1]
            return None


class PythonStep:
    """The busy flag without a fast path (the reference backend): `step` always leaves the
    work to Optimizer.step's full checks."""

    __slots__ = ("busy",)

    def __init__(self) -> None:
        self.busy = False

    def step(self, grads: Any) -> bool:
        return False

    def set_hyper(self, hyper: dict[str, Any]) -> None:
        pass
