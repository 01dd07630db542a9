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


LONG_NAME = "patient_reference_" * 300  # 5,400 characters without a space
BATCH = "0f8c3a52-7d41-4b9e-9a6e-2c5d8e1f4b07"


def test_free_text_is_cut_to_forty_characters_with_the_whole_text_in_the_title():
    assert f.clip("glu") == "glu" and f.clip("x" * 40) == "x" * 40 and f.clip(None) == ""
    html = Template("{% load fh_format %}{{ t|clip }}").render(Context({"t": LONG_NAME}))
    assert html == f'<span title="{LONG_NAME}">{LONG_NAME[:39]}…</span>'
    assert str(f.clip("<b>" * 20)).count("&lt;b&gt;") > 20  # escaped, in the title and in the text


def test_a_very_long_column_name_is_cut_in_the_dataset_tables(client, provider):
    from unittest import mock

    import numpy as np

    from fedcore.data import Table
    from training import selectors, services

    ds = services.dataset_create_synthetic(user=provider, name="Synth", n_rows=40, positive_fraction=0.3, seed=0)
    table = Table(X=np.arange(80, dtype=float).reshape(40, 2), y=np.array([0, 1] * 20), feature_names=[LONG_NAME, "age"],
                  target_name="outcome", class_names=["no", "yes"], source="upload")
    client.force_login(provider)
    with mock.patch.object(selectors, "dataset_table", return_value=table):
        page = client.get(reverse("training:dataset_detail", args=[ds.pk])).content.decode()
    shown = f'<span title="{LONG_NAME}">{LONG_NAME[:39]}…</span>'
    assert f'<th class="num">{shown}</th>' in page  # the preview's header
    assert f"<td>{shown}</td>" in page  # the columns table
    assert page.count(LONG_NAME) == 2  # only in the two titles


def test_a_very_long_extra_column_of_a_batch_is_cut_on_its_page(client, remote):
    from poisoning.models import Detector, Prediction
    from training import services

    ds = services.dataset_create_synthetic(name="Synth", n_rows=40, positive_fraction=0.3, seed=0)
    det = Detector.objects.create(dataset=ds, version=1, classifier="random_forest", scores={}, poison_fraction=0.2,
                                  model_blob=b"", model_sha256="0" * 64, active=True)
    Prediction.objects.create(user=remote, detector=det, dataset_name="Synth", inputs={"age": 1.0}, status="Benign",
                              probability=0.1, reasons=["r"], source="batch", batch=BATCH,
                              uploaded=[["age", "1"], [LONG_NAME, "P-001"], ["notes", "seen " + "x" * 60]])
    client.force_login(remote)
    page = client.get(reverse("poisoning:my_predictions"), {"batch": BATCH}).content.decode()
    assert f'<span title="{LONG_NAME}">{LONG_NAME[:39]}…</span>: P-001' in page
    assert f'notes: <span title="seen {"x" * 60}">seen {"x" * 34}…</span>' in page
    assert page.count(LONG_NAME) == 1
