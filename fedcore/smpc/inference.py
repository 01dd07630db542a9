"""Encrypted inference: score a hospital's model without anyone seeing the model or the data.

The model's weights (the hospital's secret) and the consortium's validation set with its
labels (the consortium's secret) are both secret-shared among the computing parties. The
forward pass (matrix products with truncation, ReLU in the hidden layers, the final
decision) runs on shares; exactly two numbers are opened, in one round:

* ``correct_count``: how many rows are predicted right (binary: class 1 iff logit > 0, as
  :func:`fedcore.model.predict`; multi-class: first argmax);
* ``loss_sum``: the summed hinge loss of the logits. The log loss needs exp/log, which are
  costly and inexact under MPC; the hinge loss needs only comparisons and products and, like
  the log loss, grows with confident mistakes. Binary: max(0, 1 - s*z) with s = 2y - 1;
  multi-class (Weston-Watkins): sum over b != y of max(0, 1 + z_b - z_y). ``loss`` is its
  mean over rows, so it is not comparable with the plaintext log loss, only across models
  evaluated the same way.

Precision: with f fractional bits, a pre-activation with fan-in k is off by at most
2^-(f+1) * sum(|x_i| + |w_i|) + 2^-f (input rounding plus truncation; see ``ring``), and the
errors of a layer propagate through the next one's weights. A prediction can differ from the
plaintext one only where a logit is that close to the decision boundary.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..model import ModelSpec, Weights, shapes
from .compare import argmax_onehot, pairwise_differences, sign_bit, truncate_relu
from .ring import DEFAULT_FRAC_BITS, U64, Dealer, Shared, decode, encode, ring_int

OPENED = ("correct_count", "loss_sum")


@dataclass(frozen=True)
class EvalResult:
    correct: int
    n: int
    accuracy: float
    loss: float  # mean hinge loss (see module doc)
    seconds: float  # wall time of the whole run, offline dealer work included
    opened: list[str]  # names of everything that was revealed
    rounds: int = 0  # online communication rounds
    bytes_sent: int = 0  # online traffic, all parties together
    offline_seconds: float = 0.0  # part of ``seconds`` spent producing dealer randomness


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


def shared_logits(dealer: Dealer, spec: ModelSpec, W: list[Shared], X: Shared) -> Shared:
    """Forward pass on shares: (rows, o) shared logits, ReLU between layers."""
    n_layers = len(spec.layer_sizes) - 1
    h = X
    for k in range(n_layers):
        z = dealer.matmul(h, W[2 * k])  # 2f fractional bits
        bias = W[2 * k + 1].shares[:, None, :]  # f fractional bits
        if k < n_layers - 1:  # the bias joins at 2f bits, so that ReLU can fuse with truncation
            h = truncate_relu(dealer, Shared(z.shares + (bias << U64(dealer.frac_bits))))
        else:
            h = Shared(dealer.truncate(z).shares + bias)
    return h


def _binary_scores(dealer: Dealer, logit: Shared, y: Shared) -> tuple[Shared, Shared]:
    """Shared (correct count, hinge-loss sum) for one logit per row and 0/1 labels."""
    s = y.mul_public(2).add_public(-1)  # +-1
    sz = dealer.mul(s, logit)  # integer times fixed point: no truncation
    margin = (-sz).add_public(encode(1.0, dealer.frac_bits))
    pred, neg_margin = sign_bit(dealer, Shared.concat([-logit, margin])).split([logit, margin])
    py, margin_if_neg = dealer.mul_many([(pred, y), (margin, neg_margin)])
    correct = (py.mul_public(2) - pred - y).add_public(1)  # 1 - (pred xor y)
    return correct.sum(), (margin - margin_if_neg).sum()


def _multiclass_scores(dealer: Dealer, z: Shared, Y: Shared) -> tuple[Shared, Shared]:
    """Shared (correct count, Weston-Watkins hinge sum) for logits z and one-hot labels Y."""
    rows = z.shape[0]
    zy = dealer.mul(Y, z).sum(axis=1)  # logit of the true class, exact (Y is 0/1)
    margins = Shared(z.shares - zy.shares[:, :, None]).add_public(encode(1.0, dealer.frac_bits))
    diffs = pairwise_differences(z)
    neg_margin, neg_diff = sign_bit(dealer, Shared.concat([margins, diffs])).split([margins, diffs])
    winners = argmax_onehot(dealer, z, ge=(-neg_diff).add_public(1))
    hit, margin_if_neg = dealer.mul_many([(winners, Y), (margins, neg_margin)])
    # the b == y term is max(0, 1) = 1 exactly in fixed point: remove it publicly
    hinge = (margins - margin_if_neg).sum().add_public(-rows * (1 << dealer.frac_bits))
    return hit.sum(), hinge


def encrypted_evaluate(
    spec: ModelSpec,
    weights: Weights,
    X_val: np.ndarray,
    y_val: np.ndarray,
    *,
    n_parties: int = 3,
    frac_bits: int = DEFAULT_FRAC_BITS,
    seed: int = 0,
    batch_rows: int = 4096,
) -> EvalResult:
    """Accuracy and mean hinge loss of ``weights`` on the validation set, computed on shares.

    Only ``correct_count`` and ``loss_sum`` are opened (see :attr:`EvalResult.opened`). Rows
    are processed ``batch_rows`` at a time to bound memory; the batches' shared scores are
    added up before the single opening.
    """
    t0 = time.perf_counter()
    X_val = np.asarray(X_val, dtype=np.float64)
    y_val = np.asarray(y_val, dtype=np.int64)
    _check(spec, weights, X_val, y_val)
    # SFC64: the fastest numpy generator; reproducible from the seed like the rest of fedcore
    dealer = Dealer(n_parties, np.random.Generator(np.random.SFC64(seed)), frac_bits)
    W = [dealer.share(encode(w, frac_bits)) for w in weights]
    totals = Shared(np.zeros((n_parties, len(OPENED)), dtype=U64))
    for start in range(0, len(y_val), batch_rows):
        X = dealer.share(encode(X_val[start : start + batch_rows], frac_bits))
        y = y_val[start : start + batch_rows]
        z = shared_logits(dealer, spec, W, X)
        if spec.n_classes == 2:
            scores = _binary_scores(dealer, z[:, 0], dealer.share(ring_int(y)))
        else:
            scores = _multiclass_scores(
                dealer, z, dealer.share(ring_int(np.eye(spec.n_classes, dtype=np.int64)[y]))
            )
        totals = totals + Shared.concat(scores)
    opened = dealer.open_many({name: totals[i] for i, name in enumerate(OPENED)})
    n = len(y_val)
    correct = int(opened["correct_count"].view(np.int64))
    loss = float(decode(opened["loss_sum"], frac_bits)) / n
    return EvalResult(
        correct,
        n,
        correct / n,
        loss,
        time.perf_counter() - t0,
        list(dealer.opened),
        dealer.rounds,
        dealer.bytes_sent,
        dealer.offline_seconds,
    )
