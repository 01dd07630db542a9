"""What the poisoning pages show: a refused training form keeps its predictor, the verdict and its
reasons agree, labels instead of codes, empty states, and tables that stay readable."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from fedcore.recordpoison import CLASSIFIER_NAMES
from poisoning import labels, services
from poisoning.models import Detector, Prediction, UpdateRecord
from training import services as training

pytestmark = pytest.mark.django_db


@pytest.fixture
def detector() -> Detector:
    return services.detector_train(dataset=training.dataset_create_builtin(name="biopsy"), poison_fraction=0.2, seed=1)


def values(det: Detector, **override) -> dict:
    return {**{f["name"]: f["min"] for f in det.feature_ranges["features"]}, **override}


def test_a_refused_training_form_still_shows_the_chosen_predictor(client, provider, detector):
    other = services.detector_train(dataset=training.dataset_create_builtin(name="pima"), poison_fraction=0.2, seed=1)
    client.force_login(provider)
    page = client.get(reverse("poisoning:detector_list"), {"detector": detector.pk}).content.decode()
    action = re.search(r'<form method="post" action="([^"]*/train/[^"]*)"', page).group(1)
    assert action == f"{reverse('poisoning:detector_train')}?detector={detector.pk}"
    # the server-side check (the browser's range check usually hides it): posted as is
    r = client.post(action, {"dataset": detector.dataset.pk, "poison_fraction": 0.9, "seed": 0})
    body = r.content.decode()
    assert r.status_code == 400 and "less than or equal to 0.45" in body
    assert r.context["chosen"] == detector and r.context["chart"] and list(r.context["history"]) == [detector]
    assert f"{detector.dataset.name} · version 1 · active: {labels.classifier_label(detector.classifier)}" in body
    assert body.count("<svg") >= 1 and 'id="detector-scores"' in body
    assert body.count('<tr class="highlight">') == 1 and "where 0.20 of the records" in body
    # the dataset tabs lead back to the list page, never to the POST-only training URL
    assert f'href="{reverse("poisoning:detector_list")}?detector={other.pk}"' in body
    assert 'href="?detector=' not in body
    # without ?detector the first active predictor is shown, as on the page itself
    r = client.post(reverse("poisoning:detector_train"), {"dataset": detector.dataset.pk, "poison_fraction": 0.9, "seed": 0})
    assert r.status_code == 400 and r.context["chosen"] is not None and r.context["chart"]


def test_detector_scores_put_f1_first_with_labels_and_abbreviations_explained(client, provider, detector):
    client.force_login(provider)
    body = client.get(reverse("poisoning:detector_list")).content.decode()
    table = body[body.index('id="detector-scores"'):body.index("</table>", body.index('id="detector-scores"'))]
    heads = re.findall(r"<th(?:\s[^>]*)?>(.*?)</th>", table)
    assert heads[:2] == ["Classifier", "F1"]
    assert all('title="' in h for h in heads[2:])  # every abbreviated heading says what it means
    assert ">CV F1</abbr>" in heads[2]  # the score the active one was chosen by, beside the test F1
    chosen = detector.scores[detector.classifier]["cv_f1"]
    assert f"{chosen:.3f}" in table and chosen == max(s["cv_f1"] for s in detector.scores.values())
    for code in CLASSIFIER_NAMES:
        assert labels.classifier_label(code) in table and f">{code}<" not in table and f"{code} " not in table
    assert "Logistic regression" in table and "Naive Bayes" in table and "Linear SVM" in table


def test_the_verdict_is_the_most_prominent_element_of_the_result(client, remote, detector):
    client.force_login(remote)
    data = {**{f"value-{k}": v for k, v in values(detector, clump_thickness=18).items()},
            "diagnosis": "benign", "detector": detector.pk}
    body = client.post(reverse("poisoning:predict"), data, follow=True).content.decode()
    card = body[body.index('id="result"') - 80:body.index("</section>", body.index('id="result"'))]
    assert "status-poisoned" not in card  # the card is no longer tinted like the badge, which blended into it
    assert re.search(r'<span class="verdict-value verdict-poisoned" id="verdict">Poisoned</span>', card)
    assert labels.classifier_label(detector.classifier) in card and f", {detector.classifier})" not in card


def test_reasons_explain_the_verdict_for_a_clearly_poisoned_and_a_clearly_benign_record(remote, detector):
    poisoned = services.prediction_create(user=remote, detector=detector, values=values(detector, clump_thickness=18),
                                          diagnosis="benign")
    assert poisoned.status == "Poisoned"
    assert "outside the range" in poisoned.reasons[0]
    assert not any("consistent" in r or "fits typical" in r for r in poisoned.reasons)
    benign = services.prediction_create(user=remote, detector=detector, values=values(detector), diagnosis="benign")
    assert benign.status == "Benign"
    assert "consistent with typical 'benign' records" in benign.reasons[0]
    assert not any("unlikely" in r or "outside" in r for r in benign.reasons)


def test_a_benign_record_with_a_value_that_stands_out_says_it_is_not_enough_to_flag_it(remote, detector):
    """Every Benign prediction whose reasons name a sign of poisoning says why that sign did not flag it."""
    found = 0
    for mitoses in range(1, 11):
        for diagnosis in ("benign", "malignant"):
            base = values(detector, mitoses=mitoses) if diagnosis == "benign" else \
                {f["name"]: f["max"] for f in detector.feature_ranges["features"]} | {"mitoses": mitoses}
            p = services.prediction_create(user=remote, detector=detector, values=base, diagnosis=diagnosis)
            for r in p.reasons:
                if p.status == "Benign" and ("SD" in r or "unlikely" in r or "outside" in r):
                    found += 1
                    assert "but the record as a whole fits typical" in r or "not enough on its own to flag" in r, r
                if p.status == "Poisoned":
                    assert "consistent" not in r and "fits typical" not in r, r
    assert found, "no Benign record with a standing-out value was tried"


def test_prediction_lists_show_labels_for_source_and_classifier_and_keep_dates_on_one_line(client, remote, provider, detector):
    client.force_login(remote)
    services.prediction_create(user=remote, detector=detector, values=values(detector), diagnosis="benign")
    header = ",".join([*values(detector), "class"])
    upload = SimpleUploadedFile("r.csv", (header + "\n" + ",".join(["1"] * len(values(detector))) + ",benign\n").encode())
    client.post(reverse("poisoning:predict_batch"), {"detector": detector.pk, "file": upload})
    assert Prediction.objects.count() == 2
    for who, url in ((remote, "poisoning:my_predictions"), (provider, "poisoning:prediction_list")):
        client.force_login(who)
        body = client.get(reverse(url)).content.decode()
        assert "<td>Form</td>" in body and "<td>CSV batch · " in body
        assert "<td>form</td>" not in body and "<td>batch · " not in body
        assert f"v1 · {labels.classifier_label(detector.classifier)}" in body and f"v1 {detector.classifier}" not in body
        assert len(re.findall(r'<td class="nowrap">\d{4}-\d\d-\d\d \d\d:\d\d</td>', body)) == 2


def test_ratio_pages_label_attacks_and_defenses_and_say_when_there_is_no_prediction(client, provider, detector):
    exp = training.experiment_create(name="e", dataset=detector.dataset, n_hospitals=2, rounds_=1, launch=False,
                                     attack="label_flip", malicious_fraction=0.3, defense="krum")
    UpdateRecord.objects.create(experiment=exp, round_no=1, hospital=0, malicious=True, attack="label_flip", val_accuracy=0.5,
                                val_loss=1, update_norm=1, cosine=0, status="Poisoned", aggregated=False,
                                verify_seconds=0.01, reason="", update_hash="0" * 64)
    client.force_login(provider)
    for url in ("poisoning:ratio_results", "poisoning:ratio_chart"):
        body = client.get(reverse(url)).content.decode()
        assert "<td>Label flipping</td><td>Krum</td>" in body and "label_flip" not in body and ">krum<" not in body
        assert 'id="ratio-predictions-empty"' in body and "No prediction yet" in body
        assert 'id="ratio-predictions"' not in body  # no table of nothing but a zero total
    Prediction.objects.create(user=provider, detector=detector, dataset_name="biopsy", inputs={}, status="Benign",
                              probability=0.1, reasons=["r"])
    body = client.get(reverse("poisoning:ratio_results")).content.decode()
    assert 'id="ratio-predictions"' in body and 'id="ratio-predictions-empty"' not in body
    detail = client.get(reverse("training:experiment_detail", args=[exp.pk])).content.decode()
    assert "malicious · Label flip" in detail and "malicious · label_flip" not in detail


def test_every_classifier_and_source_has_a_label():
    assert set(labels.CLASSIFIER_LABELS) == set(CLASSIFIER_NAMES)
    assert labels.source_label("batch") == "CSV batch" and labels.source_label("form") == "Form"
    assert labels.attack_label("label_flip") == "Label flipping" and labels.defense_label("krum") == "Krum"


def test_the_training_form_starts_on_the_dataset_of_the_predictor_being_looked_at(client, provider, detector):
    other = services.detector_train(dataset=training.dataset_create_builtin(name="pima"), poison_fraction=0.2, seed=1)
    client.force_login(provider)
    for shown in (detector, other):  # trained without touching the form, the tab's own dataset is trained
        form = client.get(reverse("poisoning:detector_list"), {"detector": shown.pk}).context["form"]
        assert form["dataset"].value() == shown.dataset_id


def test_the_predict_form_labels_each_field_as_the_risk_form_does_with_what_it_measures_and_its_unit(client, remote):
    services.detector_train(dataset=training.dataset_create_builtin(name="pima"), poison_fraction=0.2, seed=1)
    client.force_login(remote)
    page = client.get(reverse("poisoning:predict")).content.decode()
    assert "Plasma glucose in an oral glucose tolerance test — glu (mg/dL)" in page  # as on Home
    assert "Number of pregnancies — npreg" in page and '>npreg</label>' not in page


def test_the_detection_counts_say_which_updates_the_poisoned_verdicts_fell_on(client, provider):
    exp = training.experiment_create(name="Sign flip", dataset=training.dataset_create_builtin(name="pima"), n_hospitals=4,
                                     rounds_=1, attack="sign_flip", malicious_fraction=0.45, launch=False)
    verdicts = [(True, "Poisoned"), (True, "Poisoned"), (False, "Poisoned"), (False, "Benign")]
    UpdateRecord.objects.bulk_create([
        UpdateRecord(experiment=exp, round_no=1, hospital=h, malicious=malicious, status=status, aggregated=status == "Benign",
                     verify_seconds=0.1, reason="r", update_hash=f"{h:064x}") for h, (malicious, status) in enumerate(verdicts)])
    client.force_login(provider)
    page = client.get(reverse("training:experiment_detail", args=[exp.pk])).content.decode()
    assert "<dt>Poisoned verdicts</dt><dd>2 on malicious updates, 1 on honest one</dd>" in page
    assert "Flagged malicious / honest" not in page


def test_a_one_record_batch_says_one_record(client, remote, detector):
    names = [f["name"] for f in detector.feature_ranges["features"]]
    row = values(detector)
    content = (",".join([*names, "class"]) + "\n" + ",".join([*(str(row[n]) for n in names), "benign"]) + "\n").encode()
    client.force_login(remote)
    r = client.post(reverse("poisoning:predict_batch"), {"file": SimpleUploadedFile("one.csv", content), "detector": detector.pk},
                    follow=True)
    assert "1 record predicted." in r.content.decode() and "1 records" not in r.content.decode()


def test_my_predictions_filter_like_the_providers_list_and_show_which_record_each_is(client, remote, make_user, detector):
    form = services.prediction_create(user=remote, detector=detector, values=values(detector), diagnosis="benign")
    other = make_user(username="someone")
    services.prediction_create(user=other, detector=detector, values=values(detector), diagnosis="benign")
    Prediction.objects.create(user=other, detector=detector, dataset_name="Elsewhere", inputs={}, status="Benign",
                              probability=0.1, reasons=["r"])
    client.force_login(remote)
    url = reverse("poisoning:my_predictions")
    body = client.get(url).content.decode()
    # the filters offer the user's own datasets only; a form record shows its first values
    assert 'role="search"' in body and f"<option>{form.dataset_name}</option>" in body and "Elsewhere" not in body
    first = next(iter(form.inputs))
    assert "<th>Record</th>" in body and f"{first}: {form.record_cells[0][1]}" in body
    other_status = "Benign" if form.status == "Poisoned" else "Poisoned"
    page = client.get(url, {"status": other_status})
    assert list(page.context["page"].object_list) == [] and "None of your predictions matches these filters" in page.content.decode()
    assert list(client.get(url, {"status": form.status}).context["page"].object_list) == [form]
    assert list(client.get(url, {"q": "someone"}).context["page"].object_list) == []  # never another user's
