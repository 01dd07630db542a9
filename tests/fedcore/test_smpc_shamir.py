"""Shamir secret sharing and Feldman VSS."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from fedcore.smpc.shamir import (
    MODP_G,
    MODP_P,
    MODP_Q,
    PRIME,
    ShareError,
    feldman_reconstruct,
    feldman_split,
    feldman_verify,
    reconstruct_secret,
    split_secret,
)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, PRIME - 1), st.integers(1, 6), st.integers(0, 4), st.integers(0, 2**32))
def test_any_t_shares_rebuild_the_secret_and_t_minus_1_do_not(secret, t, extra, seed):
    n = t + extra
    shares = split_secret(secret, n, t, np.random.default_rng(seed))
    for subset in itertools.combinations(shares, t):
        assert reconstruct_secret(list(subset)) == secret
    if t > 1:
        for subset in itertools.combinations(shares, t - 1):
            assert (
                reconstruct_secret(list(subset)) != secret
            )  # wrong value, with overwhelming probability


def test_fewer_than_t_shares_are_uniform_whatever_the_secret():
    prime, rng = 101, np.random.default_rng(1)
    for secret in (0, 50):
        first_share = [split_secret(secret, 3, 2, rng, prime)[0][1] for _ in range(20_000)]
        assert stats.chisquare(np.bincount(first_share, minlength=prime)).pvalue > 1e-4
    # the test has power: with threshold 1 the share is the secret
    leaked = [split_secret(50, 3, 1, rng, prime)[0][1] for _ in range(1_000)]
    assert stats.chisquare(np.bincount(leaked, minlength=prime) + 1).pvalue < 1e-10


def test_shamir_refuses_bad_parameters():
    with pytest.raises(ValueError, match="threshold"):
        split_secret(1, 3, 4)
    with pytest.raises(ValueError, match=r"\[0, prime\)"):
        split_secret(PRIME, 3, 2)
    with pytest.raises(ShareError, match="distinct"):
        reconstruct_secret([(1, 5), (1, 6)])
    assert split_secret(7, 3, 2) != split_secret(7, 3, 2)  # unseeded: fresh OS randomness


def test_the_feldman_group_is_a_prime_order_subgroup_generated_by_2():
    assert MODP_P == 2 * MODP_Q + 1 and MODP_P.bit_length() == 2048
    assert pow(MODP_G, MODP_Q, MODP_P) == 1  # g has order q (q is prime, g != 1)


@pytest.fixture(scope="module")
def feldman():
    return feldman_split(987654321, 5, 3, np.random.default_rng(7))


def test_feldman_valid_shares_verify_and_reconstruct(feldman):
    assert all(feldman_verify(s, feldman.commitments) for s in feldman.shares)
    for subset in itertools.combinations(feldman.shares, 3):
        assert feldman_reconstruct(list(subset), feldman.commitments) == 987654321


def test_feldman_names_the_party_with_a_corrupted_share(feldman):
    shares = list(feldman.shares[:4])
    shares[2] = (3, (shares[2][1] + 1) % MODP_Q)
    assert not feldman_verify(shares[2], feldman.commitments)
    with pytest.raises(ShareError, match="share of party 3 does not match") as info:
        feldman_reconstruct(shares, feldman.commitments)
    assert info.value.parties == (3,) and info.value.party == 3
    shares[0] = (1, 12345)
    with pytest.raises(ShareError) as info:
        feldman_reconstruct(shares, feldman.commitments)
    assert info.value.parties == (1, 3)


@pytest.mark.parametrize("bad, named", [((3, 5.5), 3), ((3, "17"), 3), ((3, None), 3), (("3", 17), None), ((3,), None),
                                        (7, None), ((True, 5), None)])
def test_a_malformed_share_is_refused_naming_its_party_and_numpy_integers_are_shares(feldman, bad, named):
    # the second share received, beside honest party 2's: a share without a readable index is
    # named by its position, and blames no party (party 2 at that position did nothing wrong)
    shares = [feldman.shares[1], bad, feldman.shares[3]]
    assert not feldman_verify(bad, feldman.commitments)
    for rebuild in (lambda: feldman_reconstruct(shares, feldman.commitments), lambda: reconstruct_secret(shares, MODP_Q)):
        with pytest.raises(ShareError) as info:
            rebuild()
        assert info.value.party == named, str(info.value)
        assert f"party {named}" in str(info.value) if named else str(info.value).startswith("share 2")
    as_numpy = [(np.int64(i), s) for i, s in feldman.shares[:3]]
    assert feldman_verify(as_numpy[0], feldman.commitments)
    assert feldman_reconstruct(as_numpy, feldman.commitments) == 987654321
    small = split_secret(42, 3, 2, np.random.default_rng(0), prime=101)
    assert reconstruct_secret([(np.int64(i), np.int64(v)) for i, v in small[:2]], 101) == 42


def test_feldman_detects_a_wrong_commitment_and_blames_the_dealer(feldman):
    for j in range(3):
        wrong = list(feldman.commitments)
        wrong[j] = wrong[j] * MODP_G % MODP_P
        with pytest.raises(ShareError, match="dealer cheated") as info:
            feldman_reconstruct(feldman.shares[:3], wrong)
        assert info.value.parties == (1, 2, 3)
    with pytest.raises(ShareError, match="need 3 shares"):
        feldman_reconstruct(feldman.shares[:2], feldman.commitments)
    assert not feldman_verify((1, feldman.shares[0][1]), [0, *feldman.commitments[1:]])


def test_feldman_blames_the_dealer_for_a_commitment_outside_the_order_q_subgroup(feldman):
    wrong = list(feldman.commitments)
    wrong[1] = MODP_P - wrong[1]  # order 2q: the shares of even-numbered parties would still verify
    assert not feldman_verify(feldman.shares[1], wrong)
    with pytest.raises(ShareError, match=r"dealer.*commitment 1 .*order-q subgroup") as info:
        feldman_reconstruct(feldman.shares[:3], wrong)
    assert info.value.parties == ()
    for bad in (0, MODP_P, MODP_P + 1, "1"):
        with pytest.raises(ShareError, match="dealer") as info:
            feldman_reconstruct(feldman.shares[:3], [feldman.commitments[0], bad, feldman.commitments[2]])
        assert info.value.parties == ()


def test_feldman_refuses_a_commitment_list_that_does_not_fit_the_threshold(feldman):
    with pytest.raises(ShareError, match="no commitments"):
        feldman_reconstruct([(1, 0)], [])
    with pytest.raises(ShareError, match="2 commitments where the threshold is 3"):
        feldman_reconstruct(feldman.shares[:3], feldman.commitments[:2], threshold=3)
    assert feldman_reconstruct(feldman.shares[:3], feldman.commitments, threshold=3) == 987654321


def test_share_indices_equal_modulo_the_prime_are_refused_as_duplicates():
    shares = split_secret(42, 3, 2, np.random.default_rng(3))
    (x1, y1), (x2, y2) = shares[0], shares[1]
    for aliased in ([(x1, y1), (x1 + PRIME, y2)], [(x1, y1), (x1 - PRIME, y2)]):
        with pytest.raises(ShareError, match="same point modulo the prime") as info:
            reconstruct_secret(aliased)
        assert info.value.parties == (aliased[0][0], aliased[1][0])
    with pytest.raises(ShareError, match="distinct non-zero"):
        reconstruct_secret([(PRIME, y1), (x2, y2)])
    assert reconstruct_secret([(x1, y1), (x2 + PRIME, y2)]) == 42  # same point, no clash: still correct
