"""Step generators: computations that yield progress reports and return their result.

Long analyses are written once as a generator (a napari worker reports each step and can
cancel between them); the plain function is the same generator run to its end.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator
from typing import Any, ParamSpec, TypeVar

Arguments = ParamSpec("Arguments")
Result = TypeVar("Result")


def drain(steps: Generator[Any, Any, Result]) -> Result:
    """Run a step generator to its end, ignoring its reports; its return value."""
    while True:
        try:
            next(steps)
        except StopIteration as finished:
            return finished.value


def drained(
    steps: Callable[Arguments, Generator[Any, Any, Result]], name: str, doc: str
) -> Callable[Arguments, Result]:
    """The plain function of a step-generator function: same arguments, the result only."""

    def run(*args: Arguments.args, **kwargs: Arguments.kwargs) -> Result:
        return drain(steps(*args, **kwargs))

    run.__name__ = run.__qualname__ = name
    run.__doc__ = doc
    run.__module__ = steps.__module__
    arguments = inspect.signature(steps).replace(return_annotation=inspect.Signature.empty)
    run.__signature__ = arguments  # type: ignore[attr-defined]  (help() shows the arguments)
    return run
