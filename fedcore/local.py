"""Local training of a hospital's model, warm-started from the global weights.

scikit-learn estimators do the optimisation: MLPClassifier (ReLU, Adam) for the MLP and
SGDClassifier (log loss, constant learning rate) for logistic regression. Their parameters are
set from the global weights before training and read back afterwards in fedcore.model's layout.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDClassifier
from sklearn.neural_network import MLPClassifier

from .model import ModelSpec, Weights, init_weights


def train_local(spec: ModelSpec, global_weights: Weights, X: np.ndarray, y: np.ndarray, *,
                epochs: int, learning_rate: float, batch_size: int = 32, seed: int = 0) -> Weights:
    """``epochs`` passes over (X, y) starting exactly from ``global_weights`` (none: a copy of them)."""
    if epochs < 1:
        return [np.array(w, dtype=np.float64) for w in global_weights]
    classes = np.arange(spec.n_classes)
    if spec.kind == "mlp":
        return _train_mlp(spec, global_weights, X, y, classes, epochs, learning_rate, batch_size, seed)
    return _train_logreg(spec, global_weights, X, y, classes, epochs, learning_rate, seed)


def _train_mlp(spec, weights, X, y, classes, epochs, lr, batch_size, seed) -> Weights:
    clf = MLPClassifier(hidden_layer_sizes=spec.hidden, activation="relu", solver="adam",
                        learning_rate_init=lr, batch_size=min(batch_size, len(X)), random_state=seed,
                        alpha=1e-4, shuffle=True)
    # partial_fit initialises layers, optimizer and label binarizer for all classes (a hospital
    # may lack one); its one step is undone by copying the global weights in place afterwards,
    # and a fresh Adam state is built so the first local epoch starts from the global model.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", UserWarning)  # "batch_size clipped" on the 1-row init
        clf.partial_fit(X[:1], y[:1], classes=classes)
        for dst, src in zip(clf.coefs_ + clf.intercepts_, weights[0::2] + weights[1::2], strict=True):
            dst[...] = src
        del clf._optimizer  # fresh Adam moments: each round is a new local problem
        for _ in range(epochs):
            clf.partial_fit(X, y)
    out: Weights = []
    for W, b in zip(clf.coefs_, clf.intercepts_, strict=True):
        out += [W.copy(), b.copy()]
    return out


def _train_logreg(spec, weights, X, y, classes, epochs, lr, seed) -> Weights:
    W, b = weights
    clf = SGDClassifier(loss="log_loss", learning_rate="constant", eta0=lr, alpha=1e-4,
                        max_iter=max(1, epochs), tol=None, random_state=seed, shuffle=True)
    # SGDClassifier stores (n_outputs, d); binary has one output, multiclass is one-vs-rest.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y, coef_init=W.T.copy(), intercept_init=b.copy()) if len(np.unique(y)) == spec.n_classes else _partial(clf, X, y, classes, W, b, epochs)
    return [clf.coef_.T.copy(), clf.intercept_.copy()]


def _partial(clf: SGDClassifier, X, y, classes, W, b, epochs) -> None:
    """A hospital missing a class: partial_fit knows all classes; start from the global weights."""
    clf.partial_fit(X[:1], y[:1], classes=classes)
    clf.coef_[...] = W.T
    clf.intercept_[...] = b
    for _ in range(epochs):
        clf.partial_fit(X, y)


def train_centralised(spec: ModelSpec, X: np.ndarray, y: np.ndarray, *, epochs: int,
                      learning_rate: float, batch_size: int = 32, seed: int = 0) -> Weights:
    """The reference: the same model trained on the pooled training data."""
    return train_local(spec, init_weights(spec, seed), X, y, epochs=epochs,
                       learning_rate=learning_rate, batch_size=batch_size, seed=seed)
