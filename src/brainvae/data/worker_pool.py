"""Worker processes that never re-run the user's script.

Workers are spawned, not forked (forking a process that runs Qt or other threads can
deadlock). A spawned worker normally imports the parent's main module first, so that
functions defined there can be unpickled; for a script without an
`if __name__ == "__main__":` guard that re-runs the whole script in every worker, which then
fails ("An attempt has been made to start a new process before the current process has
finished its bootstrapping phase") or, when the script opens a napari window, hangs. Our
workers only run library functions, so the main module is hidden from them while each one
starts: multiprocessing.spawn.get_preparation_data sends a worker the main module's
`__spec__.name` or `__file__` to import, and sends nothing when both are absent (as in an
interactive session).

Workers also die with their parent: if the parent is killed (SIGKILL, SIGBUS, out of memory)
it cannot shut the pool down, and its workers - and multiprocessing's resource tracker,
which lives until the last of them exits - would otherwise stay alive forever, holding the
caller's pipes open. Each worker watches multiprocessing's parent sentinel (a pipe on POSIX,
a process handle on Windows, ready when the parent is gone) on a daemon thread and exits.
This is used rather than Linux's prctl(PR_SET_PDEATHSIG) because that signal fires when the
*thread* that started the worker ends (a napari thread_worker, the pool's manager thread),
not the process, and exists only on Linux.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing.context import SpawnContext, SpawnProcess

_HIDING = threading.Lock()
_MISSING = object()


@contextmanager
def main_module_hidden() -> Iterator[None]:
    """For the duration, __main__ has no __spec__ and no __file__ for a spawned child to import.

    Lasts only while a process starts (milliseconds); a lock keeps two starts from
    restoring each other's half-hidden state.
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    with _HIDING:
        spec = main.__dict__.get("__spec__", _MISSING)
        file = main.__dict__.get("__file__", _MISSING)
        main.__spec__ = None
        main.__dict__.pop("__file__", None)
        try:
            yield
        finally:
            for name, value in (("__spec__", spec), ("__file__", file)):
                if value is _MISSING:
                    main.__dict__.pop(name, None)
                else:
                    main.__dict__[name] = value


class MainlessSpawnProcess(SpawnProcess):
    """A spawned process that starts without importing the parent's main module."""

    def start(self) -> None:
        """Start with __main__ hidden, so the child imports only what the job needs."""
        with main_module_hidden():
            super().start()


class MainlessSpawnContext(SpawnContext):
    """The spawn start method, with processes that do not re-run the parent's script."""

    Process = MainlessSpawnProcess


def _exit_when_parent_dies() -> None:
    """Block until the parent process is gone, then end this worker at once."""
    from multiprocessing.connection import wait

    parent = multiprocessing.parent_process()
    if parent is None:
        return
    wait([parent.sentinel])
    os._exit(1)  # no cleanup: the parent that wanted the results is gone


def die_with_parent() -> None:
    """Pool initializer: watch the parent from a daemon thread, so the job itself runs on."""
    threading.Thread(target=_exit_when_parent_dies, name="parent-watch", daemon=True).start()


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of `workers` spawned processes that run library functions only.

    Jobs and their arguments must come from importable modules, not from the user's script.
    The workers exit on their own if this process dies without shutting the pool down.
    """
    return ProcessPoolExecutor(
        max_workers=workers, mp_context=MainlessSpawnContext(), initializer=die_with_parent
    )
