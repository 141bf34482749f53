"""ModelConfig: everything needed to rebuild a model, validated, and its JSON form."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from typing import Any

from brainvae.errors import ModelError
from brainvae.json_files import loads_or_raise
from brainvae.models.networks.presets import get_preset
from brainvae.models.networks.spec import ConvNetSpec

FORMAT_NAME = "brainvae-model"
FORMAT_VERSION = 1
LIKELIHOODS = ("bernoulli", "gaussian")
INTRO_VARIANTS = ("soft", "margin")
INTRO_FIELDS = ("intro_variant", "beta_rec", "beta_kl", "beta_neg", "gamma_r", "margin", "w_neg")
"""Fields only the soft_intro_vae family uses; left out of other families' JSON."""
CONDITION_FIELDS = ("condition", "condition_mean", "condition_sd")
"""Fields only the age_vae family uses (the condition's column and its standardisation over
the training rows); left out of other families' JSON, so their config.json stays as it was."""
LONGITUDINAL_FIELDS = (
    "subject_column",
    "time_column",
    "group_column",
    "control_label",
    "disease_labels",
    "direction_weight",
)
"""Fields only the longitudinal_vae family uses (which columns pair the visits, which group is
the controls, the groups that get a disease direction, the weight of the cosine terms)."""
DEFAULT_DIRECTION_WEIGHT = 100.0
"""The longitudinal_vae family's weight of its two cosine terms (nats per unit of 1 - cos); see
ModelConfig's docstring for why it is this size."""


@dataclass
class ModelConfig:
    """How to build (and rebuild on load) one model.

    input_shape: spatial shape of one sample (2 or 3 axes, any sizes); channels: image channels.
    family: "beta_vae", "soft_intro_vae", "age_vae" or "pca" (brainvae.models.families.FAMILY_NAMES).
    architecture: preset name ("mouse2d", "flair3d", "ct2d", "small"); network: the resolved
        layer spec, filled from the preset when None (override it to change widths or depth;
        the JSON always stores the resolved spec, so presets may change without breaking files).
    likelihood: "bernoulli" (decoder gives logits, BCE; data in [0, 1]) or "gaussian"
        (decoder gives the mean). gaussian_sigma: None is the plain sum of squared errors;
        a number is the Gaussian NLL with that sigma; learn_sigma learns one log-sigma.
    beta: KL weight (1 = plain VAE). capacity_max (nats, None = off): Burgess et al. capacity
        annealing, loss = rec + capacity_gamma * |KL - C|, C rising linearly from 0 to
        capacity_max over capacity_anneal_steps steps. kl_warmup_steps (beta_vae family, 0 =
        off): the KL weight rises linearly from 0 to beta over that many steps (Bowman et al.
        2016), so the latents are not pushed onto the prior while the decoder is still
        learning the mean image.
    channels_last: channels-last memory layout for the conv nets (default: on; on this CPU it
        trained the presets 1.5-2.5x faster in 2D and 3D, with the same outputs to 1e-5).
    intro_variant ("soft_intro_vae" family): "soft" (Soft-IntroVAE, Daniel & Tamar 2021, with
        weights beta_rec, beta_kl, beta_neg and gamma_r) or "margin" (IntroVAE, Huang et al.
        2018: hinge max(0, margin - KL) on generated images, weighted by w_neg).
    condition ("age_vae" family): the dataset metadata column the model regresses and
        conditions its prior on (e.g. "age"); condition_mean and condition_sd: its mean and
        standard deviation over the training rows, which standardise it (c = (value - mean) / sd).
    subject_column, time_column, group_column, control_label ("longitudinal_vae" family): the
        metadata columns naming each scan's subject, ordering its visits (age or a visit number)
        and giving its group, and the group value of the healthy controls; disease_labels: the
        other groups of the training rows, one learned disease direction each (in this order);
        direction_weight: the weight of the two cosine terms (Ouyang et al. 2022) against
        reconstruction + beta * KL, in nats per unit of (1 - cos). The reconstruction is summed
        over voxels, so it is hundreds to thousands of nats per scan, and the KL tens: at a
        weight of 1 the directions would not move the encoder; 100 makes a pair whose change
        is orthogonal to its direction cost as much as a few latents' worth of KL.
    preprocessing / training: free JSON dicts (the dataset's preprocessing config, a summary).
    """

    input_shape: tuple[int, ...]
    latent_dim: int = 8
    family: str = "beta_vae"
    channels: int = 1
    architecture: str = "small"
    network: ConvNetSpec | None = None
    likelihood: str = "bernoulli"
    gaussian_sigma: float | None = None
    learn_sigma: bool = False
    beta: float = 1.0
    capacity_max: float | None = None
    capacity_anneal_steps: int = 10000
    capacity_gamma: float = 1000.0
    kl_warmup_steps: int = 0
    channels_last: bool = True
    intro_variant: str = "soft"
    beta_rec: float = 1.0
    beta_kl: float = 1.0
    beta_neg: float = 256.0
    gamma_r: float = 1e-8
    margin: float = 120.0
    w_neg: float = 0.5
    condition: str | None = None
    condition_mean: float | None = None
    condition_sd: float | None = None
    subject_column: str | None = None
    time_column: str | None = None
    group_column: str | None = None
    control_label: str | None = None
    disease_labels: tuple[str, ...] | None = None
    direction_weight: float = DEFAULT_DIRECTION_WEIGHT
    preprocessing: dict[str, Any] | None = None
    training: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        self.input_shape = tuple(int(s) for s in self.input_shape)
        if isinstance(self.disease_labels, list):
            self.disease_labels = tuple(self.disease_labels)
        self._validate()
        if self.family != "pca" and self.network is None:
            self.network = get_preset(self.architecture, self.dims).spec

    @property
    def dims(self) -> int:
        """Number of spatial axes (2 for slices, 3 for volumes)."""
        return len(self.input_shape)

    @property
    def n_features(self) -> int:
        """Values in one sample: channels x voxels."""
        return self.channels * math.prod(self.input_shape)

    def _validate(self) -> None:
        if self.dims not in (2, 3):
            raise ModelError(
                f"input_shape must have 2 (slice) or 3 (volume) axes, got {self.input_shape}"
            )
        if any(s < 1 for s in self.input_shape) or self.channels < 1:
            raise ModelError(
                f"input_shape and channels must be >= 1, got {self.input_shape}, {self.channels}"
            )
        if self.latent_dim < 1:
            raise ModelError(f"latent_dim must be at least 1, got {self.latent_dim}")
        if self.latent_dim > self.n_features:
            raise ModelError(
                f"latent_dim {self.latent_dim} is larger than the data allow: one sample of "
                f"shape {self.input_shape} x {self.channels} channel(s) holds only "
                f"{self.n_features} values"
            )
        if self.family != "pca":
            get_preset(self.architecture, self.dims)
        if self.likelihood not in LIKELIHOODS:
            raise ModelError(
                f"likelihood must be one of {', '.join(LIKELIHOODS)}; got {self.likelihood!r}"
            )
        if self.gaussian_sigma is not None and not self.gaussian_sigma > 0:
            raise ModelError(f"gaussian_sigma must be > 0, got {self.gaussian_sigma}")
        if self.learn_sigma and self.likelihood != "gaussian":
            raise ModelError("learn_sigma needs likelihood='gaussian'")
        if not self.beta >= 0:
            raise ModelError(f"beta must be >= 0, got {self.beta}")
        if self.capacity_max is not None and not self.capacity_max >= 0:
            raise ModelError(f"capacity_max must be >= 0 nats, got {self.capacity_max}")
        if not isinstance(self.kl_warmup_steps, int) or self.kl_warmup_steps < 0:
            raise ModelError(f"kl_warmup_steps must be an integer >= 0, got {self.kl_warmup_steps}")
        if self.capacity_anneal_steps < 1 or not self.capacity_gamma > 0:
            raise ModelError("capacity_anneal_steps must be >= 1 and capacity_gamma > 0")
        self._validate_introspective()
        self._validate_condition()
        self._validate_longitudinal()
        if self.format_version != FORMAT_VERSION:
            raise ModelError(
                f"format_version {self.format_version} is not supported (this brainvae "
                f"writes and reads version {FORMAT_VERSION})"
            )

    def _validate_introspective(self) -> None:
        if self.intro_variant not in INTRO_VARIANTS:
            raise ModelError(
                f"intro_variant must be one of {', '.join(INTRO_VARIANTS)}; "
                f"got {self.intro_variant!r}"
            )
        if not self.beta_rec > 0 or not self.beta_neg > 0:
            raise ModelError(
                f"beta_rec and beta_neg must be > 0, got {self.beta_rec}, {self.beta_neg}"
            )
        for name in ("beta_kl", "gamma_r", "margin", "w_neg"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ModelError(f"{name} must be a finite number >= 0, got {value!r}")

    def _validate_condition(self) -> None:
        if self.family != "age_vae":
            if self.condition is not None:
                raise ModelError(
                    f"condition is used by the age_vae family only; a {self.family!r} model "
                    "takes no condition"
                )
            return
        if not isinstance(self.condition, str) or not self.condition:
            raise ModelError(
                "the age_vae family needs condition: the metadata column it regresses "
                "(e.g. condition='age')"
            )
        mean, sd = self.condition_mean, self.condition_sd
        if not (isinstance(mean, int | float) and math.isfinite(mean)):
            raise ModelError(
                f"condition_mean must be a finite number (the mean of {self.condition!r} over "
                f"the training rows), got {mean!r}"
            )
        if not (isinstance(sd, int | float) and math.isfinite(sd) and sd > 0):
            raise ModelError(
                f"condition_sd must be a finite number > 0 (the standard deviation of "
                f"{self.condition!r} over the training rows), got {sd!r}"
            )

    def _validate_longitudinal(self) -> None:
        columns = ("subject_column", "time_column", "group_column", "control_label")
        if self.family != "longitudinal_vae":
            given = [name for name in (*columns, "disease_labels") if getattr(self, name)]
            if given:
                raise ModelError(
                    f"{', '.join(given)}: used by the longitudinal_vae family only; a "
                    f"{self.family!r} model pairs no visits"
                )
            return
        for name in columns:
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise ModelError(
                    f"the longitudinal_vae family needs {name} (a metadata column name, or for "
                    f"control_label the controls' group value), got {value!r}"
                )
        labels = self.disease_labels
        if labels is not None and not (
            isinstance(labels, tuple) and all(isinstance(v, str) and v for v in labels)
        ):
            raise ModelError(f"disease_labels must be a list of group names, got {labels!r}")
        if labels is not None and self.control_label in labels:
            raise ModelError(
                f"disease_labels {list(labels)} include the control label {self.control_label!r}"
            )
        weight = self.direction_weight
        if not (isinstance(weight, int | float) and math.isfinite(weight) and weight >= 0):
            raise ModelError(f"direction_weight must be a finite number >= 0, got {weight!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict, with the format name/version first and the resolved network."""
        data: dict[str, Any] = {"format": FORMAT_NAME, "format_version": self.format_version}
        for f in fields(self):
            if f.name == "format_version":
                continue
            if f.name in INTRO_FIELDS and self.family != "soft_intro_vae":
                continue
            if f.name in CONDITION_FIELDS and self.family != "age_vae":
                continue
            if f.name in LONGITUDINAL_FIELDS and self.family != "longitudinal_vae":
                continue
            value = getattr(self, f.name)
            if isinstance(value, ConvNetSpec):
                value = value.to_dict()
            elif isinstance(value, tuple):
                value = list(value)
            data[f.name] = value
        data["dims"] = self.dims
        return data

    def to_json(self) -> str:
        """Indented JSON text; refuses values (e.g. in training) that JSON cannot hold."""
        try:
            return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"
        except (TypeError, ValueError) as error:
            raise ModelError(f"model config cannot be written as JSON: {error}") from error

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        """Validate a dict from config.json: format and version first, then every field."""
        if not isinstance(data, dict):
            raise ModelError("model config must be a JSON object")
        if data.get("format") != FORMAT_NAME:
            raise ModelError(
                f"not a brainvae model config (format is {data.get('format')!r}, "
                f"expected {FORMAT_NAME!r})"
            )
        version = data.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise ModelError(f"format_version must be an integer, got {version!r}")
        if version > FORMAT_VERSION:
            raise ModelError(
                f"this model was saved in format version {version}, newer than this brainvae "
                f"can read (up to {FORMAT_VERSION}): upgrade napari-brainvae to load it"
            )
        if version < 1:
            raise ModelError(f"unknown format_version {version}")
        values = {k: v for k, v in data.items() if k not in ("format", "dims")}
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ModelError(f"unknown model config field(s): {', '.join(unknown)}")
        if "input_shape" not in values:
            raise ModelError("model config lacks input_shape")
        if isinstance(values.get("network"), dict):
            values["network"] = ConvNetSpec.from_dict(values["network"])
        try:
            config = cls(**values)
        except ModelError:
            raise
        except (TypeError, ValueError) as error:
            raise ModelError(f"model config has a field of the wrong type: {error}") from error
        if "dims" in data and data["dims"] != config.dims:
            raise ModelError(
                f"model config says dims={data['dims']} but input_shape {config.input_shape} "
                f"has {config.dims} axes"
            )
        return config

    @classmethod
    def from_json(cls, text: str) -> ModelConfig:
        """Parse and validate config.json text."""
        return cls.from_dict(loads_or_raise(text, ModelError, "model config"))
