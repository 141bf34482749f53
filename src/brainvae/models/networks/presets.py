"""Named architectures: the published nets (mouse 2D, FLAIR 3D, CT 2D) and a tiny test net."""

from __future__ import annotations

import math
from dataclasses import dataclass

from brainvae.errors import ModelError
from brainvae.models.networks.spec import ConvNetSpec


@dataclass(frozen=True)
class Preset:
    """An architecture with the input shape and latent size it was published for."""

    name: str
    spec: ConvNetSpec
    dims: int | None  # None: works in 2D and 3D
    published_input_shape: tuple[int, ...] | None
    published_latent_dim: int
    description: str


NETWORK_PRESETS: dict[str, Preset] = {
    "mouse2d": Preset(
        name="mouse2d",
        spec=ConvNetSpec(
            conv_widths=(32, 32, 64, 64, 128, 128, 256),
            strides=(2, 2, 2, 2, 2, 2, 1),
            dense_widths=(512, 256),
            activation="relu",
        ),
        dims=2,
        published_input_shape=(320, 448),
        published_latent_dim=8,
        description="Liu et al. 2021: DC-GAN-like, 7 conv + 3 fully connected, ReLU (5 x 7 x 256)",
    ),
    "flair3d": Preset(
        name="flair3d",
        spec=ConvNetSpec(
            conv_widths=(8, 16, 32, 64),
            strides=(2, 2, 2, 1),
            downsample="pool",
            dense_widths=(256,),
            batch_norm=True,
            dropout=0.3,
            upsample="nearest",
        ),
        dims=3,
        published_input_shape=(40, 48, 40),
        published_latent_dim=32,
        description="Vogelsanger & Federau 2020: conv + batch-norm + pooling to 5 x 6 x 5 x 64, "
        "dense with dropout and batch-norm",
    ),
    "ct2d": Preset(
        name="ct2d",
        spec=ConvNetSpec(
            conv_widths=(16, 16, 32, 32, 64, 64, 128, 128, 256, 256),
            strides=(2, 1, 2, 1, 2, 1, 2, 1, 2, 1),
            batch_norm=True,
            activation="leaky_relu",
            decoder_widths=(256, 128, 64, 32, 16, 16),
            decoder_strides=(1, 2, 2, 2, 2, 2, 1),
        ),
        dims=2,
        published_input_shape=(256, 256),
        published_latent_dim=64,
        description="Ponomareva 2021: 10 conv encoder, 7 conv decoder, batch-norm, LeakyReLU",
    ),
    "small": Preset(
        name="small",
        spec=ConvNetSpec(conv_widths=(8, 16, 32), strides=(2, 2, 2), dense_widths=(64,)),
        dims=None,
        published_input_shape=None,
        published_latent_dim=4,
        description="A tiny net for tests and quick trials, 2D or 3D",
    ),
}


def get_preset(name: str, dims: int | None = None) -> Preset:
    """The preset called name, checked against the data's number of spatial dimensions."""
    if name not in NETWORK_PRESETS:
        raise ModelError(f"unknown architecture {name!r}; known: {', '.join(NETWORK_PRESETS)}")
    preset = NETWORK_PRESETS[name]
    if dims is not None and preset.dims is not None and preset.dims != dims:
        raise ModelError(f"architecture {name!r} is a {preset.dims}D net but the data are {dims}D")
    return preset


MAX_BOTTLENECK_SIDE = 20
"""sized_network adds stride-2 stages until no bottleneck side exceeds this many voxels."""


def sized_network(input_shape: tuple[int, ...]) -> ConvNetSpec:
    """The "small" net sized to the input: three stride-2 stages (widths 8, 16, 32), one more
    (width doubling, at most 128) for each doubling of the largest side past 160 voxels, so the
    dense bottleneck stays small on large inputs (a 1 mm 182 x 218 x 182 volume gets four)."""
    largest = max(int(s) for s in input_shape)
    stages = 3
    while math.ceil(largest / 2**stages) > MAX_BOTTLENECK_SIDE and stages < 7:
        stages += 1
    small = NETWORK_PRESETS["small"].spec
    if stages == len(small.conv_widths):
        return small
    widths = tuple(min(8 * 2**i, 128) for i in range(stages))
    return ConvNetSpec(conv_widths=widths, strides=(2,) * stages, dense_widths=small.dense_widths)
