"""What a resume does, as a function the property tests and a subprocess check share."""

from __future__ import annotations

import contextlib
import json
import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from brainvae.models import load_model
from brainvae.run_folder import RunFolder
from brainvae.training.adversarial import make_optimizer
from brainvae.training.checkpoint import (
    RNG_FILE,
    apply_checkpoint,
    latest_checkpoint,
    read_checkpoint,
)
from brainvae.training.checkpoint_checks import check_epoch_order_fits
from brainvae.training.random_state import restore_random_state


@contextlib.contextmanager
def global_random_state_kept() -> Iterator[None]:
    """Restoring a checkpoint sets torch's, numpy's and Python's global random states: put
    them back after each example so other tests draw as they would have."""
    saved = torch.get_rng_state(), np.random.get_state(), random.getstate()
    try:
        yield
    finally:
        torch.set_rng_state(saved[0])
        np.random.set_state(saved[1])
        random.setstate(saved[2])


def resume_and_step(run: Path) -> None:
    """What a resume does, then one fused Adam step: the model loaded, the checkpoint read and
    applied, the data order checked against the dataset, every random stream restored and
    drawn from. Raises DataFileError (or fails an assertion when something loads unusable)."""
    n_train = json.loads(RunFolder(run).run_record.read_text())["dataset"]["n_train"]  # left intact
    model = load_model(run).train()
    optimizer = make_optimizer(model, 1e-3)
    loaded = read_checkpoint(latest_checkpoint(run))
    apply_checkpoint(loaded, model, optimizer)
    check_epoch_order_fits(loaded.state.epoch_order, n_train, loaded.folder / RNG_FILE)
    data_generator = torch.Generator()
    with global_random_state_kept():
        restore_random_state(loaded.randomness, data_generator)
        torch.randperm(n_train, generator=data_generator)
        torch.rand(3), np.random.rand(3), random.random()
        image = torch.rand(2, model.config.channels, *model.config.input_shape)
    model.loss(image).total.backward()
    optimizer.step()
    assert all(torch.isfinite(p).all() for p in model.parameters())
