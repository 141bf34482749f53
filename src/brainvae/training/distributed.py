"""Many-process training under torchrun: who this process is, and what the ranks agree on.

`torchrun --nproc_per_node N -m brainvae train ...` starts N copies of the command with RANK,
WORLD_SIZE and LOCAL_RANK in the environment. Each copy trains a DistributedDataParallel
replica on its own share of every epoch (torch's DistributedSampler: one permutation per
epoch from seed + epoch, dealt round-robin), gradients are averaged across ranks, and only
rank 0 writes files. One process (no torchrun) is world size 1 and none of this applies.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DistributedSampler

from brainvae.errors import ModelError


@dataclass(frozen=True)
class Ranks:
    """This process's place among the training processes (rank 0 writes the files)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def active(self) -> bool:
        """Whether more than one process trains together."""
        return self.world_size > 1

    @property
    def writes(self) -> bool:
        """Whether this process writes run files, prints summaries and shows progress."""
        return self.rank == 0


def ranks_from_environment() -> Ranks:
    """RANK, WORLD_SIZE and LOCAL_RANK as torchrun sets them; a lone process is rank 0 of 1."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", str(rank)))
    except ValueError as error:
        raise ModelError(f"RANK/WORLD_SIZE/LOCAL_RANK are not integers: {error}") from error
    if world < 1 or not 0 <= rank < world:
        raise ModelError(f"inconsistent torchrun environment: RANK {rank}, WORLD_SIZE {world}")
    return Ranks(rank, world, local)


def join(ranks: Ranks, device: torch.device) -> None:
    """Join the process group (NCCL between GPUs, gloo on CPU) unless already joined."""
    if not ranks.active or dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend=backend, rank=ranks.rank, world_size=ranks.world_size)


def leave() -> None:
    """Leave the process group if this process joined one (call once, at exit)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def rank_device_name(name: str, ranks: Ranks) -> str:
    """Under torchrun, "auto" and a bare "cuda" mean this rank's own GPU (cuda:LOCAL_RANK)."""
    if ranks.active and name in ("auto", "cuda") and torch.cuda.is_available():
        return f"cuda:{ranks.local_rank}"
    return name


def epoch_order(n_train: int, epoch: int, seed: int, ranks: Ranks, drop_last: bool) -> torch.Tensor:
    """This rank's positions in the training rows for one epoch (DistributedSampler's deal).

    The permutation depends only on seed and epoch, so a resumed run deals the same shares.
    Without drop_last the last few positions repeat so every rank gets as many images.
    """
    sampler = DistributedSampler(
        range(n_train),
        num_replicas=ranks.world_size,
        rank=ranks.rank,
        shuffle=True,
        seed=seed,
        drop_last=drop_last,
    )
    sampler.set_epoch(epoch)
    return torch.tensor(list(sampler), dtype=torch.long)


def share_size(n_train: int, ranks: Ranks, drop_last: bool) -> int:
    """How many training images each rank sees per epoch."""
    if drop_last:
        return n_train // ranks.world_size
    return math.ceil(n_train / ranks.world_size)


class LossForward(nn.Module):
    """The model's training loss as forward(), so DistributedDataParallel can wrap it."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(
        self, x: torch.Tensor, step: int, condition: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if condition is None:  # every family but the conditioned ones
            loss = self.model.loss(x, step=step)
        else:
            loss = self.model.loss(x, step=step, condition=condition)
        return loss.total, loss.reconstruction, loss.kl


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """DistributedDataParallel over the model's loss (gradients averaged across ranks)."""
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(LossForward(model), device_ids=device_ids)


@dataclass(frozen=True)
class Replicas:
    """Hand-made gradient averaging for steps DDP cannot hook (two optimisers, one backward
    each): the same all-reduce DDP does, called once per optimiser step."""

    world_size: int
    device: torch.device

    def average(self, parameters: Iterable[nn.Parameter]) -> None:
        """Replace each gradient by its mean over the ranks (one flat all-reduce)."""
        grads = [p.grad for p in parameters if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat)
        flat /= self.world_size
        offset = 0
        for grad in grads:
            count = grad.numel()
            grad.copy_(flat[offset : offset + count].view_as(grad))
            offset += count

    def mean(self, value: float) -> float:
        """The value's mean over the ranks."""
        return mean_over_ranks([value], self.device)[0]


def mean_over_ranks(values: Sequence[float], device: torch.device) -> tuple[float, ...]:
    """The mean of each value across ranks (the same answer on every rank)."""
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor)
    return tuple(float(v) for v in tensor / dist.get_world_size())


def any_rank(flag: bool, device: torch.device) -> bool:
    """Whether the flag is set on any rank (so all ranks stop at the same batch)."""
    tensor = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item() > 0)


def from_rank_zero(message: str | None, device: torch.device) -> str | None:
    """Rank 0's text (or None) handed to every rank, e.g. an error so all raise or none does.

    Sent as UTF-8 bytes in a tensor (length first), never as a pickled object.
    """
    data = (message or "").encode("utf-8") if dist.get_rank() == 0 else b""
    length = torch.tensor([len(data) if message is not None else -1], device=device)
    dist.broadcast(length, src=0)
    size = int(length.item())
    if size <= 0:
        return None if size < 0 else ""
    buffer = torch.zeros(size, dtype=torch.uint8, device=device)
    if dist.get_rank() == 0:
        buffer.copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
    dist.broadcast(buffer, src=0)
    return bytes(buffer.cpu().tolist()).decode("utf-8")


def barrier() -> None:
    """Wait until every rank gets here."""
    dist.barrier()
