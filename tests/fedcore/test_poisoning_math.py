import numpy as np
import pytest

from fedcore import aggregation as agg
from fedcore import attacks as atk
from fedcore.aggregation import pairwise_sq_distances
from fedcore.verification import BENIGN, POISONED, judge


def honest(k=10, p=50, seed=0):
    """k honest updates of p parameters, the same whichever tests ran before (each has its own generator)."""
    return np.random.default_rng(seed).normal(1.0, 0.1, (k, p))


def test_fedavg_weights_by_sample_counts():
    U = np.array([[1.0, 2.0], [3.0, 6.0]])
    np.testing.assert_allclose(agg.fedavg(U, [1, 3]).vector, [2.5, 5.0])
    with pytest.raises(ValueError):
        agg.fedavg(U, [0, 0])


def test_krum_picks_from_the_cluster_and_multi_krum_drops_outliers():
    U = honest()
    U[:3] = np.random.default_rng(1).normal(-20, 1, (3, 50))
    r = agg.krum(U, n_malicious=3)
    assert r.selected.sum() == 1 and not r.selected[:3].any()
    m = agg.multi_krum(U, n_malicious=3)
    assert m.selected.sum() == 7 and not m.selected[:3].any()
    np.testing.assert_allclose(m.vector, U[3:].mean(axis=0))
    assert agg.multi_krum(U, n_malicious=3, m=len(U)).selected.all()
    for bad in (0, -1, len(U) + 1):  # m=0 used to mean the default, m=-1 all but one
        with pytest.raises(ValueError, match=f"m={bad}: Multi-Krum averages between 1 and the 10 updates"):
            agg.multi_krum(U, m=bad)
    with pytest.raises(ValueError, match="cannot be negative"):
        agg.krum(U, n_malicious=-1)


def test_median_and_trimmed_mean_ignore_outliers():
    U = honest()
    U[0] = 1e6
    assert np.abs(agg.median(U).vector - 1.0).max() < 0.2
    assert np.abs(agg.trimmed_mean(U, beta=0.1).vector - 1.0).max() < 0.2
    assert np.abs(agg.fedavg(U).vector - 1.0).min() > 1e4  # plain averaging is dragged away
    assert np.array_equal(agg.trimmed_mean(U[:2], beta=0.49).vector, U[:2].mean(axis=0))  # 2 updates: none trimmed
    for beta in (-0.3, 0.5, float("nan")):  # a negative beta used to average the largest values
        with pytest.raises(ValueError, match="at least 0 and below 0.5"):
            agg.trimmed_mean(U, beta=beta)


@pytest.mark.parametrize("fill", ["_fill_direct", "_fill_compact"])  # the two ways to transpose a block
@pytest.mark.parametrize("shape", [(7, 40), (11, 200_000)])  # one sort; column blocks on threads
def test_median_and_trimmed_mean_equal_their_definitions(shape, fill, monkeypatch):
    monkeypatch.setattr(agg, "_fill", getattr(agg, fill))
    U = np.random.default_rng(2).normal(0, 1, shape)
    U[:, :3] = np.round(U[:, :3])  # ties
    k, b = shape[0], int(np.floor(0.2 * shape[0]))
    np.testing.assert_array_equal(agg.median(U).vector, np.median(U, axis=0))
    expected = np.sort(U, axis=0)[b : k - b].mean(axis=0)
    np.testing.assert_allclose(agg.trimmed_mean(U, beta=0.2).vector, expected, rtol=0, atol=1e-12)
    U[2, -1] = np.nan  # a column with NaN gives NaN, as np.median does
    assert np.isnan(agg.median(U).vector[-1]) and np.isnan(agg.trimmed_mean(U, 0.2).vector[-1])
    assert not np.isnan(agg.median(U).vector[:-1]).any()
    assert agg.median(U[:, :0]).vector.shape == agg.trimmed_mean(U[:, :0], 0.2).vector.shape == (0,)


def test_the_first_large_sort_times_both_block_transposes_and_keeps_one(monkeypatch):
    monkeypatch.setattr(agg, "_fill", None)
    U = np.random.default_rng(4).normal(0, 1, (11, 50))
    agg.median(U)
    assert agg._fill is None  # too few columns to time anything: the default serves
    U = np.random.default_rng(4).normal(0, 1, (11, 200_000))
    np.testing.assert_array_equal(agg.median(U).vector, np.median(U, axis=0))
    assert agg._fill in (agg._fill_direct, agg._fill_compact)


def _median_in_child(U, expected, conn):
    conn.send(bool(np.array_equal(agg.median(U).vector, expected)))


def test_a_forked_process_sorts_with_threads_of_its_own():
    # a Celery worker is a fork: the parent's sort threads do not exist there, so reusing the
    # parent's pool would hang
    import multiprocessing

    U = np.random.default_rng(3).normal(0, 1, (11, 200_000))
    agg.median(U)  # the parent's pool exists now
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_median_in_child, args=(U, np.median(U, axis=0), child))
    proc.start()
    try:
        assert parent.poll(60), "the forked child hung"
        assert parent.recv() is True
    finally:
        proc.kill()
        proc.join(10)


def test_fltrust_gives_zero_trust_to_opposite_updates():
    U = honest(5)
    U[0] = -U[1] * 50
    r = agg.fltrust(U, server_update=np.ones(50))
    assert r.scores["trust"][0] == 0 and not r.selected[0]
    # every trusted update is rescaled to the server update's norm, so their average is no longer
    assert 0.9 * np.sqrt(50) < np.linalg.norm(r.vector) <= np.sqrt(50) + 1e-9


def test_pairwise_distances_match_the_definition():
    U = honest(6, 8)
    D = pairwise_sq_distances(U)
    np.testing.assert_allclose(D[1, 4], ((U[1] - U[4]) ** 2).sum())


def test_model_attacks_follow_their_definitions():
    u = np.random.default_rng(4).normal(size=20)
    np.testing.assert_allclose(atk.sign_flip(u, scale=1.0), -u)
    np.testing.assert_allclose(atk.scaling(u, factor=10), 10 * u)
    noise = atk.gaussian_noise(u, np.random.default_rng(1), sigma=2.0)
    assert noise.shape == u.shape and 1.0 < noise.std() < 3.5
    assert np.array_equal(atk.label_flip(np.array([0, 1, 1]), 2), [1, 0, 0])
    assert np.array_equal(atk.label_flip(np.array([0, 1, 2]), 3), [2, 1, 0])


def test_alie_stays_within_the_benign_spread_and_min_max_respects_its_bound():
    B = honest(8, 30)
    crafted = atk.alie(B, n_clients=10, n_malicious=2)
    assert np.all(crafted <= B.mean(axis=0)) and np.all(crafted >= B.min(axis=0) - B.std(axis=0))
    mm = atk.min_max(B)
    assert ((B - mm) ** 2).sum(axis=1).max() <= pairwise_sq_distances(B).max() + 1e-9
    assert not np.allclose(mm, B.mean(axis=0))  # it really moved


def test_alie_z_follows_baruch_et_al_and_refuses_a_malicious_majority():
    # s = floor(n/2) + 1 - m honest supporters; z = Phi^-1((n - s) / n)
    assert atk.alie_z(10, 3) == pytest.approx(0.5244, abs=1e-4)  # s = 3, Phi^-1(0.7)
    assert atk.alie_z(50, 12) == pytest.approx(0.5828, abs=1e-4)  # s = 14, Phi^-1(0.72)
    assert atk.alie_z(10, 5) == pytest.approx(1.2816, abs=1e-4)  # s = 1, Phi^-1(0.9)
    for n, m in ((10, 6), (4, 3)):
        with pytest.raises(ValueError, match="attack of a minority"):
            atk.alie_z(n, m)


def test_backdoor_sets_trigger_and_target():
    X = np.zeros((10, 5))
    y = np.ones(10, dtype=np.int64)
    Xp, yp = atk.backdoor_data(X, y, np.random.default_rng(0), target=0, trigger_features=2, trigger_value=4.0, poison_fraction=0.5)
    assert len(Xp) == 15 and np.all(Xp[10:, :2] == 4.0) and np.all(yp[10:] == 0)
    trig = dict(target=0, trigger_features=2, trigger_value=4.0)
    assert atk.backdoor_success_rate(lambda Z: (Z[:, 0] < 1).astype(int), X, y, **trig) == 1.0  # obeys the trigger
    assert atk.backdoor_success_rate(lambda Z: np.ones(len(Z), int), X, y, **trig) == 0.0  # ignores it


def test_verification_rule_flags_what_falls_below_the_honest_majority():
    acc = [0.95, 0.96, 0.94, 0.95, 0.50, 0.97, 0.93]
    loss = [0.1, 0.12, 0.11, 0.1, 0.9, 0.09, 0.13]
    verdicts = judge(acc, loss, norms=[1, 1, 1, 1, 1, 1, 40])
    assert [v[0] for v in verdicts] == [BENIGN] * 4 + [POISONED, BENIGN, POISONED]
    assert "below the consortium median" in verdicts[4][1] and "norm" in verdicts[6][1]
    assert all(v[0] == BENIGN for v in judge([0.9] * 5, [0.2] * 5))  # no attack, nothing dropped


def test_a_candidate_clearly_worse_than_the_current_global_model_is_poisoned():
    acc, loss = [0.80, 0.82, 0.79, 0.77, 0.81], [0.45, 0.44, 0.46, 0.56, 0.45]
    # the spread of the honest majority alone lets the fourth model through ...
    assert judge(acc, loss)[3][0] == BENIGN
    # ... the comparison with the model it started from does not
    verdicts = judge(acc, loss, reference=(0.80, 0.48))
    assert verdicts[3][0] == POISONED and "worse than the current global model" in verdicts[3][1]
    assert [v[0] for i, v in enumerate(verdicts) if i != 3] == [BENIGN] * 4


def test_the_global_model_comparison_is_skipped_when_the_median_candidate_is_worse_than_it():
    # local models that fit their own small data: every candidate is worse on validation than
    # the average they started from, so that comparison says nothing about any one of them
    acc, loss = [0.96, 0.97, 0.95, 0.96, 0.94], [0.12, 0.08, 0.20, 0.10, 0.15]
    assert all(v[0] == BENIGN for v in judge(acc, loss, reference=(0.99, 0.03)))
    # the same spread below an improving median is judged against the global model
    verdicts = judge(acc, loss, reference=(0.95, 0.125))
    assert [v[0] for v in verdicts] == [BENIGN, BENIGN, POISONED, BENIGN, POISONED]


@pytest.mark.parametrize("dataset", ["breast_cancer", "pima"])
def test_clean_mlp_run_with_default_settings_drops_few_honest_updates(dataset):
    from fedcore import data, rounds
    from fedcore.model import ModelSpec

    table = data.load_builtin(dataset)
    fd = rounds.prepare(table, 10, scheme="iid", seed=0)
    cfg = rounds.RoundConfig(spec=ModelSpec("mlp", table.X.shape[1], 2), n_hospitals=10, seed=0)
    records = [r for o in rounds.run_experiment(cfg, fd, 8) for r in o.records]
    dropped = [r for r in records if r.status == POISONED]
    assert len(dropped) <= 0.05 * len(records), [r.reason for r in dropped]


def test_large_honest_hospitals_are_not_flagged_in_a_skewed_clean_run():
    from fedcore import data, rounds
    from fedcore.model import ModelSpec

    table = data.load_builtin("breast_cancer")
    fd = rounds.prepare(table, 10, scheme="dirichlet", alpha=0.5, seed=0)
    sizes = [len(p) for p in fd.parts]
    assert max(sizes) > 20 * min(sizes)  # very unequal hospitals
    cfg = rounds.RoundConfig(spec=ModelSpec("logreg", table.X.shape[1], 2), n_hospitals=10, defense="verification", seed=0)
    records = [r for o in rounds.run_experiment(cfg, fd, 6) for r in o.records]
    assert all(r.status == BENIGN for r in records), [r.reason for r in records if r.status != BENIGN][:3]


def test_krum_scores_sum_the_nearest_others_with_many_hospitals():
    # np.partition leaves the values before its kth unordered from 257 values on: the score
    # must still leave out the update itself, not one of its neighbours
    U = np.random.default_rng(5).normal(size=(300, 20))
    f = 40
    D = pairwise_sq_distances(U)
    m = len(U) - f - 2
    expected = np.array([np.sort(np.delete(D[i], i))[:m].sum() for i in range(len(U))])
    np.testing.assert_allclose(agg.krum_scores(U, f), expected, rtol=1e-12)
    assert agg.krum(U, f).selected[np.argmin(expected)]


def test_true_class_margins_are_linear_in_the_logits_and_favour_the_label():
    from fedcore.model import ModelSpec, forward_logits, true_class_margins

    rng = np.random.default_rng(2)
    X = rng.normal(size=(20, 4))
    for n_classes in (2, 4):
        spec = ModelSpec("logreg", 4, n_classes)
        w = [rng.normal(size=(4, 1 if n_classes == 2 else n_classes)), rng.normal(size=1 if n_classes == 2 else n_classes)]
        z = forward_logits(spec, w, X)
        y = rng.integers(0, n_classes, 20)
        m = true_class_margins(spec, w, X, y)
        predicted_right = (z[:, 0] > 0) == (y == 1) if n_classes == 2 else z.argmax(axis=1) == y
        # a row whose label has the largest logit has a positive margin
        assert np.all(m[predicted_right] >= 0)
        if n_classes == 2:
            np.testing.assert_allclose(m, np.where(y == 1, z[:, 0], -z[:, 0]))
        else:
            np.testing.assert_allclose(m, n_classes * z[np.arange(20), y] - z.sum(axis=1))


def test_an_update_that_moves_nearly_every_validation_row_away_from_its_label_is_poisoned():
    from fedcore.verification import Rule

    acc, loss = [0.95, 0.94, 0.96, 0.93, 0.95], [0.1, 0.12, 0.09, 0.3, 0.11]
    harmed = [0.10, 0.60, 0.05, 0.92, 0.30]
    verdicts = judge(acc, loss, harmed=harmed, harmed_ceiling=0.8)
    assert [v[0] for v in verdicts] == [BENIGN, BENIGN, BENIGN, POISONED, BENIGN]
    assert "92.0% of the validation rows (ceiling 80.0%)" in verdicts[3][1]
    assert judge(acc, loss)[3][0] == BENIGN  # accuracy and loss alone let it through
    # a share just above a ceiling that is no whole percentage reads as above it
    assert "95.8% of the validation rows (ceiling 95.7%)" in judge(acc, loss, harmed=[0.958] * 5, harmed_ceiling=0.957)[0][1]
    rule = Rule()
    assert rule.harmed_ceiling(np.array([0] * 60 + [1] * 40), 2) == 0.8  # never below 80 %
    # an honest hospital holding only the minority class harms the 90 % majority rows: the
    # ceiling rises above that
    assert rule.harmed_ceiling(np.array([0] * 90 + [1] * 10), 2) == pytest.approx(1.0)
    assert rule.harmed_ceiling(np.array([0] * 50 + [1] * 50), 3) > 1  # a class absent: the test is off


@pytest.mark.parametrize("encrypted", [False, True])
def test_mlp_label_flippers_are_caught_by_the_rows_they_harm(encrypted):
    from fedcore import data, rounds
    from fedcore.model import ModelSpec

    table = data.load_builtin("breast_cancer")
    fd = rounds.prepare(table, 10, scheme="iid", seed=0)
    cfg = rounds.RoundConfig(spec=ModelSpec("mlp", table.X.shape[1], 2), n_hospitals=10, attack="label_flip",
                             malicious=(2, 5, 8), encrypted=encrypted, seed=0)
    records = [r for o in rounds.run_experiment(cfg, fd, 4) for r in o.records]
    flippers = [r for r in records if r.malicious]
    assert all(r.status == POISONED for r in flippers), [(r.round_no, r.rows_harmed, r.reason) for r in flippers]
    assert all(r.rows_harmed > 0.8 for r in flippers)
    honest = [r for r in records if not r.malicious]
    assert max(r.rows_harmed for r in honest) < 0.8  # no honest update is near the ceiling
    assert sum(r.status == POISONED for r in honest) <= 1
    assert any("of the validation rows" in r.reason for r in flippers)  # caught by this test, not only others
