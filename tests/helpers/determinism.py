"""torch's deterministic algorithms for a block, for the bit-identical resume tests."""

from __future__ import annotations

import torch


class deterministic:  # noqa: N801 - used as `with deterministic():`
    """torch.use_deterministic_algorithms on, restored afterwards."""

    def __enter__(self):
        self.before = torch.are_deterministic_algorithms_enabled()
        torch.use_deterministic_algorithms(True)

    def __exit__(self, *exc):
        torch.use_deterministic_algorithms(self.before)
