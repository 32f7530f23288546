"""Plots of a training run, logged as PNG artifacts of the MLflow parent run (one click from Dagster).

matplotlib's object-oriented API (`Figure`, no pyplot): no global backend or figure state, safe in a
Dagster worker thread and in tests. Margins are set by hand: a layout engine doubles the render time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from mlops_assets.datasets.spec import DatasetSpec

if TYPE_CHECKING:
    from mlops_assets.training.train import CandidateResult

PR_CURVE = "plots/pr_curve.png"
RESIDUALS = "plots/residuals.png"
CONFUSION_MATRIX = "plots/confusion_matrix.png"
FEATURE_IMPORTANCE = "plots/feature_importance.png"
_MAX_POINTS = 5000


def _thin(*arrays: np.ndarray, points: int = 2000) -> tuple[np.ndarray, ...]:
    """At most `points` evenly spaced entries (ends kept): a curve of 200k points draws slowly and looks the same."""
    if len(arrays[0]) <= points:
        return arrays
    keep = np.unique(np.linspace(0, len(arrays[0]) - 1, points).round().astype(int))
    return tuple(a[keep] for a in arrays)


def _figure(width: float = 6.4, height: float = 4.8, left: float = 0.12):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=90)
    fig.subplots_adjust(left=left, right=0.96, top=0.9, bottom=0.12)
    return fig


def pr_curves(spec: DatasetSpec, results: list[CandidateResult], winner: CandidateResult, y: pd.Series):
    from sklearn.metrics import precision_recall_curve

    fig = _figure()
    ax = fig.add_subplot()
    for result in results:
        precision, recall, _ = precision_recall_curve(np.asarray(y).astype(int), result.scores)
        precision, recall = _thin(precision, recall)
        label = f"{result.name} (AP {result.metrics.get('average_precision', float('nan')):.3f})"
        ax.step(recall, precision, where="post", label=label + (" - winner" if result is winner else ""),
                linewidth=2.2 if result is winner else 1.2, linestyle="--" if result.candidate.baseline else "-")
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02),
           title=f"{spec.name}: precision-recall on {len(y):,} validation rows")
    ax.legend(loc="upper right", fontsize="small")
    return fig


def residuals(spec: DatasetSpec, winner: CandidateResult, y: pd.Series):
    fig = _figure()
    ax = fig.add_subplot()
    predicted, actual = winner.scores, np.asarray(y, dtype=float)
    if len(actual) > _MAX_POINTS:
        keep = np.random.default_rng(0).choice(len(actual), _MAX_POINTS, replace=False)
        predicted, actual = predicted[keep], actual[keep]
    ax.scatter(predicted, actual - predicted, s=6, alpha=0.35)
    ax.axhline(0, color="black", linewidth=1)
    ax.set(xlabel=f"predicted {spec.target}", ylabel="actual - predicted",
           title=f"{spec.name}: residuals of {winner.name} (RMSE {winner.metrics['rmse']:.3f})")
    return fig


def confusion(spec: DatasetSpec, winner: CandidateResult, y: pd.Series):
    """Classification: at the decision threshold. Integer regression targets: predictions rounded."""
    from sklearn.metrics import confusion_matrix

    if spec.task == "classification":
        threshold = winner.metrics["decision_threshold"]
        actual, predicted = np.asarray(y).astype(int), (winner.scores >= threshold).astype(int)
        labels, title = [0, 1], f"at threshold {threshold:.3f}"
    else:
        actual = np.asarray(y).astype(int)
        predicted = np.clip(np.rint(winner.scores), actual.min(), actual.max()).astype(int)
        labels, title = sorted(set(actual) | set(predicted)), "predictions rounded"
    matrix = confusion_matrix(actual, predicted, labels=labels)
    fig = _figure(5.6, 4.6, left=0.14)
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap="Blues")
    fig.colorbar(image, ax=ax)
    ax.set_xticks(range(len(labels)), [str(v) for v in labels])
    ax.set_yticks(range(len(labels)), [str(v) for v in labels])
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, f"{count:,}", ha="center", va="center",
                color="white" if count > matrix.max() / 2 else "black", fontsize="small")
    ax.set(xlabel="predicted", ylabel="actual", title=f"{spec.name}: {winner.name}, {title}")
    return fig


def importance(spec: DatasetSpec, winner: CandidateResult, importances: dict[str, float]):
    names = list(importances)[:20][::-1]
    fig = _figure(6.4, max(2.5, 0.3 * len(names) + 1), left=min(0.5, 0.04 + 0.0125 * max(map(len, names), default=8)))
    ax = fig.add_subplot()
    ax.barh(names, [importances[n] for n in names])
    ax.set(xlabel=f"drop in {spec.training.primary_metric} when shuffled",
           title=f"{spec.name}: permutation importance ({winner.name})")
    return fig


def render_plots(
    spec: DatasetSpec, results: list[CandidateResult], winner: CandidateResult, y: pd.Series,
    importances: dict[str, float],
) -> dict[str, bytes]:
    """The run's plots as PNG bytes keyed by artifact path (rendered off the main thread while it logs)."""
    import io

    if spec.task == "classification":
        figures = {PR_CURVE: lambda: pr_curves(spec, results, winner, y)}
    else:
        figures = {RESIDUALS: lambda: residuals(spec, winner, y)}
    if spec.task == "classification" or pd.api.types.is_integer_dtype(y):
        figures[CONFUSION_MATRIX] = lambda: confusion(spec, winner, y)
    if importances:
        figures[FEATURE_IMPORTANCE] = lambda: importance(spec, winner, importances)
    rendered = {}
    for path, make in figures.items():
        buffer = io.BytesIO()
        make().savefig(buffer, format="png")
        rendered[path] = buffer.getvalue()
    return rendered
