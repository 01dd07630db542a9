"""Encrypted inference agrees with the plaintext model and opens only its scores."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from fedcore.model import ModelSpec, forward_logits, predict, shapes
from fedcore.smpc import encrypted_evaluate, encrypted_evaluate_many
from fedcore.smpc.compare import argmax_onehot, greater_than_zero
from fedcore.smpc.inference import OPENED, activation_bound, shared_logits
from fedcore.smpc.ring import Dealer, encode, reconstruct


def _train(X: np.ndarray, y: np.ndarray, hidden: tuple[int, ...]) -> list[np.ndarray]:
    """A scikit-learn MLP, converted to fedcore's layout [W1, b1, W2, b2, ...]."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(hidden, max_iter=300, random_state=0).fit(X, y)
    weights = [a for pair in zip(clf.coefs_, clf.intercepts_, strict=True) for a in pair]
    assert np.array_equal(
        predict(ModelSpec("mlp", X.shape[1], len(clf.classes_), hidden), weights, X), clf.predict(X)
    )  # the layout conversion is right
    return weights


@pytest.fixture(scope="module")
def breast_cancer():
    X, y = load_breast_cancer(return_X_y=True)
    rng = np.random.default_rng(0)
    train = rng.random(len(y)) < 0.6
    scaler = StandardScaler().fit(X[train])
    X = scaler.transform(X)
    spec = ModelSpec("mlp", 30, 2, (64, 32))
    return spec, _train(X[train], y[train], (64, 32)), X, y


def test_mlp_predictions_match_plaintext_row_by_row(breast_cancer):
    spec, w, X, _ = breast_cancer
    d = Dealer(3, np.random.default_rng(1))
    z = shared_logits(d, spec, [d.share(encode(m)) for m in w], d.share(encode(X)))
    enc_pred = reconstruct(greater_than_zero(d, z[:, 0])).astype(
        np.int64
    )  # opened here for the test only
    assert np.mean(enc_pred == predict(spec, w, X)) >= 0.995
    opened_logits = reconstruct(z).view(np.int64)[:, 0] / 2.0**16
    assert np.abs(opened_logits - forward_logits(spec, w, X)[:, 0]).max() < 1e-2


def test_encrypted_evaluate_matches_plaintext_accuracy_and_hinge_loss(breast_cancer):
    spec, w, X, y = breast_cancer
    res = encrypted_evaluate(spec, w, X, y, n_parties=3, seed=7)
    plain_acc = float(np.mean(predict(spec, w, X) == y))
    assert res.n == len(y) and res.correct == round(res.accuracy * res.n)
    assert abs(res.accuracy - plain_acc) <= 0.005
    z = forward_logits(spec, w, X)[:, 0]
    assert res.loss == pytest.approx(np.mean(np.maximum(0.0, 1.0 - (2 * y - 1) * z)), abs=1e-3)
    assert res.opened == list(OPENED) == ["correct_count", "loss_sum"]  # nothing else revealed
    assert res.rounds > 0 and res.bytes_sent > 0 and 0 < res.offline_seconds < res.seconds


def test_same_seed_same_result_and_batching_does_not_change_the_scores(breast_cancer):
    spec, w, X, y = breast_cancer
    a = encrypted_evaluate(spec, w, X[:200], y[:200], seed=3)
    b = encrypted_evaluate(spec, w, X[:200], y[:200], seed=3)
    c = encrypted_evaluate(spec, w, X[:200], y[:200], seed=3, batch_rows=64)
    assert (a.correct, a.loss) == (b.correct, b.loss)
    assert c.correct == a.correct and c.loss == pytest.approx(a.loss, abs=1e-4)
    assert c.opened == a.opened  # still one opening of the totals, not one per batch


def _hinge(spec, w, X, y) -> float:
    z = forward_logits(spec, w, X)[:, 0]
    return float(np.mean(np.maximum(0.0, 1.0 - (2 * y - 1) * z)))


def test_models_evaluated_together_score_as_each_alone_in_the_rounds_of_one(breast_cancer):
    spec, w, X, y = breast_cancer
    rng = np.random.default_rng(4)
    models = [w, [m * -1.0 for m in w], [m + rng.normal(0, 0.3, m.shape) for m in w]]
    X, y = X[:150], y[:150]
    alone = [encrypted_evaluate(spec, m, X, y, seed=5) for m in models]
    together = encrypted_evaluate_many(spec, models, X, y, seed=5)
    for m, a, t in zip(models, alone, together, strict=True):
        plain = int(np.sum(predict(spec, m, X) == y))
        assert abs(t.correct - plain) <= 1 and abs(a.correct - plain) <= 1
        assert t.loss == pytest.approx(_hinge(spec, m, X, y), abs=1e-3)
        assert t.opened == list(OPENED)  # per model, nothing else revealed
    assert together[1].accuracy < 0.5 < together[0].accuracy  # the scores stay with their model
    assert together[0].rounds == alone[0].rounds  # one pass: its rounds serve every model
    # passes of 200 model-rows: 150 rows, one model a pass; the scores are the same
    passes = encrypted_evaluate_many(spec, models, X, y, seed=5, batch_rows=200)
    assert [p.correct for p in passes] == [t.correct for t in together]
    assert passes[0].rounds == 3 * alone[0].rounds - 2  # three passes, one final opening
    assert encrypted_evaluate_many(spec, [], X, y) == []
    with pytest.raises(ValueError, match="weights have shapes"):
        encrypted_evaluate_many(spec, [w, w[:2]], X, y)


def test_multiclass_models_evaluated_together():
    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    spec = ModelSpec("mlp", 13, 3, (16,))
    w = _train(X, y, (16,))
    models = [w, [np.roll(m, 1, axis=-1) for m in w]]  # the second model's classes rotated
    for batch_rows in (4096, 100):  # both models in one pass; one model and half the rows a pass
        got = encrypted_evaluate_many(spec, models, X, y, n_parties=3, seed=9, batch_rows=batch_rows)
        for m, r in zip(models, got, strict=True):
            assert r.correct == int(np.sum(predict(spec, m, X) == y))


def test_multiclass_mlp_accuracy_and_weston_watkins_loss():
    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    spec = ModelSpec("mlp", 13, 3, (16,))
    w = _train(X, y, (16,))
    res = encrypted_evaluate(spec, w, X, y, n_parties=4, seed=2)
    z = forward_logits(spec, w, X)
    zy = z[np.arange(len(y)), y]
    ww_hinge = (np.maximum(0.0, 1.0 + z - zy[:, None]).sum(axis=1) - 1.0).mean()
    assert res.correct == int(np.sum(predict(spec, w, X) == y))
    assert res.loss == pytest.approx(ww_hinge, abs=1e-3)
    d = Dealer(3, np.random.default_rng(0))
    onehot = reconstruct(
        argmax_onehot(
            d, shared_logits(d, spec, [d.share(encode(m)) for m in w], d.share(encode(X)))
        )
    )
    assert np.mean(onehot.argmax(axis=1) == predict(spec, w, X)) >= 0.995


def test_logistic_regression_and_two_parties():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(300, 5))
    y = (X @ np.array([1.0, -2.0, 0.5, 0.0, 1.0]) > 0.3).astype(np.int64)
    spec = ModelSpec("logreg", 5, 2)
    w = [np.array([[1.0], [-2.0], [0.5], [0.0], [1.0]]) * 3, np.array([-0.9])]
    res = encrypted_evaluate(spec, w, X, y, n_parties=2, seed=1)
    assert abs(res.correct - int(np.sum(predict(spec, w, X) == y))) <= 1


def test_bad_inputs_are_refused_with_a_clear_message(breast_cancer):
    spec, w, X, y = breast_cancer
    with pytest.raises(ValueError, match="weights have shapes"):
        encrypted_evaluate(spec, w[:2], X, y)
    with pytest.raises(ValueError, match=r"\(rows, 30\)"):
        encrypted_evaluate(spec, w, X[:, :5], y)
    with pytest.raises(ValueError, match="labels must lie in 0..1"):
        encrypted_evaluate(spec, w, X[:3], np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="one label per row"):
        encrypted_evaluate(spec, w, X[:3], y[:2])
    with pytest.raises(ValueError, match="at least 2 parties"):
        encrypted_evaluate(spec, w, X[:3], y[:3], n_parties=1)


def test_the_activation_bound_holds_for_every_input_within_its_range():
    rng = np.random.default_rng(3)
    spec = ModelSpec("mlp", 5, 3, hidden=(7, 4))
    for _ in range(20):
        weights = [rng.normal(0, 2, s) for s in shapes(spec)]
        X = rng.uniform(-1.5, 1.5, (200, 5))
        h, worst = X, 0.0
        for W, b in zip(weights[0::2], weights[1::2], strict=True):
            z = h @ W + b
            worst, h = max(worst, np.abs(z).max()), np.maximum(z, 0)
        assert worst <= activation_bound(weights, 1.5)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_rows_worse_than_a_reference_are_counted_under_mpc_as_in_plaintext(n_classes):
    from fedcore.model import init_weights, margin_tolerance, true_class_margins
    from fedcore.smpc.inference import OPENED_WITH_REFERENCE

    rng = np.random.default_rng(3)
    X = rng.normal(size=(90, 6))
    y = rng.integers(0, n_classes, 90)
    spec = ModelSpec("mlp", 6, n_classes, (8,))
    reference, *candidates = [init_weights(spec, seed) for seed in range(5)]
    # an unchanged model (a hospital that sends a zero update) harms no row, although its
    # encrypted logits differ from the reference's by the truncations' last-place rounding
    candidates.append([w.copy() for w in reference])
    below = true_class_margins(spec, reference, X, y) - margin_tolerance(n_classes)
    plain = [int(np.sum(true_class_margins(spec, m, X, y) < below)) for m in candidates]
    assert plain[-1] == 0 and len(set(plain)) > 2  # the candidates differ: a mix-up would show
    # one pass; several groups of models a pass; passes of part of the rows
    for batch_rows in (4096, 200, 40):
        got = encrypted_evaluate_many(spec, candidates, X, y, reference=reference, seed=1, batch_rows=batch_rows)
        assert [r.worse for r in got[:-1]] == plain, batch_rows
        assert got[-1].worse == 0  # the reference is last, and no row is worse than itself
        assert all(r.opened == list(OPENED_WITH_REFERENCE) for r in got)
        # the reference's accuracy is its own, not a candidate's
        assert got[-1].correct == int(np.sum(predict(spec, reference, X) == y))
    assert all(r.worse is None for r in encrypted_evaluate_many(spec, candidates, X, y))
