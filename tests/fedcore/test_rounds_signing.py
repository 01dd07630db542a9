import warnings

import numpy as np
import pytest

from fedcore import aggregation, attacks, rounds, signing
from fedcore.data import load_builtin
from fedcore.model import ModelSpec


@pytest.fixture(scope="module")
def setup():
    table = load_builtin("breast_cancer")
    data = rounds.prepare(table, 10, seed=2)
    return table, data


def cfg(**kw):
    base = dict(spec=ModelSpec("logreg", 30, 2), n_hospitals=10, local_epochs=2, learning_rate=0.05, seed=2,
                experiment="t")
    return rounds.RoundConfig(**{**base, **kw})


def test_round_is_deterministic_and_sealed_to_the_sink(setup):
    _, data = setup
    entries = []
    a = rounds.run_experiment(cfg(), data, 2, sink=lambda k, p: entries.append((k, p)))
    b = rounds.run_experiment(cfg(), data, 2)
    assert np.array_equal(a[-1].global_vector, b[-1].global_vector)
    assert a[-1].global_hash == rounds.model_hash(a[-1].global_vector)
    kinds = [k for k, _ in entries]
    assert kinds.count("update") == kinds.count("verdict") == 20 and kinds.count("global_model") == 2
    assert entries[-1][1]["model_hash"] == a[-1].global_hash
    # each verdict is sealed with the scores it was decided by, as its record holds them
    verdicts = [p for k, p in entries if k == "verdict"]
    records = [r for o in a for r in o.records]
    assert [v["rows_harmed"] for v in verdicts] == [round(r.rows_harmed, 6) for r in records]
    assert a[-1].metrics["accuracy"] > 0.9


def test_sign_flip_is_detected_and_dropped(setup):
    _, data = setup
    c = cfg(attack="sign_flip", malicious=(1, 4, 7))
    history = rounds.run_experiment(c, data, 3)
    records = [r for o in history for r in o.records]
    m = rounds.detection_metrics(records)
    assert m["recall"] == 1.0 and m["false_positive_rate"] <= 0.05
    assert not any(r.aggregated for r in records if r.malicious)
    undefended = rounds.run_experiment(cfg(attack="sign_flip", malicious=(1, 4, 7), defense="none"), data, 3)
    assert history[-1].metrics["accuracy"] > undefended[-1].metrics["accuracy"]


def test_forged_replayed_and_readdressed_updates_are_rejected(setup):
    _, data = setup
    c = cfg()
    g = rounds.initial_vector(c)
    ups = [rounds.hospital_update(c, h, g, *data.hospital(h), 1) for h in range(4)]
    ups[0].signature = signing.Identity.generate().sign(b"forged")
    ups[1].vector = ups[1].vector + 1e-3  # tampered after signing
    ups[2] = rounds.hospital_update(c, 2, g, *data.hospital(2), 2)  # signed for round 2
    ups.append(rounds.LocalUpdate(**{**ups[3].__dict__, "hospital": 3}))  # replay of hospital 3
    out = rounds.finish_round(c, g, ups, data.X_val, data.y_val, 1)
    reasons = [r.reason for r in out.records]
    assert [r.signature_ok for r in out.records] == [False, False, False, True, False]
    assert "signature does not verify" in reasons[0]
    assert "does not match the hash" in reasons[1]
    assert "signature does not verify" in reasons[2]
    assert "replayed" in reasons[4]
    assert sum(r.aggregated for r in out.records) == 1


def test_with_registered_keys_only_each_hospitals_own_key_signs_for_it(setup):
    _, data = setup
    c = cfg()
    g = rounds.initial_vector(c)
    own = {h: signing.Identity.generate() for h in range(5)}
    ups = [rounds.hospital_update(c, h, g, *data.hospital(h), 1, identity=own[h]) for h in range(5)]
    ups[1] = rounds.hospital_update(c, 1, g, *data.hospital(1), 1)  # the key derived from the settings
    ups[2] = rounds.sign(c, ups[2], 1, own[3])  # another hospital's key
    ups[3] = rounds.hospital_update(cfg(experiment="other"), 3, g, *data.hospital(3), 1, identity=own[3])  # re-addressed
    keys = {h: own[h].public_pem for h in range(4)}  # hospital 4 has no registered key
    out = rounds.finish_round(c, g, ups, data.X_val, data.y_val, 1, public_keys=keys)
    assert [r.signature_ok for r in out.records] == [True, False, False, False, False]
    reasons = [r.reason for r in out.records]
    assert all("signature does not verify for this hospital, round, experiment and row count" in why for why in reasons[1:4])
    assert "no public key is registered for this hospital" in reasons[4]
    assert [r.aggregated for r in out.records] == [True, False, False, False, False]


def test_the_row_count_an_update_claims_is_signed_and_must_be_the_registered_one(setup):
    """The count weighs the update in the average and scales its norm test: changed after
    signing (by a relay) it fails the signature; signed but other than the registered one (a
    hospital inflating its weight), it is refused; without registered counts, any whole number
    from 1 is taken as signed."""
    _, data = setup
    c = cfg(attack="scaling", malicious=(1,))
    g = rounds.initial_vector(c)
    counts = data.sample_counts
    ups = [rounds.hospital_update(c, h, g, *data.hospital(h), 1) for h in range(6)]
    assert [u.n_samples for u in ups] == [counts[h] for h in range(6)]
    ups[1].n_samples *= 100  # after signing: the boosted update would evade the norm test and take the average
    ups[2].n_samples = 10**6
    rounds.sign(c, ups[2], 1)  # signed by the hospital itself
    ups[3].n_samples = 0
    rounds.sign(c, ups[3], 1)
    ups[4].n_samples = True
    for sample_counts in (counts, None):
        out = rounds.finish_round(c, g, ups, data.X_val, data.y_val, 1, sample_counts=sample_counts)
        reasons = {r.hospital: r.reason for r in out.records}
        assert ("where the hospital registered" if sample_counts else "signature does not verify") in reasons[1]
        assert ("claims 1,000,000 training rows where the hospital registered" in reasons[2]) is (sample_counts is not None)
        assert "claims 0 training rows; a count is a whole number from 1" in reasons[3]
        assert "claims True training rows" in reasons[4]
        assert [r.aggregated for r in out.records] == [True, False, sample_counts is None, False, False, True]
    with pytest.raises(ValueError, match="each finite and not negative"):
        aggregation.fedavg([[1.0, 1.0], [2.0, 2.0]], [-1, 2])
    with pytest.raises(ValueError, match="one sample count per update"):
        aggregation.fedavg([[1.0, 1.0], [2.0, 2.0]], [1, 2, 3])


@pytest.mark.parametrize("attack", ["alie", "min_max"])
def test_colluders_sign_their_crafted_update_with_their_own_keys(setup, attack):
    _, data = setup
    c = cfg(attack=attack, malicious=(1, 4), defense="none", encrypted=False)
    g = rounds.initial_vector(c)
    own = {h: signing.Identity.generate() for h in range(6)}
    ups = [rounds.hospital_update(c, h, g, *data.hospital(h), 1, identity=own[h]) for h in range(6)]
    keys = {h: i.public_pem for h, i in own.items()}
    out = rounds.finish_round(c, g, ups, data.X_val, data.y_val, 1, public_keys=keys,
                              colluder_identities={h: own[h] for h in (1, 4)})
    assert all(r.signature_ok and r.aggregated for r in out.records)  # no defense: the crafted updates get in
    assert {r.hospital for r in out.records if r.malicious} == {1, 4}
    # without their keys the re-signed updates would be forgeries, as for anyone else
    ups = [rounds.hospital_update(c, h, g, *data.hospital(h), 1, identity=own[h]) for h in range(6)]
    out = rounds.finish_round(c, g, ups, data.X_val, data.y_val, 1, public_keys=keys)
    assert [r.signature_ok for r in out.records] == [h not in (1, 4) for h in range(6)]


def test_robust_baselines_run_through_the_pipeline(setup):
    _, data = setup
    for defense in ("krum", "multi_krum", "median", "trimmed_mean", "fltrust"):
        out = rounds.run_experiment(cfg(defense=defense, attack="scaling", malicious=(0, 5)), data, 1)
        assert out[-1].metrics["accuracy"] > 0.5, defense


def test_config_round_trips_through_json():
    import json

    c = cfg(attack="alie", malicious=(1, 2), defense_params={"beta": 0.2})
    assert rounds.RoundConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    with pytest.raises(ValueError, match="unknown defense"):
        cfg(defense="magic")
    with pytest.raises(ValueError, match="unknown attack"):
        cfg(attack="magic")


def test_encrypted_verification_and_secure_aggregation_match_plaintext(setup):
    _, data = setup
    plain = rounds.run_experiment(cfg(attack="label_flip", malicious=(2, 6), local_epochs=3), data, 2)
    enc = rounds.run_experiment(cfg(attack="label_flip", malicious=(2, 6), local_epochs=3, encrypted=True), data, 2)
    assert all(r.encrypted for o in enc for r in o.records)
    same_choice = all([r.aggregated for r in e.records] == [r.aggregated for r in p.records]
                      for e, p in zip(enc, plain, strict=True))
    assert same_choice  # the same verdicts, so the same updates in each aggregation
    # secure aggregation of the same updates equals FedAvg up to fixed point
    assert np.abs(enc[-1].global_vector - plain[-1].global_vector).max() < 1e-3
    for p, e in zip(plain[0].records, enc[0].records, strict=True):
        assert abs(p.val_accuracy - e.val_accuracy) <= 0.02


@pytest.mark.parametrize("attack", ["alie", "min_max"])
def test_colluding_hospitals_send_the_update_crafted_from_the_benign_ones_re_signed(setup, attack):
    from fedcore import attacks

    _, data = setup
    bad = (1, 4, 7)
    c = cfg(attack=attack, malicious=bad)
    g = rounds.initial_vector(c)
    ups = [rounds.hospital_update(c, h, g, *data.hospital(h), 1) for h in range(10)]
    trained = {h: ups[h].vector.copy() for h in bad}
    good = np.array([u.vector for u in ups if u.hospital not in bad])
    crafted = attacks.alie(good, 10, len(bad)) if attack == "alie" else attacks.min_max(good)
    assert not np.allclose(crafted, trained[1])  # the test has power: crafting changes the update
    entries = []
    out = rounds.finish_round(c, g, ups, data.X_val, data.y_val, 1, sink=lambda kind, payload: entries.append((kind, payload)))
    sealed = {p["hospital"]: p["update_hash"] for kind, p in entries if kind == "update"}
    for u in ups:
        if u.hospital in bad:
            assert np.array_equal(u.vector, crafted) and (u.malicious, u.attack) == (True, attack)
            assert u.update_hash == sealed[u.hospital] == rounds.model_hash(crafted)
            # re-signed by the hospital after crafting, for this round
            public = rounds.hospital_identity(c, u.hospital).public_pem
            assert signing.verify_signature(public, rounds.binding(c, 1, u.hospital, u.update_hash, u.n_samples), u.signature)
        else:
            assert sealed[u.hospital] == rounds.model_hash(u.vector)
    for r in out.records:  # the colluders send one vector, but each under its own signature
        assert r.signature_ok and not r.reason.startswith("rejected"), r.reason  # judged by the defense
    undefended = rounds.finish_round(cfg(attack=attack, malicious=bad, defense="none"), g, ups, data.X_val,
                                     data.y_val, 1)
    assert all(r.aggregated for r in undefended.records)  # no defense really means no defense


def test_robust_aggregators_decide_the_new_global_model_from_the_updates_whose_signature_verifies(setup):
    _, data = setup
    bad, forged = (0, 5), 3

    def round_with(defense, **params):
        c = cfg(defense=defense, defense_params=params, attack="scaling", malicious=bad)
        g = rounds.initial_vector(c)
        ups = [rounds.hospital_update(c, h, g, *data.hospital(h), 1) for h in range(10)]
        ups[forged].signature = signing.Identity.generate().sign(b"forged")
        out = rounds.finish_round(c, g, ups, data.X_val, data.y_val, 1)
        U = np.array([u.vector for u in ups])
        return out, out.global_vector - g, U, [r.aggregated for r in out.records]

    valid = [h for h in range(10) if h != forged]
    honest = [h for h in valid if h not in bad]
    out, step, U, aggregated = round_with("krum")
    assert sum(aggregated) == 1 and aggregated.index(True) in honest
    np.testing.assert_allclose(step, U[aggregated.index(True)], rtol=0, atol=1e-12)
    assert [r.status for r in out.records if r.hospital in bad] == ["Poisoned", "Poisoned"]
    out, step, U, aggregated = round_with("multi_krum")  # m = 9 valid - 2 malicious = 7: the honest ones
    assert [h for h in range(10) if aggregated[h]] == honest
    np.testing.assert_allclose(step, U[honest].mean(axis=0), rtol=0, atol=1e-12)
    out, step, U, aggregated = round_with("median")
    assert [h for h in range(10) if aggregated[h]] == valid
    np.testing.assert_allclose(step, np.median(U[valid], axis=0), rtol=0, atol=1e-12)
    out, step, U, aggregated = round_with("trimmed_mean", beta=0.2)  # 9 valid: drop 1 lowest, 1 highest
    np.testing.assert_allclose(step, np.sort(U[valid], axis=0)[1:-1].mean(axis=0), rtol=0, atol=1e-12)
    rejected = out.records[forged]
    assert not rejected.aggregated and not rejected.signature_ok and rejected.reason.startswith("rejected")
    assert rejected.val_accuracy is None and rejected.verify_seconds == 0  # a forged update is not scored


def test_secure_aggregation_weights_each_accepted_update_by_its_hospitals_sample_count():
    from fedcore.aggregation import fedavg

    table = load_builtin("breast_cancer")
    data = rounds.prepare(table, 10, scheme="dirichlet", alpha=0.5, seed=2)  # hospitals of very unequal size
    plain_cfg, enc_cfg = cfg(attack="label_flip", malicious=(2, 6)), cfg(attack="label_flip", malicious=(2, 6), encrypted=True)
    g = rounds.initial_vector(plain_cfg)
    ups = [rounds.hospital_update(plain_cfg, h, g, *data.hospital(h), 1) for h in range(10)]
    plain = rounds.finish_round(plain_cfg, g, ups, data.X_val, data.y_val, 1)
    enc = rounds.finish_round(enc_cfg, g, ups, data.X_val, data.y_val, 1)
    assert all(r.encrypted for r in enc.records)
    accepted = [r.hospital for r in enc.records if r.aggregated]
    assert accepted == [r.hospital for r in plain.records if r.aggregated] == [h for h in range(10) if h not in (2, 6)]
    U = np.array([ups[h].vector for h in accepted])
    counts = [ups[h].n_samples for h in accepted]
    weighted = fedavg(U, counts).vector
    assert np.abs(weighted - U.mean(axis=0)).max() > 1e-2  # the test has power: the weights matter here
    # the opened weighted sum equals FedAvg up to the fixed-point error (about 2^-17)
    assert np.abs((enc.global_vector - g) - weighted).max() <= 2.0**-16
    assert np.abs(enc.global_vector - plain.global_vector).max() <= 2.0**-16


@pytest.mark.parametrize("encrypted, defense", [(False, "verification"), (True, "verification"), (False, "krum"),
                                                (False, "none")])
def test_an_update_with_nan_or_infinity_is_rejected_and_the_round_goes_on(setup, encrypted, defense):
    _, data = setup
    c = cfg(encrypted=encrypted, defense=defense)
    g = rounds.initial_vector(c)
    ups = [rounds.hospital_update(c, h, g, *data.hospital(h), 1) for h in range(6)]
    for h, bad in ((2, np.nan), (4, np.inf)):
        ups[h].vector = ups[h].vector.copy()
        ups[h].vector[0] = bad
        rounds.sign(c, ups[h], 1)  # validly signed by its hospital: the values are the problem
    out = rounds.finish_round(c, g, ups, data.X_val, data.y_val, 1)
    assert np.isfinite(out.global_vector).all()
    for r in out.records:
        rejected = r.hospital in (2, 4)
        assert r.signature_ok and not (rejected and r.aggregated)
        assert ("not finite numbers" in r.reason) is rejected
        # a rejected update is not scored: no NaN in any record, and no score that is not its own
        scores = [r.val_accuracy, r.val_loss, r.update_norm, r.cosine]
        assert all(x is None for x in scores) if rejected else np.isfinite(scores).all()
    assert sum(r.aggregated for r in out.records) == (1 if defense == "krum" else 4)


@pytest.mark.parametrize("encrypted, defense", [(True, "verification"), (False, "median"), (False, "krum")])
def test_a_signed_update_of_the_wrong_length_is_rejected_and_the_round_goes_on(setup, encrypted, defense):
    _, data = setup
    c = cfg(encrypted=encrypted, defense=defense)
    g = rounds.initial_vector(c)
    ups = [rounds.hospital_update(c, h, g, *data.hospital(h), 1) for h in range(6)]
    for h, vector in ((1, np.zeros(g.size + 3)), (3, ups[3].vector[:-1].copy()), (5, np.zeros((2, g.size)))):
        ups[h].vector = vector
        rounds.sign(c, ups[h], 1)  # validly signed by its hospital: the shape is the problem
    out = rounds.finish_round(c, g, ups, data.X_val, data.y_val, 1)
    assert out.global_vector.shape == g.shape and np.isfinite(out.global_vector).all()
    reasons = {r.hospital: r.reason for r in out.records if not r.aggregated}
    assert f"has {g.size + 3} values where the model has {g.size}" in reasons[1]
    assert f"has {g.size - 1} values" in reasons[3] and f"has {2 * g.size} values" in reasons[5]
    assert not any(r.aggregated for r in out.records if r.hospital in (1, 3, 5))
    assert any(r.aggregated for r in out.records)


@pytest.mark.parametrize("attack", ["alie", "min_max"])
def test_colluders_craft_from_the_usable_benign_updates_only(setup, attack):
    """A benign update of the wrong length is rejected; the colluding attack is crafted from the
    other benign updates instead of failing to stack them."""
    _, data = setup
    c = cfg(attack=attack, malicious=(0, 1), defense="median", encrypted=False)
    g = rounds.initial_vector(c)
    ups = [rounds.hospital_update(c, h, g, *data.hospital(h), 1) for h in range(6)]
    ups[4].vector = np.zeros(g.size + 2)
    rounds.sign(c, ups[4], 1)
    out = rounds.finish_round(c, g, ups, data.X_val, data.y_val, 1)
    by_hospital = {r.hospital: r for r in out.records}
    assert "values where the model has" in by_hospital[4].reason and not by_hospital[4].aggregated
    assert all(by_hospital[h].malicious and by_hospital[h].attack == attack for h in (0, 1))
    crafted = [u.vector for u in ups if u.hospital in (0, 1)]
    assert crafted[0].shape == g.shape and np.array_equal(crafted[0], crafted[1])
    benign = np.array([u.vector for u in ups if u.hospital in (2, 3, 5)])
    expected = attacks.alie(benign, 6, 2) if attack == "alie" else attacks.min_max(benign)
    np.testing.assert_array_equal(crafted[0], expected)


@pytest.mark.parametrize("encrypted, defense", [(True, "verification"), (False, "verification"), (False, "median")])
def test_a_huge_finite_update_is_rejected_and_the_round_goes_on(setup, encrypted, defense):
    _, data = setup
    c = cfg(encrypted=encrypted, defense=defense)
    g = rounds.initial_vector(c)
    ups = [rounds.hospital_update(c, h, g, *data.hospital(h), 1) for h in range(6)]
    ups[3].vector = ups[3].vector * 1e200  # finite, validly signed, far beyond the ring
    rounds.sign(c, ups[3], 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no overflow on the way, no infinite norm
        out = rounds.finish_round(c, g, ups, data.X_val, data.y_val, 1)
    (huge,) = [r for r in out.records if r.hospital == 3]
    assert huge.status == "Poisoned" and not huge.aggregated and "too large for the secure computation" in huge.reason
    assert huge.val_accuracy is huge.update_norm is huge.cosine is huge.rows_harmed is None  # not scored
    assert all(np.isfinite([r.update_norm, r.cosine, r.val_loss]).all() for r in out.records if r is not huge)
    assert np.isfinite(out.global_vector).all() and sum(r.aggregated for r in out.records) >= 4


@pytest.mark.parametrize("encrypted", [True, False])
def test_a_model_whose_activations_could_wrap_the_smpc_ring_is_not_scored_under_smpc(setup, encrypted):
    _, data = setup
    c = cfg(encrypted=encrypted)
    g = rounds.initial_vector(c)
    ups = [rounds.hospital_update(c, h, g, *data.hospital(h), 1) for h in range(6)]
    ups[3].vector = np.full_like(ups[3].vector, 1e4)  # within the aggregation ring's bound (2^22)...
    rounds.sign(c, ups[3], 1)
    out = rounds.finish_round(c, g, ups, data.X_val, data.y_val, 1)
    (big,) = [r for r in out.records if r.hospital == 3]
    assert big.status == "Poisoned" and not big.aggregated
    # ...but its pre-activations could pass 2^20, where fixed-point products wrap or truncate wrongly
    assert ("fixed-point numbers hold" in big.reason) is encrypted
    honest = [r for r in out.records if r.hospital != 3]
    assert all("fixed-point" not in r.reason for r in honest) and sum(r.aggregated for r in honest) >= 4


def test_a_global_model_outside_the_smpc_range_is_not_compared_with_under_smpc(setup):
    _, data = setup
    c = cfg(encrypted=True)
    g = rounds.initial_vector(c)
    honest = [rounds.hospital_update(c, h, g, *data.hospital(h), 1) for h in range(6)]
    bloated = np.full_like(g, 2e5)  # a global model whose logits could pass 2^20 ...
    ups = []
    for u in honest:  # ... and updates that bring each hospital back to its own honest model
        u.vector = g + u.vector - bloated
        ups.append(rounds.sign(c, u, 1))
    out = rounds.finish_round(c, bloated, ups, data.X_val, data.y_val, 1)
    assert all(r.status == "Benign" and r.aggregated for r in out.records), [r.reason for r in out.records]
    # its scores under SMPC could wrap: no candidate is judged against them
    assert all(r.rows_harmed is None for r in out.records)
