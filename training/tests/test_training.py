"""Datasets, experiments and the round state machine on the real database."""

from __future__ import annotations

import html
import json

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from fedcore.data import format_size
from ledger.models import Entry
from ledger.selectors import ledger_verify
from poisoning.models import UpdateRecord
from training import selectors, services
from training.models import Dataset, Experiment, HospitalUpdate, Round

GOOD_CSV = "age,glucose,bmi,diagnosis\n" + "".join(
    f"{30 + i % 40},{80 + (i * 7) % 90},{20 + (i * 3) % 15},{'pos' if (i * 7) % 90 > 45 else 'neg'}\n" for i in range(120))


@pytest.mark.django_db
def test_upload_page_stores_a_good_csv_and_refuses_bad_ones(client, provider):
    client.force_login(provider)
    url = reverse("training:dataset_upload")
    bad = GOOD_CSV.replace("\n35,", "\nthirty-five,", 1).replace("\n36,", "\n36x,", 1)
    cases = [
        (bad.encode(), "diagnosis", "column 'age'"),
        (GOOD_CSV.encode(), "outcome", "target column 'outcome' is not in the header"),
        (GOOD_CSV.encode("utf-16"), "diagnosis", "not UTF-8"),
        (b"", "diagnosis", "empty"),
    ]
    for content, target, message in cases:
        r = client.post(url, {"name": "Clinic A", "target_column": target,
                              "file": SimpleUploadedFile("a.csv", content, "text/csv")})
        assert r.status_code == 200
        assert message in html.unescape(r.content.decode()), message
    assert not Dataset.objects.exists()
    r = client.post(url, {"name": "Clinic A", "target_column": "diagnosis", "file": SimpleUploadedFile("a.csv", GOOD_CSV.encode())}, follow=True)
    ds = Dataset.objects.get(name="Clinic A")
    assert (ds.n_rows, ds.n_features, ds.class_names) == (120, 3, ["neg", "pos"])
    assert b"Preview" in r.content
    table = selectors.dataset_table(ds)
    assert table.X.shape == (120, 3)
    dup = client.post(url, {"name": "Clinic A", "target_column": "diagnosis", "file": SimpleUploadedFile("a.csv", GOOD_CSV.encode())})
    assert "exists" in html.unescape(dup.content.decode()) and Dataset.objects.count() == 1


@pytest.mark.django_db
def test_upload_limit_is_shown_in_the_same_binary_units_everywhere(client, provider, settings):
    client.force_login(provider)
    url = reverse("training:dataset_upload")
    shown = format_size(settings.DATASET_UPLOAD_MAX_BYTES)  # the help text is built from the setting at start-up
    assert shown.endswith(" MiB") and f"at most {shown}." in client.get(url).content.decode()
    settings.DATASET_UPLOAD_MAX_BYTES = 1024 * 1024
    big = GOOD_CSV.encode() * (settings.DATASET_UPLOAD_MAX_BYTES // len(GOOD_CSV) + 1)
    page = client.post(url, {"name": "Big", "target_column": "diagnosis", "file": SimpleUploadedFile("big.csv", big)})
    assert "The file is larger than allowed; the limit is 1 MiB." in page.content.decode()
    api = client.post(reverse("api_training_dataset_upload"),
                      {"name": "Big", "target_column": "diagnosis", "file": SimpleUploadedFile("big.csv", big)})
    assert api.status_code == 400 and api.json()["error"]["message"] == "The file is larger than allowed; the limit is 1 MiB."
    assert not Dataset.objects.exists()


@pytest.mark.django_db
def test_launch_form_validates(client, provider):
    client.force_login(provider)
    ds = services.dataset_create_builtin(name="pima")
    r = client.post(reverse("training:experiment_create"), {
        "name": "too many", "dataset": ds.pk, "model_kind": "mlp", "n_hospitals": 900, "rounds": 2, "partition": "iid",
        "alpha": 0.5, "local_epochs": 1, "learning_rate": 0.01, "batch_size": 32, "seed": 0, "attack": "none",
        "malicious_fraction": 0, "defense": "verification"})
    assert r.status_code == 200 and "too few for 900 hospitals" in r.content.decode()
    r = client.post(reverse("training:experiment_create"), {"name": "", "dataset": 999, "n_hospitals": -1})
    assert r.status_code == 200 and not Experiment.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_eager_experiment_records_every_round_once_and_seals_it(eager):
    ds = services.dataset_create_builtin(name="breast_cancer")
    exp = services.experiment_create(name="e", dataset=ds, n_hospitals=6, rounds_=3, attack="sign_flip",
                                     malicious_fraction=0.34, seed=3, encrypted=True)
    exp.refresh_from_db()
    assert exp.status == "finished", exp.error
    assert list(exp.round_set.values_list("number", flat=True)) == [1, 2, 3]
    assert UpdateRecord.objects.filter(experiment=exp).count() == 18
    assert exp.detection["recall"] == 1.0 and exp.final["accuracy"] > 0.9 and exp.centralised
    assert ledger_verify().intact
    # idempotency: re-running finished tasks changes nothing
    services.round_finish(experiment_id=exp.pk, round_no=3)
    services.round_train_hospital(experiment_id=exp.pk, round_no=3, hospital=0)
    assert Round.objects.filter(experiment=exp).count() == 3
    assert UpdateRecord.objects.filter(experiment=exp).count() == 18
    assert HospitalUpdate.objects.filter(experiment=exp).count() == 18


@pytest.mark.django_db(transaction=True)
def test_an_eager_experiment_runs_many_rounds_without_its_stack_growing(eager):
    # each round chains the next: run inside one another, 40 rounds overflowed Python's stack
    ds = services.dataset_create_builtin(name="pima")
    exp = services.experiment_create(name="long", dataset=ds, model_kind="logreg", n_hospitals=2, rounds_=40,
                                     defense="none", encrypted=False)
    exp.refresh_from_db()
    assert (exp.status, exp.error, exp.round_set.count()) == ("finished", "", 40)


@pytest.mark.django_db(transaction=True)
def test_a_redelivered_aggregation_of_a_recorded_round_changes_nothing_and_fails_nothing():
    # a killed worker's round_finish comes back (acks_late) beside the one the resume enqueued:
    # whichever runs second must find the round recorded, even mid-experiment
    ds = services.dataset_create_builtin(name="breast_cancer")
    exp = services.experiment_create(name="dup", dataset=ds, n_hospitals=4, rounds_=2, seed=1, launch=False)
    services.experiment_start(experiment_id=exp.pk)  # the fanned-out tasks go to the broker, unconsumed
    for h in range(4):
        services.round_train_hospital(experiment_id=exp.pk, round_no=1, hospital=h)
    services.round_finish(experiment_id=exp.pk, round_no=1)
    exp.refresh_from_db()
    assert (exp.status, exp.current_round) == ("running", 2)
    vector, records = bytes(exp.global_vector), UpdateRecord.objects.filter(experiment=exp).count()
    services.round_finish(experiment_id=exp.pk, round_no=1)  # the duplicate
    exp.refresh_from_db()
    assert (exp.status, exp.current_round, exp.error) == ("running", 2, "")
    assert bytes(exp.global_vector) == vector and UpdateRecord.objects.filter(experiment=exp).count() == records == 4
    assert ledger_verify().intact


@pytest.mark.django_db(transaction=True)
def test_same_seed_same_numbers(eager):
    ds = services.dataset_create_builtin(name="pima")
    a = services.experiment_create(name="a", dataset=ds, model_kind="logreg", n_hospitals=5, rounds_=2, seed=9)
    b = services.experiment_create(name="b", dataset=ds, model_kind="logreg", n_hospitals=5, rounds_=2, seed=9)
    a.refresh_from_db()
    b.refresh_from_db()
    assert a.final == b.final and np.array_equal(selectors.global_vector(a), selectors.global_vector(b))


@pytest.mark.django_db(transaction=True)
def test_cancel_stops_the_experiment(client, provider):
    ds = services.dataset_create_builtin(name="pima")
    exp = services.experiment_create(name="c", dataset=ds, n_hospitals=3, rounds_=1, launch=False)
    client.force_login(provider)
    r = client.post(reverse("training:experiment_cancel", args=[exp.pk]), follow=True)
    assert "cancelled" in r.content.decode()
    services.experiment_start(experiment_id=exp.pk)  # a late task finds it cancelled and does nothing
    exp.refresh_from_db()
    assert exp.status == "cancelled" and not exp.round_set.exists()
    r = client.post(reverse("training:experiment_cancel", args=[exp.pk]), follow=True)
    assert "only queued or running" in r.content.decode()


@pytest.mark.django_db
def test_progress_json_and_pages_render(client, provider):
    ds = services.dataset_create_builtin(name="pima")
    exp = services.experiment_create(name="p", dataset=ds, n_hospitals=3, rounds_=2, launch=False)
    client.force_login(provider)
    data = client.get(reverse("training:experiment_progress", args=[exp.pk])).json()
    assert data["percent"] == 0 and data["fields"]["status"] == "Queued" and data["done"] is False
    for name in ("training:accuracy_results", "training:accuracy_chart", "training:dataset_list", "training:experiment_list"):
        assert client.get(reverse(name)).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_reference_runs_give_the_accuracy_recovered(eager, client, provider):
    ds = services.dataset_create_builtin(name="breast_cancer")
    exp = services.experiment_create(name="attacked", dataset=ds, model_kind="logreg", n_hospitals=6, rounds_=3, seed=8,
                                     attack="gaussian_noise", malicious_fraction=0.34, encrypted=False)
    client.force_login(provider)
    page = client.get(reverse("training:experiment_detail", args=[exp.pk])).content.decode()
    assert "Run the missing reference runs" in page
    r = client.post(reverse("training:experiment_references", args=[exp.pk]), follow=True)
    assert "Launched: attacked · clean reference, attacked · undefended reference" in r.content.decode()
    clean = Experiment.objects.get(name="attacked · clean reference")
    undefended = Experiment.objects.get(name="attacked · undefended reference")
    assert (clean.attack, clean.defense, undefended.attack, undefended.defense) == ("none", "verification", "gaussian_noise", "none")
    assert clean.status == undefended.status == "finished"
    rec = selectors.accuracy_recovered(Experiment.objects.get(pk=exp.pk))
    assert rec["clean"] == clean and rec["undefended"] == undefended
    d, u, c = exp.__class__.objects.get(pk=exp.pk).final["accuracy"], undefended.final["accuracy"], clean.final["accuracy"]
    assert u < c  # noise from a third of the hospitals hurts plain FedAvg
    assert rec["recovered"] == pytest.approx((d - u) / (c - u))
    page = client.get(reverse("training:experiment_detail", args=[exp.pk])).content.decode()
    assert f"{u:.3f}" in page and f"{c:.3f}" in page and "Run the missing reference runs" not in page
    # asking again launches nothing more
    assert services.experiment_references(experiment=exp) == []
    # the three finished runs in the results table and the bar chart, with their own scores
    table = client.get(reverse("training:accuracy_results")).content.decode()
    chart = client.get(reverse("training:accuracy_chart")).content.decode()
    for e in (exp, clean, undefended):
        e.refresh_from_db()
        assert reverse("training:experiment_detail", args=[e.pk]) in table
        assert f"{e.final['accuracy']:.3f}" in table and f"{e.centralised['accuracy']:.3f}" in table
        assert f"#{e.pk}" in chart
    assert 'aria-label="Test accuracy: centralised vs federated"' in chart and "No finished experiment" not in chart


@pytest.mark.django_db
def test_an_undefended_run_is_its_own_undefended_reference(client, provider):
    ds = services.dataset_create_builtin(name="pima")
    exp = services.experiment_create(name="plain", dataset=ds, model_kind="logreg", n_hospitals=3, rounds_=1,
                                     attack="sign_flip", defense="none", malicious_fraction=0.34, launch=False)
    assert selectors.reference_runs(exp)["undefended"] == exp
    assert selectors.accuracy_recovered(exp) is None  # no defense, nothing recovered: no comparison section
    client.force_login(provider)
    assert "Run the missing reference runs" not in client.get(reverse("training:experiment_detail", args=[exp.pk])).content.decode()
    launched = services.experiment_references(experiment=exp)
    assert [(e.attack, e.defense) for e in launched] == [("none", "none")]  # the clean run only, not a copy of itself
    assert services.experiment_references(experiment=exp) == []
    assert Experiment.objects.count() == 2


@pytest.mark.django_db
def test_the_reference_is_the_newest_finished_run_of_the_setting_not_a_newer_unfinished_one():
    ds = services.dataset_create_builtin(name="pima")
    settings = {"dataset": ds, "model_kind": "logreg", "n_hospitals": 3, "rounds_": 1, "launch": False}
    exp = services.experiment_create(name="defended", attack="sign_flip", malicious_fraction=0.34, **settings)
    older = services.experiment_create(name="clean 1", **settings)
    assert selectors.reference_runs(exp)["clean"] == older  # none finished: the newest queued or running
    Experiment.objects.filter(pk=older.pk).update(status="failed")
    assert selectors.reference_runs(exp)["clean"] is None  # a failed run is no reference: it can be launched again
    assert [e.attack for e in services.experiment_references(experiment=exp)] == ["none", "sign_flip"]
    Experiment.objects.exclude(pk__in=[exp.pk, older.pk]).delete()
    Experiment.objects.filter(pk=older.pk).update(status="finished")
    newer = services.experiment_create(name="clean 2", **settings)  # queued, or later failed: not the reference
    assert selectors.reference_runs(exp)["clean"] == older
    Experiment.objects.filter(pk=newer.pk).update(status="finished")
    assert selectors.reference_runs(exp)["clean"] == newer


@pytest.mark.django_db(transaction=True)
def test_two_clicks_at_once_on_launch_references_launch_each_reference_once(monkeypatch):
    """The second request reads the references only after the first one's runs are committed.
    On MariaDB that is the dataset row's lock; on SQLite every write transaction is IMMEDIATE and
    serialises the two already (so there the test checks the outcome, not the lock)."""
    import threading

    from django.db import connection

    ds = services.dataset_create_builtin(name="pima")
    exp = services.experiment_create(name="defended", dataset=ds, model_kind="logreg", n_hospitals=3, rounds_=1,
                                     attack="sign_flip", malicious_fraction=0.34, launch=False)
    both_read = threading.Barrier(2, timeout=3)
    read = selectors.reference_runs

    def read_then_wait_for_the_other_click(e):
        refs = read(e)
        try:
            both_read.wait()  # without the lock both clicks read "missing" before either launches
        except threading.BrokenBarrierError:
            pass  # the other click waits for this one to commit
        return refs

    monkeypatch.setattr(selectors, "reference_runs", read_then_wait_for_the_other_click)
    launched, errors = [], []

    def click():
        try:
            launched.extend(services.experiment_references(experiment=exp))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    clicks = [threading.Thread(target=click) for _ in range(2)]
    for t in clicks:
        t.start()
    for t in clicks:
        t.join()
    assert not errors
    assert sorted(e.name for e in launched) == ["defended · clean reference", "defended · undefended reference"]
    assert Experiment.objects.count() == 3


@pytest.mark.django_db
@pytest.mark.parametrize("length", [100, 120])
def test_reference_runs_of_an_experiment_with_a_long_name_get_names_that_fit(client, provider, length):
    ds = services.dataset_create_builtin(name="pima")
    exp = services.experiment_create(name="x" * length, dataset=ds, model_kind="logreg", n_hospitals=3, rounds_=1,
                                     attack="sign_flip", malicious_fraction=0.34, launch=False)
    client.force_login(provider)
    r = client.post(reverse("training:experiment_references", args=[exp.pk]), follow=True)
    assert r.status_code == 200 and "Launched:" in r.content.decode()
    names = sorted(Experiment.objects.exclude(pk=exp.pk).values_list("name", flat=True))
    assert [n.split(" · ")[1] for n in names] == ["clean reference", "undefended reference"]
    assert all(len(n) <= 120 and n.startswith("x" * 90) for n in names)


@pytest.mark.django_db(transaction=True)
def test_a_hospital_refuses_an_initial_model_that_differs_from_the_one_sealed_at_the_start():
    ds = services.dataset_create_builtin(name="pima")
    exp = services.experiment_create(name="r0", dataset=ds, model_kind="logreg", n_hospitals=3, rounds_=1, launch=False)
    services.experiment_start(experiment_id=exp.pk)  # seals the initial model as round 0
    services.round_train_hospital(experiment_id=exp.pk, round_no=1, hospital=0)
    assert HospitalUpdate.objects.filter(experiment=exp, round_no=1).count() == 1
    vector = selectors.global_vector(exp)
    vector[0] += 0.5  # the server hands out another model than the one it sealed
    Experiment.objects.filter(pk=exp.pk).update(global_vector=vector.astype("<f8").tobytes())
    services.round_train_hospital(experiment_id=exp.pk, round_no=1, hospital=1)
    exp.refresh_from_db()
    assert exp.status == "failed" and "hospital 1 refused the global model of round 0" in exp.error
    assert not HospitalUpdate.objects.filter(experiment=exp, round_no=1, hospital=1).exists()


@pytest.mark.django_db(transaction=True)
def test_a_hospital_refuses_a_global_model_that_differs_from_the_sealed_one(eager):
    ds = services.dataset_create_builtin(name="pima")
    exp = services.experiment_create(name="h", dataset=ds, model_kind="logreg", n_hospitals=3, rounds_=1, seed=2, encrypted=False)
    exp.refresh_from_db()
    assert exp.status == "finished"
    # reopen it as if round 2 were next: the stored model is the one sealed for round 1
    Experiment.objects.filter(pk=exp.pk).update(status="running", rounds=2, current_round=2)
    Round.objects.create(experiment=exp, number=2)
    services.round_train_hospital(experiment_id=exp.pk, round_no=2, hospital=0)
    assert HospitalUpdate.objects.filter(experiment=exp, round_no=2, hospital=0).exists()
    vector = selectors.global_vector(exp)
    vector[3] += 0.5
    Experiment.objects.filter(pk=exp.pk).update(global_vector=vector.astype("<f8").tobytes())
    services.round_train_hospital(experiment_id=exp.pk, round_no=2, hospital=1)
    exp.refresh_from_db()
    assert exp.status == "failed" and "hospital 1 refused the global model of round 1" in exp.error
    assert "do not use this model" in exp.error
    assert not HospitalUpdate.objects.filter(experiment=exp, round_no=2, hospital=1).exists()


@pytest.mark.django_db
def test_api_launches_an_experiment_with_the_settings_asked_for_and_refuses_bad_ones_storing_nothing(client, provider):
    ds = services.dataset_create_builtin(name="pima")
    client.force_login(provider)
    url = reverse("api_training_experiments")
    launch = {"name": "api run", "dataset": ds.pk, "model_kind": "logreg", "n_hospitals": 6, "rounds": 3, "seed": 4,
              "partition": "dirichlet", "alpha": 0.3, "attack": "sign_flip", "malicious_fraction": 0.34,
              "defense": "krum", "encrypted": True}
    refused = [({"n_hospitals": 900}, "n_hospitals", "too few for 900 hospitals"),
               ({"malicious_fraction": 0.6}, "malicious_fraction", "less than or equal to 0.49"),
               ({"attack": "magic"}, "attack", "not a valid choice"),
               ({"defense": "magic"}, "defense", "not a valid choice"),
               ({"dataset": 999}, "dataset", "there is no dataset with id 999"),
               ({"dataset": ds.pk + 0.9}, "dataset", "must be a whole number"),  # not read as the dataset below it
               ({"dataset": 10**30}, "dataset", "less than or equal to"),
               ({"dataset": "abc"}, "dataset", "must be a whole number"),
               ({"rounds": 0}, "rounds", "greater than or equal to 1")]
    for change, field, message in refused:
        r = client.post(url, {**launch, **change}, content_type="application/json")
        assert r.status_code == 400, (change, r.status_code)
        assert message in " ".join(r.json()["error"]["fields"][field]), r.json()
    huge = json.dumps({**launch, "dataset": 0}).replace('"dataset": 0', '"dataset": 1e400')  # inf once parsed
    r = client.post(url, huge, content_type="application/json")
    assert r.status_code == 400 and "dataset" in r.json()["error"]["fields"]
    assert not Experiment.objects.exists()
    r = client.post(url, launch, content_type="application/json")
    assert r.status_code == 201
    exp = Experiment.objects.get()
    assert r.json()["id"] == exp.pk and r.json()["status"] == "queued"
    assert (exp.owner, exp.dataset, exp.model_kind, exp.n_hospitals, exp.rounds, exp.seed) == (provider, ds, "logreg", 6, 3, 4)
    assert (exp.partition, exp.alpha, exp.attack, exp.malicious_fraction) == ("dirichlet", 0.3, "sign_flip", 0.34)
    assert exp.defense == "krum" and exp.encrypted is False  # only the verification defense runs under SMPC
    cfg = selectors.round_config(exp)
    assert (cfg.defense, cfg.attack, len(cfg.malicious), cfg.n_hospitals) == ("krum", "sign_flip", 2, 6)


# two rows of each rare class: the stratified split keeps one for validation and one for test, so
# the training pool is smaller than 65% of the rows
RARE_CLASSES_CSV = "a,b,y\n" + "".join(
    f"{i % 11},{(i * 7) % 13},{'rare1' if i < 3 else 'rare2' if i < 6 else 'common'}\n" for i in range(40))


@pytest.mark.django_db(transaction=True)
def test_launch_refuses_more_hospitals_than_the_real_training_split_can_give_rows(eager, client, provider):
    ds = services.dataset_create_upload(name="rare classes", content=RARE_CLASSES_CSV.encode(), target_column="y",
                                        max_bytes=10**6)
    client.force_login(provider)
    r = client.post(reverse("training:experiment_create"), {
        "name": "13 hospitals", "dataset": ds.pk, "model_kind": "mlp", "n_hospitals": 13, "rounds": 1, "partition": "iid",
        "alpha": 0.5, "local_epochs": 1, "learning_rate": 0.01, "batch_size": 32, "seed": 0, "attack": "none",
        "malicious_fraction": 0, "defense": "verification"})
    assert r.status_code == 200 and "24 training rows: too few for 13 hospitals" in html.unescape(r.content.decode())
    assert not Experiment.objects.exists()
    exp = services.experiment_create(name="12 hospitals", dataset=ds, n_hospitals=12, rounds_=1, seed=0)
    exp.refresh_from_db()
    assert exp.status == "finished", exp.error


@pytest.mark.django_db(transaction=True)
def test_a_launch_while_the_broker_is_unreachable_keeps_the_run_queued_and_says_so(client, provider, monkeypatch):
    """The run is committed before its first task is queued: the provider is told it is saved and
    waiting (not shown an error page that invites a second, duplicate launch), and it starts when
    a worker does."""
    from kombu.exceptions import OperationalError

    from training import tasks

    def broker_down(*args):
        raise OperationalError("[Errno 111] Connection refused")

    monkeypatch.setattr(tasks.experiment_start, "delay", broker_down)  # the broker is outside the project
    ds = services.dataset_create_builtin(name="pima")
    client.force_login(provider)
    r = client.post(reverse("training:experiment_create"), {
        "name": "broker down", "dataset": ds.pk, "model_kind": "logreg", "n_hospitals": 3, "rounds": 1, "partition": "iid",
        "alpha": 0.5, "local_epochs": 1, "learning_rate": 0.01, "batch_size": 32, "seed": 0, "attack": "none",
        "malicious_fraction": 0, "defense": "none"}, follow=True)
    assert r.status_code == 200
    page = html.unescape(r.content.decode())
    assert "task queue could not be reached" in page and "Connection refused" in page and "launched;" not in page
    exp = Experiment.objects.get()
    assert exp.status == "queued" and services.QUEUE_UNREACHABLE in exp.error
    monkeypatch.undo()
    services.experiment_start(experiment_id=exp.pk)  # as a worker's start-up takes up queued runs
    exp.refresh_from_db()
    assert exp.status == "running" and exp.error == ""


@pytest.mark.django_db(transaction=True)
def test_an_aggregation_delivered_before_its_round_is_complete_records_nothing():
    # a stray round_finish (a message replayed or sent by hand) must not seal a round with the
    # updates staged so far: the round is recorded once, with every hospital
    ds = services.dataset_create_builtin(name="breast_cancer")
    exp = services.experiment_create(name="early", dataset=ds, n_hospitals=4, rounds_=2, seed=1, launch=False)
    services.experiment_start(experiment_id=exp.pk)  # the fanned-out tasks go to the broker, unconsumed
    services.round_finish(experiment_id=exp.pk, round_no=1)  # nothing staged yet
    for h in range(3):
        services.round_train_hospital(experiment_id=exp.pk, round_no=1, hospital=h)
    services.round_finish(experiment_id=exp.pk, round_no=1)  # three of four staged
    exp.refresh_from_db()
    assert (exp.status, exp.current_round, exp.error) == ("running", 1, "")
    assert Round.objects.get(experiment=exp, number=1).status == "training"
    assert not UpdateRecord.objects.filter(experiment=exp).exists()
    # only the initial model is on the ledger (round 0)
    assert list(Entry.objects.filter(experiment=exp.ledger_key).values_list("kind", "round_no")) == [("global_model", 0)]
    services.round_train_hospital(experiment_id=exp.pk, round_no=1, hospital=3)
    services.round_finish(experiment_id=exp.pk, round_no=1)
    exp.refresh_from_db()
    assert (exp.status, exp.current_round) == ("running", 2)
    assert UpdateRecord.objects.filter(experiment=exp, round_no=1).count() == 4
    assert Entry.objects.filter(experiment=exp.ledger_key, kind="global_model").count() == 2
    assert ledger_verify().intact


@pytest.mark.django_db(transaction=True)
def test_cancelling_discards_the_staged_updates_and_a_late_hospital_stores_nothing(monkeypatch):
    ds = services.dataset_create_builtin(name="breast_cancer")
    exp = services.experiment_create(name="stop", dataset=ds, n_hospitals=4, rounds_=2, seed=1, launch=False)
    services.experiment_start(experiment_id=exp.pk)  # the fanned-out tasks go to the broker, unconsumed
    for h in range(2):
        services.round_train_hospital(experiment_id=exp.pk, round_no=1, hospital=h)
    assert HospitalUpdate.objects.filter(experiment=exp).count() == 2
    real = services.rounds.hospital_update

    def cancelled_while_training(*args, **kwargs):  # the provider presses Cancel meanwhile
        services.experiment_cancel(experiment=exp)
        return real(*args, **kwargs)

    monkeypatch.setattr(services.rounds, "hospital_update", cancelled_while_training)
    services.round_train_hospital(experiment_id=exp.pk, round_no=1, hospital=2)
    exp.refresh_from_db()
    assert exp.status == "cancelled" and exp.hospitals_done == 2
    assert not HospitalUpdate.objects.filter(experiment=exp).exists()


@pytest.mark.django_db(transaction=True)
def test_a_defense_that_classifies_nothing_shows_no_detection_scores(eager, client, provider):
    ds = services.dataset_create_builtin(name="breast_cancer")
    client.force_login(provider)
    pages = {}
    for defense in ("median", "krum"):
        exp = services.experiment_create(name=defense, dataset=ds, model_kind="logreg", n_hospitals=4, rounds_=1, seed=3,
                                         attack="sign_flip", malicious_fraction=0.25, defense=defense, encrypted=False)
        assert Experiment.objects.get(pk=exp.pk).status == "finished"
        pages[defense] = client.get(reverse("training:experiment_detail", args=[exp.pk])).content.decode()
    assert 'id="no-detection"' in pages["median"] and "<dt>Recall</dt>" not in pages["median"]
    assert 'id="no-detection"' not in pages["krum"] and "<dt>Recall</dt>" in pages["krum"]


@pytest.mark.django_db(transaction=True)
def test_run_experiment_command_runs_eagerly_and_refuses_settings_out_of_range(eager, capsys):
    from django.core.management import CommandError, call_command

    ds = services.dataset_create_builtin(name="pima")
    call_command("run_experiment", "--dataset", str(ds.pk), "--model", "logreg", "--hospitals", "3", "--rounds", "2",
                 "--attack", "sign_flip", "--fraction", "0.34", "--plaintext", "--eager")
    out = capsys.readouterr().out
    exp = Experiment.objects.get()
    assert exp.status == "finished" and f"experiment id {exp.pk}" in out and "detection: precision" in out
    # the service checks the ranges itself (the form and the API are not its only callers)
    for option, value, field in (("--fraction", "0.8", "malicious_fraction"), ("--hospitals", "1", "n_hospitals"),
                                 ("--rounds", "0", "rounds"), ("--lr", "5", "learning_rate")):
        with pytest.raises(CommandError, match=field):
            call_command("run_experiment", "--dataset", ds.name, "--attack", "sign_flip", option, value, "--eager")
    assert Experiment.objects.count() == 1


@pytest.mark.django_db
def test_a_dataset_name_taken_between_the_check_and_the_insert_is_refused_like_a_taken_one(monkeypatch):
    from django.core.exceptions import ValidationError
    from django.db.models import QuerySet

    services.dataset_create_synthetic(name="ehr", n_rows=200, positive_fraction=0.3, seed=0)
    with pytest.raises(ValidationError, match="A dataset with this name exists"):
        services.dataset_create_synthetic(name="ehr", n_rows=300, positive_fraction=0.3, seed=1)
    # another request inserts the name after this one's check (which finds nothing): the unique
    # index refuses the insert, and the name is then found taken
    real_exists, calls = QuerySet.exists, []
    monkeypatch.setattr(QuerySet, "exists", lambda self: bool(calls.append(1) or len(calls) > 1) and real_exists(self))
    with pytest.raises(ValidationError, match="A dataset with this name exists"):
        services.dataset_create_synthetic(name="ehr", n_rows=300, positive_fraction=0.3, seed=1)
    monkeypatch.undo()
    assert list(Dataset.objects.values_list("name", "n_rows")) == [("ehr", 200)]


@pytest.mark.django_db(transaction=True)
def test_each_hospital_signs_with_its_own_random_key_stored_encrypted_and_the_seeded_key_forges_nothing():
    from django.conf import settings

    from fedcore import rounds
    from fedcore.signing import Identity, SigningError
    from training.models import HospitalKey

    ds = services.dataset_create_builtin(name="pima")
    exp = services.experiment_create(name="keys", dataset=ds, model_kind="logreg", n_hospitals=3, rounds_=2, seed=0,
                                     encrypted=False, launch=False)
    services.experiment_start(experiment_id=exp.pk)  # the fanned-out tasks go to the broker, unconsumed
    for h in range(3):
        services.round_train_hospital(experiment_id=exp.pk, round_no=1, hospital=h)
    keys = {k.hospital: k for k in HospitalKey.objects.filter(experiment=exp)}
    assert sorted(keys) == [0, 1, 2] and len({k.public_pem for k in keys.values()}) == 3
    cfg = selectors.round_config(exp)
    for h, key in keys.items():
        assert "ENCRYPTED PRIVATE KEY" in key.private_pem_encrypted
        with pytest.raises(SigningError, match="wrong passphrase"):
            Identity.load_encrypted(key.private_pem_encrypted, "not the passphrase")
        assert Identity.load_encrypted(key.private_pem_encrypted, settings.LEDGER_AUTHORITY_PASSPHRASE).public_pem == key.public_pem
        assert key.public_pem != rounds.hospital_identity(cfg, h).public_pem  # not derivable from the settings
    # hospital 2's update re-signed with the key anyone could derive from the experiment's id and seed
    staged = HospitalUpdate.objects.get(experiment=exp, round_no=1, hospital=2)
    forged = rounds.hospital_identity(cfg, 2).sign(rounds.binding(cfg, 1, 2, staged.update_hash, staged.n_samples))
    HospitalUpdate.objects.filter(pk=staged.pk).update(signature=forged.hex())
    services.round_finish(experiment_id=exp.pk, round_no=1)
    records = {r.hospital: r for r in UpdateRecord.objects.filter(experiment=exp, round_no=1)}
    assert [records[h].signature_ok for h in range(3)] == [True, True, False]
    assert not records[2].aggregated and "signature does not verify" in records[2].reason
    exp.refresh_from_db()
    assert (exp.status, exp.current_round) == ("running", 2)  # the round went on without it
    # a hospital keeps its key: round 2 signs with the same one
    services.round_start(experiment_id=exp.pk, round_no=2)
    services.round_train_hospital(experiment_id=exp.pk, round_no=2, hospital=0)
    assert HospitalKey.objects.filter(experiment=exp).count() == 3
    u = HospitalUpdate.objects.get(experiment=exp, round_no=2, hospital=0)
    from fedcore.signing import verify_signature

    assert verify_signature(keys[0].public_pem, rounds.binding(cfg, 2, 0, u.update_hash, u.n_samples), bytes.fromhex(u.signature))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attack", ["alie", "min_max"])
def test_colluding_hospitals_sign_their_crafted_updates_with_their_own_keys(attack):
    """ALIE and min-max updates are crafted when the round's updates are in; the colluders sign
    them with their own stored keys, so that the defense judges them (not the signature check)."""
    ds = services.dataset_create_builtin(name="pima")
    exp = services.experiment_create(name=attack, dataset=ds, model_kind="logreg", n_hospitals=5, rounds_=1, seed=0,
                                     attack=attack, malicious_fraction=0.4, defense="none", encrypted=False,
                                     launch=False)
    services.experiment_start(experiment_id=exp.pk)  # the fanned-out tasks go to the broker, unconsumed
    for h in range(5):
        services.round_train_hospital(experiment_id=exp.pk, round_no=1, hospital=h)
    services.round_finish(experiment_id=exp.pk, round_no=1)
    records = list(UpdateRecord.objects.filter(experiment=exp, round_no=1).order_by("hospital"))
    assert sum(r.malicious for r in records) == 2 and all(r.attack == attack for r in records if r.malicious)
    assert all(r.signature_ok and r.aggregated for r in records), [r.reason for r in records]


@pytest.mark.django_db(transaction=True)
def test_a_stored_update_cut_short_is_rejected_and_the_round_goes_on():
    ds = services.dataset_create_builtin(name="pima")
    exp = services.experiment_create(name="cut", dataset=ds, model_kind="logreg", n_hospitals=3, rounds_=2, seed=0,
                                     encrypted=False, launch=False)
    services.experiment_start(experiment_id=exp.pk)  # the fanned-out tasks go to the broker, unconsumed
    for h in range(3):
        services.round_train_hospital(experiment_id=exp.pk, round_no=1, hospital=h)
    staged = HospitalUpdate.objects.get(experiment=exp, round_no=1, hospital=1)
    HospitalUpdate.objects.filter(pk=staged.pk).update(vector=bytes(staged.vector)[:-3])
    services.round_finish(experiment_id=exp.pk, round_no=1)
    records = {r.hospital: r for r in UpdateRecord.objects.filter(experiment=exp, round_no=1)}
    assert not records[1].aggregated and "does not match the hash it was signed with" in records[1].reason
    assert records[0].aggregated and records[2].aggregated
    exp.refresh_from_db()
    assert (exp.status, exp.current_round) == ("running", 2)


@pytest.mark.django_db
def test_an_attack_needs_a_fraction_that_makes_at_least_one_hospital_malicious_and_the_page_shows_the_count(client, provider):
    from django.core.exceptions import ValidationError

    ds = services.dataset_create_builtin(name="pima")
    for n, fraction, least in ((5, 0.1, "0.11"), (2, 0.2, "0.26")):  # the smallest fraction that makes one
        with pytest.raises(ValidationError, match=f"{fraction:.0%} of {n} hospitals is no hospital: choose at least {least}"):
            services.experiment_create(name="none", dataset=ds, n_hospitals=n, attack="sign_flip",
                                       malicious_fraction=fraction, launch=False)
        assert services.experiment_create(name="one", dataset=ds, n_hospitals=n, attack="sign_flip",
                                          malicious_fraction=float(least), launch=False).n_malicious == 1
    Experiment.objects.all().delete()
    exp = services.experiment_create(name="some", dataset=ds, n_hospitals=5, attack="sign_flip", malicious_fraction=0.3,
                                     launch=False)
    assert exp.n_malicious == 2 and Experiment.objects.count() == 1
    client.force_login(provider)
    page = client.get(reverse("training:experiment_detail", args=[exp.pk])).content.decode()
    assert "attack: Sign flipping (2 of 5 malicious)" in page  # the real share, not "30%"
    # every setting of the run, the partition included
    assert "5 hospitals (IID) · 10 rounds of 2 local epochs (learning rate 0.01, batch 32, seed 0)" in page
    assert "Sign flipping (2 of 5)" in client.get(reverse("training:experiment_list")).content.decode()


@pytest.mark.django_db
def test_the_dataset_page_says_when_it_shows_only_some_of_the_columns(client, provider):
    rng = np.random.default_rng(0)
    lines = [",".join([*(f"c{j}" for j in range(50)), "y"])]
    lines += [",".join([*(f"{v:.3f}" for v in rng.normal(size=50)), str(i % 2)]) for i in range(30)]
    ds = services.dataset_create_upload(name="wide", content="\n".join(lines).encode(), target_column="y", max_bytes=10**6)
    client.force_login(provider)
    page = client.get(reverse("training:dataset_detail", args=[ds.pk])).content.decode()
    assert "The first 8 rows: the first 12 of the 50 features and the target." in page
    assert "The first 40 of the 50 feature columns." in page and ">c39<" in page and ">c40<" not in page
    narrow = services.dataset_create_builtin(name="pima")
    page = client.get(reverse("training:dataset_detail", args=[narrow.pk])).content.decode()
    assert "The first 8 rows." in page and "feature columns." not in page


@pytest.mark.django_db
def test_a_stored_upload_is_read_again_by_the_rules_it_was_accepted_under():
    """An upload is read again whenever its rows are needed: a rule added later (tab decimal
    commas, the column limits) must not change the features of one stored before, nor refuse it."""
    lines = ["dose\tage\ty", *(f"{i % 7},{i % 4}\t{30 + i}\t{i % 2}" for i in range(40))]
    ds = services.dataset_create_upload(name="tabs", content="\n".join(lines).encode(), target_column="y", max_bytes=10**6)
    assert ds.params == {"csv_rules": 2} and selectors.dataset_table(ds).feature_names == ["dose", "age"]
    # as stored before the rules were versioned: a tab file's commas were text
    Dataset.objects.filter(pk=ds.pk).update(params={}, feature_names=["dose=0,0"])
    selectors._table.cache_clear()
    old = Dataset.objects.get(pk=ds.pk)
    assert selectors.dataset_table(old).feature_names[0] == "dose=0,0"
    assert selectors.dataset_table(old).X.shape == (40, 29)


@pytest.mark.django_db(transaction=True)
def test_an_experiment_running_from_before_round_0_was_sealed_and_hospitals_had_keys_goes_on_after_a_resume():
    from fedcore import rounds

    ds = services.dataset_create_builtin(name="pima")
    exp = services.experiment_create(name="legacy", dataset=ds, model_kind="logreg", n_hospitals=3, rounds_=2, launch=False)
    # as the previous version left it: running in round 1, nothing sealed, updates signed with the seeded keys
    Experiment.objects.filter(pk=exp.pk).update(status="running", current_round=1)
    Round.objects.create(experiment=exp, number=1)
    cfg, fed = selectors.round_config(exp), selectors.federated_data(exp)
    for h in range(3):
        u = rounds.hospital_update(cfg, h, selectors.global_vector(exp), *fed.hospital(h), 1)
        HospitalUpdate.objects.create(experiment=exp, round_no=1, hospital=h, vector=u.vector.astype("<f8").tobytes(),
                                      n_samples=u.n_samples, update_hash=u.update_hash, signature=u.signature.hex(), seconds=0)
    Round.objects.filter(experiment=exp, number=1).update(status="aggregating")
    services.experiments_resume()  # a worker starts: round 0 is sealed from the settings
    assert Entry.objects.filter(experiment=exp.ledger_key, kind="global_model", round_no=0).count() == 1
    services.round_finish(experiment_id=exp.pk, round_no=1)
    assert [r.signature_ok for r in UpdateRecord.objects.filter(experiment=exp).order_by("hospital")] == [True] * 3
    services.experiments_resume()  # again: nothing new on the ledger
    assert Entry.objects.filter(experiment=exp.ledger_key, kind="global_model", round_no=0).count() == 1
    assert ledger_verify().intact


@pytest.mark.django_db
def test_a_cancelled_run_says_it_has_no_final_scores_and_offers_no_comparison(client, provider):
    ds = services.dataset_create_builtin(name="pima")
    exp = services.experiment_create(name="stopped", dataset=ds, model_kind="logreg", n_hospitals=3, rounds_=5,
                                     partition="dirichlet", alpha=0.3, attack="sign_flip", malicious_fraction=0.34, launch=False)
    Experiment.objects.filter(pk=exp.pk).update(status="cancelled", centralised={"accuracy": 0.75})
    client.force_login(provider)
    page = client.get(reverse("training:experiment_detail", args=[exp.pk])).content.decode()
    assert "none: the experiment is cancelled" in page and "0.750" in page
    assert "Run the missing reference runs" not in page and "3 hospitals (non-IID, Dirichlet α 0.3)" in page


@pytest.mark.django_db
def test_the_api_refuses_a_dataset_id_past_what_a_browser_keeps_exact(client, provider):
    client.force_login(provider)
    r = client.post(reverse("api_training_experiments"), {"name": "x", "dataset": 2**53}, content_type="application/json")
    assert r.status_code == 400 and "dataset" in r.json()["error"]["fields"]
    assert not Experiment.objects.exists()


LAUNCH_FORM = {"name": "plain", "model_kind": "logreg", "n_hospitals": "4", "rounds": "2", "partition": "iid",
               "alpha": 0.5, "local_epochs": "1", "learning_rate": 0.01, "batch_size": "32", "seed": "0",
               "attack": "none", "malicious_fraction": 0, "defense": "none"}


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["n_hospitals", "rounds", "local_epochs", "batch_size", "seed"])
@pytest.mark.parametrize("typed", ["\u0661\u0660", "1_0", "10.0", "\uff11\uff10"])  # Arabic-Indic and full-width 10
def test_the_launch_page_takes_whole_numbers_in_plain_ascii_digits_only(client, provider, field, typed):
    client.force_login(provider)
    ds = services.dataset_create_builtin(name="pima")
    r = client.post(reverse("training:experiment_create"), {**LAUNCH_FORM, "dataset": ds.pk, field: typed})
    assert r.status_code == 200 and "Must be a whole number, written with the digits 0-9" in r.content.decode()
    assert not Experiment.objects.exists()


@pytest.mark.django_db
def test_the_synthetic_dataset_form_takes_whole_numbers_in_plain_ascii_digits_only(client, provider):
    from training.forms import SyntheticForm

    good = {"name": "s", "n_rows": " 200 ", "positive_fraction": 0.3, "seed": "+7"}
    form = SyntheticForm(good)
    assert form.is_valid() and (form.cleaned_data["n_rows"], form.cleaned_data["seed"]) == (200, 7)
    for field, typed in [("n_rows", "2_000"), ("n_rows", "\u0662\u0660\u0660"), ("seed", "1_0")]:
        form = SyntheticForm({**good, field: typed})
        assert not form.is_valid() and "Must be a whole number" in form.errors[field][0], (field, typed)
    assert "greater than or equal to 20" in SyntheticForm({**good, "n_rows": "19"}).errors["n_rows"][0]
    client.force_login(provider)
    r = client.post(reverse("training:dataset_synthetic"), {**good, "n_rows": "\u0662\u0660\u0660"})
    assert r.status_code == 200 and not Dataset.objects.exists()


@pytest.mark.django_db
def test_the_api_takes_whole_numbers_as_json_integers_or_plain_ascii_digits_only(client, provider):
    ds = services.dataset_create_builtin(name="pima")
    client.force_login(provider)
    url = reverse("api_training_experiments")
    launch = {"name": "api plain", "dataset": ds.pk, "model_kind": "logreg", "n_hospitals": 4, "rounds": 2,
              "defense": "none"}
    for field in ("n_hospitals", "rounds", "local_epochs", "batch_size", "seed", "dataset"):
        for sent in ("1_0", "\u0661\u0660", True, 10.0, "10.0", None):
            r = client.post(url, {**launch, field: sent}, content_type="application/json")
            assert r.status_code == 400, (field, sent, r.status_code)
            assert r.json()["error"]["fields"][field] == (
                ["This field may not be null."] if sent is None else ["must be a whole number"]), (field, sent)
    assert not Experiment.objects.exists()
    r = client.post(url, {**launch, "n_hospitals": "5", "seed": " 12 "}, content_type="application/json")
    assert r.status_code == 201 and (Experiment.objects.get().n_hospitals, Experiment.objects.get().seed) == (5, 12)


@pytest.mark.django_db
def test_the_shell_commands_take_whole_numbers_in_plain_ascii_digits_only():
    from django.core.management import CommandError, call_command

    ds = services.dataset_create_builtin(name="pima")
    for command, option in (("run_experiment", "--hospitals"), ("run_experiment", "--seed"),
                            ("train_detectors", "--seed"), ("ledger_init", "--authorities")):
        for typed in ("1_0", "\u0661\u0660"):
            with pytest.raises(CommandError, match="must be a whole number"):
                call_command(command, option, typed)
    arabic_indic = "".join(chr(0x660 + int(d)) for d in str(ds.pk))  # a name, not the dataset's id
    with pytest.raises(CommandError, match=f"no dataset '{arabic_indic}'"):
        call_command("run_experiment", "--dataset", arabic_indic, "--eager")
    Dataset.objects.filter(pk=ds.pk).update(name="-1")  # a name that reads as a number, but is no dataset's id
    with pytest.raises(CommandError, match="too few for 999 hospitals"):  # found by its name
        call_command("run_experiment", "--dataset", "-1", "--hospitals", "999", "--eager")
    assert not Experiment.objects.exists()


@pytest.mark.django_db
def test_the_upload_page_states_the_column_limits_and_refuses_a_file_past_them_storing_nothing(client, provider):
    client.force_login(provider)
    url = reverse("training:dataset_upload")
    assert "up to 1,000 columns with names of at most 120 characters;" in client.get(url).content.decode()
    wide = (",".join(f"c{j}" for j in range(1_200)) + ",diagnosis\n" + "1," * 1_200 + "a\n").encode()
    page = client.post(url, {"name": "Wide", "target_column": "diagnosis", "file": SimpleUploadedFile("w.csv", wide)})
    assert "the header has 1,201 columns; the limit is 1,000" in page.content.decode()
    api = client.post(reverse("api_training_dataset_upload"),
                      {"name": "Wide", "target_column": "diagnosis", "file": SimpleUploadedFile("w.csv", wide)})
    assert api.status_code == 400 and "the header has 1,201 columns" in api.json()["error"]["message"]
    assert not Dataset.objects.exists()


@pytest.mark.django_db
def test_serving_a_global_model_asks_first_like_cancel_and_revoke(client, provider):
    ds = services.dataset_create_builtin(name="pima")
    serving = services.experiment_create(name="Pima served", dataset=ds, n_hospitals=3, rounds_=1, launch=False)
    Experiment.objects.filter(pk=serving.pk).update(status=Experiment.Status.FINISHED, global_vector=b"\0" * 8)
    services.experiment_serve(experiment=Experiment.objects.get(pk=serving.pk))
    queued = services.experiment_create(name="Pima next", dataset=ds, n_hospitals=3, rounds_=1, launch=False)
    client.force_login(provider)
    page = html.unescape(client.get(reverse("training:experiment_detail", args=[queued.pk])).content.decode())
    form = page.split(f'action="{reverse("training:experiment_serve", args=[queued.pk])}"')[1].split(">")[0]
    assert ('data-confirm="Serve “Pima next” to remote users? Every remote user\'s risk estimates come from this '
            'global model as soon as it has finished, instead of from “Pima served”."') in form
