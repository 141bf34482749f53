"""What a longitudinal analysis is asked, with the one set of defaults the command line, the
Python API and the Aging and disease dock share."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from brainvae.longitudinal.directions import DEFAULT_BOOTSTRAP


@dataclass(frozen=True)
class LongitudinalRequest:
    """group: the column naming each subject's group; control: its value for healthy
    controls (tau_a is learned from their pairs; every other group gets a tau_d); order: the
    column ordering a subject's visits (a visit number or a date; None: by age); pairing:
    consecutive visits or every ordered pair; years: (first, last) age of the simulated
    trajectories (None: the 10th and 90th percentile of the controls' ages); frames: ages
    simulated between them."""

    group: str = "diagnosis"
    control: str = "healthy"
    subject: str = "subject_id"
    age: str = "age"
    order: str | None = None
    pairing: str = "consecutive"
    n_bootstrap: int = DEFAULT_BOOTSTRAP
    years: tuple[float, float] | None = None
    frames: int = 7
    seed: int = 0

    def to_json(self) -> dict:
        info = asdict(self)
        info["years"] = None if self.years is None else list(self.years)
        return info
