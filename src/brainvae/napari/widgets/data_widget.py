"""Population data dock: choose a folder + CSV (or the sample), preprocess, load as a stack.

It only orchestrates: reads the recipe form (every PreprocessConfig field, starting from
the same default recipe as `brainvae prepare`) into a PreprocessConfig, starts the prepare
worker, and turns the finished dataset into layers. The scan under the stack's slider has
its metadata row shown below.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    FileEdit,
    Label,
    LineEdit,
    ProgressBar,
    PushButton,
)

from brainvae.data.preprocessing.config import DEFAULT_PRESET, PREPROCESS_RECIPES
from brainvae.napari.widgets.dock_base import DockBase, wrapping
from brainvae.napari.widgets.paths import optional_path
from brainvae.napari.widgets.preprocess_form import PreprocessForm
from brainvae.napari.widgets.scroll_dock import ScrollableContainer
from brainvae.napari.widgets.subject_info import SubjectInfo
from brainvae.napari.widgets.view import centre_slices

if TYPE_CHECKING:
    import napari

SAMPLE_2D = "Sample population (2D)"
SAMPLE_3D = "Sample population (3D)"
FOLDER = "Folder of volumes"
PREPARED = "Prepared dataset folder"
SOURCES = (SAMPLE_2D, SAMPLE_3D, FOLDER, PREPARED)


COARSE_ATLAS_OPACITY = 0.2
"""Opacity of an atlas whose outlines cover most of its regions (a 4 mm grid)."""


def border_share(labels: np.ndarray) -> float:
    """Share of labelled voxels on a region's border in the displayed plane (a neighbour along
    one of the last two axes has another label): how much of the atlas its outlines cover."""
    labels = np.asarray(labels)
    if labels.ndim < 2 or not labels.any():
        return 0.0
    border = np.zeros(labels.shape, dtype=bool)
    for axis in (-1, -2):
        differs = np.diff(labels, axis=axis) != 0
        head = [slice(None)] * labels.ndim
        tail = [slice(None)] * labels.ndim
        head[axis], tail[axis] = slice(None, -1), slice(1, None)
        border[tuple(head)] |= differs
        border[tuple(tail)] |= differs
    labelled = labels > 0
    return float((border & labelled).sum() / labelled.sum())


class DataWidget(DockBase, ScrollableContainer):
    """Load a population into napari: stack layer, atlas labels and per-scan metadata."""

    def __init__(self, napari_viewer: napari.viewer.Viewer) -> None:
        super().__init__()
        self.setup_dock(napari_viewer, "Choose a source and press Prepare and load.")
        from brainvae.napari.label_view import follow_display

        follow_display(napari_viewer)  # the atlas turns faint in 3D even without other docks
        self._cancel = threading.Event()
        self._dataset = None
        self._stack_layer = None
        self._atlas_path: Path | None = None
        self._layer_name = "population"

        self.source = ComboBox(label="source", choices=SOURCES, value=SAMPLE_2D)
        self.folder = FileEdit(
            label="folder",
            mode="d",
            tooltip="Folder of NIfTI/.npy/.tif scans, or a prepared dataset",
        )
        self.csv = FileEdit(
            label="metadata CSV/TSV",
            mode="r",
            filter="*.csv *.tsv",
            tooltip="Optional (a BIDS folder's participants.tsv is found by itself): "
            "subject_id / participant_id / subject, session, age, diagnosis, filename ...",
        )
        self.id_column = LineEdit(
            label="id column",
            value="",
            tooltip="The table's subject id column; empty: subject_id, participant_id or "
            "subject, the first present",
        )
        self.atlas = FileEdit(
            label="atlas (labels)",
            mode="r",
            filter="*.nii *.nii.gz",
            tooltip="Optional ROI atlas in the output grid",
        )
        self.preset = ComboBox(
            label="preset", choices=tuple(PREPROCESS_RECIPES), value=DEFAULT_PRESET
        )
        self.config_file = FileEdit(
            label="config JSON",
            mode="r",
            filter="*.json",
            tooltip="Optional saved PreprocessConfig: fills the form below",
        )
        self.form = PreprocessForm()
        self.skip_bad = CheckBox(label="skip bad files (and report them)", value=False)
        self.allow_unmatched = CheckBox(label="allow files/rows without a match", value=False)
        self.load_button = PushButton(text="Prepare and load")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(label="progress", value=0, max=1)
        self.subject_info = SubjectInfo()
        from brainvae.data.io.nifti_integrity import describe_default_budget

        # the same default as `brainvae prepare --max-mb`: a bigger volume is refused
        self.memory = wrapping(
            Label(label="memory budget", value=f"per volume: {describe_default_budget()}")
        )

        self.extend(
            [
                self.source, self.folder, self.csv, self.id_column, self.atlas, self.preset,
                self.config_file, self.form, self.skip_bad, self.allow_unmatched,
                self.memory, self.load_button, self.cancel_button, self.progress, self.status,
                self.subject_info,
            ]
        )  # fmt: skip
        self.source.changed.connect(self._on_source_changed)
        self.preset.changed.connect(self._on_preset_changed)
        self.config_file.changed.connect(self._on_config_file_changed)
        self.load_button.changed.connect(self.start_loading)
        self.cancel_button.changed.connect(self.cancel)
        self._viewer.dims.events.current_step.connect(self._show_current_subject)
        self._on_source_changed()
        self._on_preset_changed()

    # ---- form -> inputs -------------------------------------------------
    def _on_source_changed(self, *_args) -> None:
        """Show only the fields that apply to the chosen source."""
        self.folder.visible = self.source.value in (FOLDER, PREPARED)
        for widget in (
            self.csv, self.id_column, self.atlas, self.preset, self.config_file, self.form,
            self.skip_bad, self.allow_unmatched,
        ):  # fmt: skip
            widget.visible = self.source.value == FOLDER

    def _on_preset_changed(self, *_args) -> None:
        """Fill the form with the chosen preset, so it shows every field of what runs."""
        self.form.set_config(PREPROCESS_RECIPES[self.preset.value]())

    def _on_config_file_changed(self, *_args) -> None:
        """Fill the form from a saved config; a bad file is said in the status."""
        from brainvae.data.preprocessing import PreprocessConfig

        path = optional_path(self.config_file.value)
        if path is None:
            return
        try:
            self.form.set_config(PreprocessConfig.load(path))
        except Exception as err:  # noqa: BLE001 - any config error goes to the user
            self.fail(err)

    def build_config(self):
        """The PreprocessConfig the form describes (the sample populations are already prepared)."""
        from brainvae.data.preprocessing import PreprocessConfig

        if self.source.value in (SAMPLE_2D, SAMPLE_3D):
            dims = 2 if self.source.value == SAMPLE_2D else 3
            return PreprocessConfig.identity().with_changes(expected_ndim=dims)
        return self.form.config()

    def id_column_name(self) -> str | None:
        """The id column the user named, or None to look for the usual names."""
        return self.id_column.value.strip() or None

    def inputs(self) -> tuple[Path, Path | None, Path | None]:
        """(source folder, CSV, atlas) for the chosen source; errors name what is missing."""
        from brainvae.data.sample import sample_population_dir

        if self.source.value in (SAMPLE_2D, SAMPLE_3D):
            folder = sample_population_dir(2 if self.source.value == SAMPLE_2D else 3)
            return folder / "images", folder / "subjects.csv", folder / "atlas.nii.gz"
        folder = optional_path(self.folder.value)
        if folder is None or not folder.is_dir():
            raise ValueError(f"choose an existing folder (got {self.folder.value!s})")
        return folder, optional_path(self.csv.value), optional_path(self.atlas.value)

    def prepare_request(self, source: Path, csv: Path | None, config):
        """What the prepare depends on; its cache folder is named by a key of all of it, so
        an edited folder is prepared again while an unchanged request is reused."""
        from brainvae.data.dataset_cache import PrepareRequest

        return PrepareRequest(
            source,
            csv,
            config,
            skip_bad=bool(self.skip_bad.value),
            allow_unmatched=bool(self.allow_unmatched.value),
            id_column=self.id_column_name(),
        )

    # ---- running ---------------------------------------------------------
    def start_loading(self, *_args) -> None:
        """Validate the form, then prepare (or reuse) the dataset in a napari worker."""
        from brainvae.napari.workers.prepare import prepare_population

        try:
            if self.source.value == PREPARED:
                folder = optional_path(self.folder.value)
                if folder is None:
                    raise ValueError("choose a prepared dataset folder")
                self._show_dataset(folder, atlas=None, name=f"population ({folder.name})")
                return
            source, csv, atlas = self.inputs()
            config = self.build_config()
            out = self.prepare_request(source, csv, config).cache_folder()
        except Exception as err:  # noqa: BLE001 - any form error goes to the user
            self.fail(err)
            return
        self._atlas_path = atlas
        self._layer_name = _population_name(self.source.value, source)
        self.status.value = f"Preparing {source.name}..."
        self.progress.value = 0
        self._set_running(True)
        self._cancel = threading.Event()
        self.start_worker(
            prepare_population,
            source,
            out,
            config,
            csv,
            cancel=self._cancel,
            skip_bad=self.skip_bad.value,
            allow_unmatched=self.allow_unmatched.value,
            id_column=self.id_column_name(),
            yielded=self._on_progress,
            returned=self._on_prepared,
            finished=lambda: self._set_running(False),
        )

    def cancel(self, *_args) -> None:
        """Ask the worker to stop after the current file; nothing half-written is kept."""
        if self._worker is not None:
            self._cancel.set()
            self.status.value = "Cancelling..."

    def _set_running(self, running: bool) -> None:
        if self.closed:
            return
        self.load_button.enabled = not running
        self.cancel_button.enabled = running

    def _on_progress(self, report) -> None:
        total = max(int(getattr(report, "total", 0) or 0), 1)
        self.progress.max = total
        self.progress.value = min(int(getattr(report, "done", 0) or 0), total)
        current = getattr(report, "current", None)
        stage = getattr(report, "stage", "")
        self.status.value = f"{stage} {self.progress.value}/{total}" + (
            f": {Path(str(current)).name}" if current else ""
        )

    def _on_prepared(self, folder: Path | None) -> None:
        if folder is None:
            self.status.value = "Cancelled; no dataset was written."
            self.progress.value = 0
            return
        self._show_dataset(folder, atlas=self._atlas_path, name=self._layer_name)

    # ---- results ---------------------------------------------------------
    def _show_dataset(self, folder: Path, atlas: Path | None, name: str) -> None:
        """Add (or replace) the population stack, then the atlas if one fits its grid."""
        from brainvae.data.dataset import PreparedDataset
        from brainvae.napari.population_layers import atlas_file_layer_data, dataset_layer_data

        try:
            dataset = PreparedDataset.open(folder)
            layers = [dataset_layer_data(dataset, name=name)]
        except Exception as err:  # noqa: BLE001
            self.fail(err)
            return
        atlas_problem = None
        if atlas is not None:
            try:
                layers.append(atlas_file_layer_data(atlas, dataset))
            except Exception as err:  # noqa: BLE001 - the population is still worth showing
                atlas_problem = str(err)
        self._dataset = dataset
        for data, kwargs, kind in layers:
            if kwargs["name"] in self._viewer.layers:
                self._viewer.layers.remove(kwargs["name"])
            layer = getattr(self._viewer, f"add_{kind}")(data, **kwargs)
            if kind == "image":
                self._stack_layer = layer
            else:
                layer.contour = 1  # outlines keep the anatomy underneath readable
                if border_share(data) > 0.5:  # a coarse grid: outlines cover most regions
                    layer.opacity = min(float(layer.opacity), COARSE_ATLAS_OPACITY)
        self._viewer.layers.selection.active = self._stack_layer
        self._viewer.reset_view()
        self._viewer.dims.set_current_step(0, 0)
        centre_slices(self._viewer, self._stack_layer)
        from napari.utils.notifications import show_warning

        for warning in (
            dataset.report.get("warnings", []) if isinstance(dataset.report, dict) else []
        ):
            show_warning(f"brainvae: {warning}")
        if atlas_problem is not None:
            show_warning(f"brainvae: atlas not shown: {atlas_problem}")
        self.progress.max = max(len(dataset), 1)
        self.progress.value = self.progress.max
        notes = _report_notes(dataset.report)
        if atlas_problem is not None:
            notes.append("atlas not shown (grid differs)")
        self.status.value = "; ".join(
            [f"{len(dataset)} scans, {' x '.join(map(str, dataset.scan_shape))}", *notes]
        )
        self._show_current_subject()

    def _show_current_subject(self, *_args) -> None:
        if self._dataset is None or self._stack_layer is None:
            return
        if self._stack_layer not in self._viewer.layers:
            self.subject_info.show_row(None)
            return
        index = int(self._viewer.dims.current_step[0])
        table = self._dataset.metadata
        if 0 <= index < len(table):
            self.subject_info.show_row(table.iloc[index].to_dict())


def _report_notes(report: dict) -> list[str]:
    """Short warnings from a dataset's report.json that the user should not miss."""
    if not isinstance(report, dict):
        return []
    notes = []
    if report.get("skipped"):
        notes.append(f"{len(report['skipped'])} file(s) skipped (see report.json)")
    if report.get("affine_differs"):
        notes.append(f"{len(report['affine_differs'])} file(s) with a different voxel grid")
    if report.get("nonfinite_replaced"):
        notes.append(f"NaN/Inf set to 0 in {len(report['nonfinite_replaced'])} file(s)")
    return notes


def _population_name(source: str, folder: Path) -> str:
    """Layer name: the sample's dimensionality, or the folder the scans came from."""
    if source == SAMPLE_2D:
        return "population (sample 2D)"
    if source == SAMPLE_3D:
        return "population (sample 3D)"
    return f"population ({folder.name})"
