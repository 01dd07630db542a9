"""Service provider journey with a real Celery worker: upload a dataset, launch an attacked
experiment with the verification defense, watch it to the end, read the charts, see the
poisoned hospitals flagged, download predictions as CSV and verify the ledger."""

from __future__ import annotations

import csv
import io

import pytest

from fedcore.data import DATA_DIR
from poisoning.services import detector_train, prediction_create
from tests.support import PASSWORD, login, submit
from training.models import Dataset, Experiment

pytestmark = [pytest.mark.browser, pytest.mark.services, pytest.mark.django_db(transaction=True)]


def test_upload_launch_watch_charts_flags_download_verify(new_page, shot, make_user, celery_worker_process, tmp_path):
    provider = make_user("service_provider", username="provider_ines")
    remote = make_user("remote_user", username="remote_rui")
    worker = celery_worker_process(concurrency=2)
    page = new_page()
    login(page, provider.username, PASSWORD)
    page.wait_for_url("**/dashboard/")
    shot(page, "dashboard-empty")

    # a bad upload is refused with the row and column named; a good one is stored
    bad = tmp_path / "bad.csv"
    bad.write_text((DATA_DIR / "pima.csv").read_text().replace("\n7,195,", "\nseven,195,", 1))
    page.goto("/training/datasets/upload/")
    page.fill("#id_name", "Pima clinic")
    page.set_input_files("#id_file", str(bad))
    page.fill("#id_target_column", "type")
    submit(page, "button:has-text('Validate and store')")
    assert "row 3" in page.content() and "column 'npreg': 'seven' is not a number" in page.content()
    shot(page, "upload-refused")
    assert not Dataset.objects.filter(name="Pima clinic").exists()
    page.set_input_files("#id_file", str(DATA_DIR / "pima.csv"))
    submit(page, "button:has-text('Validate and store')")
    page.wait_for_url("**/training/datasets/*/")
    assert "532" in page.content()  # rows
    shot(page, "dataset")
    dataset = Dataset.objects.get(name="Pima clinic")

    # launch an attacked experiment, defended by verification under SMPC
    page.goto("/training/experiments/new/")
    page.fill("#id_name", "Sign flip vs verification")
    page.select_option("#id_dataset", str(dataset.pk))
    page.select_option("#id_model_kind", "logreg")
    page.fill("#id_n_hospitals", "6")
    page.fill("#id_rounds", "4")
    page.select_option("#id_attack", "sign_flip")
    page.fill("#id_malicious_fraction", "0.34")
    page.select_option("#id_defense", "verification")
    page.check("#id_encrypted")
    submit(page, "button:has-text('Launch experiment')")
    page.wait_for_url("**/training/experiments/*/")
    shot(page, "experiment-launched")
    page.wait_for_selector("[data-field=status]:has-text('Finished')", timeout=180_000)
    exp = Experiment.objects.get(name="Sign flip vs verification")
    assert exp.status == "finished", exp.error + worker.output()[-2000:]
    page.wait_for_selector("#updates")
    flagged = page.locator("#updates tbody tr", has_text="malicious · Sign flip")  # the attack's label on the updates table
    assert flagged.count() == 2 * 4
    for i in range(flagged.count()):
        assert "Poisoned" in flagged.nth(i).inner_text()
    # every score column, the rows each update harms included, fits the page at 1280 px
    assert page.locator("#updates th", has_text="Rows harmed").count() == 1
    assert page.locator("#updates .table-wrap").evaluate("t => t.scrollWidth <= t.clientWidth")
    shot(page, "experiment-finished-flagged")

    page.goto("/training/results/chart/")
    assert page.locator(".chart svg").count() >= 1 and "Pima clinic · Verification · Sign flipping" in page.content()
    shot(page, "accuracy-chart")
    page.goto("/poisoning/ratio/")
    assert page.locator(".chart svg").count() >= 1
    shot(page, "ratio-chart")

    # predictions made by a remote user, downloaded as CSV
    det = detector_train(dataset=dataset)
    values = {f["name"]: f["max"] for f in det.feature_ranges["features"]}
    prediction_create(user=remote, detector=det, values=values, diagnosis="No")
    page.goto("/poisoning/predictions/")
    assert remote.username in page.content()
    shot(page, "predictions")
    with page.expect_download() as info:
        page.click("#download-csv")
    rows = list(csv.DictReader(io.StringIO(open(info.value.path(), encoding="utf-8-sig").read())))
    assert len(rows) == 1 and rows[0]["user"] == remote.username and rows[0]["dataset"] == "Pima clinic"

    page.goto("/ledger/verify/")
    assert "Intact up to height" in page.locator("#verify-result").inner_text()
    shot(page, "ledger-verified")
    page.goto("/dashboard/")
    assert "status-intact" in page.content() and "Sign flip vs verification" in page.content()
    shot(page, "dashboard")
