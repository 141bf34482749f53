"""Permissions of files written atomically: what the user's umask gives any other file.

Atomic writers build in temporary folders (tempfile.mkdtemp makes them 0700) and some
libraries write private files (safetensors >= 0.5 writes 0600); once moved into place those
modes would keep a colleague on a shared machine from loading a model or resuming a run.
Everything written here is set to 0666 & ~umask (files) and 0777 & ~umask (folders), as
open() and mkdir() would have made them.
"""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask, read from /proc where possible because os.umask can only be read by
    setting it, which for a moment changes it for every thread."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o077)
        os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode open() gives a new file under the current umask."""
    return 0o666 & ~current_umask()


def folder_mode() -> int:
    """The mode mkdir() gives a new folder under the current umask."""
    return 0o777 & ~current_umask()


def temporary_folder(parent: str | Path, prefix: str, suffix: str = "") -> Path:
    """A fresh uniquely named folder in parent (tempfile.mkdtemp) with the usual mode, not 0700."""
    folder = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=parent))
    os.chmod(folder, folder_mode())
    return folder


def give_usual_modes(folder: str | Path) -> None:
    """Set folder, its subfolders and its files to the modes the umask gives new ones."""
    files, folders = file_mode(), folder_mode()
    os.chmod(folder, folders)
    for root, subfolders, names in os.walk(folder):
        for name in subfolders:
            os.chmod(os.path.join(root, name), folders)
        for name in names:
            path = os.path.join(root, name)
            if not os.path.islink(path):
                os.chmod(path, files)
