"""What `sentiment evaluate` shows of its report: the figure (ROC curves, confusion matrix,
training and reliability curves) and the summary table printed to the terminal."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score, roc_curve

from contract.files import TRAINING_REPORT_FILE
from sentiment.calibration import BINS, Reliability, plot_reliability


def write_figure(
    path: Path,
    labels: np.ndarray,
    scores: dict[str, np.ndarray],
    confusion: dict[str, int],
    history: list[dict],
    calibration: dict[str, Reliability],
) -> Path:
    """One PNG: ROC curves, the model's confusion matrix, training and reliability curves."""
    figure = Figure(figsize=(12, 9.6), layout="constrained")
    (roc_axes, matrix_axes), (curve_axes, reliability_axes) = figure.subplots(2, 2)

    for name, model_scores in scores.items():
        false_rate, true_rate, _ = roc_curve(labels, model_scores)
        area = roc_auc_score(labels, model_scores)
        roc_axes.plot(false_rate, true_rate, label=f"{name} (AUC {area:.3f})")
    roc_axes.plot([0, 1], [0, 1], linestyle=":", color="grey")
    roc_axes.set(
        title="ROC curve, test reviews", xlabel="false positive rate", ylabel="true positive rate"
    )
    roc_axes.legend(loc="lower right")

    cells = np.array(
        [
            [confusion["true_negative"], confusion["false_positive"]],
            [confusion["false_negative"], confusion["true_positive"]],
        ]
    )
    matrix_axes.imshow(cells, cmap="Blues")
    for (row, column), count in np.ndenumerate(cells):
        share = count / max(1, cells[row].sum())
        colour = "white" if count > cells.max() / 2 else "black"
        matrix_axes.text(
            column, row, f"{count:,}\n{share:.1%}", ha="center", va="center", color=colour
        )
    matrix_axes.set(
        title="Confusion matrix, model",
        xlabel="predicted",
        ylabel="actual",
        xticks=[0, 1],
        yticks=[0, 1],
        xticklabels=["negative", "positive"],
        yticklabels=["negative", "positive"],
    )

    if history:
        epochs = [entry["epoch"] for entry in history]
        curve_axes.plot(
            epochs, [e["train_loss"] for e in history], marker="o", label="training loss"
        )
        curve_axes.plot(
            epochs, [e["val_loss"] for e in history], marker="o", label="validation loss"
        )
        accuracy_axes = curve_axes.twinx()
        accuracy_axes.plot(
            epochs,
            [e["val_accuracy"] for e in history],
            marker="s",
            color="tab:green",
            label="validation accuracy",
        )
        accuracy_axes.set_ylabel("validation accuracy (optimistic: shares movies)")
        handles = curve_axes.get_legend_handles_labels()
        extra = accuracy_axes.get_legend_handles_labels()
        curve_axes.legend(handles[0] + extra[0], handles[1] + extra[1], loc="center right")
        curve_axes.set_xticks(epochs)
    else:
        curve_axes.text(
            0.5,
            0.5,
            f"no training history\n(no {TRAINING_REPORT_FILE} beside the model)",
            ha="center",
            va="center",
            transform=curve_axes.transAxes,
        )
    curve_axes.set(title="Training (LSTM branch)", xlabel="epoch", ylabel="loss")
    plot_reliability(reliability_axes, calibration, "Reliability, model")

    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    return path


_ROWS = (
    ("accuracy", "accuracy"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("F1", "f1"),
    ("ROC AUC", "roc_auc"),
)


def _row(title: str, values: Iterable[float | None]) -> str:
    cells = (f"{value:>12.4f}" if value is not None else f"{'-':>12}" for value in values)
    return f"{title:<26}" + "".join(cells)


def _short_text_rows(report: dict, models: dict[str, dict]) -> list[str]:
    """The table's rows for the short-review check and the behaviour suite."""
    suites = [m["behaviour"] for m in models.values()]
    rows = []
    for key, title in (
        ("short_reviews", f"short-review check: {report['short_reviews']['texts']:,} texts"),
        (
            "short_reviews_every_rating",
            "same, every validation review: "
            f"{models['model']['short_reviews_every_rating']['texts']:,} texts",
        ),
        (
            "short_reviews_test",
            f"same, every test review: {models['model']['short_reviews_test']['texts']:,} texts",
        ),
        (
            "short_reviews_test_clear_rating",
            "same, clearly rated test reviews: "
            f"{models['model']['short_reviews_test_clear_rating']['texts']:,} texts",
        ),
    ):
        texts = [m[key] for m in models.values()]
        rows += [
            title,
            _row("  accuracy", [check["accuracy"] for check in texts]),
            _row("  ECE", [check["ece"] for check in texts]),
            _row("  ECE if calibrated (p90)", [c["ece_if_calibrated"]["p90"] for c in texts]),
        ]
    return [
        *rows,
        f"behaviour suite: {suites[0]['cases']} cases, pass rate",
        *(
            _row(f"  {name}", [suite["capabilities"][name]["pass_rate"] for suite in suites])
            for name in suites[0]["capabilities"]
        ),
        _row("  all cases", [suite["pass_rate"] for suite in suites]),
    ]


def summary_table(report: dict) -> str:
    """The report as a fixed-width table: a column per model."""
    models = {"model": report["model"]} | (
        {"baseline": report["baseline"]} if "baseline" in report else {}
    )
    lines = [
        f"{'test reviews: ' + format(report['test_reviews'], ','):<26}"
        + "".join(f"{name:>12}" for name in models)
    ]
    for title, key in _ROWS:
        lines.append(f"{title:<26}" + "".join(f"{m[key]:>12.4f}" for m in models.values()))
    for title, key in (
        ("true negative", "true_negative"),
        ("false positive", "false_positive"),
        ("false negative", "false_negative"),
        ("true positive", "true_positive"),
    ):
        lines.append(
            f"{title:<26}" + "".join(f"{m['confusion_matrix'][key]:>12,}" for m in models.values())
        )
    lines.append(_row(f"ECE ({BINS} bins)", [m["ece"] for m in models.values()]))
    lines.append(
        _row("ECE if calibrated (p90)", [m["ece_if_calibrated"]["p90"] for m in models.values()])
    )
    lines.extend(_short_text_rows(report, models))
    model = report["model"]
    lines.append(f"{'reviews/s (handlers)':<26}{model['reviews_per_second']:>12,.0f}")
    if "requests_in_flight" in model:  # reports written before it was recorded lack it
        lines.append(
            f"  {model['requests_in_flight']} request(s) in flight, "
            f"{model['torch_threads']} torch thread(s) each"
        )
    if "baseline" in report:
        baseline = report["baseline"]
        lines.append(f"{'baseline fit seconds':<26}{'':>12}{baseline['fit_seconds']:>12.1f}")
    trained = report["model"].get("training_job_test_accuracy")
    if trained is not None:
        lines.append(f"The training job measured {trained:.4f} on the prepared test ids.")
    return "\n".join(lines)
