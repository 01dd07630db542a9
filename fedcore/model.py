"""One weight layout for every model, shared by local training, aggregation and SMPC.

Weights are ``[W1, b1, W2, b2, ...]`` with ``Wk`` of shape (fan_in, fan_out). Hidden layers use
ReLU; the output layer has one unit (sigmoid) for two classes, else one per class (softmax) —
the same convention as scikit-learn's MLPClassifier, so its ``coefs_``/``intercepts_`` map 1:1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn import metrics

Weights = list[np.ndarray]


@dataclass(frozen=True)
class ModelSpec:
    kind: str  # "logreg" | "mlp"
    n_features: int
    n_classes: int
    hidden: tuple[int, ...] = (64, 32)

    def __post_init__(self) -> None:
        if self.kind not in ("logreg", "mlp"):
            raise ValueError(f"unknown model kind {self.kind!r}; use 'logreg' or 'mlp'")
        if self.n_classes < 2 or self.n_features < 1:
            raise ValueError("a model needs at least one feature and two classes")

    @property
    def layer_sizes(self) -> list[int]:
        out = 1 if self.n_classes == 2 else self.n_classes
        hidden = list(self.hidden) if self.kind == "mlp" else []
        return [self.n_features, *hidden, out]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelSpec:
        return cls(d["kind"], int(d["n_features"]), int(d["n_classes"]), tuple(d.get("hidden", (64, 32))))


def shapes(spec: ModelSpec) -> list[tuple[int, ...]]:
    sizes = spec.layer_sizes
    out: list[tuple[int, ...]] = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        out += [(fan_in, fan_out), (fan_out,)]
    return out


def n_params(spec: ModelSpec) -> int:
    return int(sum(np.prod(s) for s in shapes(spec)))


def init_weights(spec: ModelSpec, seed: int) -> Weights:
    """Glorot-uniform weights (as scikit-learn initialises its MLP), zero biases for logreg."""
    rng = np.random.default_rng(seed)
    weights: Weights = []
    for shape in shapes(spec):
        if len(shape) == 2:
            bound = np.sqrt(6.0 / (shape[0] + shape[1]))
            weights.append(rng.uniform(-bound, bound, shape))
        else:
            weights.append(np.zeros(shape))
    return weights


def flatten(weights: Weights) -> np.ndarray:
    return np.concatenate([np.asarray(w, dtype=np.float64).ravel() for w in weights])


def unflatten(spec: ModelSpec, vector: np.ndarray) -> Weights:
    vector = np.asarray(vector, dtype=np.float64)
    if vector.size != n_params(spec):
        raise ValueError(f"vector has {vector.size} values, the model needs {n_params(spec)}")
    out, pos = [], 0
    for shape in shapes(spec):
        size = int(np.prod(shape))
        out.append(vector[pos : pos + size].reshape(shape))
        pos += size
    return out


def forward_logits(spec: ModelSpec, weights: Weights, X: np.ndarray) -> np.ndarray:
    h = np.asarray(X, dtype=np.float64)
    n_layers = len(weights) // 2
    for k in range(n_layers):
        h = h @ weights[2 * k] + weights[2 * k + 1]
        if k < n_layers - 1:
            np.maximum(h, 0.0, out=h)
    return h


# A row counts as moved away from its label only when its true-class margin drops by more than
# this many logit units per class: far below any real change of a model, far above the few units
# in the last place by which two encrypted evaluations of the same model differ (each truncation
# rounds up or down), so that an unchanged model harms no row under SMPC either.
MARGIN_TOLERANCE = 2.0**-12


def margin_tolerance(n_classes: int) -> float:
    """The tolerance on :func:`true_class_margins` (which grow with the number of classes)."""
    return MARGIN_TOLERANCE * n_classes


def true_class_margins(spec: ModelSpec, weights: Weights, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per row, how strongly the model favours the row's true class, as a linear function of
    the logits (so that SMPC computes it exactly): binary, (2y - 1) * z; K classes,
    K * z_y - sum_b z_b, i.e. K times the true logit's lead over the mean logit."""
    z = forward_logits(spec, weights, X)
    y = np.asarray(y, dtype=np.int64)
    if spec.n_classes == 2:
        return (2 * y - 1) * z[:, 0]
    return spec.n_classes * z[np.arange(len(y)), y] - z.sum(axis=1)


def predict_proba(spec: ModelSpec, weights: Weights, X: np.ndarray) -> np.ndarray:
    z = forward_logits(spec, weights, X)
    if spec.n_classes == 2:
        p1 = 1.0 / (1.0 + np.exp(-np.clip(z[:, 0], -500, 500)))
        return np.column_stack([1.0 - p1, p1])
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def predict(spec: ModelSpec, weights: Weights, X: np.ndarray) -> np.ndarray:
    z = forward_logits(spec, weights, X)
    if spec.n_classes == 2:
        return (z[:, 0] > 0).astype(np.int64)
    return z.argmax(axis=1).astype(np.int64)


def classification_scores(y: np.ndarray, y_pred: np.ndarray, proba: np.ndarray, n_classes: int) -> dict[str, float | None]:
    """Accuracy, precision, recall, F1 (positive class 1, or macro), ROC AUC and log loss."""
    binary = n_classes == 2
    average = "binary" if binary else "macro"
    labels = list(range(n_classes))
    accuracy, loss = _accuracy_and_loss(y, y_pred, proba, n_classes)
    out: dict[str, float | None] = {
        "accuracy": accuracy,
        "precision": float(metrics.precision_score(y, y_pred, average=average, labels=labels, zero_division=0)),
        "recall": float(metrics.recall_score(y, y_pred, average=average, labels=labels, zero_division=0)),
        "f1": float(metrics.f1_score(y, y_pred, average=average, labels=labels, zero_division=0)),
        "loss": loss,
    }
    try:
        out["roc_auc"] = float(
            metrics.roc_auc_score(y, proba[:, 1]) if binary else metrics.roc_auc_score(y, proba, multi_class="ovr", labels=labels)
        )
    except ValueError:  # a class absent from y: AUC is undefined
        out["roc_auc"] = None
    return out


def _accuracy_and_loss(y: np.ndarray, y_pred: np.ndarray, proba: np.ndarray, n_classes: int) -> tuple[float, float]:
    return (float(metrics.accuracy_score(y, y_pred)),
            float(metrics.log_loss(y, np.clip(proba, 1e-12, 1.0), labels=list(range(n_classes)))))


def accuracy_and_loss(spec: ModelSpec, weights: Weights, X: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Accuracy and log loss exactly as :func:`evaluate` gives them, without its other metrics
    (what plaintext verification judges by, for every candidate of every round)."""
    return _accuracy_and_loss(y, predict(spec, weights, X), predict_proba(spec, weights, X), spec.n_classes)


def evaluate(spec: ModelSpec, weights: Weights, X: np.ndarray, y: np.ndarray) -> dict[str, float | None]:
    proba = predict_proba(spec, weights, X)
    return classification_scores(y, predict(spec, weights, X), proba, spec.n_classes)
