"""Charts: inline SVG with an accessible title that cannot carry markup from user-chosen names."""

from __future__ import annotations

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
