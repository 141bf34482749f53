"""Lists of numbers typed by a user ("1, 3", "0.8;0.1;0.1", "z1,z3"): one parser for the
command line and the docks, so every field accepts the same forms. Each caller keeps its own
error message (it knows which option or field the text came from)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

Number = TypeVar("Number", int, float)


def number_list(text: str, kind: Callable[[str], Number] = float, prefix: str = "") -> list[Number]:
    """The numbers of `text`, separated by commas or semicolons (spaces around them ignored,
    empty parts skipped); `prefix` (e.g. "z") may start each part. A part that is not a
    number raises ValueError."""
    values = []
    for part in re.split(r"[,;]", str(text)):
        part = part.strip()
        if prefix and part.lower().startswith(prefix):
            part = part[len(prefix) :].strip()
        if part:
            values.append(kind(part))
    return values
