"""Secure weighted aggregation of verified updates on shares.

Each hospital secret-shares its update among the computing parties; every party multiplies
its shares by the public aggregation weights and adds them up locally; only the weighted sum
is opened. Any n-1 parties together see only uniformly random shares of each update.

Sharing is pseudorandom (:func:`ring.share_with_keys`): the hospital sends parties 0..n-2 a
16-byte AES key each instead of a whole share, and the last party the vector minus their
AES-CTR expansions; this cuts the hospital's upload from n vectors to one, at the same
computation.

Precision: the update is encoded with f fractional bits and the public weights with
``weight_frac_bits`` (w); the opened sum carries f + w fractional bits and is decoded
exactly, so no truncation is needed. The result differs from sum(w_i * v_i) by at most
sum_i (|w_i| * 2^-(f+1) + |v_i| * 2^-(w+1) + 2^-(f+w+2)), i.e. about 2^-17 * sum|w_i| at the
defaults. The sum must stay below 2^(63-f-w) in magnitude (2^23 at the defaults); each
hospital checks its own update against that bound before sharing it. The check is on the
rounded ring values (sum_i |enc(w_i)| * |enc(v_i)| < 2^63), so an update just below the bound
that rounds up cannot wrap the sum to the opposite sign.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import numpy as np

from .ring import DEFAULT_FRAC_BITS, U64, Shared, decode, encode, reconstruct, share_with_keys

DEFAULT_WEIGHT_FRAC_BITS = 24
# an update below this in magnitude fits every convex weighted sum (weights adding up to 1) at
# the default precisions, with a factor 2 to spare for the rounding of the weights
MAX_UPDATE_VALUE = 2.0 ** (63 - DEFAULT_FRAC_BITS - DEFAULT_WEIGHT_FRAC_BITS - 1)


def secure_weighted_sum(
    vectors: Sequence[np.ndarray],
    weights: Sequence[float],
    *,
    n_parties: int = 3,
    seed: int | None = None,
    frac_bits: int = DEFAULT_FRAC_BITS,
    weight_frac_bits: int = DEFAULT_WEIGHT_FRAC_BITS,
) -> np.ndarray:
    """sum_i weights[i] * vectors[i], computed on additive shares among ``n_parties``.

    The weights are public (e.g. sample counts / total); the vectors are secret. Returns a
    float64 array shaped like the vectors.

    Each hospital draws its share keys from the operating system's entropy (``secrets``), so
    nobody can re-derive them from an experiment's seed. The opened sum does not depend on
    the keys (the shares cancel exactly in the ring), so runs stay reproducible; ``seed``
    fixes the keys only where the shares themselves must repeat.
    """
    if not vectors or len(vectors) != len(weights):
        raise ValueError("give one weight per update and at least one update")
    if n_parties < 2:
        raise ValueError("secret sharing needs at least 2 parties")
    shape = np.shape(vectors[0])
    if any(np.shape(v) != shape for v in vectors):
        raise ValueError("all updates must have the same shape")
    w = np.asarray(weights, dtype=np.float64)
    w_ring = encode(w, weight_frac_bits)
    # |enc(v)| <= |v| 2^f + 1/2 < B - 1/2 with B = 2^63 / sum|enc(w)|: the ring sum is below 2^63
    w_ring_total = sum(abs(int(x)) for x in w_ring.view(np.int64))
    bound = min(
        2.0 ** (63 - frac_bits - weight_frac_bits) / max(float(np.abs(w).sum()), 1.0),
        (2.0**63 / max(w_ring_total, 1) - 1.0) / 2.0**frac_bits,
    )
    rng = None if seed is None else np.random.default_rng(seed)
    size = int(np.prod(shape))  # the sum runs on flat vectors (a 0-d one included), reshaped at the end
    acc = np.zeros((n_parties, size), dtype=U64)  # row p: party p's running sum
    shares = np.empty_like(acc)  # row p: party p's share of the current update
    for i, (v, wi) in enumerate(zip(vectors, w_ring, strict=True)):
        v = np.asarray(v, dtype=np.float64).reshape(size)
        if v.size and not (v.max() < bound and v.min() > -bound):  # the hospital's check; NaN fails
            raise OverflowError(
                f"update {i} has values beyond +-{bound:.3g} (or not finite); "
                "its weighted sum would not fit the ring"
            )
        keys = [secrets.token_bytes(16) if rng is None else rng.bytes(16) for _ in range(n_parties - 1)]
        share_with_keys(encode(v, frac_bits), keys, out=shares)
        shares *= wi  # each party, locally: public weight times its share
        acc += shares
    return decode(reconstruct(Shared(acc)), frac_bits + weight_frac_bits).reshape(shape)
