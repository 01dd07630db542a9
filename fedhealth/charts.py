"""Server-side matplotlib (Agg) charts rendered to inline SVG, each with a text alternative."""

from __future__ import annotations

import html
import io
import re
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_rgb  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

# Labels carry user-chosen names (datasets, experiments, classes): a "$" is a dollar sign, never
# the start of mathtext (an unbalanced or unknown "$...$" would make the chart raise).
matplotlib.rcParams["text.parse_math"] = False

COLORS = ["#0f766e", "#f59e0b", "#6366f1", "#dc2626", "#0891b2", "#65a30d", "#9333ea"]
STATUS_COLORS = {"Poisoned": "#dc2626", "Benign": "#0f766e"}  # the verdict colours of the pages
MIN_WIDTH_PX = 560  # a chart is never drawn narrower than this (or its natural width, if smaller)
MAX_WIDTH_IN = 11.0  # about 1,100 px with its labels: the width of a page's content
HEADROOM = 1.12  # the y axis reaches this far above the tallest bar, so its value label stays inside the frame


def _svg(fig, title: str) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    plt.close(fig)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    text = html.escape(title, quote=True)  # titles carry user-chosen names (datasets, experiments)
    # on a narrow screen the chart keeps a readable size (up to MIN_WIDTH_PX) and its box scrolls sideways
    natural = re.search(r'width="([0-9.]+)pt"', svg[: svg.index(">")])
    min_width = min(MIN_WIDTH_PX, round(float(natural.group(1)) * 96 / 72)) if natural else MIN_WIDTH_PX
    return svg.replace(">", f' style="min-width: {min_width}px" role="img" aria-label="{text}"><title>{text}</title>', 1)


def _wrap(label: str, width: int, max_lines: int = 3) -> str:
    """A long label on a few lines of at most ``width`` characters (the last one cut with an ellipsis)."""
    lines = textwrap.wrap(label, width=width, break_long_words=True) or [""]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        lines[-1] = lines[-1][: max(1, width - 1)].rstrip() + "…"
    return "\n".join(lines)


def _group_labels(groups: list[str], slot_inches: float) -> tuple[list[str], int, str]:
    """Tick labels, rotation and alignment that keep neighbouring group labels apart.

    Each group owns ``slot_inches`` of axis; at the 10 pt tick font about 13 characters fit per inch.
    Labels wrap onto up to three lines of that width; when even a wrapped word cannot fit (many
    narrow groups) the labels are turned instead, one line each."""
    chars = max(6, int(slot_inches * 13) - 1)
    if len(groups) > 8 or (chars < 10 and max((len(g) for g in groups), default=0) > chars):
        # one line each, turned 45 degrees: neighbours stay a line's height apart however narrow
        # their slots (two turned lines would interleave); a long label keeps its start ("#12 ...")
        return [_wrap(g, 30, 1) for g in groups], 45, "right"
    return [_wrap(g, chars) for g in groups], 0, "center"


def grouped_bars(title: str, groups: list[str], series: dict[str, list[float | None]], ylabel: str = "", ylim=(0, 1)) -> str:
    # wider with more groups, up to what a page shows unscaled (a wider chart would be shrunk, and
    # its text with it); past 8 groups the labels turn to fit
    width_in = min(max(6, 1.4 * len(groups) + 2), MAX_WIDTH_IN)
    fig, ax = plt.subplots(figsize=(width_in, 3.8), dpi=100)
    n = max(1, len(series))
    width = 0.8 / n
    tallest = ylim[1]
    for k, (name, values) in enumerate(series.items()):
        xs = [i + (k - (n - 1) / 2) * width for i in range(len(groups))]
        bars = ax.bar(xs, [v or 0 for v in values], width, label=name, color=COLORS[k % len(COLORS)])
        tallest = max([tallest, *(v for v in values if v is not None)])
        if len(groups) * n <= 24:  # values on the bars while they stay legible
            ax.bar_label(bars, ["—" if v is None else f"{v:.3g}" for v in values], fontsize=7, padding=2)
    # the plot area is about 70% of the figure width (the legend takes the rest)
    labels, rotation, ha = _group_labels(groups, 0.7 * (width_in - 1.5) / max(1, len(groups)))
    ax.set_xticks(range(len(groups)), labels, rotation=rotation, ha=ha, rotation_mode="anchor" if rotation else "default")
    ax.set_xlim(-0.9, len(groups) - 0.1)  # a lone group does not stretch across the whole chart
    ax.set_ylim(ylim[0], ylim[0] + (tallest - ylim[0]) * HEADROOM)  # room for the value labels above the bars
    ax.set_yticks([t for t in ax.get_yticks() if ylim[0] <= t <= tallest + 1e-9])  # no tick above the scale's end
    ax.set_ylabel(ylabel)
    ax.set_title(title, pad=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)  # beside the bars, never over them
    return _svg(fig, title)


def curves(title: str, x: list[int], series: dict[str, list[float | None]], ylabel: str = "", ylim=(0, 1)) -> str:
    fig, ax = plt.subplots(figsize=(6.5, 3.4), dpi=100)
    for k, (name, values) in enumerate(series.items()):
        ax.plot(x, [v if v is not None else float("nan") for v in values], marker="o", ms=3, label=name, color=COLORS[k % len(COLORS)])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # rounds are whole numbers
    if len(x) == 1:
        ax.set_xticks(x)
    ax.set_xlabel("round")
    ax.set_ylabel(ylabel)
    ax.set_ylim(*ylim)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    # below the axes, never over the lines
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=min(3, max(1, len(series))), fontsize=8, frameon=False)
    return _svg(fig, title)


def pie(title: str, labels: list[str], values: list[int], colors: list[str] | None = None) -> str:
    """Slices in the palette's order unless ``colors`` are given (e.g. :data:`STATUS_COLORS`)."""
    fig, ax = plt.subplots(figsize=(4, 3.4), dpi=100)
    if sum(values):
        colors = colors or [COLORS[i % len(COLORS)] for i in range(len(values))]
        ax.pie(values, labels=labels, autopct="%1.0f%%", colors=colors)
    ax.set_title(title)
    return _svg(fig, title)


def _text_color(rgb) -> str:
    """Black on a light cell, white on a dark one (relative luminance)."""
    r, g, b = rgb[:3]
    return "white" if 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.5 else "black"


def confusion(title: str, tp: int, fp: int, fn: int, tn: int) -> str:
    """Rows: ground truth; columns: verdict. Correct cells (diagonal) are green, wrong ones red,
    each the deeper the larger its share of the biggest count."""
    fig, ax = plt.subplots(figsize=(3.8, 3.3), dpi=100)
    m = [[tp, fn], [fp, tn]]
    top = max(1, tp, fp, fn, tn)
    greens, reds = plt.get_cmap("Greens"), plt.get_cmap("Reds")
    cells = [[None, None], [None, None]]
    for i in range(2):
        for j in range(2):
            cmap = greens if i == j else reds
            cells[i][j] = to_rgb(cmap(0.08 + 0.72 * m[i][j] / top))
    ax.imshow(cells)
    for i in range(2):
        for j in range(2):
            ax.text(j, i, str(m[i][j]), ha="center", va="center", fontsize=14, color=_text_color(cells[i][j]))
    ax.set_xticks([0, 1], ["flagged Poisoned", "judged Benign"])
    ax.set_yticks([0, 1], ["malicious", "honest"])
    ax.set_xlabel("verdict")
    ax.set_ylabel("ground truth")
    ax.set_title(title)
    return _svg(fig, title)
