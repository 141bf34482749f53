"""The description of a convolutional encoder/decoder pair, independent of 2D or 3D."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from brainvae.errors import ModelError

ACTIVATIONS = ("relu", "leaky_relu")
DOWNSAMPLE_MODES = ("stride", "pool")
UPSAMPLE_MODES = ("transpose", "nearest")


@dataclass(frozen=True)
class ConvNetSpec:
    """Layer widths and strides of a conv encoder and its (by default mirrored) decoder.

    conv_widths / strides: output channels and stride (1 or 2) of each encoder conv layer.
    downsample: "stride" (strided conv) or "pool" (conv, then max-pool by the stride).
    dense_widths: hidden fully connected layers between the flattened bottleneck and the
        latent heads (the decoder uses them reversed).
    decoder_widths / decoder_strides: None mirrors the encoder; otherwise the decoder's
        hidden conv widths (one fewer than its strides: the last layer gives the image
        channels) and up-sampling factors, whose product must equal the encoder's.
    upsample: "transpose" (transposed conv) or "nearest" (nearest up-sampling, then conv).
    """

    conv_widths: tuple[int, ...]
    strides: tuple[int, ...]
    kernel_size: int = 3
    downsample: str = "stride"
    dense_widths: tuple[int, ...] = ()
    activation: str = "relu"
    batch_norm: bool = False
    dropout: float = 0.0
    decoder_widths: tuple[int, ...] | None = None
    decoder_strides: tuple[int, ...] | None = None
    upsample: str = "transpose"

    def __post_init__(self) -> None:
        for name in ("conv_widths", "strides", "dense_widths", "decoder_widths", "decoder_strides"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(int(v) for v in value))
        self._validate()

    def _validate(self) -> None:
        if not self.conv_widths:
            raise ModelError("conv_widths must list at least one conv layer")
        if len(self.strides) != len(self.conv_widths):
            raise ModelError(
                f"strides has {len(self.strides)} entries but conv_widths has "
                f"{len(self.conv_widths)}: give one stride per conv layer"
            )
        _check_positive("conv_widths", self.conv_widths)
        _check_positive("dense_widths", self.dense_widths)
        _check_strides("strides", self.strides)
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ModelError(f"kernel_size must be odd and positive, got {self.kernel_size}")
        _check_choice("downsample", self.downsample, DOWNSAMPLE_MODES)
        _check_choice("upsample", self.upsample, UPSAMPLE_MODES)
        _check_choice("activation", self.activation, ACTIVATIONS)
        if not 0.0 <= self.dropout < 1.0:
            raise ModelError(f"dropout must be in [0, 1), got {self.dropout}")
        if (self.decoder_widths is None) != (self.decoder_strides is None):
            raise ModelError("give both decoder_widths and decoder_strides, or neither (mirror)")
        if self.decoder_strides is not None:
            _check_positive("decoder_widths", self.decoder_widths)
            _check_strides("decoder_strides", self.decoder_strides)
            if len(self.decoder_strides) != len(self.decoder_widths) + 1:
                raise ModelError(
                    "decoder_strides needs one entry more than decoder_widths (the last "
                    f"layer outputs the image), got {len(self.decoder_strides)} and "
                    f"{len(self.decoder_widths)}"
                )
            if math.prod(self.decoder_strides) != self.downsample_factor:
                raise ModelError(
                    f"the decoder up-samples by {math.prod(self.decoder_strides)} but the "
                    f"encoder down-samples by {self.downsample_factor}: they must match"
                )

    @property
    def downsample_factor(self) -> int:
        """How much each spatial axis shrinks from input to bottleneck (sizes are padded to it)."""
        return math.prod(self.strides)

    def decoder_layers(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(hidden widths, strides) of the decoder convs: explicit, or the encoder mirrored."""
        if self.decoder_strides is not None:
            return self.decoder_widths, self.decoder_strides
        return tuple(reversed(self.conv_widths[:-1])), tuple(reversed(self.strides))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConvNetSpec:
        """Rebuild from to_dict output; unknown keys are refused so typos do not pass silently."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ModelError(f"unknown network setting(s): {', '.join(unknown)}")
        return cls(**data)


def _check_positive(name: str, values: tuple[int, ...]) -> None:
    if any(v < 1 for v in values):
        raise ModelError(f"{name} must all be >= 1, got {list(values)}")


def _check_strides(name: str, values: tuple[int, ...]) -> None:
    if any(v not in (1, 2) for v in values):
        raise ModelError(f"{name} must each be 1 or 2, got {list(values)}")


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ModelError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
