"""What a population analysis is asked to do, with the one set of defaults the command line,
the Python API and the Population analysis dock share."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

from brainvae.population.brain_scores import DEFAULT_PERMUTATIONS, REGRESSIONS
from brainvae.population.classification import DEFAULT_BOOTSTRAP
from brainvae.population.latent_map import DEFAULT_MAP
from brainvae.population.validation import DEFAULT_FOLDS

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class PopulationRequest:
    """classify: a class column (None: no classification); merge: {old class: new class};
    regress: numeric columns for brain scores; nuisance: columns for the acquisition-bias
    check (None: those named like acquisition settings; () : none); all_latents: use inactive
    latents too (default: active latents only, the shared definition); reference: also
    classify from PCA of the raw images with as many components as latents used;
    map_latents: the two latents (1-based, z1 = 1) of a "latents" map."""

    classify: str | None = None
    merge: dict[str, str] = field(default_factory=dict)
    regress: tuple[str, ...] = ()
    regression: str = REGRESSIONS[0]
    nuisance: tuple[str, ...] | None = None
    validation: str = "auto"
    folds: int = DEFAULT_FOLDS
    shrinkage: str | float | None = None
    all_latents: bool = False
    reference: bool = True
    n_bootstrap: int = DEFAULT_BOOTSTRAP
    n_permutations: int = DEFAULT_PERMUTATIONS
    map_method: str = DEFAULT_MAP
    map_latents: tuple[int, int] = (1, 2)
    seed: int = 0

    def to_json(self) -> dict:
        info = asdict(self)
        info["regress"] = list(self.regress)
        info["nuisance"] = None if self.nuisance is None else list(self.nuisance)
        info["map_latents"] = list(self.map_latents)
        return info


def check_request(request: PopulationRequest, table: pd.DataFrame) -> None:
    """Refuse, before encoding, what the analysis would refuse after it: nothing asked, a
    column the table lacks, a merge of unknown classes, a UMAP map without umap-learn."""
    from brainvae.errors import PopulationAnalysisError
    from brainvae.population.columns import class_labels, measure, require_column
    from brainvae.population.latent_map import umap_available

    if not request.classify and not request.regress:
        raise PopulationAnalysisError(
            "nothing to ask: name a column to classify (--classify) or to regress (--regress)"
        )
    if request.classify:
        class_labels(table, request.classify, request.merge)
    elif request.merge:
        raise PopulationAnalysisError("--merge merges classes of --classify: name that column")
    for column in request.regress:
        measure(table, column)
    for column in request.nuisance or ():
        require_column(table, column, "nuisance")
    if request.map_method == "umap" and not umap_available():
        raise PopulationAnalysisError(
            "--map umap needs umap-learn, which is not installed: pip install "
            "'napari-brainvae[umap]', or choose another map (--map pca)"
        )
