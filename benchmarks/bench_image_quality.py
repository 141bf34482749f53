"""Benchmark CW-SSIM and the PCA-based Frechet distance against per-image reference code.

Scale of issue 19: 1,000 2D scans (128 x 160) and 200 3D volumes (40 x 48 x 40). Scans are the
shipped sample populations (244 2D, 83 3D) tiled to that count; each "estimate" is its scan
moved by one voxel along its last axis (in-plane) plus Gaussian noise (sd 0.02, fixed seed): timing does not depend on the
content, agreement is checked on realistic brains. Both metrics run inside the sample's
brain mask.

Contenders:
- CW-SSIM, ours: brainvae.evaluation.image_quality.cw_ssim: pyrtools' pyramid masks applied
  to chunks of images with batched FFTs, windowed sums by cumulative sums; volumes slice by
  slice (axis 0, the 40 slices of 48 x 40; slices without brain skipped).
- CW-SSIM, reference loop: what one writes with the independent implementation, one image at
  a time: plenoptic's torch SteerablePyramidFreq on (x, y), then Sampat's formula band by
  band with scipy.signal.correlate2d for the window sums (the transcription in
  tests/unit/test_image_quality.py). Volumes: one call per brain slice.
- CW-SSIM, pyrtools per image: pyrtools used as it is made, one SteerablePyramidFreq per
  image (per slice), with our vectorised windowed sums: what batching the pyramid gains.
- PCA-FD, ours: pca_frechet_distance (exact PCA through the n x n Gram matrix, scipy sqrtm).
- PCA-FD, reference: numpy's SVD of the centred real set, projections, np.cov, and the
  formula with Tr sqrt(S1 S2) from the eigenvalues of S1 S2 (the test's transcription).
  The real set is the tiled sample, the generated set the estimates; the default number of
  components (min(32, n_real // 4, n_generated // 4)).

Seconds are wall time of the computation only (scans in memory before the clock).
--loop-n runs the CW-SSIM loop on the first N scans only and scales its time by n / loop-n
(the loop is linear in the scans; the figure is marked "scaled"). The largest difference
between ours and the reference on the scans both scored is printed.

    python benchmarks/bench_image_quality.py              # 1,000 2D and 200 3D
    python benchmarks/bench_image_quality.py --quick      # 200 2D, 40 3D; loop on 50 and 10
    python benchmarks/bench_image_quality.py --dims 2 --loop-n 100

Measured on the shared 2-core CPU (load average 7-11 from other work: timings vary up to 3x
between runs), full scale with --loop-n 100 (2D) and 10 (3D): 2D CW-SSIM ours 9.0-12.4 s,
reference loop 203-339 s (20-28x), pyrtools per image 26 s (batching 2.6x); 3D CW-SSIM ours
9.2-10.3 s, reference loop 381-441 s (37-48x), pyrtools per image 54 s (5.3x). PCA-FD 2D ours
2.2-14.3 s, reference SVD 23-61 s (4-10x); 3D ours 1.4-3.3 s, reference 7.4-21 s (5-6.5x).
Agreement: CW-SSIM within 1.3e-10 (2D) and 6.2e-10 (3D) of the plenoptic reference, 4.4e-16 of
pyrtools per image; PCA-FD within 4e-15 (relative) of the SVD transcription.

On a shared 2-core CPU other work changes timings: run it on an otherwise idle machine for
figures to quote.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SIZES = {2: 1000, 3: 200}
QUICK_SIZES = {2: 200, 3: 40}
QUICK_LOOP = {2: 50, 3: 10}


def population(dims: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scans, estimates, brain mask): the sample population tiled to n, and its estimates."""
    import nibabel as nib

    source = ROOT / "sample_data" / f"population_{dims}d"
    files = sorted((source / "images").glob("*.nii.gz"))
    scans = np.stack([np.squeeze(np.asarray(nib.load(f).dataobj, np.float64)) for f in files])
    scans = np.resize(scans, (n, *scans.shape[1:]))
    mask = np.squeeze(np.asarray(nib.load(source / "brain_mask.nii.gz").dataobj)) > 0
    noise = np.random.default_rng(0).normal(0.0, 0.02, scans.shape)
    estimates = np.roll(scans, 1, axis=-1) + noise
    return scans, estimates, mask


def reference_cw_ssim_2d(pyramid, x, y, mask, scales, orientations=4, window=7, k=0.01):
    """plenoptic's pyramid on one (x, y) pair and Sampat's formula written out per band."""
    import torch
    from scipy.signal import correlate2d

    coefficients = pyramid(torch.as_tensor(np.stack([x, y])[:, None], dtype=torch.float64))
    ones = np.ones((window, window))
    weights = mask.astype(float)
    edge = window // 2
    values = []
    for scale in range(scales):
        if scale > 0:
            padded = np.pad(weights, 1, mode="edge")
            rows = 0.25 * padded[:-2] + 0.5 * padded[1:-1] + 0.25 * padded[2:]
            weights = (0.25 * rows[:, :-2] + 0.5 * rows[:, 1:-1] + 0.25 * rows[:, 2:])[::2, ::2]
        for orientation in range(orientations):
            cx = coefficients[scale][0, 0, orientation].numpy()
            cy = coefficients[scale][1, 0, orientation].numpy()
            cross = correlate2d(cx * np.conj(cy), ones, mode="valid")
            power = correlate2d(np.abs(cx) ** 2 + np.abs(cy) ** 2, ones, mode="valid")
            local = (2 * np.abs(cross) + k) / (power + k)
            w = weights[edge : edge + local.shape[0], edge : edge + local.shape[1]]
            if w.sum() > 0:
                values.append((local * w).sum() / w.sum())
    return float(np.mean(values))


def reference_loop(scans, estimates, mask, count: int) -> np.ndarray:
    """CW-SSIM of the first `count` scans, one image (one slice) at a time."""
    import plenoptic

    from brainvae.evaluation.image_quality import default_cw_ssim_scales

    plane = scans.shape[-2:]
    scales = default_cw_ssim_scales(plane)
    pyramid = plenoptic.process.SteerablePyramidFreq(plane, height=scales, order=3, is_complex=True)
    scores = np.empty(count)
    for i in range(count):
        if scans.ndim == 3:
            scores[i] = reference_cw_ssim_2d(pyramid, scans[i], estimates[i], mask, scales)
            continue
        slices = [
            reference_cw_ssim_2d(pyramid, scans[i, s], estimates[i, s], mask[s], scales)
            for s in range(scans.shape[1])
            if mask[s].any()
        ]
        scores[i] = np.mean(slices)
    return scores


def pyrtools_loop(scans, estimates, mask, count: int) -> np.ndarray:
    """CW-SSIM of the first `count` scans with one pyrtools pyramid per image (per slice)."""
    import warnings

    from pyrtools.pyramids import SteerablePyramidFreq

    from brainvae.evaluation.image_quality import _box_sums, default_cw_ssim_scales

    plane = scans.shape[-2:]
    scales = default_cw_ssim_scales(plane)

    def one(x, y, m) -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            px = SteerablePyramidFreq(x, scales, order=3, is_complex=True).pyr_coeffs
            py = SteerablePyramidFreq(y, scales, order=3, is_complex=True).pyr_coeffs
        weights = m.astype(float)
        values = []
        for scale in range(scales):
            if scale > 0:
                padded = np.pad(weights, 1, mode="edge")
                rows = 0.25 * padded[:-2] + 0.5 * padded[1:-1] + 0.25 * padded[2:]
                weights = (0.25 * rows[:, :-2] + 0.5 * rows[:, 1:-1] + 0.25 * rows[:, 2:])[::2, ::2]
            for orientation in range(4):
                cx, cy = px[(scale, orientation)][None], py[(scale, orientation)][None]
                cross = _box_sums(cx * np.conj(cy), 7)[0]
                power = _box_sums(np.abs(cx) ** 2 + np.abs(cy) ** 2, 7)[0]
                local = (2 * np.abs(cross) + 0.01) / (power + 0.01)
                w = weights[3 : 3 + local.shape[0], 3 : 3 + local.shape[1]]
                if w.sum() > 0:
                    values.append((local * w).sum() / w.sum())
        return float(np.mean(values))

    scores = np.empty(count)
    for i in range(count):
        if scans.ndim == 3:
            scores[i] = one(scans[i], estimates[i], mask)
        else:
            brain = [s for s in range(scans.shape[1]) if mask[s].any()]
            scores[i] = np.mean([one(scans[i, s], estimates[i, s], mask[s]) for s in brain])
    return scores


def reference_pca_frechet(real, generated, mask, k: int) -> float:
    """numpy SVD of the centred real rows, projections, np.cov, the formula by eigenvalues."""
    x = real.reshape(len(real), -1)[:, mask.ravel()]
    g = generated.reshape(len(generated), -1)[:, mask.ravel()]
    centre = x.mean(axis=0)
    _, _, vt = np.linalg.svd(x - centre, full_matrices=False)
    p, q = (x - centre) @ vt[:k].T, (g - centre) @ vt[:k].T
    s1, s2 = np.cov(p, rowvar=False), np.cov(q, rowvar=False)
    root_trace = np.sqrt(np.clip(np.linalg.eigvals(s1 @ s2).real, 0, None)).sum()
    diff = p.mean(0) - q.mean(0)
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * root_trace)


def timed(function, *args, **kwargs) -> tuple[Any, float]:
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def bench(dims: int, n: int, loop_n: int) -> dict[str, Any]:
    from brainvae.evaluation.frechet import pca_frechet_distance
    from brainvae.evaluation.image_quality import cw_ssim

    scans, estimates, mask = population(dims, n)
    cw_ssim(scans[:2], estimates[:2], mask)  # first call builds and caches pyramid masks
    ours, ours_s = timed(cw_ssim, scans, estimates, mask)
    loop_n = min(loop_n, n)
    loop, loop_s = timed(reference_loop, scans, estimates, mask, loop_n)
    loop_full_s = loop_s * n / loop_n
    per_image, per_image_s = timed(pyrtools_loop, scans, estimates, mask, loop_n)
    per_image_full_s = per_image_s * n / loop_n
    fd, fd_s = timed(pca_frechet_distance, scans, estimates, None, mask)
    fd_ref, fd_ref_s = timed(reference_pca_frechet, scans, estimates, mask, fd.n_components)
    return {
        "dims": dims,
        "scans": n,
        "shape": list(scans.shape[1:]),
        "cw_ssim_ours_s": round(ours_s, 2),
        "cw_ssim_loop_s": round(loop_full_s, 2),
        "cw_ssim_loop_scaled_from": loop_n if loop_n < n else None,
        "cw_ssim_speedup": round(loop_full_s / ours_s, 1),
        "cw_ssim_mean": round(float(ours.mean()), 4),
        "cw_ssim_max_abs_difference": float(np.abs(ours[:loop_n] - loop).max()),
        "cw_ssim_pyrtools_per_image_s": round(per_image_full_s, 2),
        "cw_ssim_batching_speedup": round(per_image_full_s / ours_s, 1),
        "cw_ssim_pyrtools_per_image_max_abs_difference": float(
            np.abs(ours[:loop_n] - per_image).max()
        ),
        "pca_fd_ours_s": round(fd_s, 2),
        "pca_fd_reference_s": round(fd_ref_s, 2),
        "pca_fd_speedup": round(fd_ref_s / fd_s, 1),
        "pca_fd": round(fd.distance, 4),
        "pca_fd_relative_difference": abs(fd.distance - fd_ref) / abs(fd_ref),
        "pca_fd_components": fd.n_components,
        "pca_fd_explained_variance": round(fd.explained_variance, 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 2D and 40 3D scans")
    parser.add_argument("--dims", type=int, choices=(2, 3), action="append", help="2, 3 or both")
    parser.add_argument(
        "--loop-n", type=int, default=None, help="run the reference loop on this many scans only"
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT / "src"))
    for dims in args.dims or (2, 3):
        n = (QUICK_SIZES if args.quick else SIZES)[dims]
        loop_n = args.loop_n or (QUICK_LOOP[dims] if args.quick else n)
        result = bench(dims, n, loop_n)
        scaled = result["cw_ssim_loop_scaled_from"]
        note = f" (scaled from {scaled})" if scaled else ""
        print(
            f"{dims}D, {n} scans {tuple(result['shape'])}: CW-SSIM ours "
            f"{result['cw_ssim_ours_s']} s, reference loop {result['cw_ssim_loop_s']} s{note}, "
            f"{result['cw_ssim_speedup']}x; largest difference "
            f"{result['cw_ssim_max_abs_difference']:.2g}"
        )
        print(
            f"{dims}D, {n} scans: CW-SSIM with one pyrtools pyramid per image "
            f"{result['cw_ssim_pyrtools_per_image_s']} s{note}: batching gains "
            f"{result['cw_ssim_batching_speedup']}x; largest difference "
            f"{result['cw_ssim_pyrtools_per_image_max_abs_difference']:.2g}"
        )
        print(
            f"{dims}D, {n} scans: PCA-FD ours {result['pca_fd_ours_s']} s, reference "
            f"{result['pca_fd_reference_s']} s, {result['pca_fd_speedup']}x; FD "
            f"{result['pca_fd']} (relative difference "
            f"{result['pca_fd_relative_difference']:.2g}), {result['pca_fd_components']} components "
            f"keep "
            f"{100 * result['pca_fd_explained_variance']:.1f} % of the variance"
        )
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
