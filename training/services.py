"""Writes of the training app: datasets, experiments and the federated round state machine.

A round runs as Celery tasks (training/tasks.py): one per hospital (``round_train_hospital``),
then one that verifies and aggregates (``round_finish``). Each task is idempotent: updates are
unique per (experiment, round, hospital), a round is unique per (experiment, number) and is
finished once under a row lock, ledger entries are deduplicated by hash.
"""

from __future__ import annotations

import gzip
import hashlib
import logging

import numpy as np
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from fedcore import attacks, rounds
from fedcore import data as fdata
from fedcore.model import ModelSpec
from fedcore.signing import Identity
from ledger.selectors import sealed_model_hash, verify_model_hash
from ledger.services import ledger_append, private_key_loaded, private_key_stored
from poisoning import selectors as poisoning_selectors
from poisoning.services import update_records_store

from . import selectors
from .models import LIMITS, Dataset, Experiment, HospitalKey, HospitalUpdate, Round

log = logging.getLogger(__name__)
MAX_STORED_BYTES = 10 * 1024 * 1024


def _describe(table: fdata.Table) -> dict:
    return {"n_rows": int(len(table.y)), "n_features": int(table.X.shape[1]), "feature_names": table.feature_names,
            "class_names": table.class_names, "class_counts": table.class_counts(), "target_column": table.target_name}


BUILTIN_TITLES = {"breast_cancer": "Breast cancer (WDBC)", "pima": "Pima diabetes", "biopsy": "Breast biopsy (MASS)"}


@transaction.atomic
def dataset_create_builtin(*, name: str) -> Dataset:
    table = fdata.load_builtin(name)
    ds, _ = Dataset.objects.get_or_create(
        name=BUILTIN_TITLES[name],
        defaults={"source": Dataset.Source.BUILTIN, "builtin_name": name, "description": fdata.BUILTINS[name], **_describe(table)},
    )
    return ds


@transaction.atomic
def dataset_create_synthetic(*, name: str, n_rows: int, positive_fraction: float, seed: int, user=None) -> Dataset:
    params = {"n_rows": int(n_rows), "positive_fraction": float(positive_fraction), "seed": int(seed)}
    table = fdata.synthetic_ehr(**params)  # raises DataError with a clear message
    return _dataset_named(name=name, source=Dataset.Source.SYNTHETIC, params=params, created_by=user,
                          description=f"Synthetic EHR: {n_rows:,} rows, {positive_fraction:.0%} positive, seed {seed}",
                          **_describe(table))


@transaction.atomic
def dataset_create_upload(*, name: str, content: bytes, target_column: str, max_bytes: int, user=None) -> Dataset:
    """Validate the CSV completely before anything is stored."""
    table = fdata.read_csv_upload(content, target_column, max_bytes=max_bytes)
    packed = gzip.compress(content, compresslevel=6)
    if len(packed) > MAX_STORED_BYTES:
        raise fdata.DataError(f"the file compresses to more than {fdata.format_size(MAX_STORED_BYTES)}, the most that can be stored")
    return _dataset_named(name=name, source=Dataset.Source.UPLOAD, content=packed, params={"csv_rules": fdata.CSV_RULES},
                          content_sha256=hashlib.sha256(content).hexdigest(), created_by=user,
                          description=f"Uploaded CSV, target '{target_column}'", **_describe(table))


def _dataset_named(*, name: str, **fields) -> Dataset:
    """Create a dataset under a name no other has, also when another request takes the name
    between the check and the insert (the unique index refuses the second one)."""
    taken = ValidationError({"name": "A dataset with this name exists; choose another name."})
    if Dataset.objects.filter(name=name).exists():
        raise taken
    try:
        with transaction.atomic():  # a savepoint: the caller's transaction survives the refusal
            return Dataset.objects.create(name=name, **fields)
    except IntegrityError:
        if Dataset.objects.filter(name=name).exists():
            raise taken from None
        raise


def _min_rows_needed(n_hospitals: int) -> int:
    return n_hospitals * 2


def _training_rows(dataset: Dataset, seed: int) -> int:
    """Rows in the training pool the hospitals share: the stratified split that the rounds use
    (``rounds.prepare``) keeps at least one row of each class for validation and for test, so a
    small or rare class leaves fewer than 65% of the rows for training."""
    return len(fdata.holdout_split(selectors.dataset_table(dataset).y, seed=seed).train)


@transaction.atomic
def experiment_create(*, name: str, dataset: Dataset, owner=None, model_kind: str = "mlp", n_hospitals: int = 10,
                      rounds_: int = 10, partition: str = "iid", alpha: float = 0.5, local_epochs: int = 2,
                      learning_rate: float = 0.01, batch_size: int = 32, seed: int = 0, attack: str = "none",
                      malicious_fraction: float = 0.0, defense: str = "verification", encrypted: bool = True,
                      launch: bool = True) -> Experiment:
    train_rows = _training_rows(dataset, seed)
    if train_rows < _min_rows_needed(n_hospitals):
        raise ValidationError({"n_hospitals": f"{dataset.name} has {train_rows} training rows: too few for {n_hospitals} hospitals (2 rows each at least)."})
    if attack == "none":
        malicious_fraction = 0.0
    spec = ModelSpec(model_kind, dataset.n_features, len(dataset.class_names))
    exp = Experiment(name=name, owner=owner, dataset=dataset, model_kind=model_kind, n_hospitals=n_hospitals,
                     rounds=rounds_, partition=partition, alpha=alpha, local_epochs=local_epochs,
                     learning_rate=learning_rate, batch_size=batch_size, seed=seed, attack=attack,
                     malicious_fraction=malicious_fraction, defense=defense,
                     encrypted=encrypted and defense == "verification")
    exp.full_clean(exclude=["config"])
    malicious = rounds.choose_malicious(n_hospitals, malicious_fraction, seed)
    if attack != "none" and not malicious:
        low, high = (round(100 * v) for v in LIMITS["malicious_fraction"])
        least = next((k / 100 for k in range(max(low, 1), high + 1) if rounds.choose_malicious(n_hospitals, k / 100, seed)), None)
        hint = (f"choose at least {least:.2f} for one malicious hospital" if least is not None
                else f"with {n_hospitals} hospitals no allowed fraction makes one malicious")
        raise ValidationError({"malicious_fraction": f"{malicious_fraction:.0%} of {n_hospitals} hospitals is no hospital: {hint}."})
    exp.save()
    cfg = rounds.RoundConfig(spec=spec, n_hospitals=n_hospitals, local_epochs=local_epochs, learning_rate=learning_rate,
                             batch_size=batch_size, attack=attack,
                             malicious=malicious, defense=defense, encrypted=exp.encrypted, seed=seed, experiment=exp.ledger_key)
    exp.config = cfg.to_dict()
    exp.global_vector = rounds.initial_vector(cfg).astype("<f8").tobytes()
    exp.save(update_fields=["config", "global_vector"])
    if launch:
        transaction.on_commit(lambda: _launch(exp))
    return exp


QUEUE_UNREACHABLE = "Saved and queued, but the task queue could not be reached"


def _launch(exp: Experiment) -> None:
    """Queue the run's first task, once its row is committed. If the broker cannot be reached, the
    run stays saved as queued and says so in ``exp.error``; it starts when a worker starts
    (:func:`experiments_resume` takes up queued runs)."""
    from kombu.exceptions import OperationalError as BrokerError

    from . import tasks

    try:
        tasks.submit(tasks.experiment_start, exp.pk)
    except (BrokerError, OSError) as exc:
        log.warning("experiment %s: could not queue its start: %s", exp.pk, exc)
        exp.error = f"{QUEUE_UNREACHABLE} ({str(exc)[:200]}): it starts when a worker starts."
        Experiment.objects.filter(pk=exp.pk).update(error=exp.error)


# --- the round state machine --------------------------------------------------------------

def experiment_start(*, experiment_id: int) -> None:
    """Start a queued run: round 0 sealed, round 1 fanned out. Run again on a run that is running
    but whose round was never created (this task's earlier try committed the start, then failed
    before fanning out: a retry), it goes on from there."""
    with transaction.atomic():
        exp = Experiment.objects.select_for_update().get(pk=experiment_id)
        if exp.status == Experiment.Status.QUEUED:
            exp.status, exp.started, exp.current_round, exp.error = Experiment.Status.RUNNING, timezone.now(), 1, ""
            exp.save(update_fields=["status", "started", "current_round", "error"])
            _seal_initial_model(exp)
        elif exp.status != Experiment.Status.RUNNING or _round_created(exp):
            return
    from . import tasks

    if not exp.centralised:
        tasks.submit(tasks.experiment_centralised, experiment_id)
    round_start(experiment_id=experiment_id, round_no=exp.current_round, resume=True)


def _round_created(exp: Experiment) -> bool:
    """Whether the experiment's current round was started (round_start creates it first)."""
    return Round.objects.filter(experiment=exp, number=exp.current_round).exists()


def _seal_initial_model(exp: Experiment) -> None:
    """The initial model, sealed as round 0, so that the hospitals check what they receive in
    round 1 as in every later round. Its hash comes from the settings (the model is a function of
    them), so an experiment started before round 0 was sealed gets the entry it would have had."""
    initial = rounds.initial_vector(selectors.round_config(exp))
    ledger_append(entries=[("global_model", {"experiment": exp.ledger_key, "round": 0, "initial": True,
                                             "model_hash": rounds.model_hash(initial)})])


def round_start(*, experiment_id: int, round_no: int, resume: bool = False) -> None:
    """Create the round (once) and fan out one local-training task per hospital. Only the call
    that creates the round fans it out, unless ``resume`` (a worker lost its tasks): a start
    queued twice must not train every hospital twice, and their doubled aggregations start
    the next round twice again."""
    from celery import group

    from . import tasks

    exp = Experiment.objects.get(pk=experiment_id)
    if exp.status != Experiment.Status.RUNNING:
        return
    try:
        with transaction.atomic():
            _, created = Round.objects.get_or_create(experiment=exp, number=round_no)
    except IntegrityError:
        created = False
    if not (created or resume):
        return
    done = set(HospitalUpdate.objects.filter(experiment=exp, round_no=round_no).values_list("hospital", flat=True))
    missing = [h for h in range(exp.n_hospitals) if h not in done]
    if missing:
        group(tasks.round_train_hospital.s(experiment_id, round_no, h) for h in missing).apply_async()
    else:
        round_maybe_finish(experiment_id=experiment_id, round_no=round_no)


def round_train_hospital(*, experiment_id: int, round_no: int, hospital: int) -> None:
    exp = Experiment.objects.select_related("dataset").get(pk=experiment_id)
    if exp.status != Experiment.Status.RUNNING or exp.current_round != round_no:
        return
    if not HospitalUpdate.objects.filter(experiment=exp, round_no=round_no, hospital=hospital).exists():
        received = selectors.global_vector(exp)
        # a hospital trains only on the global model whose hash the ledger sealed for the last round
        # (round 0: the initial model)
        ok, why = verify_model_hash(experiment=exp.ledger_key, round_no=round_no - 1, model_hash=rounds.model_hash(received))
        if not ok:
            experiment_fail(experiment_id=experiment_id,
                            error=f"hospital {hospital} refused the global model of round {round_no - 1}: {why}")
            return
        cfg = selectors.round_config(exp)
        fed = selectors.federated_data(exp)
        u = rounds.hospital_update(cfg, hospital, received, *fed.hospital(hospital), round_no,
                                   identity=hospital_signing_key(experiment=exp, hospital=hospital))
        try:
            with transaction.atomic():
                # cancelled or failed while this hospital trained: its update is not staged
                if not Experiment.objects.select_for_update().filter(
                        pk=experiment_id, status=Experiment.Status.RUNNING, current_round=round_no).exists():
                    return
                HospitalUpdate.objects.create(
                    experiment=exp, round_no=round_no, hospital=hospital, vector=u.vector.astype("<f8").tobytes(),
                    n_samples=u.n_samples, malicious=u.malicious, attack=u.attack, update_hash=u.update_hash,
                    signature=u.signature.hex(), seconds=u.seconds)
        except IntegrityError:
            pass  # a redelivered task already stored it
    round_maybe_finish(experiment_id=experiment_id, round_no=round_no)


def hospital_signing_key(*, experiment: Experiment, hospital: int) -> Identity:
    """The hospital's own signing key in this experiment: a random key pair made at its first
    update and kept encrypted (:class:`HospitalKey`), so that nobody who reads the experiment's
    settings can sign for it (the simulation's key derived from the seed could be)."""
    row = HospitalKey.objects.filter(experiment=experiment, hospital=hospital).first()
    if row is None:
        identity = Identity.generate()
        try:
            with transaction.atomic():
                HospitalKey.objects.create(experiment=experiment, hospital=hospital, public_pem=identity.public_pem,
                                           private_pem_encrypted=private_key_stored(identity))
            return identity
        except IntegrityError:  # a redelivered task of the same hospital made it meanwhile
            row = HospitalKey.objects.get(experiment=experiment, hospital=hospital)
    return private_key_loaded(row.private_pem_encrypted)


def round_maybe_finish(*, experiment_id: int, round_no: int) -> None:
    """Update progress; when the round's last update is in, enqueue its aggregation (again, if a
    redelivered task finds it aggregating: the aggregation records the round once)."""
    from . import tasks

    with transaction.atomic():
        rnd = Round.objects.select_for_update().get(experiment_id=experiment_id, number=round_no)
        done = HospitalUpdate.objects.filter(experiment_id=experiment_id, round_no=round_no).count()
        # a cancelled run keeps the progress it had (its staged updates are gone)
        Experiment.objects.filter(pk=experiment_id, current_round=round_no,
                                  status=Experiment.Status.RUNNING).update(hospitals_done=done)
        exp = Experiment.objects.get(pk=experiment_id)
        if exp.status != Experiment.Status.RUNNING or done < exp.n_hospitals:
            return
        if rnd.status == Round.Status.TRAINING:
            rnd.status = Round.Status.AGGREGATING
            rnd.save(update_fields=["status"])
        if rnd.status == Round.Status.AGGREGATING:
            # also when it was aggregating already: the task that made it so may have died before
            # queuing the aggregation (which runs once however often it is queued)
            transaction.on_commit(lambda: tasks.submit(tasks.round_finish, experiment_id, round_no))


def round_finish(*, experiment_id: int, round_no: int) -> None:
    """Verify, aggregate, seal and record the round; start the next one. Runs once per round."""
    from . import tasks

    exp = Experiment.objects.select_related("dataset").get(pk=experiment_id)
    if exp.status != Experiment.Status.RUNNING or round_no != exp.current_round:
        # a late or redelivered task: that round was recorded already. If the next one was never
        # started, the delivery that recorded it died before queuing it: queue it now
        if exp.status == Experiment.Status.RUNNING and exp.current_round == round_no + 1 and not _round_created(exp):
            tasks.submit(tasks.round_start, experiment_id, exp.current_round)
        return
    if not Round.objects.filter(experiment=exp, number=round_no, status=Round.Status.AGGREGATING).exists():
        return  # the round is still training (a stray or replayed task): its last update enqueues this
    staged = list(HospitalUpdate.objects.filter(experiment=exp, round_no=round_no).order_by("hospital"))
    if any(not u.vector for u in staged):
        return  # another delivery of this task recorded the round (and cleared the vectors) meanwhile
    if len(staged) < exp.n_hospitals:
        return  # never seal a round without every hospital's update
    cfg = selectors.round_config(exp)
    fed = selectors.federated_data(exp)
    # a stored vector cut short is read as far as it goes: its hash no longer matches, and the round
    # rejects it and goes on
    updates = [rounds.LocalUpdate(u.hospital, _as_vector(bytes(u.vector)), u.n_samples,
                                  u.malicious, u.attack, u.seconds, u.update_hash, bytes.fromhex(u.signature))
               for u in staged]
    entries: list[tuple[str, dict]] = []
    X_root, y_root = fed.root
    # an experiment started before hospitals had keys of their own has none: its updates carry the
    # simulation's signatures (fedcore.rounds.hospital_identity)
    public_keys = dict(HospitalKey.objects.filter(experiment=exp).values_list("hospital", "public_pem")) or None
    # ALIE and min-max colluders craft their update from the others' and sign it with their own keys
    colluders = ({h: hospital_signing_key(experiment=exp, hospital=h) for h in cfg.malicious}
                 if public_keys and attacks.colludes(cfg.attack) else None)
    outcome = rounds.finish_round(cfg, selectors.global_vector(exp), updates, fed.X_val, fed.y_val, round_no,
                                  X_root=X_root, y_root=y_root, X_test=fed.X_test, y_test=fed.y_test,
                                  sink=lambda kind, payload: entries.append((kind, payload)), public_keys=public_keys,
                                  sample_counts=fed.sample_counts, colluder_identities=colluders)
    with transaction.atomic():
        rnd = Round.objects.select_for_update().get(experiment=exp, number=round_no)
        exp = Experiment.objects.select_for_update().get(pk=experiment_id)
        if rnd.status != Round.Status.AGGREGATING or exp.status != Experiment.Status.RUNNING:
            return  # a redelivered task: the round was recorded already
        ledger_append(entries=entries)
        update_records_store(experiment_id=exp.pk, round_no=round_no, records=[r.to_dict() for r in outcome.records])
        rnd.status, rnd.metrics, rnd.global_hash = Round.Status.FINISHED, outcome.metrics, outcome.global_hash
        rnd.seconds, rnd.finished = outcome.seconds, timezone.now()
        rnd.save()
        exp.global_vector = outcome.global_vector.astype("<f8").tobytes()
        HospitalUpdate.objects.filter(experiment=exp, round_no=round_no).update(vector=b"")  # keep only hashes
        if round_no >= exp.rounds:
            exp.status, exp.finished, exp.final = Experiment.Status.FINISHED, timezone.now(), outcome.metrics
            exp.detection = poisoning_selectors.detection_metrics(experiment=exp)
            exp.save(update_fields=["global_vector", "status", "finished", "final", "detection"])
        else:
            exp.current_round, exp.hospitals_done = round_no + 1, 0
            exp.save(update_fields=["global_vector", "current_round", "hospitals_done"])
            transaction.on_commit(lambda: tasks.submit(tasks.round_start, experiment_id, round_no + 1))


def experiment_centralised(*, experiment_id: int) -> None:
    exp = Experiment.objects.select_related("dataset").get(pk=experiment_id)
    if exp.centralised:
        return
    metrics = rounds.centralised_reference(selectors.round_config(exp), selectors.federated_data(exp), exp.rounds)
    Experiment.objects.filter(pk=experiment_id).update(centralised=metrics)


def experiment_references(*, experiment: Experiment, owner=None) -> list[Experiment]:
    """Launch whichever of the clean and undefended reference runs of this setting is missing."""
    if experiment.attack == "none":
        return []
    base = {f: getattr(experiment, f) for f in selectors.COMPARABLE if f != "dataset_id"}
    base["rounds_"] = base.pop("rounds")
    launched = []
    with transaction.atomic():  # both or neither
        # one launch at a time per setting: a second click waits, then finds the first one's runs
        Dataset.objects.select_for_update().get(pk=experiment.dataset_id)
        refs = selectors.reference_runs(experiment)
        if refs["clean"] is None:
            launched.append(experiment_create(name=_derived_name(experiment.name, " · clean reference"),
                                              dataset=experiment.dataset, owner=owner, defense=experiment.defense,
                                              encrypted=experiment.encrypted, **base))
        if refs["undefended"] is None:
            launched.append(experiment_create(name=_derived_name(experiment.name, " · undefended reference"),
                                              dataset=experiment.dataset, owner=owner, attack=experiment.attack,
                                              defense="none", malicious_fraction=experiment.malicious_fraction, **base))
    return launched


def _derived_name(name: str, suffix: str) -> str:
    """``name`` + ``suffix``, the name shortened (with an ellipsis) to fit the name column."""
    room = Experiment._meta.get_field("name").max_length - len(suffix)
    return (name if len(name) <= room else name[: room - 1].rstrip() + "…") + suffix


def experiment_serve(*, experiment: Experiment) -> None:
    """Serve this experiment's global model to remote users' risk estimates, from when it has
    finished; it replaces the model served so far."""
    if experiment.status in (Experiment.Status.FAILED, Experiment.Status.CANCELLED):
        raise ValidationError(f"The experiment is {experiment.get_status_display().lower()}: it has no global model to serve.")
    if experiment.attacked_undefended:
        raise ValidationError("An undefended run under a simulated attack is never served to remote users.")
    Experiment.objects.filter(pk=experiment.pk).update(served_since=timezone.now())


def _stop(experiment_id: int, **fields) -> bool:
    """End an active experiment; the updates staged for its unrecorded round go with it (a
    recorded round keeps its rows, whose vectors were cleared when it was aggregated)."""
    with transaction.atomic():
        updated = Experiment.objects.filter(pk=experiment_id, status__in=Experiment.ACTIVE).update(
            finished=timezone.now(), **fields)
        if updated:
            recorded = Round.objects.filter(experiment_id=experiment_id, status=Round.Status.FINISHED).values("number")
            HospitalUpdate.objects.filter(experiment_id=experiment_id).exclude(round_no__in=recorded).delete()
    return bool(updated)


def experiment_cancel(*, experiment: Experiment) -> bool:
    return _stop(experiment.pk, status=Experiment.Status.CANCELLED)


def _as_vector(data: bytes) -> np.ndarray:
    return np.frombuffer(data[: len(data) - len(data) % 8], dtype="<f8").copy()


def experiment_fail(*, experiment_id: int, error: str) -> None:
    _stop(experiment_id, status=Experiment.Status.FAILED, error=error[:2000])


def experiments_resume() -> int:
    """Re-enqueue the work of running experiments (after a worker was lost): missing hospital
    tasks of the current round, or its aggregation. Safe to call any time: tasks are idempotent."""
    from . import tasks

    n = 0
    for exp in Experiment.objects.filter(status__in=Experiment.ACTIVE):
        if exp.status == Experiment.Status.QUEUED:
            tasks.submit(tasks.experiment_start, exp.pk)
        else:
            if sealed_model_hash(experiment=exp.ledger_key, round_no=0) is None:  # started before round 0 was sealed
                _seal_initial_model(exp)
            rnd = Round.objects.filter(experiment=exp, number=exp.current_round).first()
            if rnd and rnd.status == Round.Status.AGGREGATING:
                tasks.submit(tasks.round_finish, exp.pk, exp.current_round)
            else:
                tasks.submit(tasks.round_start, exp.pk, exp.current_round, True)
            if not exp.centralised:
                tasks.submit(tasks.experiment_centralised, exp.pk)
        n += 1
    return n
