"""Secure comparison on additive shares: sign bit, ReLU, first-argmax.

Sign bit of x (dealer-assisted arithmetic-to-binary conversion):

1. The dealer gives random words r shared additively and, bit by bit, as XOR shares (an
   "edaBit"). The parties open c = x + r, uniformly random, hence independent of x.
2. Then x = c - r, so its top bit is c_63 ^ r_63 ^ [c mod 2^63 < r mod 2^63]: a comparison of
   a public number with a bit-shared one. It runs as a tree (as in the millionaires' protocols
   of CrypTFlow2): per bit, lt_j = ~c_j & r_j and eq_j = ~(c_j ^ r_j) are local (c is public);
   pairs of neighbouring bits merge with lt = lt_hi ^ (eq_hi & lt_lo), eq = eq_hi & eq_lo
   (XOR may replace OR: the two terms exclude each other), 64 -> 32 -> ... -> 1 in 6 levels.
   The bits are sliced (:func:`ring.bit_slice`): bit j of 64 elements sits in one word, so a
   level is one numpy operation per share on half as many words as the level before, and the
   whole tree costs about 2 word-ANDs (Beaver bit triples) per element.
3. A dealer bit shared both ways (a "daBit") turns the sign bit into an additive 0/1 share:
   open e = msb ^ s, then msb = e + s - 2es. ReLU needs the product x * msb instead, which
   the same round gives (:func:`bit_times`), so it takes 8 rounds too.

Exact for every x in the ring read as a signed number; 8 rounds. Every opened value is
masked by fresh uniform dealer randomness.
"""

from __future__ import annotations

import numpy as np

from .ring import U64, Dealer, Shared, bit_slice, unpack_bits

_ONES = ~U64(0)


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
    """XOR shares (n, W) of the sign bits of x (flattened), 64 to a word: bit t of word w is
    [x_(64w+t) < 0] (read with :func:`ring.unpack_bits`)."""
    size = x.size
    r_add, r_planes = dealer.edabit(size)
    (c,) = dealer.exchange(x.reshape(size) + r_add)
    return _msb_of_masked(dealer, c, r_planes)


def _msb_of_masked(dealer: Dealer, c: np.ndarray, r_planes: np.ndarray) -> np.ndarray:
    """Step 2 of the module doc: the sign bits of x = c - r from the opened c and r's bits."""
    c_planes = bit_slice(c)  # public, (W, 64)
    lt = r_planes & ~c_planes  # AND with a public word is local
    eq = r_planes.copy()
    eq[0] ^= ~c_planes  # ~(c ^ r): flipping one share flips the value
    lt[..., 63] = 0  # bit 63 is left out of the comparison: it compares as equal
    eq[..., 63] = 0
    eq[0, ..., 63] = _ONES
    while lt.shape[-1] > 1:
        last = lt.shape[-1] == 2
        lo = lt[..., 0::2][:, None] if last else np.stack([lt[..., 0::2], eq[..., 0::2]], axis=1)
        t = _and_common(dealer, eq[..., 1::2], lo)
        lt, eq = lt[..., 1::2] ^ t[:, 0], (None if last else t[:, 1])
    msb = lt[..., 0] ^ r_planes[..., 63]
    msb[0] ^= c_planes[..., 63]
    return msb


def bit_to_arithmetic(dealer: Dealer, bits: np.ndarray, size: int) -> Shared:
    """XOR shares (n, W) of ``size`` bits packed 64 to a word -> additive 0/1 shares (n, size),
    in one round that opens W masked words."""
    s_add, s_words = dealer.dabit(size)
    (e_words,) = dealer.exchange_xor(bits ^ s_words)
    e = unpack_bits(e_words, size)
    # bit = e + s - 2es: linear in s because e is public
    return Shared(s_add.shares * (U64(1) - U64(2) * e)).add_public(e)


def bit_times(dealer: Dealer, bits: np.ndarray, x: Shared) -> Shared:
    """Additive shares of b * x for XOR-shared bits b (n, W), packed as :func:`bit_to_arithmetic`
    reads them, and additive shares x (n, size), in one round.

    With a dealer daBit s, a random a and shares of a * s: open e = b ^ s and f = x - a (both
    uniform). Then b = e + s - 2es with e public, so b * x = e * x + (1 - 2e) * s * x, and
    s * x = f * s + a * s is linear in the shares because f is public.
    """
    size = x.size
    s_add, s_words, a, a_s = dealer.dabit_product(size)
    f, e_words = dealer.exchange(x.reshape(size) - a, xor=[bits ^ s_words])
    e = unpack_bits(e_words, size)
    s_x = s_add.shares * f + a_s.shares
    return Shared(x.shares.reshape(x.n, size) * e + s_x * (U64(1) - U64(2) * e)).reshape(*x.shape)


def sign_bit(dealer: Dealer, x: Shared) -> Shared:
    """Additive shares of 1 where x < 0 (as a signed fixed-point number), else 0."""
    return bit_to_arithmetic(dealer, msb_xor(dealer, x), x.size).reshape(*x.shape)


def greater_equal_zero(dealer: Dealer, x: Shared) -> Shared:
    """Shares of [x >= 0]."""
    return (-sign_bit(dealer, x)).add_public(1)


def greater_than_zero(dealer: Dealer, x: Shared) -> Shared:
    """Shares of [x > 0] = [-x < 0], for every x but the most negative ring value -2^63,
    which is its own negation and so reads as positive (a fixed-point value of -2^47 at f = 16;
    a logit never comes near it)."""
    return sign_bit(dealer, -x)


def relu(dealer: Dealer, x: Shared) -> Shared:
    """max(x, 0) = x - x * [x < 0]; a product with a 0/1 share needs no truncation."""
    return x - bit_times(dealer, msb_xor(dealer, x), x)


def truncate_relu(dealer: Dealer, z: Shared, bits: int | None = None) -> Shared:
    """max(z / 2^bits, 0), the same as ``relu(dealer, dealer.truncate(z, bits))`` in one
    opening and one mask fewer: the truncation's opened c = z + r, with r from a
    :meth:`ring.Dealer.trunc_edabit`, is also the sign comparison's.

    The sign is read off z before truncation; they agree: a truncation result t of a z >= 0
    is >= 0, and that of a z < 0 is <= 0, where max(t, 0) = 0 as well.
    """
    bits = dealer.frac_bits if bits is None else bits
    size = z.size
    r_add, r_shift, r_planes = dealer.trunc_edabit(size, bits)
    (c,) = dealer.exchange(z.reshape(size) + r_add)
    t = (-r_shift).add_public(c >> U64(bits))
    return (t - bit_times(dealer, _msb_of_masked(dealer, c, r_planes), t)).reshape(*z.shape)


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
