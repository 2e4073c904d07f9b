"""The drift report's picture: one self-contained HTML page (inline SVG, no scripts, nothing
fetched), so it opens from a CI artifact or an e-mail as it is."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

_WIDTH, _HEIGHT, _MARGIN = 520, 220, 34
_BASELINE_COLOUR, _TRAFFIC_COLOUR = "#9aa5b1", "#1f6feb"
_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #1b1f24 }
table { border-collapse: collapse; margin: 1rem 0 }
td, th { padding: .25rem .8rem; border-bottom: 1px solid #d0d7de; text-align: left }
.crossed { color: #b00020; font-weight: 600 }
.charts { display: flex; flex-wrap: wrap; gap: 2rem }
figure { margin: 0 }
"""


def _label(edges: Sequence[float], index: int, integer: bool) -> str:
    low, high = edges[index], edges[index + 1]
    if integer:
        last = index == len(edges) - 2
        if last:
            return f"{low:g}+"
        return f"{low:g}" if high - low == 1 else f"{low:g}-{high - 1:g}"
    return f"{low:.1f}"


def bar_chart(title: str, histogram: dict[str, Any], integer: bool) -> str:
    """Baseline and traffic proportions per bin, side by side, as an SVG figure."""
    edges, baseline, traffic = histogram["edges"], histogram["baseline"], histogram["traffic"]
    bins = len(baseline)
    top = max([*baseline, *traffic, 0.01])
    slot = (_WIDTH - 2 * _MARGIN) / bins
    plot_height = _HEIGHT - 2 * _MARGIN
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_WIDTH}" height="{_HEIGHT}" '
        f'role="img" aria-label="{escape(title)}">',
        f'<line x1="{_MARGIN}" y1="{_HEIGHT - _MARGIN}" x2="{_WIDTH - _MARGIN}" '
        f'y2="{_HEIGHT - _MARGIN}" stroke="#57606a"/>',
    ]
    for index in range(bins):
        for offset, (share, colour) in enumerate(
            ((baseline[index], _BASELINE_COLOUR), (traffic[index], _TRAFFIC_COLOUR))
        ):
            height = plot_height * share / top
            x = _MARGIN + index * slot + offset * slot * 0.42 + slot * 0.08
            parts.append(
                f'<rect x="{x:.1f}" y="{_HEIGHT - _MARGIN - height:.1f}" width="{slot * 0.4:.1f}" '
                f'height="{height:.1f}" fill="{colour}"><title>{share:.3f}</title></rect>'
            )
        parts.append(
            f'<text x="{_MARGIN + (index + 0.5) * slot:.1f}" y="{_HEIGHT - _MARGIN + 14}" '
            f'font-size="10" text-anchor="middle">{escape(_label(edges, index, integer))}</text>'
        )
    parts.append("</svg>")
    return f"<figure>{''.join(parts)}<figcaption>{escape(title)}</figcaption></figure>"


def _figure_rows(report: dict[str, Any]) -> str:
    figures, limits, crossed = report["figures"], report["thresholds"], set(report["crossed"])
    accuracy = figures["feedback_accuracy"]
    rows = [
        ("length_psi", "Length PSI", f"{figures['length_psi']:.3f}", f"> {limits['length_psi']}"),
        ("score_psi", "Score PSI", f"{figures['score_psi']:.3f}", f"> {limits['score_psi']}"),
        (
            "oov_rate_increase",
            "Unknown-word rate",
            f"{figures['oov_rate']:.3f} (baseline {figures['baseline_oov_rate']:.3f})",
            f"> +{limits['oov_rate_increase']}",
        ),
        (
            "low_confidence_increase",
            "Low-confidence share",
            f"{figures['low_confidence_share']:.3f} "
            f"(baseline {figures['baseline_low_confidence_share']:.3f})",
            f"> +{limits['low_confidence_increase']}",
        ),
        (
            "feedback_accuracy",
            "Accuracy on feedback",
            ("none" if accuracy is None else f"{accuracy:.3f}")
            + f" ({figures['feedback_received']} answers)",
            f"< {limits['feedback_accuracy']} with {limits['min_feedback']}+ answers",
        ),
    ]
    return "".join(
        f'<tr class="{"crossed" if name in crossed else ""}"><td>{escape(label)}</td>'
        f"<td>{escape(value)}</td><td>{escape(limit)}</td>"
        f"<td>{'crossed' if name in crossed else 'ok'}</td></tr>"
        for name, label, value, limit in rows
    )


def _words(items: Sequence[Sequence[Any]], share: bool) -> str:
    if not items:
        return "<p>none</p>"
    shown = (
        f"{escape(str(word))} ({value:.3f})" if share else f"{escape(str(word))} ({value})"
        for word, value in items
    )
    return "<p>" + ", ".join(shown) + "</p>"


def drift_page(report: dict[str, Any]) -> str:
    window, figures = report["window"], report["figures"]
    verdict = (
        f'<p class="crossed">Thresholds crossed: {escape(", ".join(report["crossed"]))}</p>'
        if report["crossed"]
        else "<p>No threshold crossed.</p>"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Drift report</title>
<style>{_STYLE}</style></head>
<body>
<h1>Drift report</h1>
<p>{figures["reviews"]} reviews captured from {escape(window["since"] or "the first record")} to
{escape(window["until"] or "now")}, model {escape(str(report["model_version"] or "any"))},
against the baseline from {escape(str(report["baseline"]["source"]))}
({report["baseline"]["reviews"]} reviews).</p>
{verdict}
<table><tr><th>figure</th><th>traffic</th><th>threshold</th><th></th></tr>
{_figure_rows(report)}</table>
<p><span style="color:{_BASELINE_COLOUR}">■</span> baseline
<span style="color:{_TRAFFIC_COLOUR}">■</span> traffic</p>
<div class="charts">
{bar_chart("Review length (tokens the model reads)", report["length"], integer=True)}
{bar_chart("Positive score", report["score"], integer=False)}
</div>
<h2>Most frequent words the vocabulary does not know</h2>
{_words(report["top_unknown_words"], share=False)}
<h2>Most frequent words (share of tokens)</h2>
{_words(report["top_words"], share=True)}
</body></html>
"""
