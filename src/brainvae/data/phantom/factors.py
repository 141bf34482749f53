"""Factor values of every phantom scan (the ground truth) and sampling of a whole population.

A `ScanFactors` holds everything the renderer needs, including the noise seed, so
`render(factors, grid)` is a pure function and the factors are exactly the latents
of an "oracle decoder". Ranges are chosen from what was measured on this project:
nuisance factors stay mild (a short-trained VAE spends its latents on +-20 %
intensity and +-5 degree rotation, ignoring anatomy), while ventricles vary
several-fold with age and lesions are large and bright.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

DIAGNOSES = ("healthy", "ms", "leuko")
ARTEFACT_TYPES = ("leakage", "missing", "grid")
AGE_RANGE = (20.0, 90.0)
# Leukoencephalopathy extent (mm from the ventricle wall) where severity 2 and 3 begin.
SEVERITY_EXTENT_MM = (5.0, 10.0)


@dataclass(frozen=True)
class Lesion:
    """One ovoid MS-like lesion in world mm, its long axis perpendicular to the ventricle wall."""

    centre_mm: tuple[float, float, float]
    axis: tuple[float, float, float]  # unit vector of the long axis (world)
    long_radius_mm: float
    short_radius_mm: float


@dataclass(frozen=True)
class ScanFactors:
    """True factor values of one scan; rotations about and shifts along the display axes."""

    subject_id: str = "sub-0000"
    session: int = 1
    age: float = 45.0
    diagnosis: str = "healthy"
    severity: int = 0  # leukoencephalopathy 1-3, else 0
    ventricle_expansion: float = 0.0  # fold-free ventricle warp steps; < 0 shrinks them
    cortical_thinning: float = 0.0  # share of sulcus-exposed cortical GM turned to CSF
    shrinkage: float = 0.0  # global linear shrinkage about the brain centre
    lesions: tuple[Lesion, ...] = ()
    lesion_burden: float = 0.0  # MS lesion load factor: lesion radii scale with its square root
    leuko_extent_mm: float = 0.0  # confluent WM change within this distance of the ventricles
    leuko_seed: int = 0
    rotation_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)  # about I, P, R axes
    shift_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)  # along I, P, R axes
    intensity_scale: float = 1.0
    bias_amplitude: float = 0.0
    bias_direction: tuple[float, float, float] = (0.0, 0.0, 1.0)
    noise_sd: float = 0.0
    noise_seed: int = 0
    site: int = 0
    artefacts: tuple[str, ...] = ()
    artefact_seed: int = 0
    visit_interval_years: float = 0.0
    years_since_baseline: float = 0.0

    def csv_values(self) -> dict[str, object]:
        """Flat true values for subjects.csv (lesions summarised by their count)."""
        return {
            "severity": self.severity,
            "ventricle_expansion": round(self.ventricle_expansion, 4),
            "cortical_thinning": round(self.cortical_thinning, 4),
            "shrinkage": round(self.shrinkage, 5),
            "lesion_count": len(self.lesions),
            "lesion_burden": round(self.lesion_burden, 4),
            "leuko_extent_mm": round(self.leuko_extent_mm, 3),
            "rotation_axial_deg": round(self.rotation_deg[0], 3),
            "rotation_coronal_deg": round(self.rotation_deg[1], 3),
            "rotation_sagittal_deg": round(self.rotation_deg[2], 3),
            "shift_inferior_mm": round(self.shift_mm[0], 3),
            "shift_posterior_mm": round(self.shift_mm[1], 3),
            "shift_right_mm": round(self.shift_mm[2], 3),
            "intensity_scale": round(self.intensity_scale, 4),
            "bias_amplitude": round(self.bias_amplitude, 4),
            "noise_sd": round(self.noise_sd, 4),
            "site": self.site,
            **{f"artefact_{name}": int(name in self.artefacts) for name in ARTEFACT_TYPES},
            "visit_interval_years": round(self.visit_interval_years, 3),
            "years_since_baseline": round(self.years_since_baseline, 3),
        }

    def to_json(self) -> dict:
        """Complete factor values (lesions included) for phantom.json-style records."""
        return asdict(self)


def age_effects(age: float) -> tuple[float, float, float]:
    """(ventricle_expansion, cortical_thinning, shrinkage) of a typical brain at `age`."""
    t = float(np.clip((age - AGE_RANGE[0]) / (AGE_RANGE[1] - AGE_RANGE[0]), 0.0, 1.0))
    return -0.8 + 3.8 * t, 0.6 * float(np.clip((age - 25.0) / 65.0, 0.0, 1.0)), 0.035 * t


def severity_of_extent(extent_mm: float) -> int:
    """Leukoencephalopathy severity 1-3 from its extent (so severity never decreases as it grows)."""
    return 1 + int(extent_mm >= SEVERITY_EXTENT_MM[0]) + int(extent_mm >= SEVERITY_EXTENT_MM[1])


@dataclass(frozen=True)
class PopulationConfig:
    """How a population is drawn: sizes, shares, nuisance ranges (all written to phantom.json)."""

    dims: int = 2
    orientation: str = "coronal"  # 2D slice: "coronal" (the sample's) or "axial"
    n_subjects: int = 100
    seed: int = 0
    longitudinal_share: float = 0.3
    diagnosis_shares: tuple[float, float, float] = (0.5, 0.25, 0.25)
    artefacts: tuple[str, ...] = ()
    artefact_share: float = 0.3
    rotation_max_deg: float = 2.0
    shift_max_voxels: float = 1.0
    intensity_range: tuple[float, float] = (0.96, 1.04)
    bias_max: float = 0.05
    noise_sd_range: tuple[float, float] = (0.005, 0.015)
    n_sites: int = 3
    visit_interval_years: tuple[float, float] = (1.0, 4.0)
    subject_jitter: float = 0.25  # sd of a subject's own ventricle expansion offset
    # "age": ventricles expand with age (r ~ 0.97 with it, as in real cohorts); "independent":
    # each subject's ventricles follow their own "ventricle age", drawn apart from the real
    # one, so ventricle size is a planted factor a model can learn apart from aging.
    ventricles: str = "age"
    lesion_sites: int = 0  # fixed periventricular MS lesion sites; 0: the dims default
    lesion_burden_range: tuple[float, float] = (0.15, 1.0)  # baseline MS lesion burden
    lesion_radius_mm: float = 0.0  # long radius at burden 1; 0: the dims default
    # Share of subjects scanned at the site numbered like their diagnosis (healthy 0, ms 1,
    # leuko 2, modulo n_sites) instead of a random one: a planted acquisition bias, so the
    # population analysis's bias check has a population where site follows diagnosis.
    site_follows_diagnosis: float = 0.0

    def n_lesion_sites(self) -> int:
        """Number of lesion sites: a slice shows fewer than a volume."""
        if self.lesion_sites > 0:
            return self.lesion_sites
        return 4 if self.dims == 2 else 10

    def full_lesion_radius_mm(self) -> float:
        """Long radius (mm) of a lesion at burden 1 (before its own +-15 % jitter)."""
        if self.lesion_radius_mm > 0:
            return self.lesion_radius_mm
        return 8.0 if self.dims == 2 else 10.0


def _unit(rng: np.random.Generator) -> tuple[float, float, float]:
    vector = rng.normal(size=3)
    return tuple(float(v) for v in vector / np.linalg.norm(vector))


def site_set(candidates_world: np.ndarray, count: int) -> np.ndarray:
    """Indices of `count` well-spread rim points (deterministic farthest-point sampling).

    Starts at the most superior candidate (largest world z), then repeatedly takes the
    candidate farthest from those taken: the same sites for every subject of a grid.
    """
    points = np.asarray(candidates_world, np.float64)
    count = min(count, len(points))
    chosen = [int(np.argmax(points[:, 2]))]
    distance = np.linalg.norm(points - points[chosen[0]], axis=1)
    while len(chosen) < count:
        pick = int(np.argmax(distance))
        chosen.append(pick)
        distance = np.minimum(distance, np.linalg.norm(points - points[pick], axis=1))
    return np.asarray(chosen, int)


def _draw_lesions(rng, candidates_world, normals_world, sites, burden, full_radius, plane_axis):
    """One ovoid per fixed site, long axis along the wall normal, radii ~ sqrt(burden).

    Lesion load (area in 2D, volume in 3D) then grows about linearly with the burden; each
    lesion keeps a small individual size (+-15 %), shape and position (+-1 mm) jitter.
    """
    lesions = []
    for pick in sites:
        centre = np.asarray(candidates_world[pick], np.float64)
        jitter = rng.uniform(-1.0, 1.0, 3)
        if plane_axis is not None:  # 2D: stay in the slice plane (no jitter across it)
            jitter[plane_axis] = 0.0
        long_radius = full_radius * float(np.sqrt(burden)) * float(rng.uniform(0.85, 1.15))
        lesions.append(
            Lesion(
                centre_mm=tuple(float(v) for v in centre + jitter),
                axis=tuple(float(v) for v in normals_world[pick]),
                long_radius_mm=long_radius,
                short_radius_mm=long_radius * float(rng.uniform(0.55, 0.7)),
            )
        )
    return lesions


def _grow(lesion: Lesion, gain: float) -> Lesion:
    """Lesions enlarge between visits (all of a subject's by the same gain)."""
    return Lesion(
        lesion.centre_mm, lesion.axis, lesion.long_radius_mm * gain, lesion.short_radius_mm * gain
    )


def sample_population(config: PopulationConfig, lesion_sites) -> list[ScanFactors]:
    """Draw every scan's factors; `lesion_sites` = (world points, unit normals) of the lesion zone."""
    from brainvae.data.phantom.grid import grid_spec

    spec = grid_spec(config.dims, config.orientation)
    rng = np.random.default_rng(config.seed)
    candidates, normals = lesion_sites
    n = config.n_subjects
    counts = np.floor(np.asarray(config.diagnosis_shares) / sum(config.diagnosis_shares) * n)
    counts[0] += n - counts.sum()
    diagnoses = np.repeat(np.arange(3), counts.astype(int))
    rng.shuffle(diagnoses)
    sites = site_set(candidates, config.n_lesion_sites())
    full_radius = config.full_lesion_radius_mm()
    scans: list[ScanFactors] = []
    leuko_index = 0
    for number, diagnosis_index in enumerate(diagnoses, start=1):
        diagnosis = DIAGNOSES[int(diagnosis_index)]
        n_visits = 1
        if rng.uniform() < config.longitudinal_share:
            n_visits = int(rng.integers(2, 4))
        intervals = [0.0] + [
            float(rng.uniform(*config.visit_interval_years)) for _ in range(n_visits - 1)
        ]
        span = float(np.sum(intervals))
        age0 = float(rng.uniform(AGE_RANGE[0], AGE_RANGE[1] - span))
        offset = float(rng.normal(0.0, config.subject_jitter))
        ventricle_age0 = age0
        if config.ventricles == "independent":
            ventricle_age0 = float(rng.uniform(AGE_RANGE[0], AGE_RANGE[1] - span))
        elif config.ventricles != "age":
            raise ValueError(
                f"ventricles must be 'age' or 'independent', not {config.ventricles!r}"
            )
        site = int(rng.integers(config.n_sites))
        if config.site_follows_diagnosis > 0 and rng.uniform() < config.site_follows_diagnosis:
            site = int(diagnosis_index) % config.n_sites  # drawn only when asked: old seeds hold
        lesions: list[Lesion] = []
        burden = 0.0
        if diagnosis == "ms":
            burden = float(rng.uniform(*config.lesion_burden_range))
            lesions = _draw_lesions(
                rng, candidates, normals, sites, burden, full_radius, spec.world_slice_axis
            )
        extent = 0.0
        if diagnosis == "leuko":
            severity0 = 1 + leuko_index % 3
            leuko_index += 1
            bounds = {1: (2.0, 4.5), 2: (5.5, 9.0), 3: (11.0, 16.0)}[severity0]
            extent = float(rng.uniform(*bounds))
        leuko_seed = int(rng.integers(2**31))
        elapsed = 0.0
        for session, interval in enumerate(intervals, start=1):
            elapsed += interval
            if session > 1 and diagnosis == "ms":
                gain = 1.0 + interval * float(rng.uniform(0.03, 0.08))
                lesions = [_grow(lesion, gain) for lesion in lesions]
                burden *= gain**2
            if session > 1 and diagnosis == "leuko":
                extent += interval * float(rng.uniform(0.5, 1.5))
            age = age0 + elapsed
            expansion, thinning, shrink = age_effects(age)
            expansion = age_effects(ventricle_age0 + elapsed)[0]
            scans.append(
                _scan(
                    config,
                    rng,
                    number,
                    session,
                    age,
                    diagnosis,
                    expansion + offset,
                    thinning,
                    shrink,
                    tuple(lesions),
                    burden,
                    extent,
                    leuko_seed,
                    site,
                    interval,
                    elapsed,
                )
            )
    return scans


def _scan(
    config,
    rng,
    number,
    session,
    age,
    diagnosis,
    expansion,
    thinning,
    shrink,
    lesions,
    burden,
    extent,
    leuko_seed,
    site,
    interval,
    elapsed,
) -> ScanFactors:
    """One visit's factors: subject-level values plus fresh nuisance draws."""
    from brainvae.data.phantom.grid import grid_spec

    spec = grid_spec(config.dims, config.orientation)
    rotation_max = config.rotation_max_deg
    if spec.slice_axis is not None:  # in-plane only: rotation about, no shift across, the slice
        rotation = [0.0, 0.0, 0.0]
        rotation[spec.slice_axis] = float(rng.uniform(-rotation_max, rotation_max))
        rotation = tuple(rotation)
    else:
        rotation = tuple(float(v) for v in rng.uniform(-rotation_max, rotation_max, 3))
    voxel = spec.spacing_mm[0]
    shift = rng.uniform(-1.0, 1.0, 3) * config.shift_max_voxels * voxel
    if spec.slice_axis is not None:
        shift[spec.slice_axis] = 0.0
    artefacts = tuple(a for a in config.artefacts if rng.uniform() < config.artefact_share)
    return ScanFactors(
        subject_id=f"sub-{number:04d}",
        session=session,
        age=round(age, 2),
        diagnosis=diagnosis,
        severity=severity_of_extent(extent) if diagnosis == "leuko" else 0,
        ventricle_expansion=expansion,
        cortical_thinning=thinning,
        shrinkage=shrink,
        lesions=lesions,
        lesion_burden=burden,
        leuko_extent_mm=extent,
        leuko_seed=leuko_seed,
        rotation_deg=rotation,
        shift_mm=tuple(float(v) for v in shift),
        intensity_scale=float(rng.uniform(*config.intensity_range)),
        bias_amplitude=float(rng.uniform(0.0, config.bias_max)),
        bias_direction=_unit(rng),
        noise_sd=float(rng.uniform(*config.noise_sd_range)),
        noise_seed=int(rng.integers(2**31)),
        site=site,
        artefacts=artefacts,
        artefact_seed=int(rng.integers(2**31)),
        visit_interval_years=interval,
        years_since_baseline=elapsed,
    )
