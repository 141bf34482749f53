"""Models: shapes for odd sizes, presets, losses, save/load, PCA, and refused bad input."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from brainvae.errors import DataFileError
from brainvae.models import (
    FORMAT_VERSION,
    NETWORK_PRESETS,
    BetaVAE,
    ModelConfig,
    ModelError,
    PCAModel,
    build_model,
    get_preset,
    load_model,
)
from brainvae.models.losses import capacity_at, kl_per_latent
from brainvae.run_folder import RunFolder

SHAPE_2D = (24, 20)
SHAPE_3D = (12, 16, 10)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def small_vae(shape=SHAPE_2D, **kwargs) -> BetaVAE:
    return build_model(ModelConfig(input_shape=shape, latent_dim=4, **kwargs))


def blobs(n: int, shape=SHAPE_2D) -> torch.Tensor:
    """Smooth [0, 1] images: a Gaussian blob at a random place."""
    grids = torch.meshgrid(*[torch.linspace(-1, 1, s) for s in shape], indexing="ij")
    centres = torch.rand(n, len(shape)) - 0.5
    dist = sum(
        (g[None] - centres[:, i].view(-1, *[1] * len(shape))) ** 2 for i, g in enumerate(grids)
    )
    return torch.exp(-dist / 0.2)


# -- shapes -------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [SHAPE_2D, (17, 9), SHAPE_3D, (7, 9, 5)])
def test_odd_sizes_round_trip_in_input_layout(shape):
    model = small_vae(shape).eval()
    x = blobs(3, shape)
    assert model.reconstruct(x).shape == x.shape  # (N, *spatial) in, same out
    assert model.reconstruct(x[:, None]).shape == (3, 1, *shape)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (3, 4)
    assert model.decode(mu).shape == (3, 1, *shape)
    assert model.sample(2).shape == (2, 1, *shape)
    assert model.embed(x.numpy()).shape == (3, 4)  # numpy accepted


@pytest.mark.parametrize("shape", [SHAPE_2D, SHAPE_3D])
def test_channels_last_option_gives_same_outputs(shape):
    plain = small_vae(shape, channels_last=False).eval()
    fast = small_vae(shape, channels_last=True).eval()
    fast.load_state_dict(plain.state_dict())
    x = blobs(2, shape)
    assert torch.allclose(fast.reconstruct(x), plain.reconstruct(x), atol=1e-5)


@pytest.mark.parametrize(
    ("name", "bottleneck"),
    [("mouse2d", (256, 5, 7)), ("flair3d", (64, 5, 6, 5)), ("ct2d", (256, 8, 8))],
)
def test_presets_build_for_their_published_shape(name, bottleneck):
    preset = get_preset(name)
    config = ModelConfig(
        input_shape=preset.published_input_shape,
        latent_dim=preset.published_latent_dim,
        architecture=name,
    )
    model = build_model(config).eval()
    with torch.no_grad():
        features = model.encoder.bottleneck(torch.zeros(1, 1, *preset.published_input_shape))
    assert tuple(features.shape[1:]) == bottleneck


def test_preset_structure_matches_papers():
    mouse = NETWORK_PRESETS["mouse2d"].spec
    assert len(mouse.conv_widths) == 7 and len(mouse.dense_widths) + 1 == 3
    assert mouse.activation == "relu"
    ct = NETWORK_PRESETS["ct2d"].spec
    assert len(ct.conv_widths) == 10 and len(ct.decoder_strides) == 7
    assert ct.batch_norm and ct.activation == "leaky_relu"
    flair = NETWORK_PRESETS["flair3d"].spec
    assert flair.batch_norm and flair.downsample == "pool" and flair.dropout > 0


def test_preset_of_wrong_dimension_is_refused():
    with pytest.raises(ModelError, match="3D net"):
        ModelConfig(input_shape=SHAPE_2D, architecture="flair3d")


# -- losses -------------------------------------------------------------------------------
def test_bernoulli_decoder_gives_logits_and_loss_decreases():
    model = small_vae()
    x = blobs(8)
    assert not isinstance(list(model.decoder.modules())[-1], torch.nn.Sigmoid)
    images = model.decode(torch.zeros(2, 4))
    assert torch.allclose(images, torch.sigmoid(model.decode_raw(torch.zeros(2, 4))))
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    losses = []
    for _ in range(20):
        loss = model.loss(x)
        assert torch.isfinite(loss.total)
        optimizer.zero_grad()
        loss.total.backward()
        optimizer.step()
        losses.append(loss.total.item())
    assert losses[-1] < losses[0]
    model.eval()
    raw = model.decode_raw(model.embed(x))
    assert (raw < 0).any()  # logits: the dark background is pushed below 0
    assert torch.allclose(model.reconstruct(x)[:, None], torch.sigmoid(raw))


def test_bernoulli_refuses_data_outside_unit_range():
    with pytest.raises(ModelError, match=r"\[0, 1\]"):
        small_vae().loss(blobs(2) * 3)


def test_gaussian_likelihood_raw_output_is_the_mean():
    model = small_vae(likelihood="gaussian", gaussian_sigma=0.5).eval()
    z = torch.randn(2, 4)
    assert torch.equal(model.decode(z), model.decode_raw(z))
    assert torch.isfinite(model.loss(blobs(2) * 3).total)
    learned = small_vae(likelihood="gaussian", learn_sigma=True)
    assert learned.log_sigma() is not None
    learned.loss(blobs(2)).total.backward()
    assert learned.learned_log_sigma.grad is not None


def test_beta_scales_the_kl_term():
    x = blobs(4)
    totals = {}
    for beta in (1.0, 5.0):
        torch.manual_seed(1)
        model = small_vae(beta=beta).eval()
        out = model.loss(x)
        totals[beta] = out
        assert torch.allclose(out.total, out.reconstruction + beta * out.kl)
    assert torch.allclose(totals[1.0].kl, totals[5.0].kl)
    assert (totals[5.0].total - totals[1.0].total).item() == pytest.approx(
        4 * totals[1.0].kl.item(), rel=1e-4
    )


def test_capacity_annealing():
    assert capacity_at(0, 25.0, 100) == 0.0
    assert capacity_at(50, 25.0, 100) == 12.5
    assert capacity_at(500, 25.0, 100) == 25.0
    model = small_vae(capacity_max=25.0, capacity_anneal_steps=100, capacity_gamma=10.0).eval()
    out = model.loss(blobs(2), step=50)
    assert out.capacity == 12.5
    assert torch.allclose(out.total, out.reconstruction + 10.0 * (out.kl - 12.5).abs())


def test_kl_is_zero_for_the_prior():
    mu, logvar = torch.zeros(3, 5), torch.zeros(3, 5)
    assert torch.equal(kl_per_latent(mu, logvar), torch.zeros(5))


# -- save / load --------------------------------------------------------------------------
@pytest.mark.parametrize("shape", [SHAPE_2D, SHAPE_3D])
def test_save_load_gives_identical_outputs(tmp_path, shape):
    model = small_vae(shape, preprocessing={"scale": True})
    model.eval()
    x = blobs(3, shape)
    folder = model.save(tmp_path / "model", training={"epochs": 1})
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", RunFolder.WEIGHTS]
    loaded = load_model(folder)
    assert isinstance(loaded, BetaVAE) and not loaded.training
    assert torch.equal(loaded.reconstruct(x), model.reconstruct(x))
    assert torch.equal(loaded.embed(x), model.embed(x))
    assert loaded.config.training == {"epochs": 1}
    assert loaded.config.preprocessing == {"scale": True}
    assert BetaVAE.load(folder).config.input_shape == shape
    with pytest.raises(ModelError, match="not 'pca'"):
        PCAModel.load(folder)
    model.save(folder)  # replacing an existing model folder works
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_batch_norm_preset_save_load_identical(tmp_path):
    spec = NETWORK_PRESETS["flair3d"].spec
    from dataclasses import replace

    small = replace(spec, conv_widths=(4, 4, 8, 8), strides=(1, 2, 1, 2), dense_widths=(16,))
    model = build_model(
        ModelConfig(input_shape=SHAPE_3D, latent_dim=3, architecture="flair3d", network=small)
    )
    model.loss(blobs(4, SHAPE_3D))  # updates running statistics
    model.eval()
    loaded = load_model(model.save(tmp_path / "m"))
    x = blobs(2, SHAPE_3D)
    assert torch.equal(loaded.reconstruct(x), model.reconstruct(x))
    assert loaded.config.network == small


def test_config_json_round_trip():
    config = ModelConfig(input_shape=SHAPE_3D, latent_dim=6, beta=3.0, training={"a": [1, 2]})
    data = json.loads(config.to_json())
    assert data["format_version"] == FORMAT_VERSION and data["dims"] == 3
    assert ModelConfig.from_dict(data) == config


# -- PCA ----------------------------------------------------------------------------------
def test_pca_same_interface_and_round_trip(tmp_path):
    data = blobs(40)
    model = build_model(ModelConfig(input_shape=SHAPE_2D, latent_dim=5, family="pca"))
    with pytest.raises(ModelError, match="not fitted"):
        model.embed(data)
    model.fit(data)
    mu, logvar = model.encode(data)
    assert mu.shape == (40, 5) and torch.all(logvar < -20)
    assert mu.std(0).mean() == pytest.approx(1.0, rel=0.05)  # whitened: N(0, I) scale
    from sklearn.decomposition import PCA

    reference = PCA(5, whiten=True).fit(data.flatten(1).numpy())
    expected = reference.inverse_transform(reference.transform(data.flatten(1).numpy()))
    got = model.reconstruct(data)
    assert got.shape == data.shape
    np.testing.assert_allclose(got.flatten(1).numpy(), expected, atol=1e-4)
    assert model.sample(3).shape == (3, 1, *SHAPE_2D)
    loss = model.loss(data)
    assert torch.isfinite(loss.total) and float(loss.kl) == 0.0
    loaded = load_model(model.save(tmp_path / "pca"))
    assert isinstance(loaded, PCAModel)
    assert torch.equal(loaded.embed(data), model.embed(data))


def test_pca_decodes_linearly_whatever_the_likelihood():
    """Issue 12.6.1: a Bernoulli-fitted PCA clamped its decode to [1e-6, 1 - 1e-6], shrinking
    projective-field variances; decode must be mean + components for every likelihood."""
    data = blobs(40)
    models = {
        likelihood: build_model(
            ModelConfig(input_shape=SHAPE_2D, latent_dim=5, family="pca", likelihood=likelihood)
        ).fit(data)
        for likelihood in ("bernoulli", "gaussian")
    }
    from sklearn.decomposition import PCA

    reference = PCA(5, whiten=True).fit(data.flatten(1).numpy())
    z = torch.linspace(-6, 6, 4 * 5).view(4, 5)  # far codes: images well outside [0, 1]
    bernoulli, gaussian = models["bernoulli"].decode(z), models["gaussian"].decode(z)
    assert float(bernoulli.min()) < -0.05 and float(bernoulli.max()) > 1.05
    torch.testing.assert_close(bernoulli, gaussian)
    linear = reference.inverse_transform(z.numpy())
    np.testing.assert_allclose(bernoulli.flatten(1).numpy(), linear, atol=1e-4)
    torch.testing.assert_close(
        models["bernoulli"].reconstruct(data), models["gaussian"].reconstruct(data)
    )
    out = models["bernoulli"](data[:3])
    torch.testing.assert_close(out.reconstruction, models["gaussian"](data[:3]).reconstruction)
    assert torch.isfinite(models["bernoulli"].loss(data).total)  # logits of a clamp, loss only


def test_pca_latent_larger_than_data_allows():
    model = build_model(ModelConfig(input_shape=SHAPE_2D, latent_dim=12, family="pca"))
    with pytest.raises(ModelError, match="at most 10"):
        model.fit(blobs(10))
    with pytest.raises(ModelError, match="rank"):
        model.fit(blobs(1).repeat(20, 1, 1) + torch.zeros(20, 1, 1))


# -- bad input ----------------------------------------------------------------------------
def test_wrong_shape_names_expected_and_got():
    model = small_vae()
    with pytest.raises(ModelError, match=r"\(3, 24, 21\).*expected \(N, 1, 24, 20\)"):
        model.encode(torch.zeros(3, 24, 21))
    with pytest.raises(ModelError, match=r"expected \(N, 4\)"):
        model.decode(torch.zeros(2, 5))


def test_nan_input_is_refused():
    x = blobs(2)
    x[0, 3, 4] = float("nan")
    with pytest.raises(ModelError, match="1 NaN or Inf"):
        small_vae().reconstruct(x)
    with pytest.raises(ModelError, match="NaN"):
        small_vae().loss(x)


@pytest.mark.parametrize("latent", [0, -1, 24 * 20 + 1])
def test_bad_latent_size(latent):
    with pytest.raises(ModelError, match="latent_dim"):
        ModelConfig(input_shape=SHAPE_2D, latent_dim=latent)


def test_bad_config_values():
    with pytest.raises(ModelError, match="likelihood"):
        ModelConfig(input_shape=SHAPE_2D, likelihood="poisson")
    with pytest.raises(ModelError, match="2 \\(slice\\) or 3"):
        ModelConfig(input_shape=(5,))
    with pytest.raises(ModelError, match="unknown architecture"):
        ModelConfig(input_shape=SHAPE_2D, architecture="resnet")
    with pytest.raises(ModelError, match="unknown model family"):
        build_model(ModelConfig(input_shape=SHAPE_2D, family="gan"))


@pytest.fixture
def saved(tmp_path) -> Path:
    return small_vae().save(tmp_path / "model")


def test_truncated_weights(saved):
    weights = saved / RunFolder.WEIGHTS
    weights.write_bytes(weights.read_bytes()[:200])
    with pytest.raises(DataFileError, match="safetensors") as info:
        load_model(saved)
    assert info.value.path == weights


def test_corrupt_weights(saved):
    (saved / RunFolder.WEIGHTS).write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    with pytest.raises(DataFileError, match="not a valid safetensors"):
        load_model(saved)


def test_foreign_safetensors(saved):
    from safetensors.torch import save_file

    save_file({"bert.embeddings": torch.zeros(3, 3)}, str(saved / RunFolder.WEIGHTS))
    with pytest.raises(DataFileError, match="missing .*unexpected 'bert.embeddings'"):
        load_model(saved)


def test_weights_of_another_shape(saved, tmp_path):
    other = build_model(ModelConfig(input_shape=SHAPE_2D, latent_dim=6)).save(tmp_path / "o")
    (saved / RunFolder.WEIGHTS).write_bytes((other / RunFolder.WEIGHTS).read_bytes())
    with pytest.raises(DataFileError, match="shape"):
        load_model(saved)


class _Exploit:
    """A pickle that would create a marker file if it were ever unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_pickle_weights_refused_without_running_it(saved, tmp_path, protocol):
    marker = tmp_path / "pwned"
    (saved / RunFolder.WEIGHTS).write_bytes(pickle.dumps(_Exploit(marker), protocol=protocol))
    with pytest.raises(DataFileError) as info:
        load_model(saved)
    assert RunFolder.WEIGHTS in str(info.value)
    assert not marker.exists()


def test_torch_save_checkpoint_refused(saved, tmp_path):
    marker = tmp_path / "pwned"
    (saved / RunFolder.WEIGHTS).unlink()
    torch.save({"x": _Exploit(marker)}, saved / "model.pt")
    with pytest.raises(DataFileError, match="model.pt.*never loads pickles"):
        load_model(saved)
    with pytest.raises(DataFileError, match="pickled checkpoint"):
        load_model(saved / "model.pt")
    assert not marker.exists()


def test_newer_format_version_refused(saved):
    config_path = saved / "config.json"
    data = json.loads(config_path.read_text())
    data["format_version"] = FORMAT_VERSION + 1
    config_path.write_text(json.dumps(data))
    with pytest.raises(DataFileError, match="newer.*upgrade"):
        load_model(saved)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(family="gan"), "unknown model family"),
        (lambda d: d.update(format="something"), "not a brainvae model config"),
        (lambda d: d.update(colour="red"), "unknown model config field"),
        (lambda d: d.update(latent_dim=0), "latent_dim"),
    ],
)
def test_bad_config_json(saved, edit, message):
    config_path = saved / "config.json"
    data = json.loads(config_path.read_text())
    edit(data)
    config_path.write_text(json.dumps(data))
    with pytest.raises(DataFileError, match=message):
        load_model(saved)


def test_missing_and_unparsable_config(saved, tmp_path):
    (saved / "config.json").write_text("{ not json")
    with pytest.raises(DataFileError, match="not valid JSON"):
        load_model(saved)
    with pytest.raises(DataFileError, match="does not exist"):
        load_model(tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataFileError, match="config.json"):
        load_model(empty)


def test_save_refuses_to_overwrite_a_foreign_folder(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "cat.jpg").write_bytes(b"x")
    with pytest.raises(DataFileError, match="not overwriting"):
        small_vae().save(folder)
    assert (folder / "cat.jpg").exists()


def test_safetensors_whose_header_length_starts_with_0x80_is_not_taken_for_a_pickle(tmp_path):
    from safetensors.torch import save_file

    from brainvae.models.serialization import looks_pickled

    path = tmp_path / "weights.safetensors"
    for size in range(1, 400):  # find a tensor set whose header length ends in byte 0x80
        save_file({"w": torch.zeros(size)}, str(path), metadata={"pad": "x" * size})
        if path.read_bytes()[:1] == b"\x80":
            break
    assert path.read_bytes()[:1] == b"\x80"
    assert not looks_pickled(path)
    pickled = tmp_path / "evil.safetensors"
    pickled.write_bytes(b"\x80\x04\x95" + bytes(20))
    assert looks_pickled(pickled)
