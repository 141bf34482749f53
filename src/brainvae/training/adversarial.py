"""The two-optimiser step of introspective families: encoder step, then decoder step.

A model is introspective when it has encoder_loss/decoder_loss (SoftIntroVAE). It gets an
OptimizerPair, which looks like one optimiser to the trainer and the checkpoint code
(state_dict, load_state_dict, param_groups), so both Adam states are saved and restored.
"""

from __future__ import annotations

import contextlib
import math
from typing import TYPE_CHECKING, Any

import torch

from brainvae.errors import ModelError

if TYPE_CHECKING:
    from brainvae.models.base import LatentModel

PARTS = ("encoder", "decoder")


def is_introspective(model: torch.nn.Module) -> bool:
    """Whether the model trains with separate encoder and decoder objectives."""
    return callable(getattr(model, "encoder_loss", None)) and callable(
        getattr(model, "decoder_loss", None)
    )


class OptimizerPair:
    """An Adam for the encoder and one for the decoder, stored and restored as one."""

    def __init__(self, model: Any, lr: float):
        self.encoder = adam(model.encoder_parameters(), lr)
        self.decoder = adam(model.decoder_parameters(), lr)

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        """Both optimisers' groups (the trainer sets lr on resume through these)."""
        return self.encoder.param_groups + self.decoder.param_groups

    def state_dict(self) -> dict[str, Any]:
        """{"encoder": ..., "decoder": ...}: plain optimiser state dicts."""
        return {"encoder": self.encoder.state_dict(), "decoder": self.decoder.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore both; a single optimiser's state (another family's) raises KeyError."""
        missing = [part for part in PARTS if part not in state]
        if missing:
            raise KeyError(f"no {' or '.join(missing)} optimiser state in this checkpoint")
        self.encoder.load_state_dict(state["encoder"])
        self.decoder.load_state_dict(state["decoder"])


def make_optimizer(model: LatentModel, lr: float) -> torch.optim.Optimizer | OptimizerPair:
    """Adam over all parameters, or an OptimizerPair for an introspective model."""
    if is_introspective(model):
        return OptimizerPair(model, lr)
    return adam(model.parameters(), lr)


def adam(parameters: Any, lr: float) -> torch.optim.Adam:
    """Adam, fused into one kernel per step when every parameter sits on a CPU or CUDA device.

    Measured on a 2-core CPU: the fused step trained the 2D small net about 1.25x faster than
    torch's default per-tensor Adam (whose step took ~14 % of the time); same update rule.
    """
    parameters = list(parameters)
    fused = bool(parameters) and all(
        p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in parameters
    )
    return torch.optim.Adam(parameters, lr=lr, fused=fused)


def introspective_step(
    model: Any,
    optimizers: OptimizerPair,
    x: torch.Tensor,
    autocast: contextlib.AbstractContextManager | None = None,
    max_grad_norm: float | None = None,
    replicas: Any = None,
) -> tuple[float, float, float]:
    """Encoder step then decoder step; gives the real batch's (ELBO, reconstruction, KL).

    replicas (distributed.Replicas, under torchrun) averages each part's gradients and its
    loss over the ranks, so every rank takes the same step and stops alike on NaN.
    """
    encoder_part = _one_step(
        lambda: model.encoder_loss(x),
        optimizers.encoder,
        autocast,
        max_grad_norm,
        "encoder",
        replicas,
    )
    _one_step(
        lambda: model.decoder_loss(x, z=encoder_part.z),
        optimizers.decoder,
        autocast,
        max_grad_norm,
        "decoder",
        replicas,
    )
    config = model.config
    reconstruction = float(encoder_part.reconstruction.detach())
    kl = float(encoder_part.kl.detach())
    return config.beta_rec * reconstruction + config.beta_kl * kl, reconstruction, kl


def _one_step(compute, optimizer, autocast, max_grad_norm, part: str, replicas: Any = None):
    """zero_grad, loss, backward, optional clipping, step; a non-finite loss raises."""
    optimizer.zero_grad(set_to_none=True)
    with autocast if autocast is not None else contextlib.nullcontext():
        loss = compute()
    value = float(loss.total.detach())
    if replicas is not None:
        value = replicas.mean(value)
    if not math.isfinite(value):
        raise ModelError(f"the {part} loss became {value}")
    loss.total.backward()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    if replicas is not None:
        replicas.average(params)
    if max_grad_norm is not None:
        torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
    optimizer.step()
    return loss
