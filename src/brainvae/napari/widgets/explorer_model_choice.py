"""Which model the latent explorer loads: a shipped sample model (2D or 3D) or a run folder.

`ModelChoice` holds the rows of the explorer's form that choose it and say which is loaded;
the explorer loads the folder it names (its `set_model`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from magicgui.widgets import ComboBox, FileEdit, Label, PushButton

from brainvae.napari.widgets.dock_base import wrapping
from brainvae.napari.widgets.paths import optional_path

if TYPE_CHECKING:
    from brainvae.models.base import LatentModel
    from brainvae.models.config import ModelConfig

SAMPLE_MODEL = "Sample model (2D beta-VAE)"
SAMPLE_MODEL_3D = "Sample model (3D beta-VAE)"
RUN_FOLDER = "Run folder"
MODEL_SOURCES = (SAMPLE_MODEL, SAMPLE_MODEL_3D, RUN_FOLDER)


def sample_model_dir(dims: int = 2) -> Path:
    """A shipped beta-VAE (sample_data/models/beta_vae_2d or _3d, packaged or in the checkout)."""
    from brainvae.data.sample import sample_data_dir

    return sample_data_dir() / "models" / f"beta_vae_{dims}d"


def chosen_model_folder(source: str, run_folder: Any) -> Path:
    """The folder to load for a model source ("Run folder": the chosen one); a ValueError when
    no run folder is chosen."""
    if source in (SAMPLE_MODEL, SAMPLE_MODEL_3D):
        return sample_model_dir(3 if source == SAMPLE_MODEL_3D else 2)
    folder = optional_path(run_folder)
    if folder is None:
        raise ValueError("choose a run folder (config.json + weights.safetensors)")
    return folder


def is_sample(folder: Path) -> bool:
    """Whether a model folder is one of the shipped sample models."""
    try:
        return any(Path(folder).resolve() == sample_model_dir(d).resolve() for d in (2, 3))
    except Exception:  # noqa: BLE001 - no sample data installed
        return False


def explorable_model(
    model: LatentModel | str | Path, name: str | None = None
) -> tuple[LatentModel, Path | None, str]:
    """The model to explore (loaded when given a run folder), its folder (None when given a
    model) and its name; an unfitted PCA model is refused (a ValueError)."""
    folder = None
    if isinstance(model, str | Path):
        from brainvae.models import load_model

        folder = Path(model)
        model = load_model(folder)
        name = folder.name
    else:
        name = name or type(model).__name__
    if getattr(model, "family", "") == "pca" and not model.is_fitted:
        raise ValueError("this PCA model is not fitted: fit it before exploring")
    return model, folder, name


def model_description(name: str, config: ModelConfig) -> str:
    """The 'loaded' line: name, family, latents and the input grid."""
    return (
        f"{name}: {config.family}, {config.latent_dim} latents, "
        f"{' x '.join(map(str, config.input_shape))} ({config.dims}D)"
    )


class ModelChoice:
    """The model rows: source (a sample or a run folder), the folder, Load, and what is loaded.

    `load(folder)` loads a model folder; `fail(err)` reports a choice that names none.
    """

    def __init__(self, load: Callable[[Path], None], fail: Callable[[BaseException], None]):
        self._load = load
        self._fail = fail
        self.model_source = ComboBox(label="model", choices=MODEL_SOURCES, value=SAMPLE_MODEL)
        self.run_folder = FileEdit(
            label="run folder", mode="d", tooltip="A training run (config.json + weights)"
        )
        self.load_button = PushButton(text="Load model")
        self.model_info = wrapping(Label(label="loaded", value="no model"))  # long text wraps
        self.rows = [self.model_source, self.run_folder, self.load_button, self.model_info]
        self.model_source.changed.connect(self.show_source)
        self.load_button.changed.connect(self.load_chosen_model)

    def load_chosen_model(self, *_args: Any) -> None:
        """Load the sample model or the chosen run folder."""
        try:
            folder = chosen_model_folder(self.model_source.value, self.run_folder.value)
        except Exception as err:  # noqa: BLE001 - no run folder chosen, no sample data
            self._fail(err)
            return
        self._load(folder)

    def show_source(self, *_args: Any) -> None:
        """The folder row only for "Run folder"."""
        self.run_folder.visible = self.model_source.value == RUN_FOLDER

    def show_folder(self, folder: Path | None) -> None:
        """A model came from elsewhere (a training): choose its run folder, unless a sample."""
        if folder is not None and not is_sample(folder):
            self.model_source.value = RUN_FOLDER
            self.run_folder.value = folder

    def show_loaded(self, name: str, config: ModelConfig) -> None:
        """The 'loaded' line for a model just loaded."""
        self.model_info.value = model_description(name, config)
