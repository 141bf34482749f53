"""Benchmark `prepare_dataset` with the FLAIR preset: 182x218x182 -> 40x48x40.

Generates a few distinct brain-like .nii.gz volumes (int16, MNI152 grid) and
hard-links them up to N files, then prepares them with workers=1 and workers=2,
each run in a fresh child process so peak memory (ru_maxrss of the process and of
its worker children) is measured per run. A run at N/4 checks that peak memory
does not grow with the number of volumes.

    python benchmarks/bench_prepare.py --n 1000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RAW_SHAPE = (182, 218, 182)
MNI_AFFINE = np.array([[-1, 0, 0, 90], [0, 1, 0, -126], [0, 0, 1, -72], [0, 0, 0, 1]], float)


def brain_like(seed: int) -> np.ndarray:
    """An ellipsoidal 'brain' with smooth tissue contrast, a few lesions and noise (int16)."""
    rng = np.random.default_rng(seed)
    grid = np.ogrid[tuple(slice(0, s) for s in RAW_SHAPE)]
    centre = np.array(RAW_SHAPE) / 2 + rng.normal(0, 2, 3)
    radii = np.array([70, 85, 65]) * rng.uniform(0.93, 1.07, 3)
    r = sum(((g - c) / a) ** 2 for g, c, a in zip(grid, centre, radii, strict=True))
    image = np.where(r < 1, 600 + 300 * np.cos(6 * np.sqrt(r)) ** 2, 0.0)
    for _ in range(5):
        spot = np.array(centre) + rng.normal(0, 25, 3)
        d = sum((g - c) ** 2 for g, c in zip(grid, spot, strict=True))
        image = image + 500 * np.exp(-d / 30) * (r < 1)
    image = image + rng.normal(0, 20, RAW_SHAPE) * (r < 1)
    return np.clip(image, 0, 32000).astype(np.int16)


def make_inputs(folder: Path, n: int, distinct: int) -> None:
    """`distinct` real files, hard-linked (or copied where links fail) up to n files."""
    import nibabel as nib

    folder.mkdir(parents=True, exist_ok=True)
    originals = []
    for i in range(distinct):
        path = folder / f"orig-{i}.nii.gz"
        if not path.exists():
            nib.save(nib.Nifti1Image(brain_like(i), MNI_AFFINE), str(path))
        originals.append(path)
    files = folder / f"n{n}"
    if files.exists():
        return
    files.mkdir()
    for k in range(n):
        target = files / f"sub-{k:05d}.nii.gz"
        try:
            os.link(originals[k % distinct], target)
        except OSError:
            shutil.copy(originals[k % distinct], target)


def run_one(source: Path, workers: int) -> dict:
    """Prepare once in this process; return speed and peak memory figures."""
    from brainvae.data.prepare import prepare_dataset
    from brainvae.data.preprocessing import PreprocessConfig

    out = Path(tempfile.mkdtemp(prefix="bench-ds-", dir=source.parent)) / "ds"
    n = 0
    start = time.perf_counter()
    for progress in prepare_dataset(source, out, PreprocessConfig.flair_3d(), workers=workers):
        n = progress.total if progress.stage == "preprocess" else n
    seconds = time.perf_counter() - start
    shape = tuple(json.loads((out / "dataset.json").read_text())["sample_shape"])
    shutil.rmtree(out.parent)
    kib = 1024  # Linux reports ru_maxrss in KiB
    return {
        "n": n,
        "workers": workers,
        "seconds": seconds,
        "volumes_per_s": n / seconds,
        "sample_shape": shape,
        "peak_self_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * kib / 2**20,
        "peak_children_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * kib / 2**20,
    }


def child(source: Path, workers: int) -> dict:
    """run_one in a fresh interpreter so each run's peak memory is its own."""
    command = [sys.executable, __file__, "--child", str(source), "--workers", str(workers)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="volumes to prepare (default 1000)")
    parser.add_argument("--distinct", type=int, default=8, help="distinct generated volumes")
    parser.add_argument(
        "--work", type=Path, default=Path(__file__).parent / "_work", help="scratch folder"
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child, args.workers)))
        return

    quarter = max(args.n // 4, 1)
    print(
        f"Generating {args.distinct} distinct brain-like volumes {RAW_SHAPE} in {args.work}; "
        f"the {args.n} input files are hard links to them (page cache helps reading)."
    )
    make_inputs(args.work, args.n, args.distinct)
    make_inputs(args.work, quarter, args.distinct)
    raw_mib = np.prod(RAW_SHAPE) * 4 / 2**20
    runs = [child(args.work / f"n{args.n}", w) for w in (1, 2)]
    final_mib = args.n * 40 * 48 * 40 * 4 / 2**20
    print(
        f"\nFLAIR preset (crop 160x192x160, block 4, clip 99.5, scale) -> {runs[0]['sample_shape']}"
    )
    print(
        f"final array {final_mib:.0f} MiB; one raw volume as float32 {raw_mib:.0f} MiB; "
        f"bound to beat: final + 4 raw = {final_mib + 4 * raw_mib:.0f} MiB"
    )
    for r in runs:
        print(
            f"workers={r['workers']}: {r['n']} volumes in {r['seconds']:.1f} s = "
            f"{r['volumes_per_s']:.2f} volumes/s; peak RSS main {r['peak_self_mib']:.0f} MiB, "
            f"largest worker {r['peak_children_mib']:.0f} MiB"
        )
    print(
        f"speed-up workers=2 / workers=1: {runs[1]['volumes_per_s'] / runs[0]['volumes_per_s']:.2f}x"
    )
    small = child(args.work / f"n{quarter}", 2)
    print(
        f"\nmemory growth check (workers=2): N={quarter}: main {small['peak_self_mib']:.0f} MiB, "
        f"worker {small['peak_children_mib']:.0f} MiB; N={args.n}: main {runs[1]['peak_self_mib']:.0f} MiB, "
        f"worker {runs[1]['peak_children_mib']:.0f} MiB"
    )
    grows = runs[1]["peak_self_mib"] > 1.25 * small["peak_self_mib"] + 20
    print("peak memory grows with N" if grows else "peak memory does not grow with N")


if __name__ == "__main__":
    main()
