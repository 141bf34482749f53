"""The complex steerable pyramid of pyrtools, applied to a batch of 2D images at once.

pyrtools builds its pyramid one image at a time (SteerablePyramidFreq takes one 2D image).
Its filters depend only on the image shape, so `pyramid_filters` builds pyrtools' pyramid once
on a blank image of that shape and keeps the Fourier-domain masks it made; `complex_bands`
then applies those masks to a whole stack with batched FFTs, following pyrtools' own steps
(shift, low-pass, band masks times (-1j)^order, crop the spectrum to halve each scale). The
tests check every coefficient against pyrtools' per-image pyramid to 1e-10.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from brainvae.errors import ModelError


@dataclass(frozen=True)
class PyramidFilters:
    """pyrtools' Fourier masks for one image shape, height and order (read-only arrays)."""

    shape: tuple[int, int]
    scales: int
    orientations: int
    lowpass0: np.ndarray
    bands: tuple[tuple[np.ndarray, ...], ...]
    lowpass: tuple[np.ndarray, ...]
    crops: tuple[tuple[slice, slice], ...]
    """lowpass0: the first low-pass (centred spectrum); bands[scale][orientation]: high-pass x
    angle x (-1j)^order, already ifftshift-ed so a band is one product and one inverse FFT;
    lowpass[scale]: the low-pass after the crop that halves the scale."""


def max_scales(shape: tuple[int, int]) -> int:
    """The most scales pyrtools' frequency pyramid builds on this shape: log2(min side) - 2."""
    return int(np.floor(np.log2(min(shape)))) - 2


def _spectrum_crop(dims: np.ndarray) -> tuple[slice, slice]:
    """pyrtools' crop of a centred spectrum that halves the image for the next scale."""
    centre = np.ceil((dims + 0.5) / 2).astype(int)
    low_dims = np.ceil((dims - 0.5) / 2).astype(int)
    low_centre = np.ceil((low_dims + 0.5) / 2).astype(int)
    start = centre - low_centre
    end = start + low_dims
    return slice(int(start[0]), int(end[0])), slice(int(start[1]), int(end[1]))


@lru_cache(maxsize=16)
def pyramid_filters(shape: tuple[int, int], scales: int, orientations: int) -> PyramidFilters:
    """Build pyrtools' complex pyramid once on a blank image and keep its masks."""
    import warnings

    from pyrtools.pyramids import SteerablePyramidFreq

    shape = (int(shape[0]), int(shape[1]))
    if orientations < 2 or orientations > 16:
        raise ModelError(f"CW-SSIM orientations must be 2 to 16, got {orientations}")
    if scales < 1 or scales > max_scales(shape):
        raise ModelError(
            f"a steerable pyramid on {shape[0]} x {shape[1]} images has 1 to "
            f"{max(max_scales(shape), 0)} scales, {scales} were asked for"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "reconstruction not perfect with odd sizes": unused
        pyramid = SteerablePyramidFreq(
            np.zeros(shape), height=scales, order=orientations - 1, is_complex=True
        )
    crops = []
    dims = np.asarray(shape)
    for _ in range(scales):
        crop = _spectrum_crop(dims)
        crops.append(crop)
        dims = np.asarray([crop[0].stop - crop[0].start, crop[1].stop - crop[1].start])

    def frozen(array: np.ndarray, like: tuple[int, int]) -> np.ndarray:
        array = np.array(np.asarray(array).reshape(like))
        array.flags.writeable = False
        return array

    phase = (-1j) ** (orientations - 1)

    sizes = [shape]
    for crop in crops[:-1]:
        sizes.append((crop[0].stop - crop[0].start, crop[1].stop - crop[1].start))
    next_sizes = [(c[0].stop - c[0].start, c[1].stop - c[1].start) for c in crops]
    return PyramidFilters(
        shape=shape,
        scales=scales,
        orientations=orientations,
        lowpass0=frozen(pyramid._lo0mask, shape),
        bands=tuple(
            tuple(
                frozen(np.fft.ifftshift(phase * np.reshape(high, s) * np.reshape(angle, s)), s)
                for angle in angles
            )
            for high, angles, s in zip(pyramid._himasks, pyramid._anglemasks, sizes, strict=True)
        ),
        lowpass=tuple(frozen(m, s) for m, s in zip(pyramid._lomasks, next_sizes, strict=True)),
        crops=tuple(crops),
    )


def complex_bands(
    images: np.ndarray, scales: int, orientations: int = 4
) -> Iterator[tuple[int, int, np.ndarray]]:
    """(scale, orientation, complex coefficients (N, h, w)) for a stack of 2D images (N, H, W),
    fine to coarse, exactly pyrtools' SteerablePyramidFreq(is_complex=True, order=
    orientations - 1) of each image; one scale's spectrum held at a time."""
    from scipy import fft

    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 3:
        raise ModelError(f"complex_bands expects a stack (N, H, W), got shape {images.shape}")
    filters = pyramid_filters(images.shape[1:], scales, orientations)
    spectrum = fft.fftshift(fft.fft2(images, axes=(-2, -1), workers=-1), axes=(-2, -1))
    spectrum *= filters.lowpass0
    for scale in range(scales):
        unshifted = fft.ifftshift(spectrum, axes=(-2, -1))
        for orientation, mask in enumerate(filters.bands[scale]):
            yield scale, orientation, fft.ifft2(unshifted * mask, axes=(-2, -1), workers=-1)
        rows, cols = filters.crops[scale]
        spectrum = spectrum[:, rows, cols] * filters.lowpass[scale]
