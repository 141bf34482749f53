"""JSON files read with limits: a size cap and a nesting-depth cap checked before the
parser runs (100,000 nested brackets would recurse it away), errors naming the file.

Every brainvae JSON file a user may hand over (config.json, run.json, a checkpoint's state,
a dataset's dataset.json and report.json) is read through here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from brainvae.errors import DataFileError

MAX_JSON_DEPTH = 64
"""Deepest nesting of [ and { accepted in a brainvae JSON file (real files use fewer than 8)."""
MAX_CONFIG_BYTES = 16 * 2**20
"""A brainvae JSON file is a few KB (a dataset report a few MB); past this it is not one."""

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


def json_depth(text: str) -> int:
    """Deepest nesting of [ and { in JSON text, brackets inside strings not counted."""
    bare = _STRING.sub("", text).encode("utf-8", "surrogatepass")
    codes = np.frombuffer(bare, dtype=np.uint8)
    steps = (np.isin(codes, (ord("["), ord("{")))).astype(np.int32) - np.isin(
        codes, (ord("]"), ord("}"))
    ).astype(np.int32)
    return int(np.cumsum(steps).max(initial=0))


def parse_json(text: str, path: str | Path, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """json.loads, after refusing nesting deeper than max_depth (which would recurse away)."""
    import json

    depth = json_depth(text)
    if depth > max_depth:
        raise DataFileError(
            path, f"JSON nested {depth} levels deep; brainvae files nest at most {max_depth}"
        )
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError) as error:
        raise DataFileError(path, f"is not valid JSON (truncated or corrupt?): {error}") from error


def loads_or_raise(text: str, error: type[Exception], what: str) -> Any:
    """json.loads of text that is not a file of its own, a parse error raised as `error`."""
    import json

    try:
        return json.loads(text)
    except json.JSONDecodeError as problem:
        raise error(f"{what} is not valid JSON: {problem}") from problem


def read_json_file(path: Path, max_bytes: int = MAX_CONFIG_BYTES) -> Any:
    """A JSON file read with a size and depth limit; errors name the file."""
    size = path.stat().st_size
    if size > max_bytes:
        raise DataFileError(path, f"is {size} bytes; a brainvae JSON file is at most {max_bytes}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataFileError(path, f"is not text ({error})") from error
    return parse_json(text, path)
