"""What the commands show on the terminal while they work: a one-line percentage for the
analyses, a tqdm bar per training epoch, Ctrl-C that asks training to stop cleanly, and the
notes about resampled ROI files.

The use cases (brainvae.usecases) are generators that yield small progress reports and
return their result; the napari docks consume them in a worker, the commands here.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from brainvae.data.dataset import PreparedDataset

STEP_PERCENT = 5
"""The line is rewritten when the percentage crosses a multiple of this."""


def drive(
    steps: Generator[Any, None, Any],
    quiet: bool,
    describe: Callable[[Any], tuple[int, int, str]],
) -> Any:
    """Exhaust `steps` and return its value; describe(report) -> (done, total, text after %)."""
    shown = -1
    while True:
        try:
            report = next(steps)
        except StopIteration as finished:
            if not quiet and shown >= 0:
                print(file=sys.stderr)
            return finished.value
        done, total, text = describe(report)
        percent = 100 * done // max(total, 1)
        if not quiet and percent // STEP_PERCENT != shown:
            shown = percent // STEP_PERCENT
            print(f"\r{text}: {percent:3d} %", end="", file=sys.stderr, flush=True)


STAGE_WIDTH = 36
"""Stage names are padded to this width, so a shorter one overwrites a longer one on the
progress line."""


def drive_stages(steps: Generator[Any, None, Any], quiet: bool, title: str) -> Any:
    """drive() for reports with a stage, done and total: "title: stage   NN %"."""
    return drive(steps, quiet, lambda r: (r.done, r.total, f"{title}: {r.stage:<{STAGE_WIDTH}}"))


def show_batch(bar: Any, report: Any, description: str) -> Any:
    """Advance the progress bar (one bar per epoch); a new bar when a new epoch starts."""
    from tqdm import tqdm

    if bar is None or bar.epoch != report.epoch:
        if bar is not None:
            bar.close()
        bar = tqdm(total=report.n_batches, desc=f"{description} epoch {report.epoch}", unit="batch")
        bar.epoch = report.epoch
        bar.update(report.batch - 1)
    bar.update(report.batch - bar.n)
    bar.set_postfix(loss=f"{report.loss:.4g}", img_s=f"{report.images_per_s:.0f}", refresh=False)
    return bar


def epoch_postfix(report: Any) -> dict[str, str]:
    """The bar's postfix after an epoch: its losses (validation at z = mu) and active units."""
    from brainvae.training.progress import VALIDATION_TAG

    values = {"loss": f"{report.train_loss:.4g}", "active": str(report.active_units)}
    if report.val_loss is not None:
        values[f"val {VALIDATION_TAG}"] = f"{report.val_loss:.4g}"
    return values


class CtrlCSetsEvent:
    """Context: SIGINT sets the event (the trainer then checkpoints); a second one interrupts."""

    def __init__(self, event: Any):
        self.event = event
        self.previous = None

    def __enter__(self) -> CtrlCSetsEvent:
        import signal

        def handler(signum, frame):
            if self.event.is_set():
                raise KeyboardInterrupt
            self.event.set()

        try:
            self.previous = signal.signal(signal.SIGINT, handler)
        except ValueError:  # not the main thread: leave Ctrl-C alone
            self.previous = None
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def read_rois_noting(
    path: str,
    dataset: PreparedDataset,
    spatial: tuple[int, ...],
    command: str,
    quiet: bool,
) -> Any:
    """The ROI labels on the dataset's grid (read once); how they were resampled, if they
    were, goes to stderr unless quiet."""
    from brainvae.data.roi_files import load_rois

    rois = load_rois(path, dataset, spatial)
    if rois.resampling and not quiet:
        print(f"brainvae {command}: {path}: {rois.resampling}", file=sys.stderr)
    return rois.labels
