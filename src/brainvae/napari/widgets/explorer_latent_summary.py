"""What the explorer's sliders say about each latent: its measure (KL to the prior, or the sd
of point codes), whether it is active, its rank, and the words of labels, tooltips and the
detail line.

No widgets here: `summarise_latents` runs in the encoding worker, and the text functions are
pure over a LatentSummary, the slider ranges and the code, so latent_sliders only places them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from brainvae.analysis.latent_activity import ACTIVE_VARIANCE

if TYPE_CHECKING:
    from brainvae.analysis.latent_activity import LatentActivity
    from brainvae.analysis.latent_space import LatentStatistics, SliderRanges

INACTIVE_TOOLTIP = (
    "Inactive: this latent's posterior mean hardly changes from scan to scan (its variance "
    f"over the population's scans is <= {ACTIVE_VARIANCE:g}, in units of the N(0, 1) prior). "
    "Every scan gets about the same value, so the decoder cannot use it to tell scans apart. "
    "Moving its slider may still change the decoded brain (the decoder was never taught to "
    "ignore it), and its KL to the prior can still be large when that constant value sits "
    "away from 0."
)


@dataclass(frozen=True)
class LatentSummary:
    """What the sliders show about each latent of one model over one population.

    statistics: the population's LatentStatistics; activity: its LatentActivity (variance of the
    posterior means, active flags); measure: "KL" (mean KL to the prior in nats, VAEs) or "sd"
    (sd of the scans' codes, point codes such as PCA); measure_values: (L,) that measure;
    ranking: (L,) latent indices by measure, largest first (ties by index).
    """

    statistics: LatentStatistics
    activity: LatentActivity
    measure: str
    measure_values: np.ndarray
    ranking: np.ndarray

    @property
    def active(self) -> np.ndarray:
        return self.activity.active


def summarise_latents(statistics: LatentStatistics) -> LatentSummary:
    """Per-latent measure, activity and ranking (run in the encoding worker: O(N L) work)."""
    activity = statistics.activity
    if statistics.kl is not None:
        measure, values = "KL", np.asarray(statistics.kl, dtype=np.float64)
    else:
        measure, values = "sd", np.asarray(statistics.sd, dtype=np.float64)
    ranking = np.lexsort((np.arange(values.size), -values))  # largest first, ties by index
    return LatentSummary(statistics, activity, measure, values, ranking)


def measure_words(measure: str) -> str:
    """'KL to the prior' or 'sd of the codes'."""
    return "KL to the prior" if measure == "KL" else "sd of the codes"


def header_text(summary: LatentSummary | None, point_codes: bool) -> tuple[str, str]:
    """The panel's header and its tooltip: what the number on each slider means."""
    measure = summary.measure if summary is not None else ("sd" if point_codes else "KL")
    words = "KL to the prior (nats)" if measure == "KL" else "sd of the scans' codes"
    noun = "Components" if point_codes else "Latents"
    tooltip = (
        "KL: mean KL divergence of each scan's posterior from the N(0, 1) prior, in nats; "
        "sd: spread of the scans' codes. 'inactive' latents:\n\n" + INACTIVE_TOOLTIP
    )
    return f"<b>{noun}</b>: the number is the {words}", tooltip


def latent_label(latent: int, summary: LatentSummary | None, bold: bool) -> str:
    """A slider's label: name, then KL (VAEs) or sd (PCA), and 'inactive' when it is."""
    name = f"z{latent + 1}"
    if bold:  # the one the detail line describes
        name = f"<b>{name}</b>"
    if summary is None:
        return name
    text = f"{name}  {summary.measure} {summary.measure_values[latent]:.2f}"
    return text + ("" if summary.active[latent] else "  inactive")


def latent_tooltip(
    latent: int, summary: LatentSummary | None, ranges: SliderRanges | None, measure: str
) -> str:
    """A slider's tooltip: what its label's numbers mean, and why it is inactive if so
    (`measure`: the family's, named before any population is encoded)."""
    if summary is None:
        return f"z{latent + 1}: encode a population to see its {measure_words(measure)}"
    stats = summary.statistics
    text = (
        f"z{latent + 1}: {measure_words(summary.measure)} "
        f"{summary.measure_values[latent]:.3f}{' nats' if summary.measure == 'KL' else ''}; "
        f"population mean {stats.mean[latent]:.2f}, sd {stats.sd[latent]:.3f}"
    )
    if ranges is not None and bool(ranges.prior_fallback[latent]):
        text += "; slider range from the prior: the codes barely vary (sd < 0.001)"
    if not summary.active[latent]:
        text += "\n\n" + INACTIVE_TOOLTIP
    return text


def latent_detail(
    latent: int, values: np.ndarray, ranges: SliderRanges | None, summary: LatentSummary | None
) -> str:
    """One paragraph on a latent: its value and slider range, measure, rank and activity."""
    text = f"<b>z{latent + 1}</b>: value {values[latent]:.3f}"
    if ranges is not None:
        text += f" (slider {ranges.low[latent]:.2f} to {ranges.high[latent]:.2f})"
    if summary is None:
        return text + "; encode a population for its statistics."
    rank = int(np.flatnonzero(summary.ranking == latent)[0]) + 1
    activity = summary.activity
    variance, threshold = activity.variance[latent], activity.threshold
    if activity.active[latent]:
        state = f"Active: its posterior means vary over the {activity.n_images} scans"
        state += f" (variance {variance:.3g} > {threshold:g})."
    else:
        state = f"Inactive: its posterior means hardly vary over the {activity.n_images}"
        state += f" scans (variance {variance:.2g} <= {threshold:g}), so every scan gets"
        state += " about the same value."
    return (
        f"{text}. {measure_words(summary.measure)} "
        f"{summary.measure_values[latent]:.3f}{' nats' if summary.measure == 'KL' else ''} "
        f"(rank {rank} of {values.size}). {state}"
    )
