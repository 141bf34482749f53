"""Latent explorer latency: slider change -> updated layer data, p50 / p95, 2D and 3D.

Measured in a real napari viewer with the dock (run under a display or `xvfb-run -a`):
each trial sets one latent slider to a new value, then runs the Qt event loop until the
decoded layer's data is the image of that very request (these small models decode inline on
the GUI thread once their first decode has measured them under the inline budget; costlier
ones decode on the dock's background thread and cross back by a queued signal; the slot
writes the layer's pixels). Models are the `small` architecture with 8 latents, randomly initialised
(the speed does not depend on the weights). A second part drags a slider through 120 values
one per event-loop turn, and counts how many requests were decoded and how many were dropped
as stale (none need dropping when the GUI keeps up with the drag).

    xvfb-run -a python benchmarks/bench_latent_explorer.py [--trials 200]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

GOALS_MS = {2: 16.0, 3: 40.0}
SETTLE_SECONDS = 0.15
"""Idle time between trials: the canvas draws the previous update (software OpenGL under Xvfb
took 40-120 ms per draw on the shared 2-core machine), as it would between a user's moves."""
SHAPES = {2: (128, 160), 3: (40, 48, 40)}


class _Waiter:
    """Run a Qt event loop (as napari's own, which releases the GIL while idle) until a
    condition holds; the decoder's result signal re-checks it. A polling processEvents()
    loop would hold the GIL and starve the decoding thread, which an idle napari does not."""

    def __init__(self, signal) -> None:
        from qtpy.QtCore import QEventLoop

        self.loop = QEventLoop()
        self.condition = None
        signal.connect(self._check)

    def _check(self, *_args) -> None:
        if self.condition is not None and self.condition():
            self.loop.quit()

    def wait(self, condition, timeout: float = 30.0) -> None:
        from qtpy.QtCore import QTimer

        deadline = time.perf_counter() + timeout
        self.condition = condition
        while not condition():
            if time.perf_counter() > deadline:
                raise TimeoutError("the decoded layer did not update in time")
            QTimer.singleShot(1000, self.loop.quit)  # re-check the deadline now and then
            self.loop.exec()
        self.condition = None


def _settle(app, seconds: float) -> None:
    """Process events for `seconds` (sleeping in between), as an idle napari would."""
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        app.processEvents()
        time.sleep(0.002)


def measure(dims: int, trials: int) -> dict:
    import napari
    import torch
    from qtpy.QtWidgets import QApplication

    from brainvae.models import ModelConfig, build_model
    from brainvae.napari.widgets.explorer_display import DECODED_LAYER
    from brainvae.napari.widgets.latent_explorer import LatentExplorer

    torch.manual_seed(0)
    shape = SHAPES[dims]
    model = build_model(ModelConfig(input_shape=shape, latent_dim=8, architecture="small"))
    viewer = napari.Viewer(show=True)
    explorer = LatentExplorer(viewer)
    viewer.window.add_dock_widget(explorer, name="Latent explorer", area="right")
    app = QApplication.instance()
    explorer.range_mode.value = "fixed3"
    explorer.set_model(model.eval())
    counts = explorer._decoder.counts
    deadline = time.perf_counter() + 60
    while (explorer.shown_request != counts.submitted or explorer.busy) and (
        time.perf_counter() < deadline
    ):
        app.processEvents()
    layer = viewer.layers[DECODED_LAYER]
    explorer._decoder.decoded.disconnect(explorer._on_decoded)
    submitted_at: dict[int, float] = {}
    stages: dict[int, dict[str, float]] = {}  # request id -> its stage durations and end time

    def timed_update(result) -> None:
        slot_started = time.perf_counter()
        explorer._on_decoded(result)
        done = time.perf_counter()
        submitted_at[result.request.request_id] = result.request.submitted_at
        stages[result.request.request_id] = {
            "wake": result.started_at - result.request.submitted_at,
            "decode": result.decode_seconds,
            "deliver": slot_started - result.started_at - result.decode_seconds,
            "update": done - slot_started,
            "done": done,
        }

    explorer._decoder.decoded.connect(timed_update)
    waiter = _Waiter(explorer._decoder.decoded)  # connected after the dock's own slot
    rng = np.random.default_rng(0)
    latencies, trial_stages = [], []
    for trial in range(trials + 10):
        _settle(app, SETTLE_SECONDS)  # the canvas draws the previous update meanwhile
        slider = explorer.sliders[trial % 8]
        value = float(rng.uniform(slider.min, slider.max))
        started = time.perf_counter()
        slider.value = value
        target = counts.submitted
        waiter.wait(lambda target=target: explorer.shown_request == target)
        if trial >= 10:  # the first few warm caches and the GL texture
            latencies.append(stages[target]["done"] - started)
            stages[target]["submit"] = submitted_at[target] - started
            trial_stages.append(stages[target])
    assert layer.data.shape == shape
    # A fast drag: 120 values, one per event-loop turn, never waiting for a decode.
    submitted, decoded, dropped = counts.submitted, counts.decoded, counts.dropped
    slider = explorer.sliders[0]
    for value in np.linspace(slider.min, slider.max, 120):
        slider.value = float(value)
        app.processEvents()
    waiter.wait(lambda: explorer.shown_request == counts.submitted)
    drag = {
        "requests": counts.submitted - submitted,
        "decoded": counts.decoded - decoded,
        "dropped": counts.dropped - dropped,
        "last_shown": explorer.shown_request == counts.submitted,
    }
    explorer.shutdown()
    viewer.close()
    ms = np.asarray(latencies) * 1000
    return {
        "p50": float(np.percentile(ms, 50)),
        "p95": float(np.percentile(ms, 95)),
        "mean": float(ms.mean()),
        **{
            f"{stage}_mean": float(np.mean([t[stage] for t in trial_stages]) * 1000)
            for stage in ("submit", "wake", "decode", "deliver", "update")
        },
        **drag,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    args = parser.parse_args()
    import os

    print(
        f"CPU cores: {os.cpu_count()}, load average before: {os.getloadavg()[0]:.1f}, "
        f"trials per model: {args.trials}"
    )
    for dims in (2, 3):
        result = measure(dims, args.trials)
        goal = GOALS_MS[dims]
        verdict = "met" if result["p95"] <= goal else "NOT met"
        shape = " x ".join(map(str, SHAPES[dims]))
        print(
            f"{dims}D {shape}: slider -> layer data p50 {result['p50']:.1f} ms, "
            f"p95 {result['p95']:.1f} ms (goal p95 <= {goal:.0f} ms: {verdict})"
        )
        print(
            f"    mean {result['mean']:.1f} ms = "
            + " + ".join(
                f"{name} {result[key + '_mean']:.1f}"
                for name, key in (
                    ("slider to request", "submit"),
                    ("wait for the decode to start", "wake"),
                    ("decode", "decode"),
                    ("delivery to the layer", "deliver"),
                    ("layer update", "update"),
                )
            )
        )
        print(
            f"    drag of {result['requests']} values: {result['decoded']} decoded, "
            f"{result['dropped']} dropped as stale; last value shown: {result['last_shown']}"
        )


if __name__ == "__main__":
    main()
