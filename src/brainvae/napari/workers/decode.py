"""The latent explorer's background work: the population's per-latent summary, and live
decoding for the sliders (at most one pending request, latest wins).

encode_population runs in a napari worker: the scans' codes and every per-latent number the
sliders show (KL or sd, activity, the ranking their order uses) are computed there, so a
1,000-latent model does not hold up the GUI.

A slider emits many values per second while dragged; decoding each in turn would pile up
behind the mouse. Here a new request replaces the one still waiting (it is counted as
dropped) and only the newest code is decoded. A model whose decode is cheap (measured: at
most INLINE_BUDGET_S of CPU) is decoded on the GUI thread: at once when the GUI has been
idle at least as long as a decode takes, else once the event loop has delivered the moves
still queued (a 0 ms timer), so a fast drag coalesces. Handing a 2 ms decode to a thread
cost 10 ms of wake-up and GIL hand-over per step here. Larger models are decoded on one
background thread, whose results reach the GUI thread through a Qt signal (a queued
connection); that thread never touches a layer or widget.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from qtpy.QtCore import QObject, QTimer, Signal

if TYPE_CHECKING:
    from brainvae.napari.widgets.explorer_latent_summary import LatentSummary


def encode_population(model: Any, images: np.ndarray) -> LatentSummary:
    """Worker body: encode the population and summarise each latent for the sliders."""
    from brainvae.analysis.latent_space import population_latents
    from brainvae.napari.widgets.explorer_latent_summary import summarise_latents

    return summarise_latents(population_latents(model, images))


INLINE_BUDGET_S = 0.025
"""Decodes whose last measured CPU time is at most this run on the GUI thread (2D 128 x 160
small model: 2 ms; 3D 40 x 48 x 40: 7 ms on this 2-core CPU); slower ones on the thread."""


@dataclass
class DecodeRequest:
    """One code to decode with one model; request_id grows with every request."""

    request_id: int
    model: Any
    code: np.ndarray
    submitted_at: float = field(default_factory=time.perf_counter)
    inline: bool = False  # decoded on the GUI thread (the model is known to be cheap)


@dataclass
class DecodeResult:
    """The decoded image of a request; started_at (perf_counter) and decode_seconds time it."""

    request: DecodeRequest
    image: np.ndarray
    decode_seconds: float
    started_at: float = 0.0


@dataclass
class DecoderCounts:
    """How many requests came in, were decoded, and were replaced before their turn (dropped)."""

    submitted: int = 0
    decoded: int = 0
    dropped: int = 0
    failed: int = 0


class LatestDecoder(QObject):
    """Decode the most recent request only; results arrive on the GUI thread via `decoded`.

    torch_threads: intra-op threads of a decode (a per-thread setting under OpenMP). One is
    the default: a single small image does not gain from more, and on a shared 2-core CPU two
    threads made a 128 x 160 decode 30x slower (spin contention). inline_budget_s: the CPU
    time up to which a model's decodes run on the GUI thread (0 keeps every decode on the
    background thread). A model's first decode always runs on the thread, which measures it.
    """

    decoded = Signal(object)  # DecodeResult
    failed = Signal(object)  # (DecodeRequest, Exception)

    def __init__(
        self,
        torch_threads: int = 1,
        inline_budget_s: float = INLINE_BUDGET_S,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._torch_threads = torch_threads
        self._inline_budget = inline_budget_s
        self._costs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> s
        self._inline_timer = QTimer()  # owned here, not by Qt: stop() may run at teardown
        self._inline_timer.setSingleShot(True)
        self._inline_timer.setInterval(0)
        self._inline_timer.timeout.connect(self._decode_inline)
        self._inline_ended = -math.inf  # perf_counter when the last inline decode ended
        self._condition = threading.Condition()
        self._pending: DecodeRequest | None = None
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._next_id = 0
        self.counts = DecoderCounts()

    def request(self, model: Any, code: np.ndarray) -> int:
        """Queue a decode of `code` (L,), replacing any request still waiting; returns its id."""
        with self._condition:
            if self._stopping:
                raise RuntimeError("this decoder was stopped")
            self._next_id += 1
            if self._pending is not None:
                self.counts.dropped += 1
            inline = self._costs.get(model, math.inf) <= self._inline_budget
            self._pending = DecodeRequest(
                self._next_id, model, np.array(code, dtype=np.float32, copy=True), inline=inline
            )
            self.counts.submitted += 1
            if not inline:
                self._ensure_thread()
                self._condition.notify_all()
            request_id = self._next_id
        if inline:
            # Leading edge now; within a burst (less idle time since the last decode than a
            # decode takes) after the event loop has delivered the moves still queued.
            if time.perf_counter() - self._inline_ended >= self._costs.get(model, 0.0):
                self._decode_inline()
            elif not self._inline_timer.isActive():
                self._inline_timer.start()
        return request_id

    def inline_for(self, model: Any) -> bool:
        """Whether this model's decodes now run on the GUI thread."""
        return self._costs.get(model, math.inf) <= self._inline_budget

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until nothing is pending or decoding (for scripts and tests); False on timeout."""
        self._decode_inline()  # a pending inline decode cannot wait for the event loop here
        deadline = time.monotonic() + timeout
        with self._condition:
            while (self._pending is not None and not self._pending.inline) or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._condition.wait(left)
        return True

    def stop(self, timeout: float = 2.0) -> None:
        """Drop what is pending and end the thread after its current decode."""
        with self._condition:
            self._stopping = True
            self._pending = None
            self._condition.notify_all()
        with contextlib.suppress(RuntimeError):  # Qt already deleted it (application teardown)
            self._inline_timer.stop()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(
                target=self._run, name="brainvae-latest-decoder", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        import torch

        from brainvae.analysis.latent_space import decode_codes

        torch.set_num_threads(self._torch_threads)
        while True:
            with self._condition:
                while (self._pending is None or self._pending.inline) and not self._stopping:
                    self._condition.wait()
                if self._stopping:
                    return
                request, self._pending, self._busy = self._pending, None, True
            try:
                started, cpu = time.perf_counter(), time.thread_time()
                image = decode_codes(request.model, request.code[None])[0]
                result = DecodeResult(request, image, time.perf_counter() - started, started)
                with self._condition:  # CPU time: not inflated by waits for the GIL
                    self._costs[request.model] = time.thread_time() - cpu
            except Exception as err:  # noqa: BLE001 - reported to the GUI, never raised here
                with self._condition:
                    self.counts.failed += 1
                    self._busy = False
                    self._condition.notify_all()
                self.failed.emit((request, err))
                continue
            with self._condition:
                self.counts.decoded += 1
                self._busy = False
                self._condition.notify_all()
            self.decoded.emit(result)

    def _decode_inline(self) -> None:
        """Decode the pending inline request here, on the GUI thread, and deliver it at once."""
        import torch

        from brainvae.analysis.latent_space import decode_codes

        with self._condition:
            request = self._pending
            if request is None or not request.inline:
                return
            self._pending = None
        threads = torch.get_num_threads()
        torch.set_num_threads(self._torch_threads)
        try:
            started = time.perf_counter()
            image = decode_codes(request.model, request.code[None])[0]
            seconds = time.perf_counter() - started
        except Exception as err:  # noqa: BLE001 - reported to the GUI like a thread's failure
            with self._condition:
                self.counts.failed += 1
            self.failed.emit((request, err))
            return
        finally:
            torch.set_num_threads(threads)
            self._inline_ended = time.perf_counter()
        with self._condition:
            self.counts.decoded += 1
            # wall time here: a decode grown slow (a busy CPU) goes back to the thread
            self._costs[request.model] = seconds
        self.decoded.emit(DecodeResult(request, image, seconds, started))


def run_brain_age(model: Any, folder: Any) -> str:
    """The age-conditioned VAE's brain age on the held-out scans of the dataset its run folder
    records, as one line (or why there is none)."""
    from brainvae.analysis.brain_age import held_out_brain_age
    from brainvae.errors import BrainVAEError
    from brainvae.usecases.run_dataset import run_dataset

    if folder is None:
        return "brain age on held-out scans: no run folder to find the training dataset from"
    try:
        opened = run_dataset(folder, model)
        result = held_out_brain_age(model, opened.dataset)
    except (BrainVAEError, OSError) as error:
        return f"brain age on held-out scans: not measured ({error})"
    if result is None:
        return "brain age on held-out scans: the training dataset has no test or val scans"
    return (
        f"brain age on the {result.n} {result.split} scans: r {result.pearson_r:.2f}, "
        f"mean absolute error {result.mae:.1f} years"
    )
