"""The analyses' error classes, in one module that every analysis module may import.

Each is a BrainVAEError (the command line prints it without a traceback) and a ValueError
(the inputs were wrong, not the machine).
"""

from __future__ import annotations

from brainvae.errors import BrainVAEError


class ReceptiveFieldError(BrainVAEError, ValueError):
    """Inputs a receptive field cannot be computed from: ROIs, weights, images, options."""


class ProjectiveFieldError(BrainVAEError, ValueError):
    """A sweep that cannot run as asked: names the setting and what is wrong."""
