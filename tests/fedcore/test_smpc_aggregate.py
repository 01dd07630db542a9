"""Secure aggregation: shared weighted sums and Bonawitz pairwise masking with drop-outs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedcore.aggregation import fedavg
from fedcore.smpc import MaskedAggregation, secure_weighted_sum
from fedcore.smpc.bonawitz import BonawitzClient
from fedcore.smpc.ring import decode


def _bound(vectors, weights, f=16, fw=24):
    """The documented error bound of secure_weighted_sum."""
    w = np.abs(np.asarray(weights))
    return (
        sum(
            wi * 2.0 ** -(f + 1) + np.abs(v) * 2.0 ** -(fw + 1) + 2.0 ** -(f + fw + 2)
            for wi, v in zip(w, vectors, strict=True)
        )
        + 1e-12
    )


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 12), st.integers(1, 40), st.integers(2, 5), st.integers(0, 2**32))
def test_secure_weighted_sum_equals_the_plain_weighted_sum(k, p, n_parties, seed):
    rng = np.random.default_rng(seed)
    V = [rng.normal(0, 10, p) for _ in range(k)]
    w = rng.uniform(-1, 2, k)
    got = secure_weighted_sum(V, list(w), n_parties=n_parties, seed=seed)
    want = sum(wi * vi for wi, vi in zip(w, V, strict=True))
    assert np.all(np.abs(got - want) <= _bound(V, w))


def test_secure_aggregation_equals_fedavg_within_the_bound():
    rng = np.random.default_rng(3)
    U = rng.normal(0, 0.5, (7, 2_000))
    counts = rng.integers(10, 300, 7).astype(float)
    w = counts / counts.sum()
    got = secure_weighted_sum(list(U), list(w), seed=1)
    assert np.all(np.abs(got - fedavg(U, counts).vector) <= _bound(list(U), w) + 1e-15)
    assert np.array_equal(got, secure_weighted_sum(list(U), list(w), seed=1))  # deterministic


def test_share_keys_are_fresh_yet_the_opened_sum_repeats(monkeypatch):
    from fedcore.smpc import aggregate

    keys, real = [], aggregate.share_with_keys
    monkeypatch.setattr(aggregate, "share_with_keys", lambda v, k, out: keys.append(tuple(k)) or real(v, k, out))
    U = list(np.random.default_rng(4).normal(0, 0.5, (3, 50)))
    first, second = secure_weighted_sum(U, [0.2, 0.3, 0.5]), secure_weighted_sum(U, [0.2, 0.3, 0.5])
    assert np.array_equal(first, second)  # the shares cancel exactly, whatever the keys
    assert len(keys) == 6 and len(set(keys)) == 6  # 2 keys per update, none repeated across runs


def test_secure_weighted_sum_keeps_the_shape_and_refuses_bad_input():
    M = [np.ones((2, 3)), 2 * np.ones((2, 3))]
    assert secure_weighted_sum(M, [0.5, 0.25]).shape == (2, 3)
    scalar = secure_weighted_sum([np.array(1.5), np.array(-0.5)], [0.5, 0.5])  # 0-d updates too
    assert scalar.shape == () and abs(float(scalar) - 0.5) < 1e-4
    with pytest.raises(ValueError, match="one weight per update"):
        secure_weighted_sum(M, [1.0])
    with pytest.raises(ValueError, match="same shape"):
        secure_weighted_sum([np.ones(2), np.ones(3)], [1.0, 1.0])
    with pytest.raises(OverflowError, match="update 1"):
        secure_weighted_sum([np.ones(2), np.array([1.0, 1e9])], [0.5, 0.5])
    with pytest.raises(OverflowError, match="update 0"):
        secure_weighted_sum([np.array([np.nan, 1.0])], [1.0])


def test_an_update_just_below_the_bound_is_refused_rather_than_wrapped():
    # 2^23 - 2^-20 rounds to 2^39 at f = 16; times the weight 2^24 that is 2^63, which the
    # ring reads as -2^63: the sum came out as -2^23
    for vectors, weights in [([2.0**23 - 2.0**-20], [1.0]), ([2.0**23 - 2.0**-20] * 2, [0.5, 0.5])]:
        with pytest.raises(OverflowError, match="update 0"):
            secure_weighted_sum([np.array([v]) for v in vectors], weights)
    ok = secure_weighted_sum([np.array([2.0**23 - 2.0**-15])], [1.0])
    assert ok[0] == pytest.approx(2.0**23, rel=1e-9)


# --- Bonawitz ------------------------------------------------------------------------------

N, T = 5, 3


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(4)
    return [rng.normal(size=64) for _ in range(N)]


def _round(seed: int = 5) -> MaskedAggregation:
    return MaskedAggregation(N, T, seed=seed)


def test_masked_inputs_hide_the_vectors(inputs):
    proto = _round()
    y = proto.masked_input(0, inputs[0])
    assert np.abs(decode(y) - inputs[0]).min() > 1.0  # every coordinate is masked
    assert np.allclose(
        proto.aggregate({i: proto.masked_input(i, v) for i, v in enumerate(inputs)}),
        sum(inputs),
        atol=N * 2.0**-16,
    )


def test_dropout_recovery_for_every_subset_of_dropouts_below_the_threshold(inputs):
    for k in range(N - T + 1):
        for dropped in itertools.combinations(range(N), k):
            proto = _round()  # a fresh round each time: clients refuse to reveal twice
            masked = {i: proto.masked_input(i, v) for i, v in enumerate(inputs) if i not in dropped}
            got = proto.aggregate(masked)
            want = sum(v for i, v in enumerate(inputs) if i not in dropped)
            assert np.abs(got - want).max() <= N * 2.0**-16, dropped


def test_dropouts_during_unmasking_down_to_the_threshold(inputs):
    proto = _round()
    masked = {i: proto.masked_input(i, v) for i, v in enumerate(inputs) if i != 4}
    got = proto.aggregate(masked, responders=[1, 2, 3])  # 0 vanished after sending its input
    assert np.abs(got - sum(inputs[:4])).max() <= N * 2.0**-16


def test_too_few_survivors_cannot_recover(inputs):
    proto = _round()
    masked = {i: proto.masked_input(i, inputs[i]) for i in (0, 1)}
    with pytest.raises(ValueError, match="3 are needed to recover"):
        proto.aggregate(masked)
    with pytest.raises(ValueError, match="needed to recover"):
        proto.aggregate({i: proto.masked_input(i, inputs[i]) for i in range(N)}, responders=[0, 1])


def test_a_client_never_reveals_both_secrets_of_another_client():
    proto = _round()
    client = proto.clients[0]
    client.unmask(survivors=[0, 1, 2], dropped=[3, 4])
    with pytest.raises(ValueError, match="already revealed"):  # a server that lies about drop-outs
        client.unmask(survivors=[0, 1, 2, 3], dropped=[4])
    with pytest.raises(ValueError, match="both survivors and dropped"):
        client.unmask(survivors=[0, 1], dropped=[1])


def test_tampered_share_envelopes_are_rejected():
    rng = np.random.default_rng(0)
    a, b = BonawitzClient(0, b"r", rng), BonawitzClient(1, b"r", rng)
    directory = {0: a.public_keys(), 1: b.public_keys()}
    box = a.share_keys(directory, 2, rng)
    b.share_keys(directory, 2, rng)
    tampered = bytearray(box[1])
    tampered[-1] ^= 1
    with pytest.raises(ValueError, match="failed authentication"):
        b.receive_shares({0: bytes(tampered)})


def test_seeded_rounds_are_reproducible_and_unseeded_ones_are_fresh(inputs):
    y1 = _round(seed=9).masked_input(2, inputs[2])
    y2 = _round(seed=9).masked_input(2, inputs[2])
    assert np.array_equal(y1, y2)
    fresh = MaskedAggregation(3, 2, seed=None)
    assert not np.array_equal(
        fresh.masked_input(0, inputs[0][:8]),
        MaskedAggregation(3, 2, seed=None).masked_input(0, inputs[0][:8]),
    )
    with pytest.raises(ValueError, match="threshold"):
        MaskedAggregation(3, 4)


def test_a_threshold_of_half_the_clients_or_less_is_refused(inputs):
    # with t <= n/2 a server lying about one client to two disjoint groups of t clients gets
    # both its self-mask seed and its mask key, hence its input (the difference of two sums)
    with pytest.raises(ValueError, match="above half"):
        MaskedAggregation(5, 2)
    with pytest.raises(ValueError, match="above half"):
        MaskedAggregation(4, 2)
    proto = _round()  # 5 clients, threshold 3
    masked = {i: proto.masked_input(i, v) for i, v in enumerate(inputs)}
    proto.aggregate(masked, responders=[0, 1, 2])
    for responders in itertools.combinations(range(4), T):
        with pytest.raises(ValueError):  # 4 now declared dropped: never enough fresh helpers
            proto.aggregate({i: masked[i] for i in range(4)}, responders=responders)


def test_a_client_never_reveals_its_own_mask_key():
    proto = _round()
    with pytest.raises(ValueError, match="online"):
        proto.clients[4].unmask(survivors=[0, 1, 2, 3], dropped=[4])
    with pytest.raises(ValueError, match="above half"):
        proto.clients[0].share_keys(proto.directory, 2)
