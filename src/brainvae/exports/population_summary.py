"""A population analysis in words and numbers: the summary.json record and the lines a person
reads after `brainvae population` (per-class precision and recall, balanced accuracy with its
interval and chance, the PCA reference, the bias check, the brain scores, the notes)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from brainvae.population import Classification, PopulationAnalysis

__all__ = ["population_summary", "summary_lines"]


def _finite(value: Any) -> float | None:
    """A number for JSON: None where it is NaN or infinite (JSON has neither)."""
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def _classification_summary(result: Classification) -> dict[str, Any]:
    low, high = result.interval
    return {
        "features": result.features,
        "classes": list(result.classes),
        "balanced_accuracy": _finite(result.balanced_accuracy),
        "interval_95": [_finite(low), _finite(high)],
        "chance": _finite(result.chance),
        "precision": {c: _finite(v) for c, v in zip(result.classes, result.precision, strict=True)},
        "recall": {c: _finite(v) for c, v in zip(result.classes, result.recall, strict=True)},
        "n_scans": int(len(result.truth)),
        "n_held_out": int(result.held_out.sum()),
        "validation": result.validation,
        "axes_note": result.axes_note,
    }


def population_summary(analysis: PopulationAnalysis, extra: dict[str, Any] | None = None) -> dict:
    """What summary.json holds: the request, each result in numbers and words, the
    validation used, warnings and notes; `extra` (run, population, ...) merged in."""
    used = [n for n, u in zip(analysis.latent_names, analysis.used, strict=True) if u]
    summary: dict[str, Any] = {
        "request": analysis.request.to_json(),
        "latents": list(analysis.latent_names),
        "latents_used": used,
        "classification": None,
        "reference": None,
        "bias": None,
        "brain_scores": [],
        "map": {
            "method": analysis.map.method,
            "x_label": analysis.map.x_label,
            "y_label": analysis.map.y_label,
            "note": analysis.map.note,
        },
        "validation": {},
        "warnings": list(analysis.warnings()),
        "notes": list(analysis.notes),
    }
    if analysis.classification is not None:
        column = analysis.request.classify
        summary["classification"] = {
            "column": column,
            "merge": dict(analysis.request.merge),
            **_classification_summary(analysis.classification),
        }
        summary["validation"][f"classify {column}"] = analysis.classification.validation
    if analysis.reference is not None:
        summary["reference"] = _classification_summary(analysis.reference)
    if analysis.bias is not None:
        table = analysis.bias.table()
        summary["bias"] = {
            "class_column": analysis.bias.class_column,
            "checks": [
                {key: _json_value(value) for key, value in row.items()}
                for row in table.to_dict(orient="records")
            ],
            "notes": {c.column: c.note for c in analysis.bias.checks if c.note},
        }
    for score in analysis.scores:
        summary["brain_scores"].append(
            {
                "measure": score.measure,
                "method": score.method,
                "r": _finite(score.r),
                "p": _finite(score.p),
                "n_permutations": score.n_permutations,
                "n": int(len(score.truth)),
                "n_missing": int(score.n_missing),
                "validation": score.validation,
            }
        )
        summary["validation"][f"regress {score.measure}"] = score.validation
    summary.update(extra or {})
    return summary


def _json_value(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _finite(value)
    return value


def summary_lines(analysis: PopulationAnalysis) -> list[str]:
    """What a person reads after a run, in plain words: per-class precision and recall,
    balanced accuracy with its interval and chance, the PCA reference, each warning, each
    brain score, and the notes."""
    lines: list[str] = []
    result = analysis.classification
    if result is not None:
        column = analysis.request.classify
        lines.append(f"Classification of {column} ({result.validation}):")
        merged: dict[str, list[str]] = {}
        for old, new in analysis.request.merge.items():
            merged.setdefault(new, []).append(old)
        for new, olds in merged.items():
            lines.append(f"  Classes merged: {', '.join(sorted(olds))} -> {new}.")
        lines.append(f"  {result.describe()}.")
        counts = result.counts
        for k, name in enumerate(result.classes):
            lines.append(
                f"  {name}: precision {_text(result.precision[k])}, recall "
                f"{_text(result.recall[k])} (TP {counts['TP'][k]}, FP {counts['FP'][k]}, "
                f"FN {counts['FN'][k]}, TN {counts['TN'][k]})"
            )
    if analysis.reference is not None and result is not None:
        reference = analysis.reference
        difference = result.balanced_accuracy - reference.balanced_accuracy
        lines.append(f"Reference: {reference.describe()}.")
        if np.isfinite(difference):
            level = abs(difference) < 0.005  # equal at the two decimals printed
            side = "level with" if level else "above" if difference > 0 else "below"
            gap = "" if level else f"{abs(difference):.2f} "
            lines.append(f"  The latents score {gap}{side} the reference.")
        lines.append(
            "  Per class (reference): "
            + "; ".join(
                f"{name} precision {_text(reference.precision[k])}, recall "
                f"{_text(reference.recall[k])}"
                for k, name in enumerate(reference.classes)
            )
        )
    if analysis.bias is not None:
        if not analysis.bias.checks and analysis.request.nuisance == ():
            lines.append("Acquisition-bias check: skipped (no nuisance column asked for).")
        elif not analysis.bias.checks:
            lines.append(
                "Acquisition-bias check: no column is named like an acquisition setting (site, "
                "scanner, TR, ...); name the nuisance columns to check them."
            )
        for check in analysis.bias.checks:
            if check.kind == "categorical":
                latents = (
                    f"the latents predict it with balanced accuracy "
                    f"{_text(check.latents_to_column)} (chance "
                    f"{_text(check.latents_to_column_chance)}"
                    + (
                        f", p = {_text(check.latents_to_column_p, '.3g')} with the classes "
                        "held fixed)"
                        if check.latents_to_column_p is not None
                        else ")"
                    )
                )
            else:
                latents = (
                    f"the latents predict it with r = {_text(check.latents_to_column)} "
                    f"(p = {_text(check.latents_to_column_p, '.3g')})"
                )
            lines.append(
                f"Bias check, {check.column} ({check.kind}): alone it predicts "
                f"{analysis.bias.class_column} with balanced accuracy "
                f"{_text(check.class_from_column)} (chance {_text(analysis.bias.chance)}); "
                f"{latents}."
            )
    for warning in analysis.warnings():
        lines.append(f"Warning: {warning}")
    for score in analysis.scores:
        lines.append(f"Brain score: {score.describe()}; {score.validation}.")
    if analysis.map.note:
        lines.append(f"Latent map ({analysis.map.method}): {analysis.map.note}.")
    for note in analysis.notes:
        lines.append(f"Note: {note}.")
    return lines


def _text(value: Any, digits: str = ".2f") -> str:
    if value is None or not np.isfinite(float(value)):
        return "n/a"
    return format(float(value), digits)
