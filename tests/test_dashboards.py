"""The provider dashboard and the remote user's home, against real experiments and a real ledger."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.cache import cache
from django.db import connection
from django.urls import reverse

from fedcore import model as fmodel
from fedcore import rounds
from ledger.models import Entry
from poisoning.models import Prediction
from poisoning.services import detector_train
from training import selectors, services
from training.models import Experiment


@pytest.fixture
def finished(eager) -> Experiment:
    cache.clear()
    ds = services.dataset_create_builtin(name="pima")
    exp = services.experiment_create(name="Pima federated", dataset=ds, model_kind="logreg", n_hospitals=4, rounds_=2,
                                     seed=2, attack="sign_flip", malicious_fraction=0.25, encrypted=False)
    exp.refresh_from_db()
    assert exp.status == "finished", exp.error
    services.experiment_serve(experiment=exp)
    return exp


@pytest.mark.django_db(transaction=True)
def test_provider_dashboard_shows_experiments_ledger_users_and_predictions(client, provider, pending, remote, finished):
    det = detector_train(dataset=finished.dataset)
    Prediction.objects.create(user=remote, detector=det, dataset_name="Pima", inputs={}, status="Poisoned",
                              probability=0.91, reasons=["r"])
    running = services.experiment_create(name="Still queued", dataset=finished.dataset, n_hospitals=3, rounds_=1, launch=False)
    client.force_login(provider)
    page = client.get(reverse("dashboard")).content.decode()
    assert "Pima federated" in page and f"{finished.final['accuracy']:.3f}" in page
    assert reverse("training:experiment_progress", args=[running.pk]) in page  # live progress for the active one
    assert 'id="tile-pending"' in page and ">1</p>" in page.split('id="tile-pending"')[1].split("</a>")[0]
    assert "status-intact" in page and remote.username in page and "0.910" in page
    # a tampered entry turns the ledger tile red once the cached check expires
    first = Entry.objects.order_by("id").values_list("id", flat=True).first()
    with connection.cursor() as c:
        c.execute("UPDATE ledger_entry SET payload = REPLACE(payload, '\"round\"', '\"rnd\"') WHERE id = %s", [first])
    cache.clear()
    assert "status-broken" in client.get(reverse("dashboard")).content.decode()


@pytest.mark.django_db(transaction=True)
def test_remote_home_verifies_the_global_model_and_estimates_risk(client, remote, finished):
    client.force_login(remote)
    page = client.get(reverse("remote_home")).content.decode()
    digest = rounds.model_hash(selectors.global_vector(finished))
    assert "verified on the ledger" in page and digest[:20] in page
    # the fields say what they measure, in which unit, and which values are accepted
    assert "Plasma glucose in an oral glucose tolerance test — glu (mg/dL)" in page
    assert "seen 56 – 199; accepted 0 – 342" in page
    record = {"glu": 180, "bp": 80, "skin": 35, "bmi": 38.5, "age": 55, "npreg": 3, "ped": 0.6}
    record = {c: record.get(c, 1) for c in finished.dataset.feature_names}
    r = client.post(reverse("remote_home"), {f"risk-{k}": v for k, v in record.items()})
    assert r.status_code == 200
    # the same number, computed independently from the split, the scaler and the stored weights
    table = selectors.dataset_table(finished.dataset)
    data = rounds.prepare(table, finished.n_hospitals, scheme=finished.partition, alpha=finished.alpha, seed=finished.seed)
    spec = selectors.round_config(finished).spec
    x = data.scaler.transform(np.asarray([[record[c] for c in table.feature_names]]))
    expected = fmodel.predict_proba(spec, fmodel.unflatten(spec, selectors.global_vector(finished)), x)[0, 1]
    assert f"{table.class_names[1]} probability {expected:.2f}" in r.content.decode()
    bad = client.post(reverse("remote_home"), {"risk-glu": "lots"})
    assert bad.status_code == 400 and "&#x27;lots&#x27; is not a number" in bad.content.decode()


@pytest.mark.django_db(transaction=True)
def test_remote_home_refuses_a_model_that_does_not_match_the_ledger(client, remote, finished):
    vector = selectors.global_vector(finished)
    vector[0] += 1e-6
    Experiment.objects.filter(pk=finished.pk).update(global_vector=vector.astype("<f8").tobytes())
    client.force_login(remote)
    page = client.get(reverse("remote_home")).content.decode()
    assert "not verified" in page and "do not use this model" in page and 'id="risk-form"' not in page
    r = client.post(reverse("remote_home"), {f"risk-{c}": 1 for c in finished.dataset.feature_names})
    assert r.status_code == 400 and "failed its ledger check" in r.content.decode()


@pytest.mark.django_db(transaction=True)
def test_the_risk_comes_from_the_very_model_that_was_checked(finished):
    check = selectors.global_model_check(finished)
    record = {c: 1.0 for c in finished.dataset.feature_names}
    before = selectors.disease_risk(finished, record, check)
    vector = selectors.global_vector(finished)
    vector[0] += 1.0  # the stored model changes after the check
    Experiment.objects.filter(pk=finished.pk).update(global_vector=vector.astype("<f8").tobytes())
    finished.refresh_from_db()
    assert selectors.disease_risk(finished, record, check) == before  # the checked vector is used
    with pytest.raises(ValueError, match="failed its ledger check"):
        selectors.disease_risk(finished, record)  # a fresh check finds the change


@pytest.mark.django_db(transaction=True)
def test_remote_users_get_the_model_the_provider_serves_never_simply_the_newest_run(client, provider, remote, finished):
    newer = services.experiment_create(name="Backdoor vs Krum", dataset=finished.dataset, model_kind="logreg",
                                       n_hospitals=4, rounds_=1, seed=3, attack="backdoor", malicious_fraction=0.25,
                                       defense="krum")
    undefended = services.experiment_create(name="Undefended", dataset=finished.dataset, model_kind="logreg",
                                            n_hospitals=4, rounds_=1, seed=3, attack="sign_flip",
                                            malicious_fraction=0.25, defense="none")
    assert Experiment.objects.filter(status="finished").count() == 3
    client.force_login(remote)
    assert "Pima federated" in client.get(reverse("remote_home")).content.decode()  # not the newer runs
    client.force_login(provider)
    r = client.post(reverse("training:experiment_serve", args=[undefended.pk]), follow=True)
    assert "never served to remote users" in r.content.decode()
    r = client.post(reverse("training:experiment_serve", args=[newer.pk]), follow=True)
    assert "global model now" in r.content.decode() and "Served" in r.content.decode()
    assert selectors.current_global_model() == newer
    client.force_login(remote)
    assert "Backdoor vs Krum" in client.get(reverse("remote_home")).content.decode()
    Experiment.objects.update(served_since=None)
    assert "No global model is served yet" in client.get(reverse("remote_home")).content.decode()


@pytest.mark.django_db(transaction=True)
def test_experiment_pages_show_labels_abbreviated_hashes_and_three_decimals(client, provider, finished):
    client.force_login(provider)
    page = client.get(reverse("training:experiment_detail", args=[finished.pk])).content.decode()
    assert "Logistic regression" in page and "Sign flipping" in page and "ROC AUC" in page
    assert "· logreg ·" not in page and ">roc_auc<" not in page and ">f1<" not in page and "sign_flip (" not in page
    digest = selectors.experiment_rounds(finished).last().global_hash
    assert f'<code class="hash" title="{digest}">{digest[:12]}<span class="hash-rest">' in page
    results = client.get(reverse("training:accuracy_results")).content.decode()
    assert ">Logistic regression<" in results and ">Sign flipping<" in results and ">Verification<" in results
    assert ">logreg<" not in results and ">sign_flip<" not in results and ">accuracy<" not in results
    dashboard = client.get(reverse("dashboard")).content.decode()
    recall = finished.detection["recall"]
    assert f">{recall:.3f}<" in dashboard and "attack: Sign flipping" in dashboard
    form = client.get(reverse("training:experiment_create")).content.decode()
    assert "Celery" not in form and "background workers" in form


def test_the_pending_users_tile_is_not_a_link_to_a_page_the_provider_cannot_open(client, provider, pending):
    """Only administrators may open the user list, so the tile shows the count without a link."""
    client.force_login(provider)
    page = client.get(reverse("dashboard")).content.decode()
    tile = page.split('id="tile-pending"')[1].split("</div>")[0]
    assert "href" not in tile and ">1</p>" in tile
    assert reverse("accounts:user_list") not in page
    assert client.get(reverse("accounts:user_list")).status_code == 403  # why it must not be linked


def test_no_link_on_the_provider_dashboard_leads_to_a_refusal(client, provider):
    import re

    client.force_login(provider)
    page = client.get(reverse("dashboard")).content.decode()
    for href in sorted(set(re.findall(r'href="(/[^"]*)"', page))):
        if href.startswith("/static/"):
            continue
        assert client.get(href).status_code != 403, href


def test_the_users_tile_counts_remote_users_only(client, provider, make_user):
    make_user("admin")  # authorized accounts that are not remote users
    make_user("service_provider")
    make_user("remote_user")
    make_user("remote_user", "pending")
    make_user("remote_user", "revoked")
    client.force_login(provider)
    page = client.get(reverse("dashboard")).content.decode()
    tile = page.split('id="tile-pending"')[1].split("</div>")[0]
    assert "Remote users pending authorization" in tile and ">1</p>" in tile
    assert "Remote users: 1 authorized · 1 revoked" in tile  # not the 4 authorized accounts of every role
