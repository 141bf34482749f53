"""napari-brainvae: learn and interrogate latent spaces of brain-image populations.

The package root stays import-light (no torch, no napari) so that napari's
plugin discovery and the CLI start fast.
"""

__version__ = "0.1.0"
