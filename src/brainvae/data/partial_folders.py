"""Hidden `.NAME.partial-*` folders a command writes into before renaming them into place.

A run that is killed (SIGKILL, power loss, out of memory) cannot remove its partial folder,
and nothing else would: hidden folders pile up next to the output, each as large as a dataset.
The folder's name therefore records its owner (process id and host name), and the next run
writing the same output removes the partial folders whose owner on this host is gone.
Folders of runs on other hosts (a shared disk) are left alone: their processes cannot be
checked from here.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import shutil
import socket
import time
import uuid
from pathlib import Path

log = logging.getLogger("brainvae")

_OWNER = re.compile(r"\.partial-[0-9a-f]{8}-(?P<pid>\d+)@(?P<host>[A-Za-z0-9.-]+)$")


def _host() -> str:
    """This machine's name, reduced to characters safe in a folder name."""
    return re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname()) or "localhost"


def _alive(pid: int) -> bool:
    """Whether a process with this id exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError as err:  # EPERM: it exists, owned by someone else
        return err.errno == errno.EPERM
    return True


def stale_partial_folders(out: Path, started: float | None = None) -> list[Path]:
    """Partial folders of `out` left by runs on this host whose process is gone and that were
    last changed before `started` (default now)."""
    started = time.time() if started is None else started
    host = _host()
    stale = []
    for candidate in out.parent.glob(f".{glob_escape(out.name)}.partial-*"):
        owner = _OWNER.search(candidate.name)
        if owner is None or owner["host"] != host or not candidate.is_dir():
            continue
        if _alive(int(owner["pid"])):
            continue
        try:
            if candidate.stat().st_mtime >= started:
                continue
        except OSError:
            continue
        stale.append(candidate)
    return sorted(stale)


def glob_escape(name: str) -> str:
    """`name` with glob's special characters taken literally."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def remove_stale_partial_folders(out: Path, started: float | None = None) -> list[Path]:
    """Remove the stale partial folders of `out`; one log line names how many and where."""
    removed = []
    for folder in stale_partial_folders(out, started):
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            removed.append(folder)
    if removed:
        log.warning(
            "removed %d partial folder(s) left by an interrupted run next to %s: %s",
            len(removed),
            out,
            ", ".join(folder.name for folder in removed),
        )
    return removed


def new_partial_folder(out: str | Path) -> Path:
    """Create and return a fresh hidden partial folder next to `out`, owned by this process,
    after removing the ones interrupted runs left behind."""
    out = Path(out)
    started = time.time()
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partial_folders(out, started)
    folder = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}-{os.getpid()}@{_host()}"
    folder.mkdir()
    return folder
