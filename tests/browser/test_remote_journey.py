"""Remote user journey: register, refused while pending, authorized by the admin, logs in,
predicts a record's status, uploads a CSV batch, downloads the result, edits the profile."""

import csv
import io

import pytest

from accounts.models import Status, User
from poisoning.models import Prediction
from poisoning.services import detector_train
from tests.support import PASSWORD, login, submit
from training.services import dataset_create_builtin

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def register(page, username: str, password: str) -> None:
    page.goto("/accounts/register/")
    page.fill("#id_username", username)
    page.fill("#id_email", f"{username}@hospital.example")
    page.fill("#id_full_name", "Ana Lúcia Pereira")
    page.fill("#id_address", "Rua das Flores 12")
    page.fill("#id_city", "Porto")
    page.fill("#id_country", "Portugal")
    page.fill("#id_phone", "+351 22 123 4567")
    page.fill("#id_organisation", "Hospital de São João")
    page.fill("#id_password1", password)
    page.fill("#id_password2", password)
    submit(page)


def test_register_pending_authorize_login_predict_batch_edit_profile(new_page, shot, make_user, tmp_path):
    admin = make_user("admin", username="consortium_admin")
    detector = detector_train(dataset=dataset_create_builtin(name="biopsy"), seed=1)
    features = [f["name"] for f in detector.feature_ranges["features"]]
    page = new_page()

    register(page, "ana.pereira", "short")
    assert "too short" in page.content()
    shot(page, "register-errors")
    assert not User.objects.filter(username="ana.pereira").exists()

    password = "Hospital-Porto-2026"
    register(page, "ana.pereira", password)
    page.wait_for_url("**/accounts/login/")
    assert "must authorize your account" in page.content()
    login(page, "ana.pereira", password)
    assert "awaiting authorization" in page.content()
    shot(page, "pending")

    admin_page = new_page()
    login(admin_page, admin.username, PASSWORD)
    user = User.objects.get(username="ana.pereira")
    submit(admin_page, f"#user-{user.pk} button:has-text('Authorize')")
    assert User.objects.get(pk=user.pk).status == Status.AUTHORIZED

    login(page, "ana.pereira", password)
    page.wait_for_url("**/home/")
    shot(page, "home")

    # one record: a clump thickness far above the 1-10 scale is flagged, with the reason
    submit(page, "nav >> text=Predict status")
    for name in features:
        page.fill(f"#id_value-{name}", "1")
    page.fill("#id_value-clump_thickness", "18")
    page.select_option("#id_diagnosis", "benign")
    submit(page, "#predict-form button[type=submit]")
    result = page.locator("#result")
    assert "Poisoned" in result.inner_text() and "outside the range" in result.inner_text()
    shot(page, "predicted")

    # a CSV batch: a bad file is refused whole, a good one is predicted and downloaded
    header = ",".join([*features, "class"])
    bad = tmp_path / "bad.csv"
    bad.write_text(header + "\n" + ",".join(["1"] * len(features) + ["benign"]) + "\n" + ",".join(["x"] * len(features) + ["benign"]) + "\n")
    page.set_input_files("#id_file", str(bad))
    submit(page, "#batch-form button[type=submit]")
    assert "Nothing was stored" in page.content() and "row 3" in page.content()
    shot(page, "batch-refused")
    good = tmp_path / "records.csv"
    good.write_text(header + "\n" + "".join(",".join([str(v)] * len(features) + [label]) + "\n"
                                            for v, label in ((1, "benign"), (10, "malignant"), (3, "benign"))))
    page.set_input_files("#id_file", str(good))
    submit(page, "#batch-form button[type=submit]")
    page.wait_for_url("**/my-predictions/?batch=*")
    assert "3 records predicted" in page.content()
    shot(page, "batch-predicted")
    with page.expect_download() as info:
        page.click("a:has-text('Download the batch as CSV')")
    rows = list(csv.DictReader(io.StringIO(open(info.value.path(), encoding="utf-8-sig").read())))
    assert [r["class"] for r in rows] == ["benign", "malignant", "benign"]
    assert all(r["status"] in ("Poisoned", "Benign") and r["reasons"] for r in rows)
    assert Prediction.objects.filter(user__username="ana.pereira").count() == 4

    page.goto("/accounts/profile/")
    page.fill("#id_profile-city", "Braga")
    submit(page, "form.card button[type=submit]")
    assert "profile was saved" in page.content()
    shot(page, "profile-saved")
    assert User.objects.get(pk=user.pk).city == "Braga"
