"""Display filters of the provider's pages: labels for internal codes, abbreviated hashes, numbers."""

from __future__ import annotations

import pytest
from django.template import Context, Template
from django.urls import reverse

from training.templatetags import fh_format as f

DIGEST = "ce16074bad7a411d1f002d343e6e0cf32e7b0ff91e4f4b4899e3967298961d1c"


def test_a_long_hash_shows_its_first_twelve_characters_and_keeps_the_full_value():
    html = Template("{% load fh_format %}{{ h|short_hash }}").render(Context({"h": DIGEST}))
    assert f'title="{DIGEST}"' in html  # on hover
    assert html.startswith('<code class="hash"') and f">{DIGEST[:12]}<" in html and "…" in html
    visible = html.replace(f'<span class="hash-rest">{DIGEST[12:]}</span>', "")
    assert DIGEST[12:] not in visible.split(">", 1)[1]  # the rest takes no room (CSS) but stays copyable
    assert f'<span class="hash-rest">{DIGEST[12:]}</span>' in html
    assert Template("{% load fh_format %}{{ h|short_hash }}").render(Context({"h": "abc"})) == '<code class="hash">abc</code>'
    assert "&lt;b&gt;" in str(f.short_hash("<b>" * 10))  # escaped


@pytest.mark.parametrize("code, label", [("logreg", "Logistic regression"), ("mlp", "MLP")])
def test_model_labels(code, label):
    assert f.model_label(code) == label


def test_attack_defense_and_metric_labels_are_human_words():
    assert f.attack_label("label_flip") == "Label flipping" and f.attack_label("none") == "None"
    assert f.defense_label("krum") == "Krum" and f.defense_label("none") == "None (FedAvg)"
    assert [f.metric_label(m) for m in ("accuracy", "f1", "roc_auc")] == ["Accuracy", "F1", "ROC AUC"]
    assert f.attack_label("brand_new") == "Brand new"  # an unknown code still reads as words


def test_numbers():
    assert f.percent(0.5) == "50%" and f.percent(1 / 3) == "33.3%" and f.percent(None) == ""
    assert f.thousands(14000) == "14,000" and f.thousands(532) == "532"
    assert f.cell(1001.0, True) == "1,001" and f.cell(0.3) == "0.300" and f.cell(0.1184) == "0.118"


def test_dataset_page_formats_each_column_alike_with_thousands_separators(client, provider):
    import re

    from training import services

    ds = services.dataset_create_synthetic(user=provider, name="Synth 2k", n_rows=2000, positive_fraction=0.3, seed=0)
    client.force_login(provider)
    page = client.get(reverse("training:dataset_detail", args=[ds.pk])).content.decode()
    assert "<dd>2,000</dd>" in page and "1,400 rows" in page and "600 rows" in page
    preview = page.split("<h2>Preview</h2>")[1].split("<h2>Columns</h2>")[0]
    cells = re.findall(r'<td class="num">([^<]*)</td>', preview)
    assert cells and not any(c.endswith(".0") for c in cells)  # an integer column shows integers
    assert all(re.fullmatch(r"-?[\d,]+(\.\d{3})?", c) for c in cells), cells  # the others three decimals each
    listing = client.get(reverse("training:dataset_list")).content.decode()
    assert "1,400" in listing and "2,000" in listing
