"""Fixed-point additive sharing on Z_2^64: correctness, privacy of shares, Beaver arithmetic."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from fedcore.smpc.ring import (
    U64,
    Dealer,
    Shared,
    bit_slice,
    bit_unslice,
    decode,
    encode,
    prg_words,
    reconstruct,
    share,
    share_with_keys,
    unpack_bits,
    xor_reconstruct,
)

F = 16
ULP = 2.0**-F
reals = st.floats(-1e4, 1e4, allow_nan=False)
vectors = st.lists(reals, min_size=1, max_size=30).map(np.array)


@given(vectors, st.integers(0, 24))
def test_encode_decode_error_is_half_an_ulp(x, f):
    assert np.abs(decode(encode(x, f), f) - x).max() <= 2.0 ** -(f + 1)


def test_encode_rounds_like_rint_and_refuses_what_does_not_fit():
    x = np.array([0.5, 1.5, 2.5, -0.5, -2.5, -7.25, 3e9])
    assert np.array_equal(encode(x, 0).view(np.int64), np.rint(x).astype(np.int64))
    assert encode(-1.0).view(np.int64) == -(1 << F)
    for bad in (np.inf, np.nan, 2.0**36):
        with pytest.raises(OverflowError, match="fractional bits"):
            encode(np.array([1.0, bad]))


@settings(deadline=None)
@given(vectors, st.integers(2, 6), st.integers(0, 2**32))
def test_reconstruct_of_share_is_the_value(x, n, seed):
    v = encode(x)
    s = share(v, n, np.random.default_rng(seed))
    assert s.n == n and s.shape == v.shape
    assert np.array_equal(reconstruct(s), v)


@given(vectors, st.integers(1, 4), st.binary(min_size=16, max_size=16))
def test_pseudorandom_sharing_reconstructs(x, n_keys, key):
    v = encode(x)
    keys = [key + bytes([k]) * 16 for k in range(n_keys)]  # 32-byte keys, one per party
    s = share_with_keys(v, keys)
    assert np.array_equal(reconstruct(s), v)
    assert np.array_equal(s.shares[0], prg_words(keys[0], v.shape))  # party 0 needs only its key


def _joint_top_bits_pvalue(columns: list[np.ndarray], bits: int) -> float:
    cells = np.zeros(len(columns[0]), dtype=np.int64)
    for c in columns:
        cells = (cells << bits) | (c >> U64(64 - bits)).astype(np.int64)
    counts = np.bincount(cells, minlength=1 << (bits * len(columns)))
    return float(stats.chisquare(counts).pvalue)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_any_n_minus_1_shares_are_jointly_uniform_whatever_the_secret(n):
    rng = np.random.default_rng(10 + n)
    for secret in (0.0, 3.25, -1e4):
        s = share(encode(np.full(40_000, secret)), n, rng)
        bits = 8 // (n - 1)  # 256 cells for the joint top bits of n-1 shares
        for subset in itertools.combinations(range(n), n - 1):
            assert _joint_top_bits_pvalue([s.shares[p] for p in subset], bits) > 1e-4, (
                secret,
                subset,
            )
        for p in range(n):  # and each share alone, on its whole range
            assert stats.kstest(s.shares[p] / 2.0**64, "uniform").pvalue > 1e-4
        # the test has power: all n shares together do determine the secret
        assert _joint_top_bits_pvalue(list(s.shares), 8 // n) < 1e-10


vector_pairs = st.integers(1, 25).flatmap(
    lambda k: st.tuples(
        st.lists(reals, min_size=k, max_size=k), st.lists(reals, min_size=k, max_size=k)
    )
)


@settings(max_examples=40, deadline=None)
@given(vector_pairs, st.integers(2, 5), st.integers(0, 2**32))
def test_linear_ops_and_beaver_product_agree_with_plaintext(xy, n, seed):
    x, y = np.array(xy[0]) / 10, np.array(xy[1]) / 10
    d = Dealer(n, np.random.default_rng(seed))
    X, Y = d.share(encode(x)), d.share(encode(y))
    assert np.abs(decode(reconstruct(X + Y)) - (x + y)).max() <= ULP
    assert np.abs(decode(reconstruct(X - Y)) - (x - y)).max() <= ULP
    assert (
        np.abs(decode(reconstruct(X.mul_public(-3).add_public(encode(1.5)))) - (1.5 - 3 * x)).max()
        <= 2 * ULP
    )
    prod = decode(reconstruct(d.truncate(d.mul(X, Y))))
    # documented bound: input rounding (|x| + |y|) * 2^-(f+1) plus one truncation ulp
    bound = (np.abs(x) + np.abs(y)) * ULP / 2 + ULP + 1e-9
    assert np.all(np.abs(prod - x * y) <= bound)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 12), st.integers(1, 10), st.integers(1, 6), st.integers(0, 2**32))
def test_matmul_agrees_with_plaintext_within_the_bound(m, k, cols, seed):
    rng = np.random.default_rng(seed)
    A, B = rng.normal(0, 3, (m, k)), rng.normal(0, 3, (k, cols))
    d = Dealer(3, rng)
    got = decode(reconstruct(d.truncate(d.matmul(d.share(encode(A)), d.share(encode(B))))))
    bound = (np.abs(A).sum(axis=1)[:, None] + np.abs(B).sum(axis=0)[None, :]) * ULP / 2 + ULP + 1e-9
    assert np.all(np.abs(got - A @ B) <= bound)


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 5), st.integers(1, 9), st.integers(1, 8), st.integers(1, 5), st.integers(2, 4),
       st.integers(0, 2**32))
def test_a_stack_of_matmuls_is_each_product_in_one_round(stack, m, k, cols, n, seed):
    rng = np.random.default_rng(seed)
    A, B = rng.normal(0, 3, (stack, m, k)), rng.normal(0, 3, (stack, k, cols))
    d = Dealer(n, rng)
    got = decode(reconstruct(d.truncate(d.matmul(d.share(encode(A)), d.share(encode(B))))))
    assert d.rounds == 2  # the product, then the truncation
    bound = (np.abs(A).sum(axis=2)[:, :, None] + np.abs(B).sum(axis=1)[:, None, :]) * ULP / 2 + ULP + 1e-9
    assert np.all(np.abs(got - A @ B) <= bound)


def test_matmul_refuses_shapes_that_do_not_chain_before_using_a_triple():
    d = Dealer(3, np.random.default_rng(0))
    x = d.share(encode(np.ones((2, 3))))
    for y in (d.share(encode(np.ones((4, 2)))), d.share(encode(np.ones((2, 3, 2))))):
        with pytest.raises(ValueError, match="cannot multiply matrices shaped"):
            d.matmul(x, y)
    stack = d.share(encode(np.ones((2, 2, 3))))
    for y in (d.share(encode(np.ones((3, 3, 2)))), d.share(encode(np.ones((2, 4, 2))))):
        with pytest.raises(ValueError, match="cannot multiply matrices shaped"):
            d.matmul(stack, y)
    assert d.rounds == 0 and d.offline_seconds == 0


def test_mul_many_runs_in_one_round_and_counts_traffic():
    d = Dealer(3, np.random.default_rng(0))
    a, b = d.share(encode(np.arange(4.0))), d.share(encode(np.ones((2, 3))))
    ab, bb = d.mul_many([(a, a), (b, b)])
    assert d.rounds == 1 and d.bytes_sent == 3 * 2 * 2 * (4 + 6) * 8  # e and d, 10 words each
    assert ab.shape == (4,) and bb.shape == (2, 3)
    assert np.allclose(decode(reconstruct(d.truncate(ab))), np.arange(4.0) ** 2)
    with pytest.raises(ValueError, match="different shapes"):
        d.mul(a, b)


def test_open_logs_what_was_revealed():
    d = Dealer(2, np.random.default_rng(0))
    x = d.share(encode(np.array([1.0, 2.0])))
    assert d.opened == []
    out = d.open_many({"total": x.sum(), "first": x[0]})
    assert d.opened == ["total", "first"] and decode(out["total"]) == 3.0
    with pytest.raises(ValueError, match="at least 2 parties"):
        Dealer(1, np.random.default_rng(0))


def test_shared_indexing_concat_and_split_are_local_views_of_the_value():
    d = Dealer(3, np.random.default_rng(1))
    v = np.arange(12.0).reshape(3, 4)
    X = d.share(encode(v))
    assert np.array_equal(decode(reconstruct(X[:, 1])), v[:, 1])
    assert np.array_equal(decode(reconstruct(X.sum(axis=1))), v.sum(axis=1))
    assert np.array_equal(decode(reconstruct(X.reshape(12))), v.ravel())
    parts = [X[0], X[1:]]
    joined = Shared.concat(parts)
    assert joined.shape == (12,)
    back = joined.split(parts)
    assert [p.shape for p in back] == [(4,), (2, 4)]
    assert np.array_equal(decode(reconstruct(back[1])), v[1:])


@pytest.mark.parametrize("size", [1, 63, 64, 65, 700])
def test_bit_slicing_puts_bit_j_of_64_elements_in_one_word_and_inverts(size):
    v = np.random.default_rng(size).bit_generator.random_raw(size)
    planes = bit_slice(v)
    assert planes.shape == (-(-size // 64), 64)
    bits = (v[:, None] >> np.arange(64, dtype=U64)) & U64(1)  # (size, 64), bit j of each element
    for j in range(64):
        assert np.array_equal(unpack_bits(planes[:, j], size), bits[:, j])
    assert np.array_equal(bit_unslice(planes, size), v)


def test_dealer_edabits_and_dabits_hold_the_same_values_in_both_sharings():
    d = Dealer(3, np.random.default_rng(9))
    t0 = time.perf_counter()
    r_add, r_planes = d.edabit(100)
    assert 0 < d.offline_seconds <= time.perf_counter() - t0  # counted once, not once per layer
    assert r_planes.shape == (3, 2, 64)
    assert np.array_equal(reconstruct(r_add), bit_unslice(xor_reconstruct(r_planes), 100))
    s_add, s_words = d.dabit(100)
    assert s_words.shape == (3, 2)
    assert np.array_equal(reconstruct(s_add), unpack_bits(xor_reconstruct(s_words), 100))
    assert set(np.unique(reconstruct(s_add))) == {0, 1}
