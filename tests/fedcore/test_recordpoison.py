"""Record-level poisoning, the seven classifiers and the batch CSV reader."""

from __future__ import annotations

import dataclasses
import json
import re
import warnings

import numpy as np
import pytest

from fedcore import data
from fedcore.data import DataError
from fedcore.recordpoison import (
    CLASSIFIER_NAMES,
    POISONED,
    poison_records,
    read_records_csv,
    train_detectors,
)


@pytest.fixture(scope="module")
def biopsy():
    return data.load_builtin("biopsy")


@pytest.fixture(scope="module")
def report(biopsy):
    return train_detectors(biopsy, fraction=0.2, seed=3)


def test_poisoning_touches_exactly_the_chosen_records(biopsy):
    ps = poison_records(biopsy.X, biopsy.y, biopsy.n_classes, fraction=0.2, seed=1)
    n = len(biopsy.y)
    assert ps.poisoned.sum() == round(0.2 * n)
    flips = np.array([k == "label_flip" for k in ps.kind])
    tampers = np.array([k == "feature_tamper" for k in ps.kind])
    assert flips.sum() + tampers.sum() == ps.poisoned.sum() and abs(flips.sum() - tampers.sum()) <= 1
    assert np.all(ps.diagnosis[flips] != biopsy.y[flips])
    assert np.array_equal(ps.X[flips], biopsy.X[flips])
    moved = np.abs(ps.X[tampers] - biopsy.X[tampers]) / biopsy.X.std(axis=0)
    assert np.all((moved >= 3 - 1e-9).sum(axis=1) >= 1)  # every tampered record is pushed >= 3 SD somewhere
    clean = ~ps.poisoned
    assert np.array_equal(ps.X[clean], biopsy.X[clean]) and np.array_equal(ps.diagnosis[clean], biopsy.y[clean])
    with pytest.raises(ValueError):
        poison_records(biopsy.X, biopsy.y, 2, fraction=0.6)


def test_every_classifier_is_trained_and_the_best_by_cross_validated_f1_is_kept(report):
    assert set(report.scores) == set(CLASSIFIER_NAMES) and len(CLASSIFIER_NAMES) >= 7
    # chosen on the training rows, so that its test score (shown on the pages) is not flattered
    assert report.best == max(report.scores, key=lambda n: report.scores[n]["cv_f1"])
    assert report.scores[report.best]["f1"] >= 0.8
    assert len({round(s["cv_f1"], 6) for s in report.scores.values()}) > 1  # real, distinct estimates
    for s in report.scores.values():
        assert 0 <= s["precision"] <= 1 and 0 <= s["recall"] <= 1 and s["seconds"] > 0


def test_a_classifier_that_cannot_be_cross_validated_on_a_small_table_is_tested_but_not_chosen(biopsy):
    small = dataclasses.replace(biopsy, X=biopsy.X[:30], y=biopsy.y[:30], columns=[])
    report = train_detectors(small, fraction=0.2, seed=0)
    assert report.scores["linear_svm"]["cv_f1"] is None  # its calibration splits a 2-poisoned fold again
    assert report.best != "linear_svm" and report.scores[report.best]["cv_f1"] is not None
    assert set(report.scores) == set(CLASSIFIER_NAMES)  # every classifier was still trained and tested
    json.dumps(report.scores, allow_nan=False)  # storable as strict JSON: no NaN anywhere


def test_a_class_missing_from_the_training_rows_gets_probability_zero_not_an_index_error():
    i = np.arange(60)  # 30 classes of 2 records each (fewer than an upload takes, so built directly)
    table = data.Table(np.column_stack([i, i * 2]).astype(float), i % 30, ["a", "b"], "y",
                       [f"c{k}" for k in range(30)], "test")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # sklearn: "more unique classes than half the samples"
        report = train_detectors(table, fraction=0.2, seed=0)
        predictions = report.detector.predict(table.X, table.y)
    assert len(predictions) == 60 and {p.status for p in predictions} <= {"Poisoned", "Benign"}
    assert report.best in report.scores and report.scores[report.best]["cv_f1"] is not None


def test_too_few_poisoned_training_records_to_compare_classifiers_is_a_clear_error(biopsy):
    small = dataclasses.replace(biopsy, X=biopsy.X[:20], y=biopsy.y[:20], columns=[])
    with pytest.raises(ValueError, match="too few poisoned"):  # 2 poisoned: 1 to train on, 1 to test
        train_detectors(small, fraction=0.1, seed=0)


def test_detector_flags_tampered_and_flipped_records_and_says_why(biopsy, report):
    det = report.detector
    rng = np.random.default_rng(0)
    idx = rng.choice(len(biopsy.y), 40, replace=False)
    X, y = biopsy.X[idx], biopsy.y[idx]
    clean = det.predict(X, y)
    assert np.mean([p.status != POISONED for p in clean]) >= 0.85
    tampered = X.copy()
    tampered[:, 0] += 8 * biopsy.X[:, 0].std()
    flagged = det.predict(tampered, y)
    assert np.mean([p.status == POISONED for p in flagged]) >= 0.85
    assert any(biopsy.feature_names[0] in r for p in flagged for r in p.reasons)
    flipped = det.predict(X, 1 - y)
    assert np.mean([p.status == POISONED for p in flipped]) > np.mean([p.status == POISONED for p in clean]) + 0.3
    assert all(0 <= p.probability <= 1 and p.reasons for p in clean + flagged + flipped)


def test_batch_reader_parses_and_names_row_and_column_at_fault():
    columns = [data.Column("glu", 56, 199), data.Column("bmi", 18.2, 67.1)]
    batch = read_records_csv(b"bmi;glu;diabetes;note\n31.5;148;Yes;x\n22;85;no;\n", columns, "diabetes", ["No", "Yes"])
    assert batch.X.tolist() == [[148.0, 31.5], [85.0, 22.0]] and batch.diagnosis.tolist() == [1, 0]
    assert batch.rows[1] == {"glu": 85.0, "bmi": 22.0, "diabetes": "No"}
    # every cell kept as written, in the file's order, the columns not read included
    assert batch.uploaded == [[["bmi", "31.5"], ["glu", "148"], ["diabetes", "Yes"], ["note", "x"]],
                              [["bmi", "22"], ["glu", "85"], ["diabetes", "no"], ["note", ""]]]
    # classes told apart only by case stay apart; any case is still accepted where it names one class
    d = read_records_csv(b"glu,bmi,y\n100,20,A\n100,20,a\n100,20,b\n", columns, "y", ["A", "a", "B"]).diagnosis
    assert d.tolist() == [0, 1, 2]
    cases = [
        (b"", "empty"),
        (b"glu,diabetes\n1,No\n", "lacks the column(s) 'bmi'"),
        (b"glu,bmi,diabetes\n100,20,No\n100,abc,Yes\n", "row 3 / column 'bmi': 'abc' is not a number"),
        (b"glu,bmi,diabetes\n100,20,Maybe\n", "row 2 / column 'diabetes': 'Maybe' is not one of No, Yes"),
        (b"glu,bmi,diabetes\n100,inf,No\n", "not a finite number"),
        (b"glu,bmi,diabetes\n100,30,No\n1e300,30,Yes\n", "row 3 / column 'glu': 1e+300 is outside the plausible range 0 to 342"),
        (b"glu,bmi,diabetes\n100,-500,No\n", "row 2 / column 'bmi': -500 is outside the plausible range 0 to 116"),
        (b"glu,bmi,diabetes\n", "no records"),
        (b"glu,bmi,glu,diabetes\n100,20,150,No\n", "row 1 / column 'glu': this column appears more than once in the header"),
        (b"glu,bmi,diabetes,diabetes\n100,20,No,Yes\n", "row 1 / column 'diabetes': this column appears more than once"),
        ("glu,bmi,diabetes\n100,20,No\n".encode("utf-16"), "not UTF-8"),
    ]
    for content, message in cases:
        with pytest.raises(DataError, match=re.escape(message)):
            read_records_csv(content, columns, "diabetes", ["No", "Yes"])
    with pytest.raises(DataError, match="more than 2 records"):
        read_records_csv(b"glu,bmi,diabetes\n100,20,No\n100,20,No\n100,20,No\n", columns, "diabetes", ["No", "Yes"], max_rows=2)


def test_batch_reader_takes_any_line_ending_and_numbers_written_another_way_and_refuses_huge_cells():
    columns = [data.Column("glu", 56, 199)]
    for ending in (b"\r\n", b"\r"):
        batch = read_records_csv(ending.join([b"glu,outcome", b"100,1.0", b"90,0", b""]), columns, "outcome", ["0", "1"])
        assert batch.X.tolist() == [[100.0], [90.0]] and batch.diagnosis.tolist() == [1, 0]
    X = read_records_csv(b"glu;outcome\n100,5;1\n", columns, "outcome", ["0", "1"]).X  # as an upload reads it
    assert X.tolist() == [[100.5]]
    X = read_records_csv(b"glu\toutcome\n100,5\t1\n99.5\t0\n", columns, "outcome", ["0", "1"]).X  # a tab file too
    assert X.tolist() == [[100.5], [99.5]]
    with pytest.raises(DataError, match=r"row 2 / column 'glu': '1,000' could be a thousand and more with a separator "
                                        r"or a number with a decimal comma"):
        read_records_csv(b"glu\toutcome\n1,000\t1\n", columns, "outcome", ["0", "1"])
    with pytest.raises(DataError, match="'100,5' is not a number"):  # a quoted comma in a comma file is no decimal point
        read_records_csv(b'glu,outcome\n"100,5",1\n', columns, "outcome", ["0", "1"])
    with pytest.raises(DataError, match="row 2 / column 'glu': '1_00' is not a number"):
        read_records_csv(b"glu,outcome\n1_00,1\n", columns, "outcome", ["0", "1"])
    huge = b'glu,outcome\n100,0\n"' + b"9" * 200_000 + b'",1\n'
    with pytest.raises(DataError, match="row 3: a cell is longer than 131,072 characters"):
        read_records_csv(huge, columns, "outcome", ["0", "1"])


def test_one_check_of_a_feature_value_takes_numbers_in_the_plausible_range_and_refuses_the_rest():
    # observed 1-10: the plausible range is one range wider on either side, but a feature never
    # seen negative stays at or above 0: 0 to 19; one seen negative widens both ways
    assert data.plausible_range(1, 10) == (0, 19)
    assert data.plausible_range(-2, 3) == (-7, 8)
    assert [data.feature_value(v, 1, 10) for v in (4, 4.5, " 19 ", "-0", 0, "+5.", ".5", "1e1", "2E0")] == \
        [4.0, 4.5, 19.0, 0.0, 0.0, 5.0, 0.5, 10.0, 2.0]
    assert data.feature_value("4,5", 1, 10, decimal_comma=True) == 4.5
    assert [data.feature_value(v, 1, 10, decimal_comma=None) for v in ("4,5", "4.5", "0,5e1")] == [4.5, 4.5, 5.0]
    for raw in ("1,000", "+12,500"):
        with pytest.raises(DataError, match="could be a thousand and more with a separator"):
            data.feature_value(raw, 1, 10, decimal_comma=None)
    refused = [(True, "true is not a number"), (False, "false is not a number"), (None, "null is not a number"),
               ([1], "a list is not a number"), ("abc", "'abc' is not a number"), ("nan", "'nan' is not a finite number"),
               (float("inf"), "'inf' is not a finite number"), (1e300, "1e+300 is outside the plausible range 0 to 19"), ("-8", "-8 is outside the plausible range 0 to 19"),
               ("19.5", "19.5 is outside the plausible range"), (-500, "-500 is outside"), (10**400, "outside the plausible range"),
               ("1_0", "'1_0' is not a number"), ("\u0661\u0662", "is not a number"), ("4,5", "'4,5' is not a number"),
               ("0x5", "'0x5' is not a number"), ("", "is empty: a value is needed"), ("  ", "is empty"),
               ("1e999", "1e999 is outside the plausible range 0 to 19"), ("-1e999", "-1e999 is outside"),
               ("9" * 400, "999999999999… is outside the plausible range 0 to 19"), ("-inf", "'-inf' is not a finite number")]
    for raw, message in refused:
        with pytest.raises(DataError, match=re.escape(message)):
            data.feature_value(raw, 1, 10)


def test_reasons_argue_for_the_verdict_never_against_it(biopsy, report):
    """Poisoned: the signs of inconsistency, never "consistent"; Benign: a sign that stands out is
    named as not enough to flag the record, never on its own."""
    det = report.detector
    rng = np.random.default_rng(7)
    idx = rng.choice(len(biopsy.y), 150, replace=False)
    X, y = biopsy.X[idx].copy(), biopsy.y[idx].copy()
    std = biopsy.X.std(axis=0)
    X[:50] += rng.choice([-1, 1], size=(50, X.shape[1])) * rng.uniform(0, 3, size=(50, X.shape[1])) * std  # mild to strong
    y[50:80] = 1 - y[50:80]  # label flips
    X = np.clip(X, biopsy.X.min(axis=0), biopsy.X.max(axis=0) + 2 * std)
    seen = {"Poisoned": 0, "Benign with a sign": 0}
    for p in det.predict(X, y):
        assert p.reasons
        if p.status == POISONED:
            seen["Poisoned"] += 1
            assert not any("consistent" in r or "fits typical" in r for r in p.reasons), p.reasons
        else:
            for r in p.reasons:
                if "SD" in r or "unlikely" in r or "outside" in r:
                    seen["Benign with a sign"] += 1
                    assert "but the record as a whole fits typical" in r or "not enough on its own to flag" in r, r
    assert all(seen.values()), seen


def test_observed_ranges_come_from_the_training_rows_only():
    # a held-out record's clean values must not set the range it is then tested against, or no
    # benign test record can ever lie outside it and the reported scores are optimistic
    from sklearn.model_selection import train_test_split

    table = data.load_builtin("breast_cancer")
    report = train_detectors(table, fraction=0.2, seed=0, names=("logistic_regression",))
    ps = poison_records(table.X, table.y, table.n_classes, fraction=0.2, seed=0)
    idx_train, idx_test = train_test_split(np.arange(len(table.y)), test_size=0.3, random_state=0, stratify=ps.poisoned)
    feats = report.detector.features
    np.testing.assert_array_equal(feats.low, table.X[idx_train].min(axis=0))
    np.testing.assert_array_equal(feats.high, table.X[idx_train].max(axis=0))
    benign_test = idx_test[~ps.poisoned[idx_test]]
    assert (feats.out_of_range(table.X[benign_test]).max(axis=1) > 0).any()


def test_a_batch_header_with_a_column_name_longer_than_an_upload_takes_is_refused():
    columns = [data.Column("glu", 56, 199)]
    limit = data.MAX_COLUMN_NAME_LENGTH
    ok = read_records_csv(f"glu,outcome,{'n' * limit}\n100,1,x\n".encode(), columns, "outcome", ["0", "1"])
    assert ok.uploaded == [[["glu", "100"], ["outcome", "1"], ["n" * limit, "x"]]]
    with pytest.raises(DataError, match=rf"^row 1: the name of column 3 \('n{{30}}…'\) has {limit + 1} characters"):
        read_records_csv(f"glu,outcome,{'n' * (limit + 1)}\n100,1,x\n".encode(), columns, "outcome", ["0", "1"])
    # a category feature of a text column with a long name ("column=value") is longer still: its column is read
    category = "c" * limit + "=yes"
    batch = read_records_csv(f"{category},outcome\n1,1\n".encode(), [data.Column(category, 0, 1)], "outcome", ["0", "1"])
    assert batch.X.tolist() == [[1.0]]
    with pytest.raises(DataError, match=f"has {limit + 5} characters; at most {limit + 4} are allowed"):
        read_records_csv(f"{category},outcome,{'n' * (limit + 5)}\n1,1,x\n".encode(), [data.Column(category, 0, 1)],
                         "outcome", ["0", "1"])


def test_a_batch_header_with_more_columns_than_an_upload_takes_is_refused():
    columns = [data.Column("glu", 56, 199)]
    extra = data.MAX_COLUMNS - 2
    names = ",".join(f"c{j}" for j in range(extra))
    ok = read_records_csv(f"glu,outcome,{names}\n100,1{',' * extra}\n".encode(), columns, "outcome", ["0", "1"])
    assert len(ok.uploaded[0]) == data.MAX_COLUMNS
    with pytest.raises(DataError, match=rf"^row 1: the header has {data.MAX_COLUMNS + 1:,} columns; the limit is"):
        read_records_csv(f"glu,outcome,{names},one_more\n100,1{',' * (extra + 1)}\n".encode(), columns, "outcome", ["0", "1"])


def test_a_batch_with_an_unterminated_quote_names_the_row_it_opens_on():
    columns = [data.Column("glu", 56, 199)]
    with pytest.raises(DataError, match=r"^row 3: a quote is never closed"):
        read_records_csv(b'glu,outcome,note\n100,1,x\n90,0,"open\n95,1,y\n', columns, "outcome", ["0", "1"])


def test_a_batch_row_with_more_or_fewer_cells_than_the_header_is_refused_naming_the_row():
    columns = [data.Column("glu", 56, 199)]
    for row in (b"90,0,x,extra", b"90,0", b"90,0,x,"):
        with pytest.raises(DataError, match=r"^row 3: \d cells where the header has 3$"):
            read_records_csv(b"glu,outcome,note\n100,1,x\n" + row + b"\n", columns, "outcome", ["0", "1"])
    ok = read_records_csv(b"glu,outcome,note\n100,1,x\n\n90,0,\n", columns, "outcome", ["0", "1"])  # a blank row is skipped
    assert ok.uploaded == [[["glu", "100"], ["outcome", "1"], ["note", "x"]], [["glu", "90"], ["outcome", "0"], ["note", ""]]]
