"""What the receptive fields dock writes in its status after a run: activity first (what the
fields can mean), the most affected active latent per ROI, encoder-only latents, then the
scores over the active latents, in a line that stays short even with 256 latents.
"""

from __future__ import annotations

from typing import Any

import numpy as np

TRUST_NOTE = (
    "separation: 1 = every latent answers to its own ROIs, 0 = all to the same ones; the "
    "published s gives -1 to a perfectly local model (docs/analysis_details.md: 'Which score to read')"
)
NAMES_LISTED = 8  # latent names a status line lists before "and N more"


def result_text(result: Any, scores: Any) -> str:
    """The status after a run: activity first (what the fields can mean), the most affected
    active latent per ROI, encoder-only latents, then the scores over the active latents."""
    from brainvae.analysis.receptive_report import receptive_scores

    parts = [f"{result.n_images} scans, kind {result.kind}. {activity_text(result.activity)}."]
    if result.activity.n_active == 0:
        parts.append(
            "No latent is active: the model has collapsed, and these fields measure noise the "
            "decoder ignores (retrain: more steps, lower beta, a KL warm-up)."
        )
    else:
        top = "; ".join(
            f"{name}: {result.latent_names[result.most_affected_latents(k)[0]]}"
            for k, name in enumerate(result.roi_names)
        )
        parts.append(f"Most affected active latent: {top}.")
    encoder_only = [result.latent_names[k] for k in np.flatnonzero(result.encoder_only())]
    if encoder_only:
        parts.append(
            f"Encoder-only (strong impact, but the decoder does not use them): "
            f"{name_list(encoder_only)}."
        )
    values = receptive_scores(result)
    if scores is None:
        parts.append("One ROI: no covariance or scores (they compare ROIs).")
    elif values["separation"] is None:
        parts.append("Fewer than 2 active latents answer to an ROI: no scores.")
    else:
        parts.append(
            f"Over {len(values['scored_latents'])} active latents: separation = "
            f"{values['separation']:.3f} (impact per ROI voxel), published s = "
            f"{scores.published:.3g} ({TRUST_NOTE})."
        )
    if result.any_floor_hit:
        parts.append("Some variances hit the floor (latents constant after perturbing).")
    return " ".join(parts)


def activity_text(activity: Any) -> str:
    """Which latents are active, in one line even with 256 latents (a few inactive ones
    named, the rest counted)."""
    inactive = list(activity.inactive_names)
    if len(inactive) <= NAMES_LISTED:
        return activity.describe()
    return (
        f"{activity.n_active} of {activity.latent_dim} latents active; {len(inactive)} inactive: "
        f"{name_list(inactive)} (their posterior means vary by <= {activity.threshold:g} over "
        f"the {activity.n_images} scans, so the decoder cannot use them)"
    )


def name_list(names: list[str]) -> str:
    """Names joined by commas; past NAMES_LISTED, the first ones and how many more."""
    if len(names) <= NAMES_LISTED:
        return ", ".join(names)
    return f"{', '.join(names[:NAMES_LISTED])} and {len(names) - NAMES_LISTED} more"
