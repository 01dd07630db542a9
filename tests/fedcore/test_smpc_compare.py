"""Secure comparison: exact sign bits over the whole ring, ReLU, argmax, and no leakage."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from fedcore.smpc.compare import (
    argmax_onehot,
    bit_times,
    greater_equal_zero,
    greater_than_zero,
    msb_xor,
    relu,
    sign_bit,
    truncate_relu,
)
from fedcore.smpc.ring import (
    U64,
    Dealer,
    Shared,
    decode,
    encode,
    reconstruct,
    unpack_bits,
    xor_reconstruct,
    xor_share,
)

EDGES = np.array([0, 1, 2, 2**62, 2**63 - 1, 2**63, 2**63 + 1, 2**64 - 2, 2**64 - 1], dtype=U64)


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=50),
    st.integers(2, 5),
    st.integers(0, 2**32),
)
def test_sign_bit_is_exact_on_any_ring_element(words, n, seed):
    raw = np.concatenate([np.array(words, dtype=U64), EDGES])
    d = Dealer(n, np.random.default_rng(seed))
    got = reconstruct(sign_bit(d, d.share(raw)))
    assert np.array_equal(got, (raw.view(np.int64) < 0).astype(U64))


@settings(max_examples=30, deadline=None)
@given(
    st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=150),
    st.integers(2, 5),
    st.integers(0, 2**32),
)
def test_bit_times_is_the_exact_product_of_a_shared_bit_and_a_shared_word(words, n, seed):
    rng = np.random.default_rng(seed)
    x = np.array(words, dtype=U64)
    b = rng.integers(0, 2, size=len(x), dtype=np.uint8)
    padded = np.zeros(-(-len(x) // 64) * 64, dtype=np.uint8)
    padded[: len(x)] = b
    packed = np.packbits(padded, bitorder="little").view("<u8").astype(U64)  # as unpack_bits reads
    d = Dealer(n, rng)
    got = reconstruct(bit_times(d, xor_share(packed, n, rng), d.share(x)))
    assert np.array_equal(got, x * b.astype(U64))
    assert d.rounds == 1


def test_sign_bit_on_a_large_batch_matches_numpy_and_costs_eight_rounds():
    rng = np.random.default_rng(3)
    raw = rng.bit_generator.random_raw(20_000)
    d = Dealer(3, rng)
    msb = msb_xor(d, d.share(raw))
    assert msb.shape == (3, 20_000 // 64 + 1)  # 64 sign bits to a word
    assert np.array_equal(unpack_bits(xor_reconstruct(msb), raw.size), raw >> U64(63))
    assert d.rounds == 7  # open c, then 6 tree levels (the daBit round comes next)
    # the tree works on half as many words per level: about 2 word-ANDs per element in all
    assert d.bytes_sent < 3 * 2 * 8 * 20_000 * (1 + 3)


reals = st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=1, max_size=40).map(np.array)


@settings(max_examples=30, deadline=None)
@given(reals, st.integers(0, 2**32))
def test_relu_and_comparisons_agree_with_plaintext_on_fixed_point_values(x, seed):
    d = Dealer(3, np.random.default_rng(seed))
    X = d.share(encode(x))
    xq = decode(encode(x))  # what the parties actually compute on
    assert np.array_equal(decode(reconstruct(relu(d, X))), np.maximum(xq, 0.0))
    assert np.array_equal(reconstruct(greater_equal_zero(d, X)), (xq >= 0).astype(U64))
    assert np.array_equal(reconstruct(greater_than_zero(d, X)), (xq > 0).astype(U64))


@settings(max_examples=30, deadline=None)
@given(reals, st.integers(0, 2**32))
def test_truncate_relu_is_relu_of_the_truncated_product(x, seed):
    """z at 2f fractional bits, as a matrix product leaves it; the edge values around 0 too."""
    z = np.concatenate([encode(x, 32).view(np.int64), [0, 1, -1, 2**16, -(2**16), 2**16 - 1]])
    d = Dealer(3, np.random.default_rng(seed))
    got = reconstruct(truncate_relu(d, d.share(z.view(U64)))).view(np.int64)
    floor = z >> 16  # a truncation gives floor(z / 2^f) or one more
    assert np.all((got == np.maximum(floor, 0)) | (got == np.maximum(floor + 1, 0)))
    assert np.all(got[z < 0] == 0) and np.all(got[z >= 0] >= floor[z >= 0])
    assert d.rounds == 1 + 6 + 1  # c, the comparison tree, the daBit with the product


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 30), st.integers(2, 7), st.integers(0, 2**32))
def test_argmax_picks_the_first_maximum_like_numpy(rows, k, seed):
    rng = np.random.default_rng(seed)
    z = np.round(rng.normal(0, 2, (rows, k)), 1)  # coarse values: many ties
    z[0] = 1.0  # a row of ties
    d = Dealer(3, rng)
    onehot = reconstruct(argmax_onehot(d, d.share(encode(z))))
    assert np.array_equal(onehot, np.eye(k, dtype=U64)[z.argmax(axis=1)])


class RecordingDealer(Dealer):
    """Keeps every value opened during the protocol, to test that they reveal nothing."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.seen_arith: list[np.ndarray] = []
        self.seen_xor: list[np.ndarray] = []

    def exchange(self, *xs: Shared, xor=()) -> list[np.ndarray]:
        out = super().exchange(*xs, xor=xor)
        self.seen_arith += [o.ravel() for o in out[: len(xs)]]
        self.seen_xor += [o.ravel() for o in out[len(xs) :]]
        return out


@pytest.mark.parametrize(
    "op",
    [
        lambda d, x: relu(d, d.share(encode(x))),
        lambda d, x: truncate_relu(d, d.share(encode(x, 32))),  # a product, 2f fractional bits
    ],
    ids=["relu", "truncate_relu"],
)
def test_everything_opened_during_relu_is_uniform_even_for_a_constant_input(op):
    d = RecordingDealer(3, np.random.default_rng(5))
    op(d, np.full(20_000, -2.5))  # a constant, negative secret
    assert d.opened == []  # nothing was opened on purpose
    opened = d.seen_arith + d.seen_xor
    # c; d and e (2 words) per tree level; the daBit words with the product's masked factor
    assert len(d.seen_arith) == 1 + 1 and len(d.seen_xor) == 6 * 2 + 1
    for w in opened:
        bits = np.unpackbits(w.view(np.uint8))
        assert stats.binomtest(int(bits.sum()), bits.size).pvalue > 1e-4
        if w.size >= 5_000:
            top = (w >> U64(56)).astype(np.int64)
            assert stats.chisquare(np.bincount(top, minlength=256)).pvalue > 1e-4
    # the test has power: the secret itself, or anything unmasked, is far from uniform
    constant = encode(np.full(20_000, -2.5))
    assert stats.binomtest(int(np.unpackbits(constant.view(np.uint8)).sum()), constant.size * 64).pvalue < 1e-10
    top = (constant >> U64(56)).astype(np.int64)
    assert stats.chisquare(np.bincount(top, minlength=256) + 1).pvalue < 1e-10
