"""Verification before aggregation — the reference papers' defense.

Each candidate local model is evaluated on the consortium's validation set, in plaintext or
under SMPC (encrypted inference that opens only the number of correct predictions and the
loss). A model whose accuracy falls below what the honest majority shows, or whose loss or
update norm is far above it, is marked Poisoned and is not aggregated. Robust statistics
(median and MAD) make the rule work with 0% as well as 45% malicious hospitals.

With non-IID hospitals the honest majority itself is spread wide, so a second test compares
each candidate with the current global model, evaluated the same way. It applies only in a
round where the consortium's median candidate improves on the global model's validation loss:
then a candidate that raises that loss by more than a few per cent moves the model the wrong
way while the honest majority moves it the right way, and is Poisoned. In a round where the
median candidate is itself worse than the global model (local models that fit their own small
data while their average generalises better, as an MLP does after a few rounds), the
comparison says nothing about any one hospital and is skipped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .model import ModelSpec, Weights, accuracy_and_loss

POISONED, BENIGN = "Poisoned", "Benign"
MAD_TO_SIGMA = 1.4826


@dataclass
class Verdict:
    status: str
    accuracy: float
    loss: float
    seconds: float
    reason: str
    encrypted: bool


@dataclass(frozen=True)
class Rule:
    """Thresholds: k robust standard deviations, never tighter than the absolute tolerances."""

    k: float = 3.0
    accuracy_tolerance: float = 0.05
    loss_tolerance: float = 0.25
    norm_factor: float = 3.0
    # against the current global model, when the median candidate improves on it: validation
    # loss higher than the global model's by more than this fraction
    worse_loss: float = 0.06


# model-rows (candidates x validation rows) per pass of the encrypted evaluation: a few
# candidates at a time keep the arrays in cache, and each pass's rounds serve all of them
ENCRYPTED_BATCH_ROWS = 256


def evaluate_candidates(spec: ModelSpec, candidates: list[Weights], X_val: np.ndarray, y_val: np.ndarray, *,
                        encrypted: bool = False, n_parties: int = 3, seed: int = 0) -> list[tuple[float, float, float]]:
    """(accuracy, loss, seconds) per candidate, in plaintext or under SMPC (all candidates in
    one run, each credited with its share of the time)."""
    if encrypted:
        from .smpc import encrypted_evaluate_many

        results = encrypted_evaluate_many(spec, candidates, X_val, y_val, n_parties=n_parties, seed=seed,
                                          batch_rows=ENCRYPTED_BATCH_ROWS)
        return [(r.accuracy, r.loss, r.seconds) for r in results]
    out = []
    for weights in candidates:
        t0 = time.perf_counter()
        accuracy, loss = accuracy_and_loss(spec, weights, X_val, y_val)
        out.append((accuracy, loss, time.perf_counter() - t0))
    return out


def judge(accuracies, losses, norms=None, rule: Rule = Rule(), reference: tuple[float, float] | None = None) -> list[tuple[str, str]]:
    """(status, reason) per model from its scores, against the consortium's medians and, when
    given, the (accuracy, loss) of the current global model."""
    acc = np.asarray(accuracies, dtype=np.float64)
    loss = np.asarray(losses, dtype=np.float64)
    med_acc, med_loss = np.median(acc), np.median(loss)
    acc_floor = med_acc - max(rule.k * MAD_TO_SIGMA * np.median(np.abs(acc - med_acc)), rule.accuracy_tolerance)
    loss_ceiling = med_loss + max(rule.k * MAD_TO_SIGMA * np.median(np.abs(loss - med_loss)), rule.loss_tolerance)
    norm_ceiling = None
    if norms is not None:
        nrm = np.asarray(norms, dtype=np.float64)
        norm_ceiling = rule.norm_factor * np.median(nrm)
    # the comparison with the global model applies only when the honest majority improves on it
    worse_ceiling = reference[1] * (1 + rule.worse_loss) if reference is not None and med_loss <= reference[1] else None
    verdicts = []
    for i in range(len(acc)):
        if acc[i] < acc_floor:
            verdicts.append((POISONED, f"validation accuracy {acc[i]:.3f} is {med_acc - acc[i]:.3f} below the consortium median {med_acc:.3f}"))
        elif loss[i] > loss_ceiling:
            verdicts.append((POISONED, f"validation loss {loss[i]:.3f} is above the consortium's ceiling {loss_ceiling:.3f} (median {med_loss:.3f})"))
        elif norm_ceiling is not None and norm_ceiling > 0 and norms[i] > norm_ceiling:
            verdicts.append((POISONED, f"update norm per local step {norms[i]:.3g} is {norms[i] / np.median(norms):.1f}x the consortium median"))
        elif worse_ceiling is not None and loss[i] > worse_ceiling:
            verdicts.append((POISONED, f"worse than the current global model: validation loss {loss[i]:.3f} vs "
                                       f"{reference[1]:.3f} (accuracy {acc[i]:.3f} vs {reference[0]:.3f}), while the "
                                       f"consortium median improves it to {med_loss:.3f}"))
        else:
            verdicts.append((BENIGN, f"validation accuracy {acc[i]:.3f} within the consortium's range (median {med_acc:.3f})"))
    return verdicts


def verify_models(spec: ModelSpec, candidates: list[Weights], X_val: np.ndarray, y_val: np.ndarray, *,
                  encrypted: bool = False, norms=None, n_parties: int = 3, seed: int = 0, rule: Rule = Rule(),
                  reference: Weights | None = None) -> list[Verdict]:
    """``reference``: the current global model, evaluated the same way (also under SMPC)."""
    models = candidates if reference is None else [*candidates, reference]
    scores = evaluate_candidates(spec, models, X_val, y_val, encrypted=encrypted, n_parties=n_parties, seed=seed)
    ref = None
    if reference is not None:
        ref = scores.pop()[:2]
    judged = judge([s[0] for s in scores], [s[1] for s in scores], norms, rule, ref)
    return [Verdict(status, acc, loss, secs, reason, encrypted)
            for (acc, loss, secs), (status, reason) in zip(scores, judged, strict=True)]
