"""Write a file or a folder all at once: built in a hidden sibling, renamed into place.

Every writer of this package (prepare, the phantom, checkpoints, saved models, run records,
result folders, CSV exports) goes through here, so an interrupted or failed write leaves
nothing half-written where the user looks: the old output, untouched, or the complete new
one. No room to write (disk full, quota, file-size limit) becomes a DiskFullError naming the
file as it would have been in the output.

A kill cannot clean up after itself, so the hidden names record their owner:
`.NAME.partial-<id>-<pid>@<host>` while building and `.NAME.old-<id>-<pid>@<host>` for the
old output moved aside during the swap. The next write of the same output removes what
runs on this host whose process is gone left behind, and when such a run was killed between
moving the old output aside and moving the new one in (the output missing, its `.old-`
sibling complete), it puts the old output back first. Siblings of runs on other hosts (a
shared disk) are left alone: their processes cannot be checked from here.
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from brainvae.errors import DiskFullError, as_disk_full, is_no_room

log = logging.getLogger("brainvae")

PARTIAL, OLD = "partial", "old"
_OWNER = r"\.(?P<kind>partial|old)-[0-9a-f]{8}-(?P<pid>\d+)@(?P<host>[A-Za-z0-9.-]+)"


def _owned_by(out: Path, name: str) -> re.Match | None:
    """The owner fields when `name` is a hidden sibling of `out` (not of another output whose
    name merely starts the same)."""
    return re.fullmatch(r"\." + re.escape(out.name) + _OWNER, name)


def _host() -> str:
    """This machine's name, reduced to characters safe in a file name."""
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


def glob_escape(name: str) -> str:
    """`name` with glob's special characters taken literally."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def owned_sibling(out: str | Path, kind: str = PARTIAL) -> Path:
    """A new hidden name beside `out` recording this process as its owner (not created)."""
    out = Path(out)
    return out.parent / f".{out.name}.{kind}-{uuid.uuid4().hex[:8]}-{os.getpid()}@{_host()}"


def stale_siblings(out: str | Path, started: float | None = None) -> list[tuple[Path, str]]:
    """(path, kind) of the hidden siblings of `out` left by runs on this host whose process
    is gone and that were last changed before `started` (default now)."""
    out = Path(out)
    started = time.time() if started is None else started
    host = _host()
    stale = []
    for candidate in out.parent.glob(f".{glob_escape(out.name)}.*-*"):
        owner = _owned_by(out, candidate.name)
        if owner is None or owner["host"] != host or _alive(int(owner["pid"])):
            continue
        try:
            if candidate.lstat().st_mtime >= started:
                continue
        except OSError:
            continue
        stale.append((candidate, owner["kind"]))
    return sorted(stale)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def recover(out: str | Path, started: float | None = None) -> list[Path]:
    """Tidy up after killed writes of `out`: put back an old output a killed swap moved aside
    (when `out` is missing), remove the rest; one log line each. Returns what was removed."""
    out = Path(out)
    stale = stale_siblings(out, started)
    olds = [path for path, kind in stale if kind == OLD]
    if olds and not out.exists() and not out.is_symlink():
        newest = max(olds, key=lambda path: path.lstat().st_mtime)
        os.replace(newest, out)
        log.warning("put back %s, moved aside by a write that was interrupted", out)
        stale = [(path, kind) for path, kind in stale if path != newest]
    removed = []
    for path, _ in stale:
        _remove(path)
        if not path.exists():
            removed.append(path)
    if removed:
        log.warning(
            "removed %d partial folder(s) left by an interrupted run next to %s: %s",
            len(removed),
            out,
            ", ".join(path.name for path in removed),
        )
    return removed


def new_partial_folder(out: str | Path) -> Path:
    """Create and return a fresh hidden partial folder beside `out`, owned by this process,
    after tidying up what killed writes of `out` left."""
    out = Path(out)
    started = time.time()
    out.parent.mkdir(parents=True, exist_ok=True)
    recover(out, started)
    folder = owned_sibling(out)
    folder.mkdir()
    return folder


def replace(built: str | Path, out: str | Path) -> None:
    """Move `built` to `out`, replacing what is there (a file or a folder) by two renames; a
    kill between them leaves the old output in an owned `.old-` sibling that `recover` puts
    back."""
    built, out = Path(built), Path(out)
    if not out.exists() and not out.is_symlink():
        os.replace(built, out)
        return
    aside = owned_sibling(out, OLD)
    os.replace(out, aside)
    os.replace(built, out)
    _remove(aside)


def _named_in(error: OSError, built: Path, out: Path) -> Path:
    """Where the file that could not be written would have been: inside `out`, not `built`."""
    if error.filename:
        try:
            return out / Path(os.fsdecode(error.filename)).relative_to(built)
        except ValueError:
            pass
    return out


def disk_full_in(error: OSError, built: Path, out: Path) -> DiskFullError:
    """The DiskFullError for a no-room error while building `out` in `built`, naming the file
    as it would have been in `out` (with the needed and free figures it had, if any)."""
    named = _named_in(error, built, out)
    if isinstance(error, DiskFullError):
        return DiskFullError(named, needed=error.needed, free=error.free, code=error.code)
    return DiskFullError(named, code=error.errno or errno.ENOSPC)


@contextmanager
def atomic_folder(out: str | Path) -> Iterator[Path]:
    """Yield an empty hidden folder beside `out`; when the block ends normally it replaces
    `out` whole. On any exception it is removed and `out` stays as it was; no room to write
    becomes a DiskFullError naming the file inside `out`. Callers decide beforehand whether
    `out` may be replaced."""
    out = Path(out)
    built = new_partial_folder(out)
    try:
        try:
            yield built
        except OSError as error:
            if is_no_room(error):
                raise disk_full_in(error, built, out) from error
            raise
        replace(built, out)
    except BaseException:
        _remove(built)
        raise


@contextmanager
def no_room_names(path: str | Path) -> Iterator[None]:
    """Re-raise a no-room OSError inside the block as a DiskFullError naming `path`."""
    try:
        yield
    except OSError as error:
        if is_no_room(error):
            raise as_disk_full(error, path) from error
        raise


@contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """Yield a hidden temporary path beside `path`; when the block ends normally it replaces
    `path`. On any exception the temporary file is removed and `path` is left as it was; no
    room to write becomes a DiskFullError naming `path`."""
    path = Path(path)
    started = time.time()
    path.parent.mkdir(parents=True, exist_ok=True)
    recover(path, started)
    temporary = owned_sibling(path)
    try:
        with no_room_names(path):
            yield temporary
            os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def has_partial(out: str | Path) -> bool:
    """Whether a write of `out` left a hidden partial sibling (a run killed while writing)."""
    out = Path(out)
    siblings = out.parent.glob(f".{glob_escape(out.name)}.partial-*")
    return any(_owned_by(out, path.name) for path in siblings)
