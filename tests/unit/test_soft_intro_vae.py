"""Soft-IntroVAE and margin IntroVAE on tiny data: loss structure, two optimisers, resume, CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from brainvae.cli import main
from brainvae.data.prepare import prepare
from brainvae.data.preprocessing import PreprocessConfig
from brainvae.models import ModelConfig, ModelError, SoftIntroVAE, build_model, load_model
from brainvae.training import TrainConfig, latest_checkpoint, read_checkpoint, train
from brainvae.training.adversarial import OptimizerPair, introspective_step, is_introspective

SHAPE = (24, 20)
LATENT = 4
LOSS_COLUMNS = ["train_loss", "train_reconstruction", "train_kl", "val_loss", "val_kl"]


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: on a shared 2-core machine two threads made each step ~70x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def blobs(n: int, seed: int = 0) -> np.ndarray:
    """n Gaussian blobs of 24 x 20 in [0.05, 0.95]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: SHAPE[0], : SHAPE[1]]
    images = []
    for _ in range(n):
        cy, cx, radius = rng.uniform(6, 18), rng.uniform(5, 15), rng.uniform(3, 7)
        blob = rng.uniform(0.5, 0.95) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * radius**2))
        images.append((0.05 + 0.9 * blob).astype(np.float32))
    return np.stack(images)


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    """12 blob images, one subject each, split 8/4 train/val."""
    root = tmp_path_factory.mktemp("intro")
    for i, image in enumerate(blobs(12)):
        np.save(root / f"s{i:02d}.npy", image)
    prepare(
        root, root / "ds", PreprocessConfig.identity(split_fractions=(0.67, 0.33, 0.0)), workers=1
    )
    return root / "ds"


@pytest.fixture(scope="module")
def dataset(dataset_dir):
    from brainvae.data.dataset import PreparedDataset

    return PreparedDataset.open(dataset_dir)


def make_model(**changes) -> SoftIntroVAE:
    torch.manual_seed(0)
    values = {"input_shape": SHAPE, "latent_dim": LATENT, "family": "soft_intro_vae"}
    return build_model(ModelConfig(**{**values, "architecture": "small", **changes}))


def train_config(**changes) -> TrainConfig:
    values = {"epochs": 4, "batch_size": 4, "lr": 1e-3, "seed": 3, "device": "cpu"}
    return TrainConfig(**{**values, **changes})


def drain(generator):
    """Run a train() generator to the end; its TrainResult."""
    try:
        while True:
            next(generator)
    except StopIteration as stop:
        return stop.value


def snapshot(parameters) -> list[torch.Tensor]:
    return [p.detach().clone() for p in parameters]


def same(before, parameters) -> bool:
    return all(torch.equal(a, p.detach()) for a, p in zip(before, parameters, strict=True))


def test_config_fields_validate_and_stay_out_of_other_families_json():
    config = ModelConfig(input_shape=SHAPE, family="soft_intro_vae", beta_neg=512.0)
    data = json.loads(config.to_json())
    assert data["beta_neg"] == 512.0 and data["intro_variant"] == "soft"
    assert ModelConfig.from_json(config.to_json()) == config
    assert "beta_neg" not in ModelConfig(input_shape=SHAPE).to_dict()
    with pytest.raises(ModelError, match="intro_variant"):
        ModelConfig(input_shape=SHAPE, family="soft_intro_vae", intro_variant="hard")
    with pytest.raises(ModelError, match="beta_neg"):
        ModelConfig(input_shape=SHAPE, family="soft_intro_vae", beta_neg=0)


@pytest.mark.parametrize("variant", ["soft", "margin"])
def test_losses_are_finite_and_each_step_moves_only_its_own_half(variant):
    model = make_model(intro_variant=variant)
    assert is_introspective(model)
    x = torch.from_numpy(blobs(4))
    encoder_part = model.encoder_loss(x)
    decoder_part = model.decoder_loss(x, z=encoder_part.z)
    for part in (encoder_part, decoder_part):
        assert torch.isfinite(part.total) and torch.isfinite(part.negative)
    assert encoder_part.negative.item() > 0
    optimizers = OptimizerPair(model, lr=1e-2)
    encoder, decoder = model.encoder_parameters(), model.decoder_parameters()
    enc_before, dec_before = snapshot(encoder), snapshot(decoder)
    optimizers.encoder.zero_grad()
    model.encoder_loss(x).total.backward()
    optimizers.encoder.step()
    assert same(dec_before, decoder) and not same(enc_before, encoder)
    enc_before = snapshot(encoder)
    model.zero_grad(set_to_none=True)
    model.decoder_loss(x).total.backward()
    assert all(p.grad is None for p in encoder)  # frozen: no gradient reaches the encoder
    assert all(p.requires_grad for p in encoder)  # and unfrozen afterwards
    optimizers.decoder.step()
    assert same(enc_before, encoder) and not same(dec_before, decoder)


def test_soft_negative_term_is_the_published_expression_and_vanishes_for_large_beta_neg():
    x = torch.from_numpy(blobs(4))
    model = make_model()
    torch.manual_seed(1)
    negative = model.encoder_loss(x).negative.item()
    assert 0 < negative <= 0.5  # 1/4 * (E[exp(.)] + E[exp(.)]), each exp term <= 1
    big = make_model(beta_neg=1e6)
    torch.manual_seed(1)
    part = big.encoder_loss(x)
    assert part.negative.item() < 1e-6
    s = 1.0 / (SHAPE[0] * SHAPE[1])
    expected = s * (part.reconstruction + part.kl)  # beta_rec = beta_kl = 1
    torch.testing.assert_close(part.total, expected, rtol=1e-5, atol=1e-6)


def test_margin_negative_term_is_a_hinge_at_the_margin():
    x = torch.from_numpy(blobs(4))
    part = make_model(intro_variant="margin", margin=0.0).encoder_loss(x)
    assert part.negative.item() == 0.0
    wide = make_model(intro_variant="margin", margin=1e4, w_neg=0.5).encoder_loss(x)
    assert 0.5 * 0.5 * 2 * 1e4 - 100 < wide.negative.item() <= 0.5 * 1e4


def test_margin_hinge_is_weighted_by_beta_kl_as_in_the_reference():
    """Issue 12.6.4: Huang et al.'s code multiplies the hinge by weight_kl (with the real KL);
    with the same weights and random draws, beta_kl = 2 must double the hinge part."""
    x = torch.from_numpy(blobs(4))
    parts = {}
    for beta_kl in (1.0, 2.0):
        model = make_model(intro_variant="margin", margin=1e4, w_neg=0.5, beta_kl=beta_kl)
        torch.manual_seed(5)  # the same z and prior draws for both
        parts[beta_kl] = model.encoder_loss(x)
    one, two = parts[1.0], parts[2.0]
    torch.testing.assert_close(two.reconstruction, one.reconstruction)
    torch.testing.assert_close(two.kl, one.kl)
    hinge = {b: p.total - (p.reconstruction + b * p.kl) for b, p in parts.items()}  # beta_rec 1
    assert float(hinge[1.0].detach()) > 1000  # the hinge is active at this margin
    torch.testing.assert_close(hinge[2.0], 2 * hinge[1.0], rtol=1e-5, atol=1e-3)
    torch.testing.assert_close(two.negative, 2 * one.negative)


@pytest.mark.parametrize("variant", ["soft", "margin"])
def test_a_few_steps_lower_the_reconstruction_error(variant):
    model = make_model(intro_variant=variant)
    x = torch.from_numpy(blobs(8))
    optimizers = OptimizerPair(model, lr=2e-3)
    first = introspective_step(model, optimizers, x)[1]
    for _ in range(25):
        last = introspective_step(model, optimizers, x)[1]
    assert last < first


def test_save_load_gives_identical_outputs(tmp_path):
    model = make_model(intro_variant="margin", beta_neg=128.0).eval()
    x = blobs(3)
    model.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert isinstance(loaded, SoftIntroVAE) and loaded.config == model.config
    torch.testing.assert_close(loaded.reconstruct(x), model.reconstruct(x), rtol=0, atol=0)
    z = torch.randn(2, LATENT)
    torch.testing.assert_close(loaded.decode(z), model.decode(z), rtol=0, atol=0)
    with pytest.raises(ModelError, match="not 'beta_vae'"):
        from brainvae.models import BetaVAE

        BetaVAE.load(tmp_path / "m")


def test_train_two_epochs_then_resume_equals_four_in_one_go(dataset, tmp_path):
    reference = drain(train(make_model(), dataset, train_config(), tmp_path / "ref"))
    first = drain(train(make_model(), dataset, train_config(epochs=2), tmp_path / "run"))
    assert first.epochs_completed == 2
    saved = read_checkpoint(latest_checkpoint(tmp_path / "run")).optimizer_state
    assert set(saved) == {"encoder", "decoder"} and saved["decoder"]["state"]
    loaded = load_model(tmp_path / "run")
    assert isinstance(loaded, SoftIntroVAE) and loaded.config.training["epochs_completed"] == 2
    torch.manual_seed(12345)  # resume must not depend on the global RNG at call time
    resumed = drain(
        train(make_model(), dataset, train_config(epochs=4), tmp_path / "run", resume=True)
    )
    np.testing.assert_allclose(
        pd.DataFrame(resumed.history)[LOSS_COLUMNS].to_numpy(float),
        pd.DataFrame(reference.history)[LOSS_COLUMNS].to_numpy(float),
        rtol=1e-6,
    )
    expected = load_model(tmp_path / "ref").state_dict()
    for name, tensor in load_model(tmp_path / "run").state_dict().items():
        torch.testing.assert_close(tensor, expected[name], rtol=1e-5, atol=1e-6)


def test_cli_trains_a_soft_intro_vae(dataset_dir, tmp_path, capsys):
    run = tmp_path / "run"
    fast = ["--arch", "small", "--batch", "4", "--device", "cpu", "--quiet"]
    args = ["train", str(dataset_dir), "--model", "soft-intro-vae", "--latent", "3"]
    assert main([*args, "--epochs", "1", *fast, "--out", str(run)]) == 0
    assert isinstance(load_model(run), SoftIntroVAE)
    assert "Soft-IntroVAE" in capsys.readouterr().out
    assert main([*args, "--epochs", "2", *fast, "--out", str(run), "--resume"]) == 0
    assert len(pd.read_csv(run / "history.csv")) == 2


def test_a_single_optimiser_state_does_not_restore_into_the_pair():
    model = make_model()
    single = torch.optim.Adam(model.parameters()).state_dict()
    with pytest.raises(KeyError, match="encoder or decoder"):
        OptimizerPair(model, lr=1e-3).load_state_dict(single)
