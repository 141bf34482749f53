"""Fuzz the NIfTI readers with damaged files: every one must read or fail cleanly.

Writes mutants of small valid files (NIfTI-1 .nii and .nii.gz, 3D and 4D, and a NIfTI-2
.nii) into a folder, with a fixed seed: bit flips in the header and in the (compressed)
data, truncations, damaged gzip CRC-32 and length (ISIZE), vox_offset 0 or past the end,
huge, negative and zero dims, an sform of 1e38, a NaN affine, wrong magic and header
size, odd voxel types and scalings, junk, and a gzip bomb (0.69 MB that inflates to
700 MB under a header claiming 2000^3 float32). Each mutant is then read three ways:

- library: ``brainvae.data.io.read_nifti(path)``
- napari:  ``get_reader(path)(path)`` (the plugin's reader function, no viewer)
- prepare: ``brainvae.data.prepare.prepare`` on a folder holding only the mutant
  (``volume_index=0``, so 4D files are accepted and read one volume at a time)

An outcome is a valid read, a clean error (a BrainVAEError whose message names the
file), an uncaught exception (anything else: must be 0) or a crash (the reading
process died; it is restarted after the mutant). "Wrongly accepted" counts valid reads
of mutants that must be refused (a changed gzip stream, truncation, impossible header).
The reads run in a child process that reports its peak memory per read (VmHWM, reset
before each read where Linux allows it).

    python benchmarks/fuzz_nifti.py                 # 120 mutants, about 10 s
    python benchmarks/fuzz_nifti.py --keep /tmp/mutants --flips 20
"""

from __future__ import annotations

import argparse
import gzip
import json
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

READERS = ("library", "napari", "prepare")
OUTCOMES = ("valid", "clean", "uncaught", "crash")
AFFINE = np.array(
    [[-1.2, 0, 0, 40.0], [0, 1.1, 0, -60.0], [0, 0, 1.5, -30.0], [0, 0, 0, 1]], dtype=float
)
NIFTI1_HEADER = 348
# NIfTI-1 field offsets (bytes) in the header nibabel writes (little endian).
DIM, DATATYPE, BITPIX, PIXDIM, VOX_OFFSET = 40, 70, 72, 76, 108
SCL_SLOPE, QFORM_CODE, SFORM_CODE, SROW_X, MAGIC = 112, 252, 254, 280, 344
# NIfTI-2 field offsets.
N2_DIM, N2_VOX_OFFSET = 16, 168


@dataclass
class Mutant:
    """One damaged file: its kind, whether a reader must refuse it, and what was done."""

    name: str
    kind: str
    must_refuse: bool | None  # True: refuse; False: must read; None: either is right
    note: str


# ---------------------------------------------------------------- the valid originals


def _nifti_bytes(data: np.ndarray, version: int = 1) -> bytes:
    """A single-file NIfTI written by nibabel, as uncompressed bytes."""
    import nibabel as nib

    image_class = nib.Nifti1Image if version == 1 else nib.Nifti2Image
    img = image_class(data, AFFINE)
    img.set_qform(AFFINE, code=1)
    img.set_sform(AFFINE, code=1)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.nii"
        nib.save(img, str(path))
        return path.read_bytes()


def originals(seed: int) -> dict[str, bytes]:
    """Uncompressed bytes of the valid files the mutants start from."""
    rng = np.random.default_rng(seed)
    volume = (rng.random((12, 14, 10)) * 100).astype(np.float32)
    series = (rng.random((12, 14, 10, 3)) * 100).astype(np.float32)
    labels = rng.integers(0, 5, (12, 14, 10)).astype(np.int16)
    return {
        "vol": _nifti_bytes(volume),
        "run4d": _nifti_bytes(series),
        "labels": _nifti_bytes(labels),
        "vol_n2": _nifti_bytes(volume, version=2),
    }


def _gz(raw: bytes) -> bytes:
    return gzip.compress(raw, mtime=0)


def _set(raw: bytes, fmt: str, offset: int, *values) -> bytes:
    out = bytearray(raw)
    struct.pack_into(fmt, out, offset, *values)
    return bytes(out)


def _flip_bit(data: bytes, position: int, bit: int) -> bytes:
    out = bytearray(data)
    out[position] ^= 1 << bit
    return bytes(out)


def gzip_bomb(
    claimed_shape=(2000, 2000, 2000), dtype=np.float32, inflated_mb: float = 700
) -> bytes:
    """A .nii.gz whose header claims ``claimed_shape`` of ``dtype`` over a deflate stream of
    zeros that truly inflates to ``inflated_mb`` MiB (about 1/1000 of that on disk)."""
    import nibabel as nib

    header = nib.Nifti1Header()
    header.set_data_shape(claimed_shape)
    header.set_data_dtype(dtype)
    header.set_qform(AFFINE, code=1)
    header.set_sform(AFFINE, code=1)
    header["vox_offset"] = 352
    head = header.binaryblock + b"\x00" * 4
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip wrapper
    parts = [compressor.compress(head)]
    remaining = int(inflated_mb * 2**20)
    zeros = bytes(2**20)
    while remaining > 0:
        parts.append(compressor.compress(zeros[: min(remaining, len(zeros))]))
        remaining -= len(zeros)
    parts.append(compressor.flush())
    return b"".join(parts)


# ---------------------------------------------------------------- the mutants


def _header_mutants(raw: bytes) -> list[tuple[str, bool | None, str, bytes]]:
    """Deliberate header damage to a NIfTI-1 file: (kind, must_refuse, note, bytes)."""
    nbytes = len(raw)
    zero_srow = _set(_set(raw, "<2h", QFORM_CODE, 0, 1), "<12f", SROW_X, *([0.0] * 12))
    return [
        (
            "vox_offset 0",
            True,
            "vox_offset = 0 (inside the header)",
            _set(raw, "<f", VOX_OFFSET, 0),
        ),
        ("vox_offset 0", True, "vox_offset = 100", _set(raw, "<f", VOX_OFFSET, 100)),
        (
            "vox_offset past end",
            True,
            "vox_offset = file size",
            _set(raw, "<f", VOX_OFFSET, nbytes),
        ),
        ("huge dims", True, "dim = 32767^3", _set(raw, "<4h", DIM, 3, 32767, 32767, 32767)),
        (
            "huge dims",
            True,
            "dim = 12 x 14 x 10 x 30000",
            _set(raw, "<5h", DIM, 4, 12, 14, 10, 30000),
        ),
        ("bad dims", True, "dim[2] = -14", _set(raw, "<h", DIM + 4, -14)),
        ("bad dims", True, "dim[1] = 0", _set(raw, "<h", DIM + 2, 0)),
        ("bad dims", True, "dim[0] = 0", _set(raw, "<h", DIM, 0)),
        ("bad dims", True, "dim[0] = 9", _set(raw, "<h", DIM, 9)),
        ("sform 1e38", True, "srow_x[0] = 1e38", _set(raw, "<f", SROW_X, 1e38)),
        ("sform 1e38", True, "srow_* translation = 1e38", _set(raw, "<f", SROW_X + 12, 1e38)),
        (
            "pixdim 1e38",
            True,
            "no q/sform, pixdim[1] = 1e38",
            _set(_set(raw, "<2h", QFORM_CODE, 0, 0), "<f", PIXDIM + 4, 1e38),
        ),
        ("NaN affine", True, "srow_y[1] = NaN", _set(raw, "<f", SROW_X + 20, float("nan"))),
        (
            "NaN affine",
            True,
            "sform_code 0, qoffset_x = NaN",
            _set(_set(raw, "<h", SFORM_CODE, 0), "<f", 268, float("nan")),
        ),
        ("zero sform", False, "sform all zeros (falls back to voxel sizes)", zero_srow),
        ("wrong magic", True, "magic = 'abc\\0'", raw[:MAGIC] + b"abc\x00" + raw[MAGIC + 4 :]),
        (
            "wrong magic",
            None,
            "sizeof_hdr = 349 (nibabel reads it as NIfTI-1)",
            _set(raw, "<i", 0, 349),
        ),
        ("odd voxel type", True, "datatype 2048 (unknown)", _set(raw, "<h", DATATYPE, 2048)),
        ("odd voxel type", True, "datatype 32 (complex64)", _set(raw, "<2h", DATATYPE, 32, 64)),
        (
            "odd voxel type",
            True,
            "datatype 64 (float64: twice the bytes)",
            _set(raw, "<2h", DATATYPE, 64, 64),
        ),
        (
            "odd voxel type",
            None,
            "datatype 2 (uint8: a quarter of the bytes)",
            _set(raw, "<2h", DATATYPE, 2, 8),
        ),
        (
            "bad quaternion",
            True,
            "sform_code 0, quatern_b = c = d = 0.9 (not a rotation)",
            _set(_set(raw, "<h", SFORM_CODE, 0), "<3f", 256, 0.9, 0.9, 0.9),
        ),
        (
            "extension damage",
            None,
            "extension flag set over the voxel data",
            raw[:348] + b"\x01\x00\x00\x00" + raw[352:],
        ),
        (
            "extension damage",
            None,
            "extension of 2^30 bytes announced",
            _set(raw[:348] + b"\x01\x00\x00\x00" + raw[352:], "<2i", 352, 2**30, 6),
        ),
        (
            "extension damage",
            None,
            "extension of -16 bytes announced",
            _set(raw[:348] + b"\x01\x00\x00\x00" + raw[352:], "<2i", 352, -16, 6),
        ),
        ("odd scaling", None, "scl_slope = NaN", _set(raw, "<f", SCL_SLOPE, float("nan"))),
        ("odd scaling", None, "scl_slope = inf", _set(raw, "<f", SCL_SLOPE, float("inf"))),
        ("odd scaling", None, "scl_slope = 1e38", _set(raw, "<f", SCL_SLOPE, 1e38)),
    ]


def _nifti2_mutants(raw: bytes) -> list[tuple[str, bool | None, str, bytes]]:
    return [
        ("NIfTI-2 huge dims", True, "dim = 2^40 x 14 x 10", _set(raw, "<q", N2_DIM + 8, 2**40)),
        (
            "NIfTI-2 huge dims",
            True,
            "dim = 2^62 x 2^62 x 10 (the product overflows int64)",
            _set(raw, "<2q", N2_DIM + 8, 2**62, 2**62),
        ),
        ("NIfTI-2 vox_offset 0", True, "vox_offset = 0", _set(raw, "<q", N2_VOX_OFFSET, 0)),
        ("NIfTI-2 vox_offset 0", True, "vox_offset = 2^62", _set(raw, "<q", N2_VOX_OFFSET, 2**62)),
        ("NIfTI-2 truncated", True, "last byte cut", raw[:-1]),
    ]


def mutants(
    seed: int = 0, flips: int = 8, bomb_mb: int = 700, honest_bomb_mb: int = 0
) -> list[tuple[str, Mutant, bytes]]:
    """(file name, Mutant, bytes) for every mutant; the same seed gives the same files.

    ``honest_bomb_mb`` > 0 adds a gzip bomb whose header tells the truth (that many MiB of
    uint8 zeros): only a memory budget can refuse it, so it reads where memory allows.
    """
    rng = np.random.default_rng(seed)
    base = originals(seed)
    vol, run4d = base["vol"], base["run4d"]
    out: list[tuple[str, Mutant, bytes]] = []

    def add(kind: str, must_refuse: bool | None, note: str, data: bytes, suffix: str) -> None:
        stem = "".join(c if c.isalnum() or c == "-" else "_" for c in kind).strip("_")
        name = f"m{len(out):03d}_{stem}{suffix}"
        out.append((name, Mutant(name, kind, must_refuse, note), data))

    add("valid", False, "unchanged 3D float32", vol, ".nii")
    add("valid", False, "unchanged 3D float32", _gz(vol), ".nii.gz")
    add("valid", False, "unchanged 3D int16 labels", _gz(base["labels"]), ".nii.gz")
    add("valid 4D", False, "unchanged 4D, 3 volumes", _gz(run4d), ".nii.gz")
    add("valid 4D", False, "unchanged 4D, 3 volumes", run4d, ".nii")
    add("valid", False, "unchanged NIfTI-2", base["vol_n2"], ".nii")
    for kind, refuse, note, data in _header_mutants(vol):
        add(kind, refuse, note, data, ".nii")
        add(kind, refuse, note, _gz(data), ".nii.gz")
    for kind, refuse, note, data in _nifti2_mutants(base["vol_n2"]):
        add(kind, refuse, note, data, ".nii")
    # Random bit flips in the header (either outcome is right, but cleanly).
    for _ in range(flips):
        position, bit = int(rng.integers(0, NIFTI1_HEADER)), int(rng.integers(0, 8))
        data = _flip_bit(vol, position, bit)
        add("header bit flip", None, f"byte {position} bit {bit}", data, ".nii")
        add("header bit flip", None, f"byte {position} bit {bit}", _gz(data), ".nii.gz")
    # Flips in uncompressed voxel data cannot be detected (NIfTI has no checksum).
    for _ in range(max(1, flips // 4)):
        position, bit = int(rng.integers(352, len(vol))), int(rng.integers(0, 8))
        add(
            "data bit flip .nii",
            None,
            f"byte {position} bit {bit}",
            _flip_bit(vol, position, bit),
            ".nii",
        )
    # Flips inside the compressed stream: refused unless the output is unchanged
    # (padding bits of a deflate block are ignored by design).
    packed = _gz(vol)
    for _ in range(flips):
        position, bit = int(rng.integers(10, len(packed) - 8)), int(rng.integers(0, 8))
        data = _flip_bit(packed, position, bit)
        try:
            harmless = gzip.decompress(data) == vol
        except Exception:  # noqa: BLE001 - any failure means the stream changed
            harmless = False
        add(
            "gzip stream bit flip",
            not harmless,
            f"byte {position} bit {bit}"
            + (" (decompresses to the same bytes)" if harmless else ""),
            data,
            ".nii.gz",
        )
    data = bytearray(packed)
    data[len(packed) // 2] ^= 0xFF
    add("gzip data byte flip", True, f"byte {len(packed) // 2} inverted", bytes(data), ".nii.gz")
    for cut, label in (
        (1, "1 byte"),
        (5, "5 bytes"),
        (8, "8 bytes (the trailer)"),
        (len(packed) // 2, "half"),
    ):
        add("truncated .nii.gz", True, f"last {label} cut", packed[:-cut], ".nii.gz")
    for cut, label in ((1, "1 byte"), (len(vol) // 2, "half")):
        add("truncated .nii", True, f"last {label} cut", vol[:-cut], ".nii")
    add("truncated .nii", True, "header only (352 bytes)", vol[:352], ".nii")
    add("truncated .nii", True, "100 bytes", vol[:100], ".nii")
    for index in range(4):
        add(
            "CRC damage",
            True,
            f"CRC-32 byte {index} inverted",
            _flip_byte(packed, len(packed) - 8 + index),
            ".nii.gz",
        )
        add(
            "ISIZE damage",
            True,
            f"ISIZE byte {index} inverted",
            _flip_byte(packed, len(packed) - 4 + index),
            ".nii.gz",
        )
    add("4D damaged", True, "4D .nii.gz, 1 byte cut", _gz(run4d)[:-1], ".nii.gz")
    add(
        "4D damaged",
        True,
        "4D .nii.gz, CRC inverted",
        _flip_byte(_gz(run4d), len(_gz(run4d)) - 6),
        ".nii.gz",
    )
    add(
        "trailing junk",
        None,
        "random bytes after the gzip stream",
        packed + rng.bytes(64),
        ".nii.gz",
    )
    add("trailing junk", False, "zero padding after the gzip stream", packed + bytes(64), ".nii.gz")
    add("junk", True, "random bytes", rng.bytes(2000), ".nii")
    add("junk", True, "random bytes", rng.bytes(2000), ".nii.gz")
    add("junk", True, "gzip of random bytes", _gz(rng.bytes(2000)), ".nii.gz")
    add("junk", True, "empty file", b"", ".nii")
    add("junk", True, "empty file", b"", ".nii.gz")
    add(
        "gzip bomb",
        True,
        f"claims 2000^3 float32, inflates to {bomb_mb} MiB",
        gzip_bomb(inflated_mb=bomb_mb),
        ".nii.gz",
    )
    if honest_bomb_mb > 0:
        side = int(round((honest_bomb_mb * 2**20) ** (1 / 3)))
        add(
            "gzip bomb, true header",
            None,
            f"claims {side}^3 uint8 ({side**3 / 2**20:.0f} MiB) and holds it",
            gzip_bomb((side, side, side), np.uint8, side**3 / 2**20),
            ".nii.gz",
        )
    return out


def _flip_byte(data: bytes, position: int) -> bytes:
    out = bytearray(data)
    out[position] ^= 0xFF
    return bytes(out)


def write_mutants(
    folder: Path, seed: int = 0, flips: int = 8, bomb_mb: int = 700, honest_bomb_mb: int = 0
) -> list[Mutant]:
    """Write every mutant into ``folder`` and a manifest (mutants.json) beside them."""
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for name, mutant, data in mutants(seed, flips, bomb_mb, honest_bomb_mb):
        (folder / name).write_bytes(data)
        made.append(mutant)
    (folder / "mutants.json").write_text(json.dumps([asdict(m) for m in made], indent=1))
    return made


# ---------------------------------------------------------------- reading them


def read_outcome(reader: str, path: Path, work: Path) -> tuple[str, str]:
    """(outcome, detail) of reading ``path`` one way: valid, clean or uncaught."""
    from brainvae.errors import BrainVAEError

    try:
        if reader == "library":
            from brainvae.data.io import read_nifti

            volume = read_nifti(path)
            detail = f"shape {volume.data.shape}"
        elif reader == "napari":
            from brainvae.napari._reader import get_reader

            layers = get_reader(str(path))(str(path))
            detail = f"{len(layers)} layer(s), shape {np.shape(layers[0][0])}"
        else:
            detail = _prepare_one(path, work)
    except BrainVAEError as err:
        named = path.name in str(err)
        return ("clean" if named else "uncaught"), f"{type(err).__name__}: {err}"
    except Exception as err:  # noqa: BLE001 - the point is to count these
        return "uncaught", f"{type(err).__name__}: {err}"
    return "valid", detail


def _prepare_one(path: Path, work: Path) -> str:
    """prepare() on a folder holding only ``path`` (volume_index 0 for 4D files)."""
    from brainvae.data.prepare import prepare
    from brainvae.data.preprocessing import PreprocessConfig

    source, out = work / "src", work / "ds"
    shutil.rmtree(work, ignore_errors=True)
    source.mkdir(parents=True)
    shutil.copyfile(path, source / path.name)
    try:
        dataset = prepare(source, out, PreprocessConfig(volume_index=0), workers=1)
        return f"{len(dataset)} sample(s) of shape {tuple(dataset.scan_shape)}"
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _worker(folder: Path, start: int, readers: tuple[str, ...] = READERS) -> None:
    """Child process: read every (mutant, reader) pair from ``start`` on, one JSON line each."""
    import logging
    import warnings

    from peak_memory import peak_rss_mb, reset_peak_rss  # benchmarks/, the script's folder

    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    names = [m["name"] for m in json.loads((folder / "mutants.json").read_text())]
    work = Path(tempfile.mkdtemp(prefix="fuzz_prepare_"))
    pairs = [(name, reader) for name in names for reader in readers]
    for index in range(start, len(pairs)):
        name, reader = pairs[index]
        reset_peak_rss()
        tick = time.perf_counter()
        outcome, detail = read_outcome(reader, folder / name, work / "run")
        record = {
            "index": index,
            "name": name,
            "reader": reader,
            "outcome": outcome,
            "detail": detail[:300],
            "seconds": round(time.perf_counter() - tick, 3),
            "peak_mb": round(peak_rss_mb(), 1),
        }
        print(json.dumps(record), flush=True)
    shutil.rmtree(work, ignore_errors=True)


def run_all(folder: Path, readers: tuple[str, ...] = READERS) -> list[dict]:
    """Read every mutant every way in child processes, restarting one after a crash."""
    names = [m["name"] for m in json.loads((folder / "mutants.json").read_text())]
    pairs = [(name, reader) for name in names for reader in readers]
    records: list[dict] = []
    start = 0
    while start < len(pairs):
        child = subprocess.Popen(
            [sys.executable, __file__, "--worker", str(folder), "--start", str(start)]
            + ["--only", *readers],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        for line in child.stdout:
            if line.startswith("{"):
                records.append(json.loads(line))
                start = records[-1]["index"] + 1
        code = child.wait()
        if start < len(pairs) and code != 0:
            name, reader = pairs[start]
            records.append(
                {
                    "index": start,
                    "name": name,
                    "reader": reader,
                    "outcome": "crash",
                    "detail": f"reader process died (exit code {code})",
                    "seconds": 0.0,
                    "peak_mb": float("nan"),
                }
            )
            start += 1
        elif start < len(pairs):
            raise RuntimeError(f"worker stopped early at pair {start} without dying")
    return records


def tables(made: list[Mutant], records: list[dict]) -> str:
    """The summary table (one row per reader) and the per-kind breakdown."""
    by_name = {m.name: m for m in made}
    readers = [r for r in READERS if any(record["reader"] == r for record in records)]
    lines = [
        f"{'reader':8} {'tried':>5} {'valid':>5} {'clean':>5} {'uncaught':>8} {'crashes':>7} "
        f"{'wrongly accepted':>16} {'max peak MiB':>12} {'seconds':>7}"
    ]
    for reader in readers:
        rows = [r for r in records if r["reader"] == reader]
        count = {o: sum(r["outcome"] == o for r in rows) for o in OUTCOMES}
        wrong = sum(
            r["outcome"] == "valid" and by_name[r["name"]].must_refuse is True for r in rows
        )
        missed = sum(
            r["outcome"] != "valid" and by_name[r["name"]].must_refuse is False for r in rows
        )
        peak = max((r["peak_mb"] for r in rows if r["peak_mb"] == r["peak_mb"]), default=0.0)
        seconds = sum(r["seconds"] for r in rows)
        lines.append(
            f"{reader:8} {len(rows):5d} {count['valid']:5d} {count['clean']:5d} "
            f"{count['uncaught']:8d} {count['crash']:7d} {wrong:16d} {peak:12.0f} {seconds:7.1f}"
            + (f"   ({missed} valid file(s) refused)" if missed else "")
        )
    lines += ["", f"{'kind':24} {'n':>3}  " + "  ".join(f"{r:>16}" for r in readers)]
    lines.append(f"{'':24} {'':>3}  " + "  ".join(f"{'valid/clean/bad':>16}" for _ in readers))
    kinds = list(dict.fromkeys(m.kind for m in made))
    for kind in kinds:
        names = {m.name for m in made if m.kind == kind}
        cells = []
        for reader in readers:
            rows = [r for r in records if r["reader"] == reader and r["name"] in names]
            valid = sum(r["outcome"] == "valid" for r in rows)
            clean = sum(r["outcome"] == "clean" for r in rows)
            bad = len(rows) - valid - clean
            cells.append(f"{valid:>6}/{clean:>3}/{bad:>3}")
        lines.append(f"{kind:24} {len(names):3d}  " + "  ".join(f"{c:>16}" for c in cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--flips", type=int, default=8, help="random bit flips per family")
    parser.add_argument("--bomb-mb", type=int, default=700, help="what the gzip bomb inflates to")
    parser.add_argument(
        "--honest-bomb-mb",
        type=int,
        default=0,
        help="add a gzip bomb whose header is true (MiB of uint8; off by default: it is read)",
    )
    parser.add_argument("--only", choices=READERS, nargs="+", help="read these ways only")
    parser.add_argument("--keep", metavar="FOLDER", help="write the mutants here and keep them")
    parser.add_argument("--show", action="store_true", help="list every uncaught or odd read")
    parser.add_argument("--worker", metavar="FOLDER", help=argparse.SUPPRESS)
    parser.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        _worker(Path(args.worker), args.start, tuple(args.only or READERS))
        return 0
    tick = time.perf_counter()
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="fuzz_nifti_"))
    try:
        made = write_mutants(folder, args.seed, args.flips, args.bomb_mb, args.honest_bomb_mb)
        records = run_all(folder, tuple(args.only or READERS))
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    print(f"{len(made)} mutants (seed {args.seed}), each read {len(args.only or READERS)} ways:\n")
    print(tables(made, records))
    by_name = {m.name: m for m in made}
    odd = [
        r
        for r in records
        if r["outcome"] in ("uncaught", "crash")
        or (r["outcome"] == "valid" and by_name[r["name"]].must_refuse is True)
        or (r["outcome"] != "valid" and by_name[r["name"]].must_refuse is False)
    ]
    if odd or args.show:
        print("\nProblems:" if odd else "\nNo problems.")
        for r in odd:
            m = by_name[r["name"]]
            print(f"  {r['reader']:8} {r['name']} ({m.note}): {r['outcome']}: {r['detail']}")
    print(f"\n{time.perf_counter() - tick:.0f} s")
    return 1 if any(r["outcome"] in ("uncaught", "crash") for r in records) else 0


if __name__ == "__main__":
    raise SystemExit(main())
