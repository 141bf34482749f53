"""Which dataset rows each batch of an epoch holds.

Plain batches (every family but one): a random permutation of the training rows cut into
batch_size pieces (under torchrun, this rank's DistributedSampler share). Subject batches
(a model with `batches_by_subject`, the longitudinal VAE): the subjects are permuted, each
subject's training visits stay together in time order, and whole subjects are packed into
batches of at most batch_size scans (a subject with more visits than that is a batch of its
own), so every batch carries its subjects' visit pairs. Under torchrun every rank draws the
same subject order from seed + epoch and takes every world_size-th batch (the list wrapped
round so that all ranks get as many). drop_last does not apply to subject
batches: a short last batch still holds whole subjects.

The epoch's order (positions among the training rows) is what a checkpoint saves; the batches
follow from it, so a resumed epoch gets the same batches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from brainvae.errors import ModelError
from brainvae.training import distributed
from brainvae.training.distributed import Ranks


@dataclass
class EpochPlanner:
    """Draws each epoch's order and cuts it into batches of dataset rows."""

    train_rows: np.ndarray
    batch_size: int
    drop_last: bool
    seed: int
    ranks: Ranks = field(default_factory=Ranks)
    subjects: np.ndarray | None = None
    """Per dataset row, a subject code (subject batches), or None (plain batches)."""
    times: np.ndarray | None = None
    """Per dataset row, the visit time that orders a subject's visits (subject batches)."""

    def __post_init__(self) -> None:
        self.visits: list[np.ndarray] = []
        if self.subjects is None:
            return
        codes = self.subjects[self.train_rows]
        times = self.times[self.train_rows] if self.times is not None else np.zeros(len(codes))
        by_subject = np.lexsort((times, codes))
        starts = np.flatnonzero(np.r_[True, codes[by_subject][1:] != codes[by_subject][:-1]])
        self.visits = np.split(by_subject, starts[1:])

    @property
    def by_subject(self) -> bool:
        return self.subjects is not None

    def draw(self, generator: torch.Generator, epoch: int) -> torch.Tensor:
        """The epoch's order: positions among the training rows (this rank's, under torchrun)."""
        if self.by_subject:
            if self.ranks.active:  # every rank draws the same subject order, from seed + epoch
                generator = torch.Generator().manual_seed(self.seed + epoch)
            perm = torch.randperm(len(self.visits), generator=generator).numpy()
            return torch.from_numpy(np.concatenate([self.visits[s] for s in perm]))
        if self.ranks.active:  # DistributedSampler's share: a function of seed and epoch
            return distributed.epoch_order(
                len(self.train_rows), epoch, self.seed, self.ranks, self.drop_last
            )
        return torch.randperm(len(self.train_rows), generator=generator)

    def batches(self, order: torch.Tensor) -> list[np.ndarray]:
        """The dataset rows of each batch of the epoch whose order this is."""
        positions = order.numpy()
        if self.by_subject:
            return self._subject_batches(positions)
        size = self.batch_size
        n = len(positions)
        count = n // size if self.drop_last else math.ceil(n / size)
        if count == 0:
            raise ModelError(
                f"drop_last with batch_size {size} leaves no batch of the {n} training "
                "images: lower batch_size or set drop_last=False"
            )
        return [self.train_rows[positions[b * size : (b + 1) * size]] for b in range(count)]

    def batch_seed(self, epoch: int, batch: int) -> int | None:
        """Under torchrun with subject batches, the seed of torch's random numbers for one
        batch on this rank (None otherwise). Ranks' batches differ in size, so each rank draws
        a different count of numbers and its stream cannot be the one rank 0 saves in the
        checkpoint; seeding each batch from (seed, epoch, batch, rank) makes resume exact."""
        if not (self.by_subject and self.ranks.active):
            return None
        entropy = [self.seed, epoch, batch, self.ranks.rank]
        return int(np.random.SeedSequence(entropy).generate_state(1)[0])

    def _subject_batches(self, positions: np.ndarray) -> list[np.ndarray]:
        codes = self.subjects[self.train_rows[positions]]
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        ends = np.r_[starts[1:], len(positions)]
        cut, filled = [0], 0
        for start, end in zip(starts, ends, strict=True):  # per subject, not per image
            if filled and filled + (end - start) > self.batch_size:
                cut.append(start)
                filled = 0
            filled += end - start
        cut.append(len(positions))
        plan = [self.train_rows[positions[a:b]] for a, b in zip(cut[:-1], cut[1:], strict=True)]
        if not self.ranks.active:
            return plan
        world, rank = self.ranks.world_size, self.ranks.rank
        share = math.ceil(len(plan) / world)  # every rank the same count: pad by wrapping
        padded = [plan[i % len(plan)] for i in range(share * world)]
        return padded[rank::world]
