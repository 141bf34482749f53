"""The latent explorer's exports: interpolation between two scans and the traversal of the
page's latents, as stack layers, a grid PNG or an animated GIF.

The panel owns its widgets and their rows in the explorer's form (one form, so its labels line
up with the explorer's); the numbers come from brainvae.analysis.latent_space, the decoding and
writing run in napari workers the explorer starts, and results from before a model or
population change are dropped (the explorer's `generation`).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from magicgui.widgets import Container, FileEdit, FloatSlider, Label, PushButton, SpinBox

from brainvae.napari.widgets.explorer_display import GRID_LAYER, SEE_EXPORT, with_leading_axis
from brainvae.napari.widgets.explorer_form import heading

if TYPE_CHECKING:
    from brainvae.analysis.latent_space import SliderRanges, TraversalGrid
    from brainvae.models.base import LatentModel
    from brainvae.napari.widgets.explorer_population import ExplorerScans
    from brainvae.napari.widgets.latent_sliders import LatentSliders


class ExplorerHost(Protocol):
    """What the panel uses of the explorer it sits in."""

    status: Label
    latents: LatentSliders
    scans: ExplorerScans
    ranges: SliderRanges | None

    @property
    def model(self) -> LatentModel | None: ...
    @property
    def code(self) -> np.ndarray: ...
    @property
    def generation(self) -> int: ...
    def fail(self, err: BaseException) -> None: ...
    def ready(self, population: bool = False) -> bool: ...
    def run_worker(self, worker: Any) -> None: ...
    def population_fits(self, report: bool) -> bool: ...
    def code_of_scan(self, index: int) -> np.ndarray: ...
    def set_code(self, code: np.ndarray) -> None: ...
    def model_placement(self) -> dict[str, Any]: ...
    def show_export(self, name: str, data: np.ndarray, placement: dict[str, Any]) -> None: ...


class ExportsPanel:
    """Interpolation from scan A to scan B (t moves the sliders; frames become a stack layer)
    and the traversal grid (a layer, a PNG or a GIF). `rows` go into the explorer's form."""

    def __init__(self, host: ExplorerHost, viewer: Any) -> None:
        self._host = host
        self._viewer = viewer
        self.last_grid: TraversalGrid | None = None
        self.scan_a = SpinBox(label="interpolate from scan", min=0, max=0, value=0)
        self.scan_b = SpinBox(label="to scan", min=0, max=0, value=0)
        self.t = FloatSlider(label="t", min=0.0, max=1.0, step=0.01, value=0.0)
        self.n_frames = SpinBox(label="frames", min=2, max=500, value=10)
        self.interpolation_button = PushButton(text="Export interpolation as stack layer")
        self.n_values = SpinBox(label="values per latent", min=2, max=41, value=7)
        self.grid_button = PushButton(
            text="Traversal grid as layer",
            tooltip="Rows: the latents on the slider page; placed right of the decode",
        )
        self.export_path = FileEdit(
            label="export to",
            mode="w",
            filter="*.png *.gif",
            tooltip="Base file name; Save PNG writes .png, Save GIF writes .gif",
        )
        self.png_button = PushButton(text="Save grid PNG")
        self.gif_button = PushButton(text="Save traversal GIF")
        export_buttons = Container(
            widgets=[self.png_button, self.gif_button], layout="horizontal", labels=False
        )
        headings = (
            heading("Interpolation between two scans"),
            heading("Traversal of the page's latents (rows) over their ranges"),
        )
        self.rows = [
            headings[0],
            self.scan_a, self.scan_b, self.t, self.n_frames, self.interpolation_button,
            headings[1],
            self.n_values, self.grid_button, self.export_path, export_buttons,
        ]  # fmt: skip
        self.full_width_rows = [export_buttons, *headings]  # no label column
        self.t.changed.connect(self._on_t_changed)
        self.scan_a.changed.connect(self._on_t_changed)
        self.scan_b.changed.connect(self._on_t_changed)
        self.interpolation_button.changed.connect(self.export_interpolation)
        self.grid_button.changed.connect(self.show_traversal_grid)
        self.png_button.changed.connect(lambda *_: self.save_traversal("png"))
        self.gif_button.changed.connect(lambda *_: self.save_traversal("gif"))

    def set_enabled(self, enabled: bool) -> None:
        """The buttons work once a model is loaded."""
        for button in (self.interpolation_button, self.grid_button, self.png_button,
                       self.gif_button):  # fmt: skip
            button.enabled = enabled

    def set_scan_count(self, n_scans: int) -> None:
        """A new population: the scan boxes reach its last scan; B starts at scan 1."""
        for spin in (self.scan_a, self.scan_b):
            spin.max = n_scans - 1
        self.scan_b.value = min(1, n_scans - 1)

    # ---- interpolation ------------------------------------------------------------------
    def interpolation_codes(self) -> np.ndarray:
        """(frames, L) codes from scan A to scan B."""
        from brainvae.analysis.latent_space import interpolation_codes

        start = self._host.code_of_scan(self.scan_a.value)
        end = self._host.code_of_scan(self.scan_b.value)
        return interpolation_codes(start, end, self.n_frames.value)

    def _on_t_changed(self, *_args) -> None:
        host = self._host
        if host.model is None or not host.population_fits(report=False):
            return
        start = host.code_of_scan(self.scan_a.value)
        end = host.code_of_scan(self.scan_b.value)
        t = float(self.t.value)
        host.set_code((1.0 - t) * start + t * end)

    def export_interpolation(self, *_args) -> None:
        """Decode the frames from scan A to scan B (in a worker) into a stack layer."""
        from napari.qt.threading import create_worker

        from brainvae.analysis.latent_space import decode_codes

        host = self._host
        if not host.ready(population=True):
            return
        codes = self.interpolation_codes()
        a, b = self.scan_a.value, self.scan_b.value
        worker = create_worker(decode_codes, host.model, codes)
        worker.returned.connect(partial(self._on_interpolation, host.generation, a, b))
        host.status.value = f"Decoding {len(codes)} frames..."
        host.run_worker(worker)

    def _on_interpolation(self, generation: int, a: int, b: int, frames: np.ndarray) -> None:
        host = self._host
        if generation != host.generation:
            return
        placement = with_leading_axis(host.scans.placement, "frame")
        host.show_export(f"interpolation scan {a} to {b}", frames, placement)
        host.status.value = (
            f"{len(frames)} frames from scan {a} to scan {b} (axis 'frame'), placed right of "
            f"the scan and the decode; {SEE_EXPORT}"
        )

    # ---- traversal ----------------------------------------------------------------------
    def traversal_inputs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(base code, latents, values): each latent on the slider page (in its order) swept
        over its slider range; the page bounds the grid (a 1,000-latent model, 16 rows)."""
        from brainvae.analysis.latent_space import traversal_values

        latents = np.asarray(self._host.latents.shown_latents(), dtype=int)
        if latents.size == 0:
            raise ValueError("no latent on the slider page: clear the search or the filter")
        return (
            self._host.code,
            latents,
            traversal_values(self._host.ranges, latents, self.n_values.value),
        )

    def show_traversal_grid(self, *_args) -> None:
        """Rows = latents, columns = values over each slider's range, as one mosaic layer."""
        from napari.qt.threading import create_worker

        from brainvae.analysis.latent_space import traversal_grid

        host = self._host
        if not host.ready():
            return
        try:
            inputs = self.traversal_inputs()
        except ValueError as err:
            host.fail(err)
            return
        worker = create_worker(traversal_grid, host.model, *inputs)
        worker.returned.connect(partial(self._on_traversal, host.generation))
        host.status.value = "Decoding the traversal grid..."
        host.run_worker(worker)

    def _on_traversal(self, generation: int, grid: TraversalGrid) -> None:
        from brainvae.analysis.traversal_pictures import traversal_mosaic

        host = self._host
        if generation != host.generation:
            return
        self.last_grid = grid
        # right of the scan and the decode; the camera stays on the brain being inspected
        host.show_export(GRID_LAYER, traversal_mosaic(grid), host.model_placement())
        cols = grid.images.shape[1]
        host.status.value = (
            f"Traversal grid: rows {_names(grid.latents)} (top to bottom), {cols} values each "
            "from the slider's low end (left) to its high end (right); placed right of the "
            f"decode: {SEE_EXPORT}"
        )

    def save_traversal(self, kind: str, path: str | Path | None = None) -> None:
        """Write the traversal as a grid PNG or an animated GIF (computed in a worker)."""
        from napari.qt.threading import create_worker

        host = self._host
        if not host.ready():
            return
        target = path if path is not None else self.export_path.value
        if target in (None, "") or str(target) in ("", "."):
            host.fail(ValueError("choose a file in 'export to' first"))
            return
        target = Path(target).with_suffix(f".{kind}")
        try:
            inputs = self.traversal_inputs()
        except ValueError as err:
            host.fail(err)
            return
        worker = create_worker(
            _export_traversal,
            host.model,
            *inputs,
            target,
            kind,
            self.axial_slice(),
            host.scans.display_limits,
        )
        worker.returned.connect(self._on_exported)
        host.status.value = f"Writing {target.name}..."
        host.run_worker(worker)

    def _on_exported(self, path: Path) -> None:
        self._host.status.value = f"Saved {path}"

    def axial_slice(self) -> int | None:
        """For 3D models, the slice of axis 0 the viewer shows over the decoded volume."""
        model = self._host.model
        if model is None or model.config.dims != 3:
            return None
        length = model.config.input_shape[0]
        placement = self._host.scans.placement
        scale = placement.get("scale", (1.0,) * 3)[0]
        translate = placement.get("translate", (0.0,) * 3)[0]
        dims = self._viewer.dims
        if dims.ndim < 3:
            return length // 2
        world = dims.point[dims.ndim - 3]
        return int(np.clip(round((world - translate) / scale), 0, length - 1))


def _names(latents: np.ndarray) -> str:
    """z-names of a few latents: 'z3, z1, z7', shortened when long."""
    names = [f"z{k + 1}" for k in np.asarray(latents).tolist()]
    return ", ".join(names) if len(names) <= 8 else ", ".join(names[:8]) + ", ..."


def _export_traversal(
    model, base, latents, values, path: Path, kind: str, slice_index, limits
) -> Path:
    """Worker body: decode the traversal and write it as a PNG grid or a GIF."""
    from brainvae.analysis.latent_space import traversal_grid
    from brainvae.analysis.traversal_pictures import traversal_animation_frames
    from brainvae.exports.pictures import save_gif, save_labelled_traversal_png

    grid = traversal_grid(model, base, latents, values)
    if kind == "png":
        index = slice_index if grid.images.ndim == 5 else None
        return save_labelled_traversal_png(grid, path, index, limits)
    return save_gif(traversal_animation_frames(grid, slice_index), path, limits=limits)
