"""Predictors, predictions (form, CSV batch, API), provider reports and downloads, on the real database."""

from __future__ import annotations

import csv
import html
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.http import StreamingHttpResponse
from django.urls import reverse

from poisoning import selectors, services
from poisoning.models import Detector, Prediction, UpdateRecord
from training import services as training
from training.models import Experiment

pytestmark = pytest.mark.django_db


@pytest.fixture
def detector() -> Detector:
    return services.detector_train(dataset=training.dataset_create_builtin(name="biopsy"), poison_fraction=0.2, seed=1)


def record(det: Detector, **override) -> dict:
    values = {f["name"]: f["min"] for f in det.feature_ranges["features"]}
    values.update(override)
    return values


def form_data(det: Detector, diagnosis: str, **override) -> dict:
    """The predict form's fields for a record: value-<feature> for each value, the recorded diagnosis, the predictor."""
    return {**{f"value-{k}": v for k, v in record(det, **override).items()}, "diagnosis": diagnosis, "detector": det.pk}


def batch_csv(det: Detector, rows: list[dict]) -> bytes:
    out = io.StringIO()
    names = [f["name"] for f in det.feature_ranges["features"]] + [det.feature_ranges["target"]]
    w = csv.DictWriter(out, fieldnames=names)
    w.writeheader()
    w.writerows(rows)
    return out.getvalue().encode()


def read_csv(response) -> list[dict]:
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(body)))


def test_training_versions_and_activates_the_best(detector):
    assert detector.version == 1 and detector.active
    assert detector.classifier == max(detector.scores, key=lambda n: detector.scores[n]["cv_f1"])
    second = services.detector_train(dataset=detector.dataset, poison_fraction=0.3, seed=2)
    detector.refresh_from_db()
    assert second.version == 2 and second.active and not detector.active
    assert list(selectors.active_detectors()) == [second]


def test_an_earlier_version_can_be_made_active_again_from_the_predictors_page(client, provider, remote, detector):
    second = services.detector_train(dataset=detector.dataset, poison_fraction=0.3, seed=2)
    client.force_login(provider)
    page = client.get(reverse("poisoning:detector_list")).content.decode()
    versions = page.split('id="detector-versions"')[1].split("</table>")[0]
    assert versions.count("<tr") == 3 and versions.count("Activate</button>") == 1  # header, v2 (active), v1
    r = client.post(reverse("poisoning:detector_activate", args=[detector.pk]), follow=True)
    assert "version 1 is active again" in r.content.decode()
    detector.refresh_from_db(), second.refresh_from_db()
    assert detector.active and not second.active and list(selectors.active_detectors()) == [detector]
    client.force_login(remote)  # remote users' predictions use the version made active
    client.post(reverse("poisoning:predict"), form_data(detector, "benign"))
    assert Prediction.objects.get().detector == detector
    # a version whose stored model no longer matches its hash is refused; the active one stays
    Detector.objects.filter(pk=second.pk).update(model_blob=b"damaged")
    client.force_login(provider)
    r = client.post(reverse("poisoning:detector_activate", args=[second.pk]), follow=True)
    assert "Version 2 cannot be activated" in html.unescape(r.content.decode())
    assert list(selectors.active_detectors()) == [detector]


def test_a_form_sent_for_a_predictor_replaced_meanwhile_comes_back_with_its_values_and_stores_nothing(client, remote, detector):
    client.force_login(remote)
    second = services.detector_train(dataset=detector.dataset, poison_fraction=0.3, seed=2)  # while the page is open
    r = client.post(reverse("poisoning:predict"), form_data(detector, "benign", clump_thickness=7))
    page = html.unescape(r.content.decode())
    assert r.status_code == 400 and "updated to version 2 after this page was loaded. Nothing was stored" in page
    assert 'name="value-clump_thickness"' in page and 'value="7' in page and f'value="{second.pk}"' in page
    rows = [{**record(detector), "class": "benign"}]
    r = client.post(reverse("poisoning:predict_batch"), {"file": SimpleUploadedFile("r.csv", batch_csv(detector, rows)),
                                                          "detector": detector.pk})
    assert r.status_code == 400 and "Nothing was stored" in html.unescape(r.content.decode())
    assert not Prediction.objects.exists()
    r = client.get(reverse("poisoning:predict"), {"detector": detector.pk})  # an old link: the current version
    assert r.status_code == 200 and "updated to version 2" in html.unescape(r.content.decode())
    assert client.post(reverse("poisoning:predict"), form_data(second, "benign")).status_code == 302
    assert client.get(reverse("poisoning:predict"), {"detector": "99999"}).status_code == 404


def test_remote_user_predicts_one_record_from_the_generated_form(client, remote, detector):
    client.force_login(remote)
    page = client.get(reverse("poisoning:predict"))
    assert page.status_code == 200
    for f in detector.feature_ranges["features"]:
        assert f'name="value-{f["name"]}"' in page.content.decode()
    tampered = form_data(detector, "benign", clump_thickness=18)  # above the 1-10 scale, inside the form's slack
    r = client.post(reverse("poisoning:predict"), tampered, follow=True)
    assert r.status_code == 200
    p = Prediction.objects.get()
    assert (p.user, p.detector, p.source, p.status) == (remote, detector, "form", "Poisoned")
    assert p.inputs["clump_thickness"] == 18 and p.inputs["class"] == "benign"
    assert "outside the range" in p.reasons[0] and p.probability >= 0.5
    assert "Poisoned" in r.content.decode() and f"{p.probability:.3f}" in r.content.decode()


def test_a_stored_prediction_redirects_to_its_result_so_a_refresh_stores_no_duplicate(client, remote, detector):
    client.force_login(remote)
    r = client.post(reverse("poisoning:predict"), form_data(detector, "malignant", mitoses=7))
    p = Prediction.objects.get()
    assert r.status_code == 302
    assert r["Location"] == f"{reverse('poisoning:predict')}?detector={detector.pk}&prediction={p.pk}#result"
    for _ in range(2):  # showing the result again (a refresh) stores nothing
        page = client.get(r["Location"])
        assert page.status_code == 200 and page.context["result"] == p and f"{p.probability:.3f}" in page.content.decode()
    assert Prediction.objects.count() == 1
    form = page.context["form"]  # filled in with the record, to change a value and predict again
    assert form["value-mitoses"].value() == 7 and form["diagnosis"].value() == "malignant"
    other = type(remote).objects.create_user("other", "o@example.org", "pw-Secret-123", role="remote_user", status="authorized")
    client.force_login(other)
    for wanted in (p.pk, "abc", "99999999999999999999999"):
        assert client.get(reverse("poisoning:predict"), {"prediction": wanted}).status_code == 404


def test_features_named_diagnosis_or_detector_never_collide_with_the_recorded_diagnosis(client, provider, remote):
    content = "diagnosis,detector,age,outcome\n" + "".join(f"{i % 2},{i % 3},{20 + i},{'sick' if i % 3 else 'well'}\n" for i in range(60))
    dataset = training.dataset_create_upload(name="Clinic", content=content.encode(), target_column="outcome", max_bytes=10**6,
                                             user=provider)
    det = services.detector_train(dataset=dataset)
    assert [f["name"] for f in det.feature_ranges["features"]] == ["diagnosis", "detector", "age"]
    client.force_login(remote)
    page = client.get(reverse("poisoning:predict")).content.decode()
    assert 'name="value-diagnosis"' in page and 'name="value-detector"' in page and '<select name="diagnosis"' in page
    r = client.post(reverse("poisoning:predict"),
                    {"detector": det.pk, "value-diagnosis": 1, "value-detector": 2, "value-age": 40, "diagnosis": "sick"})
    assert r.status_code == 302
    assert Prediction.objects.get().inputs == {"diagnosis": 1.0, "detector": 2.0, "age": 40.0, "outcome": "sick"}
    # the API and a CSV batch keep them apart too: the recorded diagnosis by itself, or in the target's column
    api = client.post(reverse("api_poisoning_predictions"),
                      {"detector": det.pk, "values": {"diagnosis": 0, "detector": 1, "age": 30}, "diagnosis": "well"},
                      content_type="application/json")
    assert api.status_code == 201 and api.json()["inputs"] == {"diagnosis": 0.0, "detector": 1.0, "age": 30.0, "outcome": "well"}
    # a diagnosis in other capitals names its class, as in a batch
    api = client.post(reverse("api_poisoning_predictions"),
                      {"detector": det.pk, "values": {"diagnosis": 0, "detector": 1, "age": 30}, "diagnosis": " WELL"},
                      content_type="application/json")
    assert api.status_code == 201 and api.json()["inputs"]["outcome"] == "well"
    upload = SimpleUploadedFile("r.csv", b"outcome,age,diagnosis,detector\nwell,30,0,1\n")
    (row,) = read_csv(client.post(reverse("api_poisoning_batch"), {"detector": det.pk, "file": upload}))
    assert (row["diagnosis"], row["detector"], row["age"], row["outcome"]) == ("0", "1", "30", "well")  # as written


def test_predict_form_refuses_implausible_and_missing_values_and_stores_nothing(client, remote, detector):
    client.force_login(remote)
    r = client.post(reverse("poisoning:predict"), form_data(detector, "benign", clump_thickness=500))
    assert r.status_code == 400 and "500 is outside the plausible range 0 to 19" in r.content.decode()
    r = client.post(reverse("poisoning:predict"), {"diagnosis": "maybe", "detector": detector.pk})
    assert r.status_code == 400 and "This field is required" in r.content.decode()
    assert client.post(reverse("poisoning:predict"), {"detector": 9999}).status_code == 404
    assert not Prediction.objects.exists()


def test_form_api_and_batch_refuse_implausible_and_non_numeric_values_alike_and_store_nothing(client, remote, detector):
    client.force_login(remote)
    url = reverse("api_poisoning_predictions")
    refused = [(1e300, "1e+300 is outside the plausible range 0 to 19"), (-500, "-500 is outside the plausible range 0 to 19"), (-1, "-1 is outside the plausible range 0 to 19"),
               (True, "true is not a number"), (None, "null is not a number"), ("ten", "'ten' is not a number")]
    for value, message in refused:
        r = client.post(url, {"detector": detector.pk, "values": record(detector, clump_thickness=value), "diagnosis": "benign"},
                        content_type="application/json")
        assert r.status_code == 400 and r.json()["error"]["message"] == f"'clump_thickness': {message}"
    r = client.post(url, {"detector": detector.pk, "values": record(detector, mitoses=20, clump_thickness=False), "diagnosis": "benign"},
                    content_type="application/json")
    assert r.json()["error"]["message"] == ("'clump_thickness': false is not a number; "
                                            "'mitoses': 20 is outside the plausible range 0 to 19")
    form = client.post(reverse("poisoning:predict"), form_data(detector, "benign", clump_thickness="1e300"))
    assert form.status_code == 400 and "1e+300 is outside the plausible range 0 to 19" in form.content.decode()
    rows = [{**record(detector), "class": "benign"}, {**record(detector, mitoses="1e300"), "class": "benign"}]
    for batch_url in (reverse("poisoning:predict_batch"), reverse("api_poisoning_batch")):
        r = client.post(batch_url, {"file": SimpleUploadedFile("r.csv", batch_csv(detector, rows)), "detector": detector.pk})
        assert r.status_code == 400
        assert "row 3 / column 'mitoses': 1e+300 is outside the plausible range 0 to 19" in html.unescape(r.content.decode())
    assert not Prediction.objects.exists()


@pytest.mark.parametrize("damage", ["appended", "rehashed"])
def test_a_damaged_stored_predictor_is_named_on_every_prediction_path_and_nothing_is_stored(client, remote, detector, damage):
    """A blob changed in the database (its hash no longer matches; or re-hashed, so that it no
    longer unpickles) is a clear error on the form, the batch page and both APIs."""
    import hashlib

    selectors._load.cache_clear()  # as a process that has not loaded it yet (a loaded model was checked when loaded)
    blob = bytes(detector.model_blob) + b"x"
    if damage == "appended":
        Detector.objects.filter(pk=detector.pk).update(model_blob=blob)
    else:
        blob = b"not a pickle" + blob
        Detector.objects.filter(pk=detector.pk).update(model_blob=blob, model_sha256=hashlib.sha256(blob).hexdigest())
    client.force_login(remote)
    expected = "cannot predict"
    r = client.post(reverse("poisoning:predict"), form_data(detector, "benign"))
    assert r.status_code == 400 and expected in r.content.decode()
    r = client.post(reverse("api_poisoning_predictions"), {"detector": detector.pk, "values": record(detector), "diagnosis": "benign"},
                    content_type="application/json")
    assert r.status_code == 400 and expected in r.json()["error"]["message"]
    rows = [{**record(detector), "class": "benign"}]
    for batch_url in (reverse("poisoning:predict_batch"), reverse("api_poisoning_batch")):
        r = client.post(batch_url, {"file": SimpleUploadedFile("r.csv", batch_csv(detector, rows)), "detector": detector.pk})
        assert r.status_code == 400 and expected in html.unescape(r.content.decode())
    assert not Prediction.objects.exists()


def test_csv_batch_predicts_every_row_and_round_trips_as_a_download(client, remote, detector):
    client.force_login(remote)
    rows = [{**record(detector), "class": "benign"}, {**record(detector, clump_thickness=18), "class": "benign"},
            {**record(detector, mitoses=10, bare_nuclei=10), "class": "malignant"}]
    upload = SimpleUploadedFile("records.csv", batch_csv(detector, rows), content_type="text/csv")
    r = client.post(reverse("poisoning:predict_batch"), {"file": upload, "detector": detector.pk})
    assert r.status_code == 302
    stored = Prediction.objects.order_by("id")
    assert stored.count() == 3 and len({p.batch for p in stored}) == 1 and stored[0].source == "batch"
    batch = stored[0].batch
    assert batch in r["Location"]
    download = client.get(reverse("poisoning:batch_download", args=[batch]))
    assert isinstance(download, StreamingHttpResponse)
    back = read_csv(download)
    assert [float(b["clump_thickness"]) for b in back] == [float(row["clump_thickness"]) for row in rows]
    assert [b["status"] for b in back] == [p.status for p in stored]
    assert back[1]["status"] == "Poisoned"
    # someone else's batch is not found
    other = services.predictions_batch(user=remote, detector=detector, content=batch_csv(detector, rows[:1]))
    client.force_login(type(remote).objects.create_user("other", "o@example.org", "pw-Secret-123", role="remote_user", status="authorized"))
    assert client.get(reverse("poisoning:batch_download", args=[other])).status_code == 404


def test_a_batch_comes_back_with_every_uploaded_column_and_cell_as_written(client, remote, detector):
    names = [f["name"] for f in detector.feature_ranges["features"]]
    target = detector.feature_ranges["target"]
    header = ["patient_id", *names, target, "status"]  # an id to join the results back on; a column named like an added one
    lines = [",".join(header)]
    for pid, diagnosis in (("P-001", "Benign"), ("P-002", "malignant")):
        lines.append(",".join([pid, *(str(int(round(v))) for v in record(detector).values()), diagnosis, "seen"]))
    batch = services.predictions_batch(user=remote, detector=detector, content="\n".join(lines).encode())
    client.force_login(remote)
    body = b"".join(client.get(reverse("poisoning:batch_download", args=[batch])).streaming_content).decode("utf-8-sig")
    back = list(csv.reader(io.StringIO(body)))
    assert back[0] == [*header, "predicted_status", "probability_poisoned", "reasons"]
    stored = list(Prediction.objects.filter(batch=batch).order_by("id"))
    for line, row, p in zip(lines[1:], back[1:], stored, strict=True):
        assert row[: len(header)] == line.split(",")  # "P-001", "3" (not "3.0"), "Benign" as written
        assert row[len(header):] == [p.status, str(round(p.probability, 6)), " | ".join(p.reasons)]
    assert stored[0].inputs[target] == "benign"  # read as the class it names
    # the batch's page lists its records in file order, each with the cells that tell which row it is
    page = client.get(reverse("poisoning:my_predictions"), {"batch": batch}).content.decode()
    first, second = (page.split(f">{pid}")[0].count("<tr") for pid in ("patient_id: P-001", "patient_id: P-002"))
    row = page.split("patient_id: P-001")[0].rsplit("<tr>", 1)[1]  # the first record's row, up to its cells
    assert first < second and row.lstrip().startswith('<td class="num">1</td>') and "status: seen" in page


def test_my_predictions_ignores_a_batch_parameter_that_is_no_batch_id_and_says_so(client, remote, detector):
    batch = services.predictions_batch(user=remote, detector=detector, content=batch_csv(detector, [{**record(detector), "class": "benign"}]))
    services.prediction_create(user=remote, detector=detector, values=record(detector), diagnosis="benign")
    client.force_login(remote)
    url = reverse("poisoning:my_predictions")
    for wanted in ("abc", "<b>x</b>", batch + "0"):
        page = client.get(url, {"batch": wanted})
        assert page.status_code == 200 and page.context["batch"] == "" and len(page.context["page"].object_list) == 2
        assert "is not a batch id; showing all your predictions" in page.content.decode() and "<b>x</b>" not in page.content.decode()
    page = client.get(url, {"batch": batch.upper()})  # a batch id in capitals is still that batch
    assert page.status_code == 200 and page.context["batch"] == batch and len(page.context["page"].object_list) == 1
    assert reverse("poisoning:batch_download", args=[batch]) in page.content.decode()


def test_a_bad_batch_names_row_and_column_and_stores_nothing(client, remote, detector):
    client.force_login(remote)
    rows = [{**record(detector), "class": "benign"}, {**record(detector, mitoses="one"), "class": "benign"}]
    upload = SimpleUploadedFile("bad.csv", batch_csv(detector, rows), content_type="text/csv")
    r = client.post(reverse("poisoning:predict_batch"), {"file": upload, "detector": detector.pk})
    assert r.status_code == 400
    assert "Nothing was stored" in r.content.decode() and "row 3 / column &#x27;mitoses&#x27;: &#x27;one&#x27; is not a number" in r.content.decode()
    twice = b"mitoses," + batch_csv(detector, [{**record(detector), "class": "benign"}]).replace(b"\r\n", b"\r\n9,", 1)
    for url in (reverse("poisoning:predict_batch"), reverse("api_poisoning_batch")):
        r = client.post(url, {"file": SimpleUploadedFile("twice.csv", twice), "detector": detector.pk})
        assert r.status_code == 400
        assert "row 1 / column 'mitoses': this column appears more than once in the header" in html.unescape(r.content.decode())
    assert not Prediction.objects.exists()


def test_a_batch_above_the_size_limit_is_refused_by_its_size_on_the_page_and_the_api(client, remote, detector, settings):
    settings.PREDICTION_BATCH_MAX_BYTES = 1024
    client.force_login(remote)
    content = batch_csv(detector, [{**record(detector), "class": "benign"}] * 40)
    assert len(content) > 1024
    page = client.post(reverse("poisoning:predict_batch"), {"file": SimpleUploadedFile("big.csv", content), "detector": detector.pk})
    assert page.status_code == 400 and "The file is larger than allowed; the limit is 1 KiB." in page.content.decode()
    api = client.post(reverse("api_poisoning_batch"), {"file": SimpleUploadedFile("big.csv", content), "detector": detector.pk})
    assert api.status_code == 400
    assert api.json()["error"]["fields"] == {"file": ["The file is larger than allowed; the limit is 1 KiB."]}
    assert not Prediction.objects.exists()


def _predictions(detector, users_and_status):
    for user, status, name in users_and_status:
        Prediction.objects.create(user=user, detector=detector, dataset_name=name, inputs={"x": 1}, status=status,
                                  probability=0.9 if status == "Poisoned" else 0.1, reasons=["r"])


def test_a_batch_download_keeps_uploaded_columns_named_like_the_added_ones(client, remote, detector):
    inputs = {"status": "7", "predicted_status": "8", "reasons": "x", "age": "30"}
    Prediction.objects.create(user=remote, detector=detector, dataset_name="d", inputs=inputs, status="Poisoned",
                              probability=0.9, reasons=["r1", "r2"], batch="b" * 36, source="batch")
    header, rows = selectors.batch_csv("b" * 36, selectors.predictions(user=remote))
    assert header == ["status", "predicted_status", "reasons", "age", "predicted_predicted_status",
                      "probability_poisoned", "predicted_reasons"]
    assert list(rows) == [["7", "8", "x", "30", "Poisoned", 0.9, "r1 | r2"]]


def test_provider_lists_filters_searches_and_downloads_escaped_csv(client, provider, remote, detector):
    _predictions(detector, [(remote, "Poisoned", "biopsy"), (remote, "Benign", "biopsy"),
                            (remote, "Poisoned", "=HYPERLINK(\"http://evil\")"), (provider, "Benign", "-2+3")])
    client.force_login(provider)
    page = client.get(reverse("poisoning:prediction_list"), {"status": "Poisoned"})
    assert page.status_code == 200 and len(page.context["page"].object_list) == 2
    assert len(client.get(reverse("poisoning:prediction_list"), {"q": remote.username}).context["page"].object_list) == 3
    for q in ("\x00", remote.username + "\x00"):  # no stored name holds a NUL: SQLite's LIKE stopped at it and matched all
        assert len(client.get(reverse("poisoning:prediction_list"), {"q": q}).context["page"].object_list) == 0
        assert client.get(reverse("api_poisoning_predictions"), {"q": q}).json()["count"] == 0
    rows = read_csv(client.get(reverse("poisoning:download")))
    assert len(rows) == 4
    names = {r["dataset"] for r in rows}
    assert "'=HYPERLINK(\"http://evil\")" in names and "'-2+3" in names and "biopsy" in names
    only_benign = read_csv(client.get(reverse("poisoning:download"), {"status": "Benign"}))
    assert {r["status"] for r in only_benign} == {"Benign"} and len(only_benign) == 2


def test_ratios_over_predictions_and_experiments(client, provider, remote, detector):
    _predictions(detector, [(remote, "Poisoned", "biopsy")] * 3 + [(remote, "Benign", "biopsy")])
    exp = training.experiment_create(name="e", dataset=detector.dataset, n_hospitals=3, rounds_=1, launch=False)
    for h, (mal, status) in enumerate([(True, "Poisoned"), (False, "Benign"), (False, "Poisoned")]):
        UpdateRecord.objects.create(experiment=exp, round_no=1, hospital=h, malicious=mal, val_accuracy=0.5, val_loss=1,
                                    update_norm=1, cosine=0, status=status, aggregated=status == "Benign",
                                    verify_seconds=0.01, reason="", update_hash="0" * 64)
    ratios = selectors.prediction_ratios()
    assert ratios["overall"] == {"label": "All predictions", "poisoned": 3, "benign": 1, "total": 4, "poisoned_ratio": 0.75}
    # a defense that uses every update predicts no status: counted, it would read as all missed
    trimmed = training.experiment_create(name="t", dataset=detector.dataset, n_hospitals=2, rounds_=1, defense="trimmed_mean",
                                         launch=False)
    UpdateRecord.objects.create(experiment=trimmed, round_no=1, hospital=0, malicious=True, val_accuracy=None, val_loss=None,
                                status="Benign", aggregated=True, verify_seconds=0, reason="", update_hash="1" * 64)
    (e,) = selectors.experiment_ratios()
    assert (e["experiment_id"], e["poisoned"], e["benign"], e["malicious"]) == (exp.pk, 2, 1, 1)
    client.force_login(provider)
    chart = client.get(reverse("poisoning:ratio_chart")).content.decode()
    assert chart.count("<svg") >= 3 and "0.750" in chart
    assert "0.667" in client.get(reverse("poisoning:ratio_results")).content.decode()


def test_experiment_page_shows_each_verdict_with_its_reason_and_the_scores_as_the_reason_rounds_them(client, provider, detector):
    exp = training.experiment_create(name="e", dataset=detector.dataset, n_hospitals=2, rounds_=1, launch=False)
    acc = 63 / 80  # 0.7875 in decimal, just below it in binary: a half-up rounding would show 0.788
    UpdateRecord.objects.create(experiment=exp, round_no=1, hospital=0, malicious=False, val_accuracy=acc, val_loss=0.5,
                                update_norm=0.2, cosine=0.1, status="Benign", aggregated=True, encrypted=True,
                                verify_seconds=0.0042, reason=f"validation accuracy {acc:.3f} within range",
                                update_hash="0" * 64)
    client.force_login(provider)
    page = client.get(reverse("training:experiment_detail", args=[exp.pk])).content.decode()
    assert ">0.787<" in page and "validation accuracy 0.787 within range" in page and "0.788" not in page
    assert "MPC · 4.2 ms" in page
    assert exp.encrypted and "the MPC time of an update is its share of that run" in page


def test_a_rejected_update_shows_and_serves_no_scores(client, provider, detector):
    exp = training.experiment_create(name="e", dataset=detector.dataset, n_hospitals=2, rounds_=1, launch=False)
    UpdateRecord.objects.create(experiment=exp, round_no=1, hospital=0, malicious=True, attack="sign_flip",
                                val_accuracy=None, val_loss=None, update_norm=None, cosine=None, status="Poisoned",
                                aggregated=False, encrypted=True, verify_seconds=0, signature_ok=False,
                                reason="rejected: signature does not verify", update_hash="0" * 64)
    client.force_login(provider)
    page = client.get(reverse("training:experiment_detail", args=[exp.pk])).content.decode()
    row = page.split('<tr class="has-detail">')[1].split("</tr>")[0]
    assert row.count(">—<") == 5 and "not scored" in row and "MPC" not in row
    api = client.get(reverse("api_poisoning_updates", args=[exp.pk])).json()["results"][0]
    assert [api[k] for k in ("val_accuracy", "val_loss", "update_norm", "cosine", "rows_harmed")] == [None] * 5


@pytest.mark.django_db(transaction=True)
def test_detection_metrics_on_a_tiny_attacked_experiment(eager, client, provider):
    ds = training.dataset_create_builtin(name="breast_cancer")
    exp = training.experiment_create(name="tiny", dataset=ds, n_hospitals=6, rounds_=2, seed=4, model_kind="logreg",
                                     attack="sign_flip", malicious_fraction=0.34, defense="verification", encrypted=False)
    exp.refresh_from_db()
    assert exp.status == Experiment.Status.FINISHED, exp.error
    det = selectors.detection_metrics(experiment=exp)
    assert det["tp"] + det["fn"] == 2 * 2 and det["tp"] + det["fp"] + det["fn"] + det["tn"] == 12
    assert det["recall"] == 1.0 and det["false_positive_rate"] == 0.0
    assert not UpdateRecord.objects.filter(experiment=exp, malicious=True, aggregated=True).exists()
    client.force_login(provider)
    page = client.get(reverse("training:experiment_detail", args=[exp.pk])).content.decode()
    assert page.count("malicious · Sign flip") == 4 and "Recall" in page  # the attack's label, not its code
    assert "malicious · sign_flip" not in page
    assert exp.detection["recall"] == 1.0  # stored with the finished experiment
    # the rows each update harms are stored, shown and served: sign flippers harm most of them
    flipped = UpdateRecord.objects.filter(experiment=exp, malicious=True)
    assert all(r.rows_harmed is not None and r.rows_harmed > 0.5 for r in flipped)
    assert f">{flipped[0].rows_harmed:.1%}<" in page and "Rows harmed" in page
    api = client.get(reverse("api_poisoning_updates", args=[exp.pk])).json()
    served = {(r["round_no"], r["hospital"]): r["rows_harmed"] for r in api["results"]}
    assert served[(flipped[0].round_no, flipped[0].hospital)] == flipped[0].rows_harmed


@pytest.mark.django_db(transaction=True)
def test_a_defense_that_classifies_no_update_stores_and_shows_no_detection_scores(eager, client, provider):
    ds = training.dataset_create_builtin(name="breast_cancer")
    exp = training.experiment_create(name="median run", dataset=ds, n_hospitals=6, rounds_=1, seed=4,
                                     model_kind="logreg", attack="sign_flip", malicious_fraction=0.34,
                                     defense="median", encrypted=False)
    exp.refresh_from_db()
    assert exp.status == Experiment.Status.FINISHED, exp.error
    assert exp.detection is None  # median uses every update: a recall of 0 would be meaningless
    client.force_login(provider)
    row = client.get(reverse("dashboard")).content.decode().split("median run")[1].split("</tr>")[0]
    assert "0.000" not in row and row.count("—") >= 2
    api = client.get(reverse("api_poisoning_updates", args=[exp.pk])).json()
    assert api["count"] == 6 and api["detection"] is None  # as the experiment itself says
    assert all(r["rows_harmed"] is None for r in api["results"])  # no reference model: not scored


def test_api_a_missing_object_is_a_not_found_error_like_a_missing_endpoint(client, remote, provider):
    client.force_login(provider)
    for url in (reverse("api_poisoning_updates", args=[999999]), reverse("api_ledger_proof", args=[999999])):
        r = client.get(url)
        assert r.status_code == 404 and r.json()["error"]["code"] == "not_found", url
    client.force_login(remote)
    r = client.post(reverse("api_poisoning_predictions"), {"detector": 999999, "values": {}, "diagnosis": "benign"},
                    content_type="application/json")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_api_predict_batch_export_and_errors(client, remote, provider, detector):
    client.force_login(remote)
    url = reverse("api_poisoning_predictions")
    ok = client.post(url, {"detector": detector.pk, "values": record(detector), "diagnosis": "benign"}, content_type="application/json")
    assert ok.status_code == 201 and ok.json()["status"] in ("Poisoned", "Benign") and ok.json()["source"] == "api"
    bad = client.post(url, {"detector": detector.pk, "values": {"clump_thickness": 1}, "diagnosis": "benign"}, content_type="application/json")
    assert bad.status_code == 400 and "missing value" in bad.json()["error"]["message"]
    assert client.post(url, {"detector": 999, "values": {}, "diagnosis": "x"}, content_type="application/json").status_code == 404
    fields = client.get(reverse("api_poisoning_detectors")).json()["results"][0]["feature_ranges"]["features"]
    assert [f["name"] for f in fields] == [f["name"] for f in detector.feature_ranges["features"]]
    upload = SimpleUploadedFile("r.csv", batch_csv(detector, [{**record(detector), "class": "benign"}] * 2))
    batch = client.post(reverse("api_poisoning_batch"), {"detector": detector.pk, "file": upload})
    assert batch.status_code == 200 and len(read_csv(batch)) == 2 and batch["X-Batch-Id"]
    broken = SimpleUploadedFile("r.csv", b"clump_thickness\n1\n")
    refused = client.post(reverse("api_poisoning_batch"), {"detector": detector.pk, "file": broken})
    assert refused.status_code == 400 and "Nothing was stored" in refused.json()["error"]["message"]
    assert Prediction.objects.count() == 3
    assert client.get(url).json()["count"] == 3
    client.force_login(provider)
    assert len(read_csv(client.get(reverse("api_poisoning_export")))) == 3
    assert client.post(url, {}, content_type="application/json").status_code == 403


def test_train_detectors_command_skips_active_ones_unless_forced(capsys):
    training.dataset_create_builtin(name="biopsy")
    call_command("train_detectors")
    call_command("train_detectors")
    call_command("train_detectors", "--force", "--dataset", "Breast biopsy (MASS)")
    out = capsys.readouterr().out
    assert "v1 active" in out and "already active" in out and "v2 active" in out
    assert Detector.objects.filter(active=True).count() == 1


def test_a_small_uploaded_dataset_trains_its_detector_from_the_page_and_the_shell(client, provider, capsys):
    from fedcore import data

    biopsy = data.load_builtin("biopsy")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*biopsy.feature_names, "diagnosis"])
    for x, y in zip(biopsy.X[:30], biopsy.y[:30], strict=True):
        writer.writerow([*x.tolist(), biopsy.class_names[y]])
    ds = training.dataset_create_upload(name="small clinic", content=out.getvalue().encode(),
                                        target_column="diagnosis", max_bytes=10**6, user=provider)
    client.force_login(provider)
    response = client.post(reverse("poisoning:detector_train"), {"dataset": ds.pk, "poison_fraction": 0.2, "seed": 0})
    assert response.status_code == 302
    (det,) = Detector.objects.filter(dataset=ds)
    assert det.scores["linear_svm"]["cv_f1"] is None and det.classifier != "linear_svm"
    assert "—" in client.get(reverse("poisoning:detector_list")).content.decode()
    call_command("train_detectors", "--force", "--dataset", "small clinic")
    assert "(cv —)" in capsys.readouterr().out


def test_the_updates_table_pages_filters_and_downloads_every_update(client, provider, detector):
    from poisoning.templatetags.poisoning_tags import UPDATES_PER_PAGE

    exp = training.experiment_create(name="e", dataset=detector.dataset, n_hospitals=30, rounds_=5, launch=False,
                                     attack="sign_flip", malicious_fraction=0.2)
    malicious = set(exp.config["malicious"])
    for r in range(1, 6):
        for h in range(30):
            bad = h in malicious
            UpdateRecord.objects.create(experiment=exp, round_no=r, hospital=h, malicious=bad, attack="sign_flip" if bad else "",
                                        val_accuracy=0.3 if bad else 0.9, val_loss=0.5, update_norm=0.2, cosine=0.1,
                                        status="Poisoned" if bad or (r, h) == (2, 0) else "Benign", aggregated=not bad,
                                        encrypted=False, verify_seconds=0.001, signature_ok=True,
                                        reason="=HYPERLINK(1)" if (r, h) == (1, 1) else "ok", update_hash=f"{r:02d}{h:062d}")
    client.force_login(provider)
    url = reverse("training:experiment_detail", args=[exp.pk])
    page = client.get(url).content.decode()
    assert page.count('<tr class="has-detail">') == UPDATES_PER_PAGE == 100 and "Page 1 of 2 · 150 in all" in page
    assert 'page=2#updates"' in page  # the next page keeps the table in view
    second = client.get(url, {"page": 2}).content.decode()
    assert second.count('<tr class="has-detail">') == 50
    # filters: one round, only Poisoned, only honest; a bad value is ignored, not an error
    rows = client.get(url, {"round": 2, "status": "Poisoned", "truth": "honest"}).content.decode()
    assert rows.count('<tr class="has-detail">') == 1 and 'href="/poisoning/experiments/' in rows
    assert client.get(url, {"round": "２", "status": "bogus", "page": "x"}).status_code == 200
    none = client.get(url, {"round": 99}).content.decode()
    assert "No update matches these filters." in none and "Download these updates" in none
    # the download follows the filters and holds every matching update, formulas escaped
    every = read_csv(client.get(reverse("poisoning:experiment_updates_csv", args=[exp.pk])))
    assert len(every) == 150 and [(r["round"], r["hospital"]) for r in every[:2]] == [("1", "0"), ("1", "1")]
    assert every[1]["reason"] == "'=HYPERLINK(1)" and every[0]["verified"] == "plaintext"
    assert every[0]["update_sha256"] == "01" + "0" * 62
    flagged = read_csv(client.get(reverse("poisoning:experiment_updates_csv", args=[exp.pk]), {"truth": "malicious"}))
    assert len(flagged) == 5 * len(malicious) and {r["ground_truth"] for r in flagged} == {"malicious"}
    # the API takes the same filters
    api = client.get(reverse("api_poisoning_updates", args=[exp.pk]), {"round": 3, "truth": "honest"}).json()
    assert api["count"] == 30 - len(malicious) and {r["round_no"] for r in api["results"]} == {3}


def test_a_predictor_id_and_a_training_seed_are_whole_numbers_in_plain_ascii_digits_only(client, remote):
    from poisoning.forms import DetectorTrainForm

    ds = training.dataset_create_builtin(name="biopsy")
    good = {"dataset": ds.pk, "poison_fraction": 0.2, "seed": "3"}
    assert DetectorTrainForm(good).is_valid()
    for typed in ("1_0", "\u0661\u0660", "3.0"):
        form = DetectorTrainForm({**good, "seed": typed})
        assert not form.is_valid() and "Must be a whole number" in form.errors["seed"][0], typed
    client.force_login(remote)
    for sent in ("1_0", "\u0661", True):
        r = client.post(reverse("api_poisoning_predictions"), {"detector": sent, "values": {}, "diagnosis": "benign"},
                        content_type="application/json")
        assert r.status_code == 400 and r.json()["error"]["fields"] == {"detector": ["must be a whole number"]}, sent
        r = client.post(reverse("api_poisoning_batch"), {"detector": sent, "file": SimpleUploadedFile("r.csv", b"a\n1\n")})
        assert r.status_code == 400 and r.json()["error"]["fields"] == {"detector": ["must be a whole number"]}, sent
    assert not Prediction.objects.exists()
