"""The images file: sample rows appended to a float32 .npy, then equalised in place.

Ordinary file writes (no memory map over unwritten space), so a full disk is a
DiskFullError naming the file rather than a SIGBUS; free space is checked up front.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from brainvae.atomic import no_room_names
from brainvae.data.preprocessing import PreprocessConfig
from brainvae.data.preprocessing.steps import equalise_brightness
from brainvae.errors import DiskFullError, free_bytes

CHUNK_BYTES = 8 * 2**20  # rows are written / equalised in chunks of about this size
SPACE_MARGIN_BYTES = 16 * 2**20  # free space asked beyond the images, for tables and reports


class RowWriter:
    """Writes sample rows in order into a .npy file through a file handle.

    Rows are appended with ordinary writes (no memory map over unwritten space), so a full
    disk is an OSError, reported as a DiskFullError naming the file, not a SIGBUS that kills
    the process. The header states `capacity` rows until `finish` shrinks it to the rows
    written.
    """

    def __init__(self, path: Path, capacity: int, scan_shape: tuple[int, ...]):
        self.path = path
        self.scan_shape = scan_shape
        self.rows = 0
        self._buffer: list[np.ndarray] = []
        self._buffered = 0
        header = _npy_header((capacity, *scan_shape))
        self._header_length = len(header)
        with no_room_names(path):
            self._file = open(path, "wb")  # noqa: SIM115 - closed by finish() / close()
            self._file.write(header)

    def write(self, samples: np.ndarray) -> None:
        self._buffer.append(samples)
        self._buffered += samples.nbytes
        if self._buffered >= CHUNK_BYTES:
            self.flush()

    def flush(self) -> None:
        with no_room_names(self.path):
            for block in self._buffer:
                self._file.write(np.ascontiguousarray(block, dtype="<f4").tobytes())
                self.rows += len(block)
            self._file.flush()
        self._buffer, self._buffered = [], 0

    def finish(self) -> None:
        """Flush, state the rows written in the header (fewer when files were skipped), close."""
        self.flush()
        header = _npy_header((self.rows, *self.scan_shape), self._header_length)
        with no_room_names(self.path):
            self._file.truncate(self._header_length + self.rows * row_bytes(self.scan_shape))
            self._file.seek(0)
            self._file.write(header)
            self._file.close()

    def close(self) -> None:
        """Close without finishing (the file is about to be removed)."""
        self._file.close()


def _npy_header(shape: tuple[int, ...], length: int | None = None) -> bytes:
    """A float32 .npy header for `shape`, padded with spaces to `length` bytes when given
    (so a header rewritten with fewer rows keeps the data where it is)."""
    import io
    import struct

    buffer = io.BytesIO()
    header = {"descr": "<f4", "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    written = buffer.getvalue()
    if length is None or len(written) == length:
        return written
    prefix, text = written[:8], written[10:]
    text = text[:-1] + b" " * (length - len(written)) + b"\n"
    return prefix + struct.pack("<H", len(text)) + text


def row_bytes(scan_shape: tuple[int, ...]) -> int:
    """Bytes of one float32 sample."""
    return int(np.prod(scan_shape)) * 4


def check_free_space(folder: str | Path, needed: int) -> None:
    """Refuse to start writing `needed` bytes into `folder` when its disk has less free.

    Raises DiskFullError naming the folder, the bytes needed and the bytes free.
    """
    free = free_bytes(folder)
    if free is not None and needed > free:
        raise DiskFullError(folder, needed=needed, free=free)


def needed_bytes(rows: int, scan_shape: tuple[int, ...]) -> int:
    """Bytes a dataset of `rows` samples takes: the images plus a margin for the tables."""
    images = rows * row_bytes(scan_shape)
    return images + max(SPACE_MARGIN_BYTES, images // 100)


def _chunks(rows: int, scan_shape: tuple[int, ...]) -> Iterator[tuple[int, int]]:
    per_row = row_bytes(scan_shape)
    step = max(1, CHUNK_BYTES // max(per_row, 1))
    for start in range(0, rows, step):
        yield start, min(rows, start + step)


def equalise_rows(path: Path, means: np.ndarray, config: PreprocessConfig) -> Iterator[int]:
    """Second pass: brightness equalisation over the cached array, chunk by chunk.

    Chunks are read through a read-only memory map and written back with ordinary writes,
    so a filesystem that allocates on rewrite (copy-on-write) reports a full disk as an error.
    """
    population_mean = float(np.mean(means))
    array = np.load(path, mmap_mode="r")
    rows, shape, offset = len(array), array.shape[1:], array.offset
    del array
    with no_room_names(path), open(path, "r+b") as file:
        for start, stop in _chunks(rows, shape):
            array = np.load(path, mmap_mode="r")
            chunk = np.array(array[start:stop])
            del array
            equalised = equalise_brightness(
                chunk,
                means[start:stop],
                population_mean,
                config.brightness_k,  # type: ignore[arg-type]
                config.brightness_normalise,
            )
            file.seek(offset + start * row_bytes(shape))
            file.write(np.ascontiguousarray(equalised, dtype="<f4").tobytes())
            file.flush()
            yield stop
