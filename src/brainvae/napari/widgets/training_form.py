"""The Training dock's form: every field with the library recipe's default, which fields
show for which model family, and the form read into a ModelChoice and a TrainConfig.

A mixin of TrainingWidget (the dock keeps its fields as attributes, as users and tests
address them); the run itself is training_widget's business.
"""

from __future__ import annotations

import time
from pathlib import Path

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    LineEdit,
    ProgressBar,
    PushButton,
    SpinBox,
)

from brainvae.longitudinal.request import LongitudinalRequest
from brainvae.napari.layer_roles import population_layers
from brainvae.napari.widgets.collapsible import CollapsibleSection, align_label_widths
from brainvae.napari.widgets.dock_base import fixed_lines, wrapping
from brainvae.napari.widgets.paths import optional_path
from brainvae.user_cache import user_cache_dir

ARCHITECTURES = ("small", "mouse2d", "flair3d", "ct2d")
FOLDER_CHOICE = "Folder below"
PCA_PLACEHOLDER = (
    "PCA is fitted in one go, so it has no loss curve: its reconstructions are in the "
    "reconstructions tab."
)


def default_runs_root() -> Path:
    """Where runs go unless the user picks a folder."""
    return user_cache_dir("runs")


def new_run_folder() -> Path:
    return default_runs_root() / time.strftime("run-%Y%m%d-%H%M%S")


class TrainingForm:
    """The form's fields and their logic (mixed into TrainingWidget)."""

    def _build_form(self) -> tuple[Container, Container]:
        """Make every field (recipe defaults), the always-visible form and the folded
        advanced section; returns the buttons row and the progress/status block."""
        # Every default is the library's default recipe (training.recipe.DEFAULT_RECIPE), the
        # same as `brainvae train` and TrainConfig(): it learns on 50 to 5,000 scans. Imported
        # here: brainvae.training pulls in torch, which napari's start-up should not pay for.
        from brainvae.models.families import FAMILY_CHOICES
        from brainvae.training.recipe import DEFAULT_RECIPE as recipe

        self.dataset = ComboBox(
            label="dataset",
            choices=self._dataset_choices,
            tooltip="A population layer loaded by the Population data dock, or a folder",
        )
        self.dataset_folder = FileEdit(
            label="dataset folder", mode="d", tooltip="A folder made by `brainvae prepare`"
        )
        families = [(choice.label, choice.name) for choice in FAMILY_CHOICES]
        self.family = ComboBox(label="model", choices=families, value="beta_vae")
        self.architecture = ComboBox(
            label="network",
            choices=ARCHITECTURES,
            value=recipe.architecture,
            tooltip="small: quick on a CPU, sized to the input; mouse2d / flair3d / ct2d: the "
            "published nets",
        )
        self.condition = LineEdit(
            label="condition column",
            value="",
            visible=False,
            tooltip="The age-conditioned VAE regresses this numeric column of the dataset's "
            "table (e.g. age); required for it, as `brainvae train --condition`",
        )
        self.condition.native.setPlaceholderText("a numeric column, e.g. age")
        pairing = LongitudinalRequest()  # the Aging and disease dock's defaults
        self.group = LineEdit(
            label="group column",
            value=pairing.group,
            visible=False,
            tooltip="The longitudinal VAE learns an aging direction from the controls' visit "
            "pairs and a disease direction for each other value of this column "
            "(`brainvae train --group`); visits are paired by subject_id, ordered by age",
        )
        self.control = LineEdit(
            label="control group",
            value=pairing.control,
            visible=False,
            tooltip="The group column's value of the healthy controls (`--control`)",
        )
        self.latent = SpinBox(label="latents (L)", min=1, max=512, value=8)
        self.beta = FloatSpinBox(
            label="beta",
            min=0.0001,
            max=1000.0,
            step=0.5,
            value=recipe.beta,
            tooltip="KL weight (it rises from 0 over the first "
            f"{recipe.kl_warmup_steps} steps: a KL warm-up against collapse)",
        )
        self.likelihood = ComboBox(
            label="likelihood",
            choices=(("Gaussian (squared error)", "gaussian"), ("Bernoulli (BCE)", "bernoulli")),
            value=recipe.likelihood,
        )
        self.sigma = FloatSpinBox(
            label="sigma",
            min=0.001,
            max=10.0,
            step=0.01,
            value=recipe.gaussian_sigma,
            tooltip="The Gaussian likelihood's noise sd in image units: smaller weighs "
            "reconstruction more against the KL (too large and every scan decodes to the mean)",
        )
        self.sigma.native.setDecimals(3)
        self.length_unit = ComboBox(
            label="train for",
            choices=(("optimiser steps", "steps"), ("epochs", "epochs")),
            value="steps",
            tooltip="Steps suit any population size (48 volumes are 3 steps an epoch at batch "
            "16); the steps are rounded up to whole epochs",
        )
        self.steps = SpinBox(label="steps", min=1, max=10_000_000, value=recipe.steps)
        self.epochs = SpinBox(label="epochs", min=1, max=100000, value=100)
        self.batch = SpinBox(label="batch size", min=1, max=4096, value=recipe.batch_size)
        self.lr = FloatSpinBox(label="learning rate", min=1e-6, max=1.0, step=1e-4, value=recipe.lr)
        self.lr.native.setDecimals(6)
        self.device = ComboBox(label="device", choices=self._device_choices, value="auto")
        self.device_info = Label(label="", value="")
        wrapping(self.device_info)  # a long torch build note must not widen the dock
        self.run_folder = FileEdit(
            label="run folder",
            mode="d",
            value=new_run_folder(),
            tooltip="Where config.json, weights, history.csv and checkpoints/ go",
        )
        self.checkpoint_every = SpinBox(
            label="checkpoint every",
            min=1,
            value=5,
            tooltip="Stop and closing always write one; each costs a disk write of the model",
        )
        self.preview_every = SpinBox(
            label="preview every",
            min=1,
            value=1,
            tooltip="How often the reconstructions tab gets new reconstructions",
        )
        for folder in (self.dataset_folder, self.run_folder):
            folder.choose_btn.text = "Choose..."  # not "Choose directory": the dock stays narrow
        self.start_button = PushButton(text="Start")
        self.stop_button = PushButton(text="Stop", enabled=False)
        self.resume_button = PushButton(text="Resume")
        self.reset_button = PushButton(text="Reset")
        self.load_button = PushButton(
            text="Load run", tooltip="Show the loss history of the run in the run folder"
        )
        buttons = Container(
            widgets=[
                self.start_button, self.stop_button, self.resume_button, self.reset_button,
                self.load_button,
            ],
            layout="horizontal",
            labels=False,
        )  # fmt: skip
        buttons.margins = (0, 0, 0, 0)
        self.log_scale = CheckBox(text="log scale", value=False)
        self.progress = ProgressBar(label="epoch progress", value=0, max=1)
        fixed_lines(self.status, lines=5)

        # What a new user sets stays in sight; the recipe's knobs fold away (issue 14: the
        # dock fits a 1366 x 768 screen).
        self.form = Container(
            widgets=[
                self.dataset, self.dataset_folder, self.family, self.condition, self.group,
                self.control, self.latent, self.beta,
                self.length_unit, self.steps, self.epochs, self.run_folder,
            ],
            labels=True,
        )  # fmt: skip
        self.advanced = CollapsibleSection(
            "advanced settings",
            [
                self.architecture, self.likelihood, self.sigma, self.batch, self.lr,
                self.device, self.device_info, self.checkpoint_every, self.preview_every,
            ],
            tooltip="Network, likelihood, batch size, learning rate, device, checkpoints: "
            "the defaults are the library's recipe",
        )  # fmt: skip
        monitor = Container(widgets=[self.progress, self.status], labels=True)
        for part in (self.form, monitor):
            part.margins = (0, 0, 0, 0)
        align_label_widths([self.form, self.advanced.fields, monitor])

        return buttons, monitor

    def _dataset_choices(self, *_args) -> list[str]:
        """Every population in the viewer (a prepared dataset, or a folder of scans such as
        File > Open Sample's, prepared once when training starts), then a folder."""
        names = [layer.name for layer in population_layers(self._viewer)]
        return [*names, FOLDER_CHOICE]

    def _refresh_datasets(self, *_args) -> None:
        """Offer the population layers now in the viewer; pick a new one if none was chosen."""
        self.dataset.reset_choices()
        layers = [c for c in self.dataset.choices if c != FOLDER_CHOICE]
        if (
            layers
            and self.dataset.value == FOLDER_CHOICE
            and not optional_path(self.dataset_folder.value)
        ):
            self.dataset.value = layers[-1]
        self._on_dataset_changed()

    def _on_dataset_changed(self, *_args) -> None:
        self.dataset_folder.visible = self.dataset.value == FOLDER_CHOICE

    def _on_family_changed(self, *_args) -> None:
        """Show only the options that apply (PCA has no beta, epochs or batches)."""
        family = self.family.value
        neural = family != "pca"
        self.beta.visible = family in ("beta_vae", "age_vae", "longitudinal_vae")
        self.condition.visible = family == "age_vae"
        self.group.visible = self.control.visible = family == "longitudinal_vae"
        self.advanced.visible = neural  # PCA has none of these settings
        for widget in (
            self.architecture, self.likelihood, self.length_unit, self.batch, self.lr,
            self.device, self.device_info, self.checkpoint_every, self.preview_every,
        ):  # fmt: skip
            widget.visible = neural
        self.sigma.visible = neural and self.likelihood.value == "gaussian"
        self.steps.visible = neural and self.length_unit.value == "steps"
        self.epochs.visible = neural and self.length_unit.value == "epochs"
        self.resume_button.enabled = neural and self._worker is None

    def _label_plot(self, *_args) -> None:
        """Axis titles and the placeholder follow the form until a run's curves are drawn;
        then only the x unit does (it switches the drawn curves between steps and epochs)."""
        from brainvae.napari.widgets.loss_plot import loss_axis_label

        if self.plot.has_points:
            self.plot.set_axes(self.length_unit.value)
            return
        self.plot.set_placeholder(PCA_PLACEHOLDER if self.family.value == "pca" else None)
        self.plot.set_axes(
            self.length_unit.value,
            loss_axis_label(self.likelihood.value, float(self.sigma.value)),
            latent_dim=int(self.latent.value),
        )

    def _device_choices(self, *_args) -> list[str]:
        import torch

        choices = ["auto", "cpu"]
        if torch.cuda.is_available():
            choices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
        backend = getattr(torch.backends, "mps", None)
        if backend is not None and backend.is_available():
            choices.append("mps")
        return choices

    def _show_device(self, *_args) -> None:
        """Say which device "auto" means, and why there is no GPU when torch sees none."""
        import torch

        from brainvae.training import describe_device, resolve_device

        text = describe_device(resolve_device(self.device.value))
        if not torch.cuda.is_available() and self.device.value in ("auto", "cpu"):
            build = "a CPU-only torch build" if torch.version.cuda is None else "no CUDA device"
            text += f" (torch sees no GPU: {build})"
        self.device_info.value = text

    def model_choice(self):
        from brainvae.models.families import family_choice
        from brainvae.napari.workers.train import ModelChoice

        choice = family_choice(self.family.value)
        by_steps = self.length_unit.value == "steps"
        return ModelChoice(
            family=choice.family,
            architecture=self.architecture.value,
            latent_dim=int(self.latent.value),
            beta=choice.beta(float(self.beta.value)),
            likelihood=self.likelihood.value,
            gaussian_sigma=float(self.sigma.value),
            steps=int(self.steps.value) if by_steps else None,
            epochs=None if by_steps else int(self.epochs.value),
            condition=str(self.condition.value).strip() or None,
            group=str(self.group.value).strip() or None,
            control=str(self.control.value).strip() or None,
        )

    def train_config(self):
        from brainvae.training import TrainConfig

        by_steps = self.length_unit.value == "steps"
        return TrainConfig(
            epochs=None if by_steps else int(self.epochs.value),
            steps=int(self.steps.value) if by_steps else None,
            batch_size=int(self.batch.value),
            lr=float(self.lr.value),
            device=self.device.value,
            checkpoint_every=int(self.checkpoint_every.value),
        )


def run_axes(folder: Path) -> tuple[str | None, int | None]:
    """A saved run's loss axis title (from its likelihood) and latent count, read from its
    config.json; (None, None) when unreadable (the plot keeps its titles)."""
    from brainvae.models.config import ModelConfig
    from brainvae.napari.widgets.loss_plot import loss_axis_label
    from brainvae.run_folder import RunFolder

    try:
        config = ModelConfig.from_json(RunFolder(folder).model_config.read_text())
    except Exception:  # noqa: BLE001 - no config (a run stopped early) or an older one
        return None, None
    label = loss_axis_label(config.likelihood, config.gaussian_sigma, config.learn_sigma)
    return label, config.latent_dim
