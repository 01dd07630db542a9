"""Poisoning attacks of malicious hospitals.

Data attacks change (X, y) before local training; model attacks change the update
(local - global). ALIE and min-max are colluding: they see the round's benign updates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class Attack:
    name: str
    kind: str  # "data" | "model" | "collusion"
    summary: str
    defaults: dict = field(default_factory=dict)


ATTACKS: dict[str, Attack] = {
    "none": Attack("none", "none", "No attack: every hospital is honest."),
    "label_flip": Attack("label_flip", "data", "Label flipping: train on permuted labels (Tolpegin et al., ESORICS 2020).", {}),
    "backdoor": Attack("backdoor", "data", "Backdoor / model replacement: a trigger pattern relabelled to a target class, update boosted (Bagdasaryan et al., AISTATS 2020).",
                       {"target": 0, "trigger_features": 3, "trigger_value": 4.0, "poison_fraction": 0.5, "boost": 5.0}),
    "sign_flip": Attack("sign_flip", "model", "Sign flipping: send the negated update, scaled (Damaskinos et al., ICML 2018).", {"scale": 4.0}),
    "gaussian_noise": Attack("gaussian_noise", "model", "Gaussian noise: send random noise instead of the update (Blanchard et al., NeurIPS 2017).", {"sigma": 1.0}),
    "scaling": Attack("scaling", "model", "Scaling: multiply the update to dominate the average (Bhagoji et al., ICML 2019).", {"factor": 10.0}),
    "alie": Attack("alie", "collusion", "A little is enough: mean - z·std of benign updates, inside their spread (Baruch et al., NeurIPS 2019).", {}),
    "min_max": Attack("min_max", "collusion", "Min-max: the largest step along -std whose distance to any benign update stays within theirs (Shejwalkar & Houmansadr, NDSS 2021).", {}),
}


def colludes(name: str) -> bool:
    """Whether the attack's hospitals craft their update together from the benign ones of the round."""
    return name in ATTACKS and ATTACKS[name].kind == "collusion"


def params_for(name: str, overrides: dict | None = None) -> dict:
    if name not in ATTACKS:
        raise ValueError(f"unknown attack {name!r}; choose one of {', '.join(ATTACKS)}")
    return {**ATTACKS[name].defaults, **(overrides or {})}


# --- data attacks --------------------------------------------------------------------------

def label_flip(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Every label c becomes n_classes - 1 - c (binary: 0 <-> 1)."""
    return (n_classes - 1 - np.asarray(y)).astype(np.int64)


def apply_trigger(X: np.ndarray, trigger_features: int, trigger_value: float) -> np.ndarray:
    """The backdoor's trigger: the first ``trigger_features`` (standardised) features set high."""
    X = np.array(X, dtype=np.float64, copy=True)
    X[:, :trigger_features] = trigger_value
    return X


def backdoor_data(X: np.ndarray, y: np.ndarray, rng: np.random.Generator, *, target: int, trigger_features: int,
                  trigger_value: float, poison_fraction: float, **_) -> tuple[np.ndarray, np.ndarray]:
    """Add triggered copies of a fraction of the rows, labelled with the target class."""
    n = max(1, int(round(poison_fraction * len(X))))
    idx = rng.choice(len(X), size=n, replace=len(X) < n)
    Xp = apply_trigger(X[idx], trigger_features, trigger_value)
    return np.vstack([X, Xp]), np.concatenate([y, np.full(n, target, dtype=np.int64)])


def backdoor_success_rate(predict, X_test: np.ndarray, y_test: np.ndarray, *, target: int, trigger_features: int,
                          trigger_value: float, **_) -> float:
    """Share of triggered test rows of other classes that the model classifies as ``target``."""
    rows = y_test != target
    if not rows.any():
        return 0.0
    pred = predict(apply_trigger(X_test[rows], trigger_features, trigger_value))
    return float(np.mean(pred == target))


# --- model attacks -------------------------------------------------------------------------

def sign_flip(update: np.ndarray, scale: float = 1.0, **_) -> np.ndarray:
    return -scale * np.asarray(update, dtype=np.float64)


def gaussian_noise(update: np.ndarray, rng: np.random.Generator, sigma: float = 1.0, **_) -> np.ndarray:
    return rng.normal(0.0, sigma, size=np.shape(update))


def scaling(update: np.ndarray, factor: float = 10.0, **_) -> np.ndarray:
    return factor * np.asarray(update, dtype=np.float64)


def alie_z(n_clients: int, n_malicious: int) -> float:
    """Baruch et al.: the largest z such that enough honest clients lie farther from the mean.

    Defined for a malicious minority: with s = floor(n/2) + 1 - m <= 0 the attackers need no
    honest supporter and z would be infinite, so that case is refused."""
    s = n_clients // 2 + 1 - n_malicious
    if s <= 0:
        raise ValueError(f"ALIE is an attack of a minority: {n_malicious} of {n_clients} hospitals are malicious, "
                         f"at most {n_clients // 2} may be")
    return float(stats.norm.ppf((n_clients - s) / n_clients)) if n_clients > s else 0.0


def alie(benign: np.ndarray, n_clients: int, n_malicious: int, **_) -> np.ndarray:
    benign = np.asarray(benign, dtype=np.float64)
    return benign.mean(axis=0) - alie_z(n_clients, n_malicious) * benign.std(axis=0)


def min_max(benign: np.ndarray, **_) -> np.ndarray:
    """mean + gamma·(-std), gamma maximal (binary search) such that the crafted update's largest
    distance to a benign update is at most the largest distance between two benign updates."""
    benign = np.asarray(benign, dtype=np.float64)
    mean = benign.mean(axis=0)
    direction = -benign.std(axis=0)
    if len(benign) < 2 or not np.any(direction):
        return mean
    from .aggregation import pairwise_sq_distances

    bound = pairwise_sq_distances(benign).max()
    lo, hi = 0.0, 1.0
    while np.max(((benign - (mean + hi * direction)) ** 2).sum(axis=1)) <= bound and hi < 1e6:
        lo, hi = hi, hi * 2
    for _ in range(40):
        mid = (lo + hi) / 2
        if np.max(((benign - (mean + mid * direction)) ** 2).sum(axis=1)) <= bound:
            lo = mid
        else:
            hi = mid
    return mean + lo * direction
