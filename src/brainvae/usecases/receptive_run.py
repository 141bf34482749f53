"""The receptive run: perturb each ROI at each weight, encode, and score the fields.

receptive_run yields the analysis' progress reports (one per encoder pass) and returns a
ReceptiveRun. The inputs it needs from a dataset (the ROIs present and their names, the scans
of a split or of some subjects) are chosen here too, and LongRunTimer estimates from the
reports how long a run will take, so a command and a dock announce the same long runs.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from brainvae.analysis.roi_masks import roi_name

if TYPE_CHECKING:
    import numpy as np

    from brainvae.data.dataset import PreparedDataset

LONG_RUN_S = 60.0
"""A run estimated to take longer than this is announced (with how to shorten it)."""
TIMED_CALLS, TIMED_S = 20, 1.0
"""Encoder passes are timed (after the first, which warms up) until this many or this long."""


@dataclass(frozen=True)
class ReceptiveRun:
    """A finished run: the ReceptiveField, its DisentanglementScores over the active latents
    (None with one ROI) and the model it probed (so another dock compares like with like)."""

    result: Any
    scores: Any
    model: Any = None


def receptive_run(
    model: Any,
    images: np.ndarray,
    rois: np.ndarray,
    roi_names: Mapping[int, str] | Sequence[str],
    weights: Sequence[float],
    kind: str,
    one_sided: bool,
    indices: Sequence[int] | None = None,
    *,
    batch_size: int = 64,
    amplitude: float | None = None,
) -> Generator[Any, None, ReceptiveRun]:
    """Yield ReceptiveFieldProgress reports; return the ReceptiveRun.

    rois: a label image with {label: name}, or boolean masks with their names in order.
    """
    from brainvae.analysis.disentanglement import disentanglement_scores
    from brainvae.analysis.receptive_field import receptive_field_steps

    result = yield from receptive_field_steps(
        model, images, rois, roi_names, weights, kind, one_sided, batch_size,
        amplitude=amplitude, indices=indices,
    )  # fmt: skip
    scores = disentanglement_scores(result.impact, result.active) if result.n_rois >= 2 else None
    return ReceptiveRun(result, scores, model)


@dataclass(frozen=True)
class PresentRois:
    """The ROIs with at least one voxel, {label: name}, and the named ones without any
    (as "name (label N)"), which a run skips and reports."""

    names: dict[int, str]
    skipped: list[str]


def present_rois(labels: np.ndarray, names: Mapping[int, str] | None) -> PresentRois:
    """Name every label present in the image (given names first, else roi_<label>)."""
    import numpy as np

    present = {int(v) for v in np.unique(labels) if v != 0}
    if not names:
        return PresentRois({label: roi_name(label) for label in sorted(present)}, [])
    skipped = [f"{names[label]} (label {label})" for label in sorted(names) if label not in present]
    chosen = {label: name for label, name in names.items() if label in present}
    chosen.update({label: roi_name(label) for label in present - set(names)})
    return PresentRois(chosen, skipped)


def chosen_scans(dataset: PreparedDataset, split: str, subjects: str | None) -> np.ndarray:
    """The rows of a split ("all" for every scan), narrowed to comma-separated subject ids;
    at least 2 (a receptive field fits a Gaussian over the scans)."""
    import numpy as np

    from brainvae.errors import DatasetError

    indices = np.arange(len(dataset)) if split == "all" else dataset.indices(split)
    chosen = f"split {split!r}"
    if subjects:
        indices = indices[subject_rows(dataset, subjects)[indices]]
        chosen += f" and subjects {subjects}"
    if len(indices) < 2:
        raise DatasetError(
            f"{dataset.path}: {chosen} has {len(indices)} image(s); a receptive field "
            "fits a Gaussian over the images and needs at least 2"
        )
    return indices


def subject_rows(dataset: PreparedDataset, subjects: str) -> np.ndarray:
    """(N,) bool: the rows of these comma-separated subject ids; an unknown id is an error."""
    import numpy as np

    from brainvae.errors import DatasetError

    wanted = [s.strip() for s in subjects.split(",") if s.strip()]
    known = dataset.metadata["subject_id"].astype(str)
    missing = sorted(set(wanted) - set(known))
    if missing:
        examples = ", ".join(sorted(set(known))[:5])
        raise DatasetError(
            f"{dataset.path}: no subject(s) {', '.join(missing)} in the dataset "
            f"(subjects look like {examples}, ...)"
        )
    return np.asarray(known.isin(wanted))


def about(seconds: float) -> str:
    """A duration as a person says it: 45 s, 18 min, 2 h 05 min."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes:02d} min"


def long_run_note(seconds: float, n_rois: int, n_weights: int, n_images: int) -> str:
    """One line: how long the run will take and what it grows with."""
    return (
        f"about {about(seconds)} for {n_rois} ROIs x {n_weights} weights x {n_images} images; "
        "fewer ROIs (a coarser atlas) or fewer images are faster"
    )


class LongRunTimer:
    """Times encoder passes from receptive_field_steps' reports, as they arrive.

    The time per pass is measured on this model, device and batch after the first pass (which
    warms up) and multiplied by the passes left (ROIs x perturbed weights x batches).
    """

    def __init__(self, over_s: float | None = None) -> None:
        import time

        self.clock = time.perf_counter
        self.begun = self.clock()
        self.over_s = LONG_RUN_S if over_s is None else over_s
        self.timed_from: tuple[float, int] | None = None
        self.decided = False

    def long_run_s(self, report: Any) -> float | None:
        """Once enough passes were timed: the whole run's estimated seconds if over over_s.
        None before, after, and for a short run (the answer is given once)."""
        if self.decided:
            return None
        now = self.clock()
        if self.timed_from is None:
            self.timed_from = (now, report.done)
            return None
        passes, spent = report.done - self.timed_from[1], now - self.timed_from[0]
        if passes < TIMED_CALLS and spent < TIMED_S:
            return None
        self.decided = True
        total_s = now - self.begun + spent / passes * (report.total - report.done)
        return total_s if total_s > self.over_s else None


def announce_long_run(steps, say, over_s: float | None = None):
    """Pass `steps` through; say(seconds) once if the run will take longer than over_s.
    Returns the steps' result."""
    timer = LongRunTimer(over_s)
    while True:
        try:
            report = next(steps)
        except StopIteration as finished:
            return finished.value
        seconds = timer.long_run_s(report)
        if seconds is not None:
            say(seconds)
        yield report
