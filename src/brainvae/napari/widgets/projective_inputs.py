"""The projective fields dock's sweep form: its widgets and fixed choices, and the values it
reads checked (the latents to sweep, the base codes a population offers, the ROIs a labels
layer holds)."""

from __future__ import annotations

from typing import Any

import numpy as np

from brainvae.napari.widgets.analysis_inputs import label_names
from brainvae.number_lists import number_list

BASES = (("population mean", "mean"), ("zero (the prior's mean)", "zero"))
SCHEMES = (
    ("paper: cyan +, magenta \u2212, yellow large", "paper"),
    ("rgb: green +, red \u2212, blue large", "rgb"),
)
LIMIT_CHOICES = (
    ("per latent (each fills the scale)", "per-latent"),
    ("shared (latents compare)", "shared"),
)
UNITS = (("population sd of the latent", "sd"), ("absolute (prior sd)", "prior"))
NO_ROIS = "(no ROIs)"


def sweep_form(base_choices: Any) -> tuple[Any, ...]:
    """The sweep's widgets: latents, base code (choices from `base_choices`), preset, from c,
    to c, step, small/large split and units of c."""
    from magicgui.widgets import ComboBox, FloatSpinBox, LineEdit

    from brainvae.analysis.projective_sweep import SWEEP_PRESETS

    latents = LineEdit(
        label="latents", value="", tooltip="1-based, comma separated (1, 3, 4); empty: all"
    )
    base = ComboBox(label="base code", choices=base_choices)
    preset = ComboBox(label="preset", choices=tuple(SWEEP_PRESETS), value="prior")
    low = FloatSpinBox(label="from c", min=-1000, max=1000, step=0.5)
    high = FloatSpinBox(label="to c", min=-1000, max=1000, step=0.5)
    step = FloatSpinBox(label="step", min=1e-4, max=100, step=0.005)
    step.native.setDecimals(4)
    split = FloatSpinBox(label="small/large split |c|", min=1e-4, max=1000, step=0.5)
    units = ComboBox(label="units of c", choices=UNITS)
    return latents, base, preset, low, high, step, split, units


def base_choices(table: Any) -> list[tuple[str, str]]:
    """The base codes: the population mean, zero, and each subject of the scan table."""
    subjects = []
    if table is not None and "subject_id" in table:
        subjects = [(f"subject {s}", str(s)) for s in sorted(set(map(str, table["subject_id"])))]
    return [*BASES, *subjects]


def latent_indices(text: str | None, latent_dim: int) -> list[int]:
    """0-based indices from a 1-based, comma separated list; all latents when it is empty."""
    cleaned = str(text or "").replace(";", ",")
    if not cleaned.strip():
        return list(range(latent_dim))
    try:
        chosen = number_list(cleaned, int, prefix="z")
    except ValueError as err:
        raise ValueError(f"latents: {text!r} is not a list of numbers") from err
    wrong = [k for k in chosen if not 1 <= k <= latent_dim]
    if wrong:
        raise ValueError(f"latents {wrong} do not exist: the model has z1..z{latent_dim}")
    return [k - 1 for k in dict.fromkeys(chosen)]


def rois_of(layer: Any) -> tuple[np.ndarray | None, dict[int, str] | None]:
    """A labels layer's labels (a copy: painting after the run must not change what its matrix
    and outlines mean) and their names; (None, None) when it names no ROI."""
    names = label_names(layer)
    return (np.array(layer.data, copy=True), names) if names else (None, None)
