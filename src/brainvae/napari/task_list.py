"""napari's list of running tasks: it asks before closing a viewer that has some, and
cancels them (after asking) before it quits its workers.

napari offers no public API for it; this module is the plugin's one use of a private one,
found through the dock's Qt parents (no viewer proxy is unwrapped). Where it is missing, only
the question at closing is lost.
"""

from __future__ import annotations

from typing import Any


def task_list(widget: Any) -> Any:
    """The napari Window that keeps the task list, found through the dock's Qt parents;
    None where there is none."""
    parent = widget.native
    while parent is not None:
        window = getattr(parent, "_window", None)
        if hasattr(window, "_register_task_status"):
            return window
        parent = parent.parentWidget()
    return None


def _status(name: str) -> Any:
    from napari.utils.task_status import Status

    return Status[name]


def task_status(name: str) -> Any:
    """napari's Status member of that name (PENDING, BUSY, COMPLETED, CANCELLED, FAILED)."""
    from napari.utils.task_status import Status

    return Status[name]
