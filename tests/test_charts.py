"""Charts: inline SVG with an accessible title that cannot carry markup from user-chosen names."""

from __future__ import annotations

import re

from fedhealth import charts


def test_every_chart_is_an_accessible_svg_with_its_title():
    svgs = [
        charts.grouped_bars("Accuracy by dataset", ["a", "b"], {"federated": [0.9, None], "centralised": [0.8, 0.7]}),
        charts.curves("Per round", [1, 2, 3], {"accuracy": [0.5, 0.6, None]}),
        charts.pie("Status", ["Poisoned", "Benign"], [3, 1]),
        charts.confusion("Detection", 4, 1, 0, 10),
    ]
    for svg, title in zip(svgs, ["Accuracy by dataset", "Per round", "Status", "Detection"], strict=True):
        assert svg.startswith("<svg") and f'role="img" aria-label="{title}"><title>{title}</title>' in svg


def test_a_hostile_name_in_a_title_is_escaped():
    svg = charts.grouped_bars('Scores on "><script>alert(1)</script>', ["x"], {"f1": [0.5]})
    assert "<script>" not in svg
    assert "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in svg


def test_dollar_signs_in_names_are_plain_text_not_mathtext():
    names = ["$\\foo$", "Cost $\\frac{a$ dataset", "ok $5"]
    svgs = [
        charts.grouped_bars(names[1], names, {names[0]: [0.5, 0.6, 0.7]}),
        charts.pie(names[2], names[:2], [1, 2]),
        charts.curves(names[0], [1], {names[1]: [0.5]}),
    ]
    assert all(svg.startswith("<svg") for svg in svgs)


def _figure_of(monkeypatch, draw):
    """The matplotlib figure a chart function renders, drawn, for checks on its layout."""
    captured = {}
    real = charts._svg

    def keep(fig, title):
        fig.canvas.draw()
        captured["fig"] = fig
        captured["boxes"] = _boxes(fig)
        return real(fig, title)

    monkeypatch.setattr(charts, "_svg", keep)
    draw()
    return captured["fig"], captured["boxes"]


def _boxes(fig):
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    legend = ax.get_legend()
    return {
        "axes": ax.get_window_extent(renderer),
        "legend": legend.get_window_extent(renderer) if legend else None,
        "xticklabels": [t.get_window_extent(renderer) for t in ax.get_xticklabels() if t.get_text()],
    }


def _comments(svg: str) -> list[str]:
    return re.findall(r"<!-- (.*?) -->", svg, flags=re.S)


def test_rounds_are_whole_numbers_on_the_accuracy_curve():
    svg = charts.curves("Per round", [1, 2, 3], {"federated accuracy": [0.5, 0.6, 0.7]})
    texts = _comments(svg)
    assert {"1", "2", "3"} <= set(texts)
    assert not any(re.fullmatch(r"\d+\.\d+", t) and float(t) > 1 for t in texts)  # no 1.25, 2.50 ...
    single = _comments(charts.curves("One round", [1], {"accuracy": [0.5]}))
    assert "1" in single and "0.96" not in single and "1.04" not in single


def test_the_curve_legend_does_not_cover_the_lines(monkeypatch):
    series = {"federated accuracy": [0.1, 0.5, 0.9], "centralised accuracy": [0.9, 0.9, 0.9], "backdoor success": [0.02, 0.0, 0.0]}
    _, boxes = _figure_of(monkeypatch, lambda: charts.curves("Per round", [1, 2, 3], series, "accuracy"))
    assert not boxes["legend"].overlaps(boxes["axes"])


def test_bar_values_have_headroom_and_long_group_labels_do_not_collide(monkeypatch):
    groups = ["Breast biopsy (MASS) · Krum · Backdoor #2", "Pima diabetes · Verification · Label flipping #1"]
    fig, boxes = _figure_of(monkeypatch, lambda: charts.grouped_bars(
        "Test accuracy", groups, {"centralised": [0.957, 0.764], "federated": [0.957, 0.745]}, "accuracy"))
    ax = fig.axes[0]
    assert ax.get_ylim()[1] >= 0.957 * 1.1  # the value label above the tallest bar stays inside the frame
    assert max(ax.get_yticks()) <= 1.0  # the scale still ends at 1
    first, second = boxes["xticklabels"]
    assert not first.overlaps(second)
    assert not boxes["legend"].overlaps(boxes["axes"])


def _luminance(rgb) -> float:
    def channel(c):
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(c) for c in rgb[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_confusion_counts_are_readable_and_wrong_cells_are_not_green(monkeypatch):
    from matplotlib.colors import to_rgb

    fig, _ = _figure_of(monkeypatch, lambda: charts.confusion("Detection", 6, 6, 0, 3))
    ax = fig.axes[0]
    image = ax.images[0]
    colours = image.to_rgba(image.get_array())
    for text in ax.texts:
        j, i = (round(v) for v in text.get_position())
        cell, ink = colours[i][j], to_rgb(text.get_color())
        hi, lo = sorted((_luminance(cell), _luminance(ink)), reverse=True)
        assert (hi + 0.05) / (lo + 0.05) >= 4.5, (text.get_text(), cell, ink)  # WCAG AA contrast
    for i, j in ((0, 1), (1, 0)):  # false negatives and false positives
        r, g, _ = colours[i][j][:3]
        assert r > g, f"cell {i},{j} is tinted like a correct one"
    for i in (0, 1):  # the correct cells stay green
        r, g, _ = colours[i][i][:3]
        assert g >= r


def test_charts_keep_a_readable_minimum_width_on_small_screens():
    svg = charts.grouped_bars("Accuracy", list("abcdefgh"), {"f": [0.5] * 8})
    assert re.search(r'<svg[^>]* style="min-width: 560px"', svg)
    small = charts.pie("Status", ["Poisoned", "Benign"], [3, 1])
    width = int(re.search(r'<svg[^>]* style="min-width: (\d+)px"', small).group(1))
    assert 200 < width < 560  # a small chart keeps its own size, never blown up


def test_pie_slices_use_verdict_colours_only_when_asked(monkeypatch):
    from matplotlib.colors import to_hex

    def slice_colours(*args):
        fig, _ = _figure_of(monkeypatch, lambda: charts.pie(*args))
        return [to_hex(w.get_facecolor()) for w in fig.axes[0].patches]

    red = charts.STATUS_COLORS["Poisoned"]
    balance = slice_colours("Class balance", ["no event", "event", "other"], [5, 3, 2])
    assert red not in balance and len(set(balance)) == 3
    status = slice_colours("Status", ["Poisoned", "Benign"], [3, 1], [red, charts.STATUS_COLORS["Benign"]])
    assert status == [red, charts.STATUS_COLORS["Benign"]]
