"""Secure comparison on additive shares: sign bit, ReLU, first-argmax.

Sign bit of x (dealer-assisted arithmetic-to-binary conversion):

1. The dealer gives a random word r shared additively and bitwise (an "edaBit"). The parties
   open c = x + r, uniformly random, hence independent of x.
2. Now x = c - r = (c + 1) + ~r (mod 2^64): the sum of a public word and a XOR-shared word.
   Its carries come from a Kogge-Stone parallel-prefix adder: generate g = a & ~r and
   propagate p = a ^ ~r are local (one operand is public), then 6 levels of
   G ^= P & (G << k), P &= P << k for k = 1, 2, ..., 32, every AND a Beaver bit triple on
   whole 64-bit words, so all bit positions of all elements go through one numpy operation
   per level. (XOR may replace OR in G because a span that propagates never generates.)
3. Bit 63 of the sum, p_63 ^ G_62, is the sign; a dealer bit shared both ways (a "daBit")
   turns it into an additive 0/1 share: open e = msb ^ s, then msb = e + s - 2es.

Exact for every x in the ring read as a signed number; 8 rounds; 11 word-ANDs per element.
Every opened value is masked by fresh uniform dealer randomness.
"""

from __future__ import annotations

import numpy as np

from .ring import U64, Dealer, Shared

_KOGGE_STONE_SHIFTS = (1, 2, 4, 8, 16, 32)


def _and_common(dealer: Dealer, x: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """x & ys[:, j] for every j, on XOR-shared words, in one round.

    ``x`` has shape (n, *s), ``ys`` (n, j, *s). The common operand is masked once, so a triple
    is (a, b_j, c_j = a & b_j); opening d = x ^ a and e_j = y_j ^ b_j (uniform words) gives
    x & y_j = c_j ^ (d & b_j) ^ (e_j & a) ^ (d & e_j).
    """
    A, B, C = dealer.bit_triple(x.shape[1:], ys.shape[1])
    d, e = dealer.exchange_xor(x ^ A, ys ^ B)
    z = C ^ (d & B) ^ (e & A[:, None])
    z[0] ^= d & e
    return z


def msb_xor(dealer: Dealer, x: Shared) -> np.ndarray:
    """XOR shares (0/1 words) of the most significant bit of x, i.e. of [x < 0]."""
    r_add, r_xor = dealer.edabit(x.shape)
    (c,) = dealer.exchange(x + r_add)
    a = c + U64(1)  # public
    not_r = r_xor.copy()
    not_r[0] = ~not_r[0]  # flipping one share flips the value
    P = not_r.copy()
    P[0] ^= a
    GP = np.stack([not_r & a, P], axis=1)  # generate, propagate: AND with a public word is local
    for k in _KOGGE_STONE_SHIFTS:
        last = k == _KOGGE_STONE_SHIFTS[-1]
        t = _and_common(dealer, GP[:, 1], (GP[:, :1] if last else GP) << U64(k))
        GP[:, 0] ^= t[:, 0]
        if not last:
            GP[:, 1] = t[:, 1]
    return (P ^ (GP[:, 0] << U64(1))) >> U64(63)


def bit_to_arithmetic(dealer: Dealer, bit: np.ndarray) -> Shared:
    """XOR-shared bits (0/1 words) -> additive shares of the same 0/1 values (one round)."""
    s_add, s_xor = dealer.dabit(bit.shape[1:])
    (e,) = dealer.exchange_xor(bit ^ s_xor)
    # bit = e + s - 2es: linear in s because e is public
    return Shared(s_add.shares * (U64(1) - U64(2) * e)).add_public(e)


def sign_bit(dealer: Dealer, x: Shared) -> Shared:
    """Additive shares of 1 where x < 0 (as a signed fixed-point number), else 0."""
    return bit_to_arithmetic(dealer, msb_xor(dealer, x))


def greater_equal_zero(dealer: Dealer, x: Shared) -> Shared:
    """Shares of [x >= 0]."""
    return (-sign_bit(dealer, x)).add_public(1)


def greater_than_zero(dealer: Dealer, x: Shared) -> Shared:
    """Shares of [x > 0] = [-x < 0]."""
    return sign_bit(dealer, -x)


def relu(dealer: Dealer, x: Shared) -> Shared:
    """max(x, 0) = x - x * [x < 0]; a product with a 0/1 share needs no truncation."""
    return x - dealer.mul(x, sign_bit(dealer, x))


def pairwise_differences(z: Shared) -> Shared:
    """z_a - z_b for every column pair a < b of z (m, k), in ``np.triu_indices`` order."""
    ia, ib = np.triu_indices(z.shape[1], k=1)
    return z[:, ia] - z[:, ib]


def argmax_onehot(dealer: Dealer, z: Shared, ge: Shared | None = None) -> Shared:
    """One-hot shares (m, k) of the first maximum of each row (numpy's argmax tie rule).

    Class a wins iff z_a >= z_b for every b > a and z_a > z_b for every b < a; the k-1
    indicators of each class are multiplied in a log-depth tree. ``ge`` = [d >= 0] for
    d = :func:`pairwise_differences` (z) may be passed when the caller batched those
    comparisons with others.
    """
    k = z.shape[1]
    if ge is None:
        ge = greater_equal_zero(dealer, pairwise_differences(z))
    ia, ib = np.triu_indices(k, k=1)
    pair_of = np.zeros((k, k), dtype=np.int64)
    pair_of[ia, ib] = pair_of[ib, ia] = np.arange(len(ia))
    others = np.array([[b for b in range(k) if b != a] for a in range(k)])  # (k, k-1)
    upper = others > np.arange(k)[:, None]  # b > a: use [z_a >= z_b]; else 1 - [z_b >= z_a]
    picked = ge[:, pair_of[np.arange(k)[:, None], others]]  # (m, k, k-1)
    factors = picked.mul_public(np.where(upper, 1, -1)).add_public(np.where(upper, 0, 1))
    while factors.shape[-1] > 1:
        half = factors.shape[-1] // 2
        prod = dealer.mul(factors[..., :half], factors[..., half : 2 * half])
        rest = factors[..., 2 * half :]
        factors = Shared(np.concatenate([prod.shares, rest.shares], axis=-1))
    return factors[..., 0]
