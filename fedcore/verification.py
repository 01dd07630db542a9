"""Verification before aggregation — the reference papers' defense.

Each candidate local model is evaluated on the consortium's validation set, in plaintext or
under SMPC (encrypted inference that opens only the number of correct predictions, the loss
and the number of rows it harms, below). A model whose accuracy falls below what the honest majority shows, or whose loss or
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

A third test holds in every round, IID or not: on how many validation rows the candidate's
true-class margin (:func:`fedcore.model.true_class_margins`) is below the global model's (by
more than a rounding tolerance). An
honest update improves most rows, or, near convergence, moves them both ways; one trained on
flipped labels, or sign-flipped, pushes nearly every row towards a wrong class. Even an honest
hospital that holds a single class harms at most the rows of the other classes, so the ceiling
is 1 - (smallest class share of the validation set) plus a tolerance, and never below 80%:
above 100%, so that the test is off, when a class holds less than a tenth of the rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .model import ModelSpec, Weights, accuracy_and_loss, margin_tolerance, true_class_margins

POISONED, BENIGN = "Poisoned", "Benign"
MAD_TO_SIGMA = 1.4826


@dataclass
class Verdict:
    status: str
    accuracy: float | None  # None: not scored (rejected before verification)
    loss: float | None
    seconds: float
    reason: str
    encrypted: bool
    rows_harmed: float | None = None  # fraction of validation rows it moves away from their label


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
    # validation rows whose true-class margin the update lowers: ceiling = max(harmed_rows,
    # 1 - smallest class share + harmed_tolerance)
    harmed_rows: float = 0.8
    harmed_tolerance: float = 0.1

    def harmed_ceiling(self, y_val: np.ndarray, n_classes: int) -> float:
        shares = np.bincount(np.asarray(y_val, dtype=np.int64), minlength=n_classes) / max(1, len(y_val))
        return max(self.harmed_rows, 1.0 - float(shares.min()) + self.harmed_tolerance)


# model-rows (candidates x validation rows) per pass of the encrypted evaluation: a few
# candidates at a time keep the arrays in cache, and each pass's rounds serve all of them
ENCRYPTED_BATCH_ROWS = 256


def evaluate_candidates(spec: ModelSpec, candidates: list[Weights], X_val: np.ndarray, y_val: np.ndarray, *,
                        reference: Weights | None = None, encrypted: bool = False, n_parties: int = 3,
                        seed: int = 0) -> list[tuple[float, float, float, float | None]]:
    """(accuracy, loss, seconds, rows harmed) per candidate, in plaintext or under SMPC (all
    candidates in one run, each credited with its share of the time). With a ``reference``
    model, "rows harmed" is the fraction of rows whose true-class margin is below the
    reference's by more than :func:`fedcore.model.margin_tolerance` (None without one), and the
    reference's own scores come last."""
    n_rows = len(y_val)
    if encrypted:
        from .smpc import encrypted_evaluate_many

        results = encrypted_evaluate_many(spec, candidates, X_val, y_val, reference=reference, n_parties=n_parties,
                                          seed=seed, batch_rows=ENCRYPTED_BATCH_ROWS)
        return [(r.accuracy, r.loss, r.seconds, None if r.worse is None else r.worse / n_rows) for r in results]
    # a row is harmed where the margin falls below the reference's by more than the tolerance
    harm_below = None
    if reference is not None:
        harm_below = true_class_margins(spec, reference, X_val, y_val) - margin_tolerance(spec.n_classes)
    out = []
    for weights in candidates if reference is None else [*candidates, reference]:
        t0 = time.perf_counter()
        accuracy, loss = accuracy_and_loss(spec, weights, X_val, y_val)
        harmed = None
        if harm_below is not None:
            harmed = float(np.count_nonzero(true_class_margins(spec, weights, X_val, y_val) < harm_below)) / n_rows
        out.append((accuracy, loss, time.perf_counter() - t0, harmed))
    return out


def judge(accuracies, losses, norms=None, rule: Rule = Rule(), reference: tuple[float, float] | None = None,
          harmed=None, harmed_ceiling: float = 1.0) -> list[tuple[str, str]]:
    """(status, reason) per model from its scores, against the consortium's medians and, when
    given, the (accuracy, loss) of the current global model and the fraction of validation rows
    each model moves away from their label (``harmed``; Poisoned above ``harmed_ceiling``)."""
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
        elif harmed is not None and harmed[i] > harmed_ceiling:
            verdicts.append((POISONED, f"lowers the true class's margin on {harmed[i]:.1%} of the validation rows "
                                       f"(ceiling {harmed_ceiling:.1%}): it moves the model away from the labels"))
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
    scores = evaluate_candidates(spec, candidates, X_val, y_val, reference=reference, encrypted=encrypted,
                                 n_parties=n_parties, seed=seed)
    ref = None
    if reference is not None:
        ref = scores.pop()[:2]
    harmed = None if reference is None else [s[3] for s in scores]
    judged = judge([s[0] for s in scores], [s[1] for s in scores], norms, rule, ref, harmed,
                   rule.harmed_ceiling(y_val, spec.n_classes))
    return [Verdict(status, acc, loss, secs, reason, encrypted, rows)
            for (acc, loss, secs, rows), (status, reason) in zip(scores, judged, strict=True)]
