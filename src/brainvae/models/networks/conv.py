"""Configurable 2D/3D conv encoder and decoder that pad any input size and crop back."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from brainvae.models.networks.spec import ConvNetSpec

LOGVAR_RANGE = (-30.0, 20.0)  # keeps exp(logvar) finite in float32


@dataclass(frozen=True)
class ConvGeometry:
    """How an input of any size is zero-padded to a multiple of the down-sampling factor."""

    input_shape: tuple[int, ...]
    padded_shape: tuple[int, ...]
    pad_before: tuple[int, ...]
    bottleneck_shape: tuple[int, ...]

    @classmethod
    def of(cls, input_shape: tuple[int, ...], factor: int) -> ConvGeometry:
        """Pad every axis up to the next multiple of factor, split evenly on both sides."""
        padded = tuple(math.ceil(size / factor) * factor for size in input_shape)
        before = tuple((p - s) // 2 for p, s in zip(padded, input_shape, strict=True))
        bottleneck = tuple(p // factor for p in padded)
        return cls(tuple(input_shape), padded, before, bottleneck)

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        """Zero-pad the spatial axes of (N, C, *spatial) to padded_shape."""
        if self.padded_shape == self.input_shape:
            return x
        widths: list[int] = []
        for size, padded, before in reversed(
            list(zip(self.input_shape, self.padded_shape, self.pad_before, strict=True))
        ):
            widths += [before, padded - size - before]
        return F.pad(x, widths)

    def crop(self, x: torch.Tensor) -> torch.Tensor:
        """Cut (N, C, *padded_shape) back to the input's spatial shape."""
        if self.padded_shape == self.input_shape:
            return x
        index = tuple(
            slice(b, b + s) for b, s in zip(self.pad_before, self.input_shape, strict=True)
        )
        return x[(slice(None), slice(None), *index)]


def _layers_for(dims: int) -> tuple[type, type, type, type]:
    if dims == 2:
        return nn.Conv2d, nn.ConvTranspose2d, nn.BatchNorm2d, nn.MaxPool2d
    return nn.Conv3d, nn.ConvTranspose3d, nn.BatchNorm3d, nn.MaxPool3d


def _activation(name: str) -> nn.Module:
    return nn.LeakyReLU(0.2) if name == "leaky_relu" else nn.ReLU()


def _dense_stack(widths: list[int], spec: ConvNetSpec, plain_last: bool = False) -> nn.Sequential:
    """Linear -> (batch-norm) -> activation -> (dropout) for each consecutive pair of widths.

    plain_last: the last layer gets only the activation (the decoder's projection to the
    bottleneck feature maps, which conv layers follow).
    """
    layers: list[nn.Module] = []
    pairs = list(zip(widths[:-1], widths[1:], strict=True))
    for i, (n_in, n_out) in enumerate(pairs):
        hidden = not (plain_last and i == len(pairs) - 1)
        layers.append(nn.Linear(n_in, n_out))
        if spec.batch_norm and hidden:
            layers.append(nn.BatchNorm1d(n_out))
        layers.append(_activation(spec.activation))
        if spec.dropout > 0 and hidden:
            layers.append(nn.Dropout(spec.dropout))
    return nn.Sequential(*layers)


class ConvEncoder(nn.Module):
    """(N, C, *input_shape) -> (mu, logvar), each (N, latent_dim)."""

    def __init__(
        self, spec: ConvNetSpec, input_shape: tuple[int, ...], channels: int, latent_dim: int
    ):
        super().__init__()
        conv, _, batch_norm, pool = _layers_for(len(input_shape))
        self.geometry = ConvGeometry.of(input_shape, spec.downsample_factor)
        layers: list[nn.Module] = []
        n_in = channels
        for width, stride in zip(spec.conv_widths, spec.strides, strict=True):
            conv_stride = stride if spec.downsample == "stride" else 1
            k = spec.kernel_size
            layers.append(
                conv(n_in, width, k, stride=conv_stride, padding=k // 2, bias=not spec.batch_norm)
            )
            if spec.batch_norm:
                layers.append(batch_norm(width))
            layers.append(_activation(spec.activation))
            if spec.downsample == "pool" and stride > 1:
                layers.append(pool(stride))
            n_in = width
        self.features = nn.Sequential(*layers)
        flat = n_in * math.prod(self.geometry.bottleneck_shape)
        self.dense = _dense_stack([flat, *spec.dense_widths], spec)
        self.head = nn.Linear(spec.dense_widths[-1] if spec.dense_widths else flat, 2 * latent_dim)

    def bottleneck(self, x: torch.Tensor) -> torch.Tensor:
        """Feature maps at the bottleneck, (N, last width, *bottleneck_shape)."""
        return self.features(self.geometry.pad(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.dense(self.bottleneck(x).flatten(1))
        mu, logvar = self.head(hidden).chunk(2, dim=1)
        return mu, logvar.clamp(*LOGVAR_RANGE)


class ConvDecoder(nn.Module):
    """(N, latent_dim) -> (N, C, *input_shape) raw output (logits or Gaussian mean), no squashing."""

    def __init__(
        self, spec: ConvNetSpec, input_shape: tuple[int, ...], channels: int, latent_dim: int
    ):
        super().__init__()
        conv, conv_transpose, batch_norm, _ = _layers_for(len(input_shape))
        self.geometry = ConvGeometry.of(input_shape, spec.downsample_factor)
        self.start_channels = spec.conv_widths[-1]
        flat = self.start_channels * math.prod(self.geometry.bottleneck_shape)
        self.dense = _dense_stack(
            [latent_dim, *reversed(spec.dense_widths), flat], spec, plain_last=True
        )
        hidden_widths, strides = spec.decoder_layers()
        widths = (*hidden_widths, channels)
        layers: list[nn.Module] = []
        n_in = self.start_channels
        k = spec.kernel_size
        for i, (width, stride) in enumerate(zip(widths, strides, strict=True)):
            last = i == len(widths) - 1
            bias = last or not spec.batch_norm
            if stride == 2 and spec.upsample == "transpose":
                layers.append(conv_transpose(n_in, width, 4, stride=2, padding=1, bias=bias))
            else:
                if stride == 2:
                    layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
                layers.append(conv(n_in, width, k, padding=k // 2, bias=bias))
            if not last:
                if spec.batch_norm:
                    layers.append(batch_norm(width))
                layers.append(_activation(spec.activation))
            n_in = width
        self.features = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        hidden = self.dense(z).view(
            z.shape[0], self.start_channels, *self.geometry.bottleneck_shape
        )
        return self.geometry.crop(self.features(hidden))
