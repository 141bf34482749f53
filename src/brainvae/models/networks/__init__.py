"""Convolutional encoders/decoders for 2D slices and 3D volumes, and their named presets."""

from brainvae.models.networks.conv import ConvDecoder, ConvEncoder, ConvGeometry
from brainvae.models.networks.presets import NETWORK_PRESETS, Preset, get_preset
from brainvae.models.networks.spec import ConvNetSpec

__all__ = [
    "NETWORK_PRESETS",
    "ConvDecoder",
    "ConvEncoder",
    "ConvGeometry",
    "ConvNetSpec",
    "Preset",
    "get_preset",
]
