"""Encrypted inference: score a hospital's model without anyone seeing the model or the data.

The model's weights (the hospital's secret) and the consortium's validation set with its
labels (the consortium's secret) are both secret-shared among the computing parties. The
forward pass (matrix products with truncation, ReLU in the hidden layers, the final
decision) runs on shares; exactly two numbers per model are opened (three when the model is
compared with a reference), all in one round:

* ``correct_count``: how many rows are predicted right (binary: class 1 iff logit > 0, as
  :func:`fedcore.model.predict`; multi-class: first argmax);
* ``loss_sum``: the summed hinge loss of the logits. The log loss needs exp/log, which are
  costly and inexact under MPC; the hinge loss needs only comparisons and products and, like
  the log loss, grows with confident mistakes. Binary: max(0, 1 - s*z) with s = 2y - 1;
  multi-class (Weston-Watkins): sum over b != y of max(0, 1 + z_b - z_y). ``loss`` is its
  mean over rows, so it is not comparable with the plaintext log loss, only across models
  evaluated the same way.
* ``worse_count``, only when a reference model is given (the verifier's current global
  model): on how many rows the model's true-class margin (:func:`fedcore.model.true_class_margins`,
  linear in the logits) is below the reference's by more than
  :func:`fedcore.model.margin_tolerance`. It is opened for the reference too (0).

Precision: with f fractional bits, a pre-activation with fan-in k is off by at most
2^-(f+1) * sum(|x_i| + |w_i|) + 2^-f (input rounding plus truncation; see ``ring``), and the
errors of a layer propagate through the next one's weights. A prediction can differ from the
plaintext one only where a logit is that close to the decision boundary.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..model import ModelSpec, Weights, margin_tolerance, shapes
from .compare import argmax_onehot, pairwise_differences, sign_bit, truncate_relu
from .ring import DEFAULT_FRAC_BITS, U64, Dealer, Shared, decode, encode, ring_int

OPENED = ("correct_count", "loss_sum")
OPENED_WITH_REFERENCE = (*OPENED, "worse_count")
# A model is scored under SMPC only if no layer's pre-activation can exceed this in magnitude
# (:func:`activation_bound`): far below 2^31, where products at 2f = 32 fractional bits would
# wrap the ring and a crafted model could score differently than it predicts, and small enough
# that a truncation goes wrong with probability below 2^-12 per value (see ``ring``). Honest
# models on standardised features stay hundreds of times below it.
MAX_ACTIVATION = 2.0**20


@dataclass(frozen=True)
class EvalResult:
    correct: int
    n: int
    accuracy: float
    loss: float  # mean hinge loss (see module doc)
    seconds: float  # wall time of the run (its share, for models run together), dealer work included
    opened: list[str]  # names of everything that was revealed about this model
    rounds: int = 0  # online communication rounds of the run
    bytes_sent: int = 0  # online traffic, all parties together (this model's share)
    offline_seconds: float = 0.0  # part of ``seconds`` spent producing dealer randomness
    worse: int | None = None  # rows where the true-class margin is below the reference's (if any)


def _check(spec: ModelSpec, weights: Weights, X: np.ndarray, y: np.ndarray) -> None:
    expected = shapes(spec)
    got = [tuple(np.shape(w)) for w in weights]
    if got != expected:
        raise ValueError(f"weights have shapes {got}, the model {spec.kind} needs {expected}")
    if X.ndim != 2 or X.shape[1] != spec.n_features:
        raise ValueError(f"validation set must be (rows, {spec.n_features}), got {X.shape}")
    if len(y) != len(X) or len(y) == 0:
        raise ValueError("validation set needs one label per row and at least one row")
    if y.min() < 0 or y.max() >= spec.n_classes:
        raise ValueError(f"labels must lie in 0..{spec.n_classes - 1}")


def activation_bound(weights: Weights, input_bound: float) -> float:
    """An upper bound on |pre-activation| of every layer for inputs with |x| <= input_bound
    (interval arithmetic: each unit adds up |w| times the previous layer's bound, plus |b|; ReLU
    does not enlarge it)."""
    bound, worst = float(input_bound), 0.0
    for W, b in zip(weights[0::2], weights[1::2], strict=True):
        bound = float(np.abs(W).sum(axis=0).max() * bound + np.abs(b).max())
        worst = max(worst, bound)
    return worst


def shared_logits_many(dealer: Dealer, spec: ModelSpec, models: Sequence[list[Shared]], X: Shared) -> Shared:
    """(models, rows, o) shared logits of several models on the same shared rows, ReLU between
    layers. The first layer is one product of X with the models' first weight matrices side by
    side, so that X is masked once for all of them; each later layer is one stacked product."""
    K, rows, n = len(models), X.shape[0], dealer.n
    n_layers = len(spec.layer_sizes) - 1
    h = X
    for k in range(n_layers):
        if k == 0:  # (rows, d) @ (d, K * width), then (K, rows, width); 2f fractional bits
            side_by_side = Shared(np.concatenate([m[0].shares for m in models], axis=2))
            z = dealer.matmul(X, side_by_side).shares.reshape(n, rows, K, -1).transpose(0, 2, 1, 3)
        else:
            z = dealer.matmul(h, Shared(np.stack([m[2 * k].shares for m in models], axis=1))).shares
        bias = np.stack([m[2 * k + 1].shares for m in models], axis=1)[:, :, None, :]  # f bits
        if k < n_layers - 1:  # the bias joins at 2f bits, so that ReLU can fuse with truncation
            h = truncate_relu(dealer, Shared(z + (bias << U64(dealer.frac_bits))))
        else:
            h = Shared(dealer.truncate(Shared(z)).shares + bias)
    return h


def shared_logits(dealer: Dealer, spec: ModelSpec, W: list[Shared], X: Shared) -> Shared:
    """Forward pass of one model on shares: (rows, o) shared logits."""
    return shared_logits_many(dealer, spec, [W], X)[0]


def _worse(dealer: Dealer, margins: Shared, ref: Shared | int | None, n_classes: int) -> Shared | None:
    """margin - reference margin + tolerance per row, for the sign test [margin < reference's -
    tolerance]. ``margins``: the group's models x rows, flattened; ``ref``: the reference's
    margins (rows,), repeated for each model, or the number of rows when the group's first rows
    are the reference's."""
    if ref is None:
        return None
    ref = margins[:ref] if isinstance(ref, int) else ref
    diff = Shared(margins.shares - np.tile(ref.shares, (1, margins.shape[0] // ref.shape[0])))
    return diff.add_public(encode(margin_tolerance(n_classes), dealer.frac_bits))


def _binary_scores(dealer: Dealer, logit: Shared, y: Shared, ref: Shared | int | None) -> tuple[list[Shared], Shared]:
    """Shared per-row (correct, hinge loss[, worse]) for one logit per row and 0/1 labels, and
    the true-class margins s*z; ``worse`` = [s*z < reference's - tolerance] when ``ref`` is
    given (see :func:`_worse`)."""
    s = y.mul_public(2).add_public(-1)  # +-1
    sz = dealer.mul(s, logit)  # integer times fixed point: no truncation
    margin = (-sz).add_public(encode(1.0, dealer.frac_bits))
    parts = [p for p in (-logit, margin, _worse(dealer, sz, ref, 2)) if p is not None]
    signs = sign_bit(dealer, Shared.concat(parts)).split(parts)
    pred, neg_margin = signs[:2]
    py, margin_if_neg = dealer.mul_many([(pred, y), (margin, neg_margin)])
    correct = (py.mul_public(2) - pred - y).add_public(1)  # 1 - (pred xor y)
    return [correct, margin - margin_if_neg, *signs[2:]], sz


def _multiclass_scores(dealer: Dealer, z: Shared, Y: Shared, ref: Shared | int | None) -> tuple[list[Shared], Shared]:
    """Shared per-row (correct, Weston-Watkins hinge loss[, worse]) for logits z and one-hot
    labels Y, and the true-class margins K * z_y - sum_b z_b (``ref`` as in :func:`_binary_scores`)."""
    zy = dealer.mul(Y, z).sum(axis=1)  # logit of the true class, exact (Y is 0/1)
    true_margin = zy.mul_public(z.shape[1]) - z.sum(axis=1)
    margins = Shared(z.shares - zy.shares[:, :, None]).add_public(encode(1.0, dealer.frac_bits))
    diffs = pairwise_differences(z)
    parts = [p for p in (margins, diffs, _worse(dealer, true_margin, ref, z.shape[1])) if p is not None]
    signs = sign_bit(dealer, Shared.concat(parts)).split(parts)
    neg_margin, neg_diff = signs[:2]
    winners = argmax_onehot(dealer, z, ge=(-neg_diff).add_public(1))
    hit, margin_if_neg = dealer.mul_many([(winners, Y), (margins, neg_margin)])
    # the b == y term is max(0, 1) = 1 exactly in fixed point: remove it publicly
    hinge = (margins - margin_if_neg).sum(axis=1).add_public(-(1 << dealer.frac_bits))
    return [hit.sum(axis=1), hinge, *signs[2:]], true_margin


def encrypted_evaluate_many(
    spec: ModelSpec,
    models: Sequence[Weights],
    X_val: np.ndarray,
    y_val: np.ndarray,
    *,
    reference: Weights | None = None,
    n_parties: int = 3,
    frac_bits: int = DEFAULT_FRAC_BITS,
    seed: int = 0,
    batch_rows: int = 4096,
) -> list[EvalResult]:
    """Accuracy and mean hinge loss of each model on the validation set, computed on shares.

    Only each model's ``correct_count`` and ``loss_sum`` are opened, all in one final round
    (see :attr:`EvalResult.opened`); with a ``reference`` model, also its ``worse_count``, and
    the reference's own result comes last. The models run together, a pass holding about
    ``batch_rows`` model-rows (models x validation rows, to bound memory): every pass's
    rounds serve all of its models, and the passes' shared scores are added up before the
    opening. The run's wall time, offline time and traffic are divided among the models in
    their results; ``rounds`` is the whole run's.
    """
    t0 = time.perf_counter()
    X_val = np.asarray(X_val, dtype=np.float64)
    y_val = np.asarray(y_val, dtype=np.int64)
    # the reference runs first, so that each pass has its margins before the other models' tests
    models = list(models) if reference is None else [reference, *models]
    for weights in models:
        _check(spec, weights, X_val, y_val)
    if not models:
        return []
    names = OPENED if reference is None else OPENED_WITH_REFERENCE
    # SFC64: the fastest numpy generator; reproducible from the seed like the rest of fedcore
    dealer = Dealer(n_parties, np.random.Generator(np.random.SFC64(seed)), frac_bits)
    W = [[dealer.share(encode(w, frac_bits)) for w in weights] for weights in models]
    K, n_rows = len(models), len(y_val)
    rows_per_pass = min(n_rows, batch_rows)
    models_per_pass = max(1, batch_rows // rows_per_pass)
    totals = np.zeros((n_parties, K, len(names)), dtype=U64)
    for start in range(0, n_rows, rows_per_pass):
        X = dealer.share(encode(X_val[start : start + rows_per_pass], frac_bits))
        y = y_val[start : start + rows_per_pass]
        labels = ring_int(y if spec.n_classes == 2 else np.eye(spec.n_classes, dtype=np.int64)[y])
        Y = dealer.share(labels)
        # the reference's margins: at first the rows of the pass's first group, which starts with
        # the reference; then the margins that group gave it
        ref: Shared | int | None = None if reference is None else len(y)
        for first in range(0, K, models_per_pass):
            group = W[first : first + models_per_pass]
            G, rows = len(group), len(y)
            z = shared_logits_many(dealer, spec, group, X).reshape(G * rows, -1)
            # the same shared labels for each model of the group
            Y_g = Shared(np.broadcast_to(Y.shares[:, None], (n_parties, G, *Y.shape)).reshape(n_parties, G * rows, -1))
            if spec.n_classes == 2:
                per_row, margins = _binary_scores(dealer, z[:, 0], Y_g[:, 0], ref)
            else:
                per_row, margins = _multiclass_scores(dealer, z, Y_g, ref)
            if isinstance(ref, int):
                ref = margins[:rows]
            for i, score in enumerate(per_row):
                totals[:, first : first + G, i] += score.reshape(G, rows).sum(axis=1).shares
    opened = dealer.open_many(
        {f"{name}[{k}]": Shared(totals[:, k, i]) for k in range(K) for i, name in enumerate(names)}
    )
    seconds = time.perf_counter() - t0
    results = []
    for k in range(K):
        correct = int(opened[f"correct_count[{k}]"].view(np.int64))
        loss = float(decode(opened[f"loss_sum[{k}]"], frac_bits)) / n_rows
        worse = None if reference is None else int(opened[f"worse_count[{k}]"].view(np.int64))
        results.append(EvalResult(
            correct,
            n_rows,
            correct / n_rows,
            loss,
            seconds / K,
            [name.removesuffix(f"[{k}]") for name in dealer.opened if name.endswith(f"[{k}]")],
            dealer.rounds,
            dealer.bytes_sent // K,
            dealer.offline_seconds / K,
            worse,
        ))
    return results if reference is None else results[1:] + results[:1]


def encrypted_evaluate(
    spec: ModelSpec, weights: Weights, X_val: np.ndarray, y_val: np.ndarray, **options: int
) -> EvalResult:
    """:func:`encrypted_evaluate_many` of one model (same options)."""
    return encrypted_evaluate_many(spec, [weights], X_val, y_val, **options)[0]
