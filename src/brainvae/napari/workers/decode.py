"""Live decoding for sliders: one background thread, at most one pending request, latest wins.

A slider emits many values per second while dragged; decoding each in turn would pile up
behind the mouse. Here a new request replaces the one still waiting (it is counted as
dropped), the thread always decodes the newest code, and each result reaches the GUI thread
through a Qt signal (a queued connection), where the widget updates its layer. The thread
never touches a layer or widget.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from qtpy.QtCore import QObject, Signal


@dataclass
class DecodeRequest:
    """One code to decode with one model; request_id grows with every request."""

    request_id: int
    model: Any
    code: np.ndarray
    submitted_at: float = field(default_factory=time.perf_counter)


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

    torch_threads: intra-op threads of the decoding thread (a per-thread setting under
    OpenMP). One is the default: a single small image does not gain from more, and on a
    shared 2-core CPU two threads made a 128 x 160 decode 30x slower (spin contention).
    """

    decoded = Signal(object)  # DecodeResult
    failed = Signal(object)  # (DecodeRequest, Exception)

    def __init__(self, torch_threads: int = 1, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._torch_threads = torch_threads
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
            self._pending = DecodeRequest(
                self._next_id, model, np.array(code, dtype=np.float32, copy=True)
            )
            self.counts.submitted += 1
            self._ensure_thread()
            self._condition.notify_all()
            return self._next_id

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until nothing is pending or decoding (for scripts and tests); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._pending is not None or self._busy:
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
                while self._pending is None and not self._stopping:
                    self._condition.wait()
                if self._stopping:
                    return
                request, self._pending, self._busy = self._pending, None, True
            try:
                started = time.perf_counter()
                image = decode_codes(request.model, request.code[None])[0]
                result = DecodeResult(request, image, time.perf_counter() - started, started)
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
