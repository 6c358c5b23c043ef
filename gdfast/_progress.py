"""The one progress display of gdfast's trainers (fit, the Hogwild! trainers).

A tqdm bar when progress is wanted and tqdm is installed (the `progress` extra); without
tqdm, one plain line per report; nothing at all when progress is not wanted.  The bar
is drawn on `stream` (default: sys.stderr, looked up when the display is made).
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Mapping


class Progress:
    """A progress display over `total` units (steps, epochs).

        progress = Progress(True, total=epochs, unit="epoch", desc="training")
        for epoch in range(epochs):
            ...
            progress.advance()
            progress.report({"loss": "0.31"}, f"epoch {epoch + 1}/{epochs}  loss 0.31")
        progress.close()

    Attributes
    ----------
    enabled : bool
        Whether anything is shown.
    total : int
        The units expected.
    desc : str
        What is counted, shown before the bar (and available to the plain lines).
    bar : tqdm or None
        The tqdm bar, None without tqdm or when disabled.
    """

    def __init__(self, enabled: bool, total: int, *, unit: str, desc: str = "", stream: Any = None):
        self.enabled = bool(enabled)
        self.total = total
        self.desc = desc
        self.stream = stream if stream is not None else sys.stderr
        self.bar: Any = None
        if not self.enabled:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:  # the plain lines of report()
            return
        self.bar = tqdm(
            total=total,
            unit=unit,
            desc=desc,
            file=self.stream,
            dynamic_ncols=True,
            leave=True,
        )

    @property
    def tick(self) -> Callable[[int], Any] | None:
        """The bar's update(n), for a hot loop to hold as a local; None without a bar."""
        return self.bar.update if self.bar is not None else None

    def advance(self, units: int = 1) -> None:
        """`units` more done."""
        if self.bar is not None:
            self.bar.update(units)

    def retarget(self, total: int, desc: str) -> None:
        """A corrected expected total, and a new description."""
        self.total, self.desc = total, desc
        if self.bar is not None:
            # no forced refresh: tqdm redraws at most every 0.1 s, so short epochs stay cheap
            self.bar.total = total
            self.bar.set_description(desc, refresh=False)

    def report(self, summary: Mapping[str, Any], line: str) -> None:
        """The latest figures: `summary` beside the bar, or `line` printed without tqdm."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.set_postfix(dict(summary), refresh=False)
        else:
            print(line, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
