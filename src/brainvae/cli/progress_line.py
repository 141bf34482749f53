"""Run an analysis generator to its result, with a one-line percentage on stderr.

The analyses (receptive and projective fields) are generators that yield small progress
reports and return their result; the napari docks consume them in a worker, the commands here.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Generator
from typing import Any

STEP_PERCENT = 5
"""The line is rewritten when the percentage crosses a multiple of this."""


def drive(
    steps: Generator[Any, None, Any],
    quiet: bool,
    describe: Callable[[Any], tuple[int, int, str]],
) -> Any:
    """Exhaust `steps` and return its value; describe(report) -> (done, total, text after %)."""
    shown = -1
    while True:
        try:
            report = next(steps)
        except StopIteration as finished:
            if not quiet and shown >= 0:
                print(file=sys.stderr)
            return finished.value
        done, total, text = describe(report)
        percent = 100 * done // max(total, 1)
        if not quiet and percent // STEP_PERCENT != shown:
            shown = percent // STEP_PERCENT
            print(f"\r{text}: {percent:3d} %", end="", file=sys.stderr, flush=True)
