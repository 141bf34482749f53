"""The explorer's latent sliders, one page at a time: sorted, filtered, searched.

A model may have 1,000 latents; one slider each made a 26,642 px tall dock that blocked the GUI
for 16 s. Here at most `page_size` slider widgets ever exist; they are reused for whichever
latents the page shows. The code vector lives here, whole, so latents off the page keep their
values when the page, the order or the filter changes. The panel knows nothing of napari: it
emits `moved(latent, value)` when the user moves a slider and `selected(latent)` when a latent
is chosen; the explorer connects those to its decoder. What the labels, tooltips and the detail
line say comes from explorer_latent_summary.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Container, FloatSlider, Label, LineEdit, PushButton
from psygnal import Signal

from brainvae.napari.widgets.dock_base import wrapping
from brainvae.napari.widgets.explorer_latent_summary import (
    INACTIVE_TOOLTIP,
    header_text,
    latent_detail,
    latent_label,
    latent_tooltip,
)

if TYPE_CHECKING:
    from brainvae.analysis.latent_space import SliderRanges
    from brainvae.napari.widgets.explorer_latent_summary import LatentSummary

PAGE_SIZE = 16
"""Slider widgets on one page (the most that exist at any time)."""
SLIDER_STEPS = 200
"""Slider resolution: steps across a latent's range."""
BY_INDEX, BY_MEASURE = "index", "measure"
NO_SELECTION = "Press a slider (or find a latent) to see its statistics and value here."


def parse_latent_query(text: str, latent_dim: int) -> np.ndarray | None:
    """Latent indices (0-based) named by a search such as "z12", "12", "3, 7" or "z10-z20".

    Names are 1-based like the labels (z12 is index 11). None for an empty search; a
    ValueError with a readable message for anything else that names no latent.
    """
    cleaned = re.sub(r"\s*-\s*", "-", text.strip().lower())
    if not cleaned:
        return None
    found: list[int] = []
    for token in re.split(r"[,;\s]+", cleaned):
        if not token:
            continue
        match = re.fullmatch(r"z?(\d+)(?:-z?(\d+))?", token)
        if match is None:
            raise ValueError(f"'{token}' is not a latent: type z12, 12, 3, 7 or z10-z20")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) else first
        first, last = min(first, last), max(first, last)
        if first < 1 or last > latent_dim:
            raise ValueError(f"z{last if last > latent_dim else first} does not exist: "
                             f"the model has z1..z{latent_dim}")  # fmt: skip
        found.extend(range(first - 1, last))
    return np.unique(np.asarray(found, dtype=int))


class LatentSliders(Container):
    """A page of latent sliders with order, an active-only filter, search and a detail line.

    reset(latent_dim, point_codes) for a new model; set_summary, set_ranges and set_values as
    the explorer learns them. `values` is the whole code (L,); the page only shows part of it.
    """

    moved = Signal(int, float)  # latent, value: the user moved its slider
    selected = Signal(int)  # latent: chosen (slider pressed or moved, found, highlighted)

    def __init__(self, page_size: int = PAGE_SIZE) -> None:
        super().__init__(labels=False)
        self.page_size = page_size
        self.values = np.zeros(0)
        self.summary: LatentSummary | None = None
        self.ranges: SliderRanges | None = None
        self.point_codes = False
        self.page = 0
        self.selected_latent: int | None = None
        self._search: np.ndarray | None = None
        self._slot_latents: list[int] = []  # latent shown by each slider slot

        self.header = Label(value="<b>Latents</b>")
        self.order = ComboBox(
            choices=self._order_choices,  # a callable: napari's reset_choices keeps both
            value=BY_INDEX,
            tooltip="Order of the sliders: by index, or by KL / sd, largest first",
        )
        self.active_only = CheckBox(text="active latents only", value=False)
        self.active_only.tooltip = (
            "Show only latents whose posterior means vary over the scans.\n\n" + INACTIVE_TOOLTIP
        )
        self.find = LineEdit(tooltip="Show latents by name: z12, 12, 3, 7 or z10-z20")
        self.find.native.setPlaceholderText("find: z12, 3, 7, z10-z20")
        self.find.native.setClearButtonEnabled(True)
        self.previous_page = PushButton(text="◀", tooltip="Previous page of latents")
        self.next_page = PushButton(text="▶", tooltip="Next page of latents")
        for button in (self.previous_page, self.next_page):
            button.native.setMaximumWidth(32)
        self.page_info = Label(value="")
        self.sliders = Container(labels=True)  # the dock scrolls; one page is never too tall
        self.detail = Label(value=NO_SELECTION)
        wrapping(self.detail)
        order_row = Container(
            widgets=[Label(value="order"), self.order], layout="horizontal", labels=False
        )
        page_row = Container(
            widgets=[self.active_only, self.previous_page, self.page_info, self.next_page],
            layout="horizontal",
            labels=False,
        )
        for row in (order_row, page_row):
            row.margins = (0, 0, 0, 0)
        self.margins = (0, 0, 0, 0)
        # the detail sits above the page, where the eye is, as tall as its wrapped text
        self._fit_detail = _keep_tall_enough(self.detail, min_lines=2)
        self.extend([self.header, order_row, page_row, self.find, self.detail, self.sliders])

        self.order.changed.connect(self._on_view_changed)
        self.active_only.changed.connect(self._on_view_changed)
        self.find.changed.connect(self._on_search)
        self.previous_page.changed.connect(lambda *_: self.show_page(self.page - 1))
        self.next_page.changed.connect(lambda *_: self.show_page(self.page + 1))

    # ---- inputs from the explorer ------------------------------------------------------
    @property
    def latent_dim(self) -> int:
        return int(self.values.size)

    def reset(self, latent_dim: int, point_codes: bool = False) -> None:
        """A new model: all latents at 0, index order, no search; the filter on when the
        latents do not fit one page. Builds at most one page of slider widgets."""
        self.values = np.zeros(latent_dim)
        self.summary = None
        self.ranges = None
        self.point_codes = point_codes
        self.selected_latent = None
        self._show_detail(NO_SELECTION)
        self._search = None
        n_slots = min(latent_dim, self.page_size)
        if len(self.sliders) != n_slots:
            self.sliders.clear()
            for slot in range(n_slots):
                slider = FloatSlider(min=-3.0, max=3.0, step=6.0 / SLIDER_STEPS, value=0.0)
                slider.changed.connect(partial(self._on_slot_moved, slot))
                self._connect_press(slider, slot)
                self.sliders.append(slider)
        self._slot_latents = list(range(n_slots))
        with self.order.changed.blocked(), self.active_only.changed.blocked():
            self.order.reset_choices()  # "KL" or "sd" for this family
            self.order.value = BY_MEASURE if latent_dim > self.page_size else BY_INDEX
            self.active_only.value = latent_dim > self.page_size
        with self.find.changed.blocked():
            self.find.value = ""
        self._update_header()
        self.show_page(0)

    def set_summary(self, summary: LatentSummary | None) -> None:
        """The population's per-latent statistics: labels, order and filter use them."""
        self.summary = summary
        self._update_header()
        self.show_page(0)

    def set_ranges(self, ranges: SliderRanges) -> None:
        """Slider bounds for every latent (the page's sliders take theirs at once)."""
        self.ranges = ranges
        self._refresh_slots()

    def set_values(self, code: np.ndarray) -> None:
        """Show a whole new code (L,): values off the page are stored for when it shows them."""
        code = np.asarray(code, dtype=np.float64).reshape(-1)
        if code.shape != self.values.shape:
            raise ValueError(f"code must have {self.latent_dim} values, got {code.shape}")
        self.values = code.copy()
        self._refresh_slots()

    # ---- what is shown -------------------------------------------------------------------
    def listed_latents(self) -> np.ndarray:
        """Latents the pages walk through: searched ones, else all (or the active ones), in
        the chosen order."""
        order = np.arange(self.latent_dim)
        if self.summary is not None and self.order.value == BY_MEASURE:
            order = self.summary.ranking
        if self._search is not None:
            return order[np.isin(order, self._search)]
        if self.summary is not None and self.active_only.value:
            return order[self.summary.active[order]]
        return order

    @property
    def n_pages(self) -> int:
        return max(1, -(-len(self.listed_latents()) // self.page_size))

    def shown_latents(self) -> list[int]:
        """Latents whose sliders the current page shows, top to bottom."""
        return list(self._slot_latents)

    def slider_for(self, latent: int) -> FloatSlider | None:
        """The slider showing this latent, or None when it is not on the page."""
        if latent in self._slot_latents:
            return self.sliders[self._slot_latents.index(latent)]
        return None

    def show_page(self, page: int) -> None:
        """Show page `page` (clipped to the pages there are) of the listed latents."""
        listed = self.listed_latents()
        self.page = int(np.clip(page, 0, self.n_pages - 1))
        start = self.page * self.page_size
        on_page = listed[start : start + len(self.sliders)]
        self._slot_latents = [int(k) for k in on_page]
        for slot, slider in enumerate(self.sliders):
            slider.visible = slot < len(on_page)
        self._refresh_slots()
        self.previous_page.enabled = self.page > 0
        self.next_page.enabled = self.page < self.n_pages - 1
        self.page_info.value = self._page_text(listed, start, len(on_page))

    def select(self, latent: int) -> None:
        """Choose a latent: its page comes up (a search for it when filtered out) and the
        detail line describes it."""
        if not 0 <= latent < self.latent_dim:
            return
        listed = self.listed_latents()
        if latent not in listed:  # filtered out or not searched: find it by name
            with self.find.changed.blocked():
                self.find.value = f"z{latent + 1}"
            self._search = np.array([latent])
            listed = self.listed_latents()
        self.show_page(int(np.flatnonzero(listed == latent)[0]) // self.page_size)
        self._select(latent)
        slider = self.slider_for(latent)
        if slider is not None:
            slider.native.setFocus()

    # ---- labels and the detail line ------------------------------------------------------
    @property
    def measure(self) -> str:
        return "sd" if self.point_codes else "KL"

    def label_of(self, latent: int) -> str:
        """A slider's label: name, then KL (VAEs) or sd (PCA), and 'inactive' when it is."""
        return latent_label(latent, self.summary, bold=latent == self.selected_latent)

    def tooltip_of(self, latent: int) -> str:
        """A slider's tooltip: what its label's numbers mean, and why it is inactive if so."""
        return latent_tooltip(latent, self.summary, self.ranges, self.measure)

    def detail_of(self, latent: int) -> str:
        """One paragraph on a latent: measure, rank, activity, and its slider's value."""
        return latent_detail(latent, self.values, self.ranges, self.summary)

    # ---- internals -----------------------------------------------------------------------
    def _order_choices(self, *_args) -> list[tuple[str, str]]:
        return [("z1, z2, ... (index)", BY_INDEX), (f"{self.measure}, largest first", BY_MEASURE)]

    def _update_header(self) -> None:
        self.header.value, self.header.tooltip = header_text(self.summary, self.point_codes)

    def _page_text(self, listed: np.ndarray, start: int, count: int) -> str:
        if self._search is not None:
            kind = "found"
        elif self.summary is not None and self.active_only.value:
            kind = "active"
        else:
            kind = "latents"
        if count == 0:
            return {"found": "none found", "active": "none active: untick to see all"}.get(
                kind, "no latents"
            )
        return f"{start + 1}-{start + count} of {len(listed)} {kind}"

    def _refresh_slots(self) -> None:
        """Put each shown latent's range, value, label and tooltip on its slot, silently."""
        for slot, latent in enumerate(self._slot_latents):
            slider = self.sliders[slot]
            if self.ranges is not None:
                low, high = float(self.ranges.low[latent]), float(self.ranges.high[latent])
            else:
                low, high = -3.0, 3.0
            place_slider(slider, low, high, float(self.values[latent]), (high - low) / SLIDER_STEPS)
            slider.label = self.label_of(latent)
            tooltip = self.tooltip_of(latent)
            slider.tooltip = tooltip
            labelled = slider._labeled_widget()  # the row's name label explains it too
            if labelled is not None:
                labelled._label_widget.tooltip = tooltip
        if self.selected_latent is not None:
            self._show_detail(self.detail_of(self.selected_latent))

    def _on_view_changed(self, *_args) -> None:
        self.show_page(0)

    def _on_search(self, text: str) -> None:
        try:
            self._search = parse_latent_query(text, self.latent_dim)
        except ValueError as err:
            self._search = np.zeros(0, dtype=int)
            self.page_info.value = str(err)
            self._slot_latents = []
            for slider in self.sliders:
                slider.visible = False
            self.previous_page.enabled = self.next_page.enabled = False
            return
        self.show_page(0)
        if self._search is not None and len(self._search) == 1:
            self._select(int(self._search[0]))

    def _on_slot_moved(self, slot: int, value: float) -> None:
        latent = self._slot_latents[slot]
        self.values[latent] = float(value)
        self._select(latent)
        self.moved.emit(latent, float(value))

    def _show_detail(self, text: str) -> None:
        self.detail.value = text
        self._fit_detail()

    def _select(self, latent: int) -> None:
        previous, self.selected_latent = self.selected_latent, latent
        for shown in {previous, latent} & set(self._slot_latents):  # the name in bold moves
            self.slider_for(shown).label = self.label_of(shown)
        self._show_detail(self.detail_of(latent))
        self.selected.emit(latent)

    def _connect_press(self, slider: FloatSlider, slot: int) -> None:
        """Pressing a slider's handle chooses its latent (the detail line shows it)."""
        from qtpy.QtWidgets import QSlider

        handle = slider.native.findChild(QSlider)
        if handle is not None:
            handle.sliderPressed.connect(
                lambda: slot < len(self._slot_latents) and self._select(self._slot_latents[slot])
            )


def _keep_tall_enough(label: Label, min_lines: int) -> Callable[[], None]:
    """Give a wrapping label the height its text needs at its current width (a scroll area
    sizes its form without asking labels for height-for-width, so wrapped lines were cut).
    Returns the fitting function: call it after changing the text."""
    from qtpy.QtCore import QEvent

    from brainvae.napari.widgets.qt_events import on_event

    native = label.native
    floor = min_lines * native.fontMetrics().lineSpacing()

    def fit() -> None:
        height = max(floor, native.heightForWidth(max(native.width(), 1)))
        if native.minimumHeight() != height:
            native.setMinimumHeight(height)

    on_event(native, QEvent.Type.Resize, fit)
    fit()
    return fit


def place_slider(
    slider: FloatSlider, low: float, high: float, value: float, step: float | None = None
) -> None:
    """Show `value` on a slider whose range is [low, high] widened to include it, silently.

    The slider rounds its bounds (6 decimals), so the shown value is clipped to them; the
    exact code stays with the panel.
    """
    with slider.changed.blocked():
        slider.range = (min(low, value), max(high, value))
        if step is not None:
            slider.step = step
        slider.value = float(np.clip(value, slider.min, slider.max))
