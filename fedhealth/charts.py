"""Server-side matplotlib (Agg) charts rendered to inline SVG, each with a text alternative."""

from __future__ import annotations

import html
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# Labels carry user-chosen names (datasets, experiments, classes): a "$" is a dollar sign, never
# the start of mathtext (an unbalanced or unknown "$...$" would make the chart raise).
matplotlib.rcParams["text.parse_math"] = False

COLORS = ["#0f766e", "#f59e0b", "#6366f1", "#dc2626", "#0891b2", "#65a30d", "#9333ea"]


def _svg(fig, title: str) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    text = html.escape(title, quote=True)  # titles carry user-chosen names (datasets, experiments)
    return svg.replace(">", f' role="img" aria-label="{text}"><title>{text}</title>', 1)


def grouped_bars(title: str, groups: list[str], series: dict[str, list[float | None]], ylabel: str = "", ylim=(0, 1)) -> str:
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(groups) + 2), 3.6), dpi=100)
    n = max(1, len(series))
    width = 0.8 / n
    for k, (name, values) in enumerate(series.items()):
        xs = [i + (k - (n - 1) / 2) * width for i in range(len(groups))]
        bars = ax.bar(xs, [v or 0 for v in values], width, label=name, color=COLORS[k % len(COLORS)])
        if len(groups) * n <= 24:  # values on the bars while they stay legible
            ax.bar_label(bars, ["—" if v is None else f"{v:.3g}" for v in values], fontsize=7, padding=2)
    ax.set_xticks(range(len(groups)), groups, rotation=15 if len(groups) > 4 else 0, ha="right" if len(groups) > 4 else "center")
    ax.set_xlim(-0.9, len(groups) - 0.1)  # a lone group does not stretch across the whole chart
    ax.set_ylim(*ylim)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)  # beside the bars, never over them
    return _svg(fig, title)


def curves(title: str, x: list[int], series: dict[str, list[float | None]], ylabel: str = "", ylim=(0, 1)) -> str:
    fig, ax = plt.subplots(figsize=(6.5, 3.4), dpi=100)
    for k, (name, values) in enumerate(series.items()):
        ax.plot(x, [v if v is not None else float("nan") for v in values], marker="o", ms=3, label=name, color=COLORS[k % len(COLORS)])
    ax.set_xlabel("round")
    ax.set_ylabel(ylabel)
    ax.set_ylim(*ylim)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _svg(fig, title)


def pie(title: str, labels: list[str], values: list[int]) -> str:
    fig, ax = plt.subplots(figsize=(4, 3.4), dpi=100)
    if sum(values):
        ax.pie(values, labels=labels, autopct="%1.0f%%", colors=["#dc2626", "#0f766e", *COLORS][: len(values)])
    ax.set_title(title)
    return _svg(fig, title)


def confusion(title: str, tp: int, fp: int, fn: int, tn: int) -> str:
    fig, ax = plt.subplots(figsize=(3.6, 3.2), dpi=100)
    m = [[tp, fn], [fp, tn]]
    ax.imshow(m, cmap="Greens")
    for i in range(2):
        for j in range(2):
            ax.text(j, i, str(m[i][j]), ha="center", va="center", fontsize=14)
    ax.set_xticks([0, 1], ["flagged Poisoned", "judged Benign"])
    ax.set_yticks([0, 1], ["malicious", "honest"])
    ax.set_title(title)
    return _svg(fig, title)
