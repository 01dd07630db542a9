import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier

from fedcore import data
from fedcore.local import train_centralised, train_local
from fedcore.model import (
    ModelSpec,
    accuracy_and_loss,
    evaluate,
    flatten,
    init_weights,
    n_params,
    predict,
    predict_proba,
    unflatten,
)


@pytest.fixture(scope="module")
def bc():
    t = data.load_builtin("breast_cancer")
    split = data.holdout_split(t.y, seed=3)
    scaler = data.Standardizer().fit(t.X[split.train])
    return t, split, scaler.transform(t.X)


def test_flatten_unflatten_round_trip():
    spec = ModelSpec("mlp", 7, 3, (5, 4))
    w = init_weights(spec, 1)
    v = flatten(w)
    assert v.size == n_params(spec) == 7 * 5 + 5 + 5 * 4 + 4 + 4 * 3 + 3
    assert all(np.array_equal(a, b) for a, b in zip(unflatten(spec, v), w, strict=True))
    with pytest.raises(ValueError, match="needs"):
        unflatten(spec, v[:-1])


def test_forward_pass_equals_sklearn(bc):
    t, split, X = bc
    mlp = MLPClassifier((64, 32), max_iter=50, random_state=0).fit(X[split.train], t.y[split.train])
    spec = ModelSpec("mlp", 30, 2)
    w = [m for pair in zip(mlp.coefs_, mlp.intercepts_, strict=True) for m in pair]
    np.testing.assert_allclose(predict_proba(spec, w, X), mlp.predict_proba(X), atol=1e-9)
    lr = LogisticRegression(max_iter=500).fit(X[split.train], t.y[split.train])
    spec = ModelSpec("logreg", 30, 2)
    w = [lr.coef_.T, lr.intercept_]
    np.testing.assert_allclose(predict_proba(spec, w, X), lr.predict_proba(X), atol=1e-9)
    assert np.array_equal(predict(spec, w, X), lr.predict(X))


def test_builtin_datasets_have_positive_disease_class():
    for name, rows, d in [("breast_cancer", 569, 30), ("pima", 532, 7), ("biopsy", 699, 9)]:
        t = data.load_builtin(name)
        assert t.X.shape == (rows, d) and set(np.unique(t.y)) == {0, 1}
        assert not np.isnan(t.X).any()
    assert data.load_builtin("breast_cancer").class_counts() == {"benign": 357, "malignant": 212}
    assert data.load_builtin("pima").class_counts() == {"no diabetes": 355, "diabetes": 177}


def test_synthetic_ehr_is_deterministic_balanced_and_learnable():
    a = data.synthetic_ehr(4000, 0.25, seed=5)
    b = data.synthetic_ehr(4000, 0.25, seed=5)
    assert np.array_equal(a.X, b.X) and np.array_equal(a.y, b.y)
    assert abs(a.y.mean() - 0.25) < 0.01
    s = data.holdout_split(a.y, seed=0)
    X = data.Standardizer().fit(a.X[s.train]).transform(a.X)
    lr = LogisticRegression(max_iter=500).fit(X[s.train], a.y[s.train])
    assert 0.75 < lr.score(X[s.test], a.y[s.test]) < 0.99
    with pytest.raises(data.DataError, match="rows"):
        data.synthetic_ehr(2_000_000)
    # 20 rows at 5% positive would hold a single positive row, which the split gives to the test
    # set, leaving training and validation without one: refused like such an upload
    with pytest.raises(data.DataError, match="class 'event' has fewer than 3 rows"):
        data.synthetic_ehr(20, 0.05)
    assert data.synthetic_ehr(60, 0.05).y.sum() == 3


def test_holdout_split_is_disjoint_stratified():
    y = np.array([0] * 300 + [1] * 100)
    s = data.holdout_split(y, validation_fraction=0.15, test_fraction=0.2, seed=1)
    all_idx = np.concatenate([s.train, s.validation, s.test])
    assert len(np.unique(all_idx)) == len(all_idx) == 400
    assert abs(y[s.test].mean() - 0.25) < 0.02


@pytest.mark.parametrize("scheme, alpha", [("iid", 0.5), ("dirichlet", 0.1), ("dirichlet", 100.0)])
def test_partitions_cover_rows_once_and_are_deterministic(scheme, alpha):
    y = np.random.default_rng(0).integers(0, 2, 2000)
    parts = data.partition(y, 20, scheme=scheme, alpha=alpha, seed=4)
    flat = np.concatenate(parts)
    assert len(flat) == len(np.unique(flat)) == 2000
    assert min(len(p) for p in parts) >= 2
    again = data.partition(y, 20, scheme=scheme, alpha=alpha, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))
    mixes = np.array([y[p].mean() for p in parts])
    if scheme == "iid":
        assert np.all(np.abs(mixes - y.mean()) < 0.05)
    elif alpha < 1:
        assert mixes.std() > 0.2  # strongly skewed label mixes
    else:
        assert mixes.std() < 0.1


def test_partition_refuses_impossible_requests():
    with pytest.raises(ValueError, match="cannot give"):
        data.partition(np.zeros(10, int), 20)
    with pytest.raises(ValueError, match="unknown partition"):
        data.partition(np.zeros(100, int), 2, scheme="zipf")


GOOD = "age,glucose,smoker,outcome\n" + "".join(
    f"{30 + i},{90 + i % 17},{'yes' if i % 3 else 'no'},{'sick' if i % 2 else 'well'}\n" for i in range(40)
)


def test_a_class_of_three_rows_reaches_training_validation_and_test():
    y = np.array([0] * 30 + [1] * 3)
    split = data.holdout_split(y)
    assert all(set(y[part]) == {0, 1} for part in (split.train, split.validation, split.test))


def test_good_csv_parses_with_categorical_one_hot():
    t = data.read_csv_upload(GOOD.encode(), "outcome")
    assert t.X.shape == (40, 4)
    assert t.feature_names == ["age", "glucose", "smoker=no", "smoker=yes"]
    assert t.class_names == ["sick", "well"]
    semi = GOOD.replace(",", ";").encode()
    assert data.read_csv_upload(semi, "outcome").X.shape == (40, 4)


@pytest.mark.parametrize(
    "content, target, message",
    [
        (b"", "outcome", "empty"),
        (GOOD.encode("utf-16"), "outcome", "not UTF-8"),
        (GOOD.replace("age,", ",", 1).encode(), "outcome", "header of column 1 is empty"),
        (GOOD.replace("glucose", "age", 1).encode(), "outcome", "column 'age': this column name appears twice"),
        (GOOD.encode(), "diagnosis", "target column 'diagnosis' is not in the header"),
        (GOOD.replace("35,", "35,1,", 1).encode(), "outcome", "row 7: has 5 cells"),
        (GOOD.replace(",well\n", ",sick\n").encode(), "outcome", "single class"),
        (b"age,outcome\n1,a\n2,b\n", "outcome", "at least 20 are needed"),
        (GOOD.replace("\n31,", "\nthirty,", 1).encode(), "outcome", "row 3 / column 'age': 'thirty' is not a number"),
        (GOOD.replace("\n31,", "\n3_1,", 1).encode(), "outcome", "row 3 / column 'age': '3_1' is not a number"),
        (GOOD.replace("\n32,", "\n1e300,", 1).encode(), "outcome", "row 4 / column 'age': '1e300' is too large to scale"),
        (GOOD.replace("\n33,", '\n"' + "9" * 200_000 + '",', 1).encode(), "outcome", "row 5: a cell is longer than 131,072 characters"),
        (("a,a=x,outcome\n" + "".join(f"{'xz'[i % 2]},{i % 5},{'well' if i % 3 else 'sick'}\n" for i in range(30))).encode(),
         "outcome", "column 'a=x': two features would be named 'a=x'"),
        (GOOD.replace("\n31,", "\n+nan,", 1).encode(), "outcome", "row 3 / column 'age': '\\+nan' is not a finite number"),
        # 16 numbers and 4 texts: numeric (at least 80 %), so a text is a typo
        (("a,y\n" + "".join(f"{i},{i % 2}\n" for i in range(16)) + "".join(f"x{i},{i % 2}\n" for i in range(4))).encode(),
         "y", "row 18 / column 'a': 'x0' is not a number, and the rest of the column is numeric"),
        (("a,y\n" + "".join(f"{i},{'k' if i < 2 else 'l'}\n" for i in range(30))).encode(), "y",
         "column 'y': class 'k' has fewer than 3 rows"),
        (GOOD.encode(), "outcome", None),
    ],
)
def test_bad_csv_names_row_and_column(content, target, message):
    if message is None:
        data.read_csv_upload(content, target)  # one text cell in a numeric column: categorical
        return
    with pytest.raises(data.DataError, match=message):
        data.read_csv_upload(content, target)


def test_csv_line_endings_and_numeric_labels_are_read_one_way():
    for ending in ("\r\n", "\r"):  # Windows, old Mac
        t = data.read_csv_upload(GOOD.replace("\n", ending).encode(), "outcome")
        assert t.X.shape == (40, 4) and t.class_names == ["sick", "well"]
    labels = ["1", "1.0", " 0 ", "0.0"]
    rows = "x,outcome\n" + "".join(f"{i},{labels[i % 4]}\n" for i in range(40))
    t = data.read_csv_upload(rows.encode(), "outcome")
    assert t.class_names == ["0", "1"] and list(t.y[:4]) == [1, 1, 0, 0]


def test_csv_non_numeric_in_numeric_column_names_row_and_column():
    rows = "x,outcome\n" + "".join(f"{v},{i % 2}\n" for i, v in enumerate([*range(35), *[f"t{i}" for i in range(31)]]))
    with pytest.raises(data.DataError, match="row 37 / column 'x'.*not a number"):
        data.read_csv_upload(rows.encode(), "outcome")


def test_csv_too_many_missing_and_size_limit():
    rows = "x,y,outcome\n" + "".join(f"{'' if i % 2 else i},{i},{i % 2}\n" for i in range(40))
    with pytest.raises(data.DataError, match="column 'x'.*missing"):
        data.read_csv_upload(rows.encode(), "outcome")
    with pytest.raises(data.DataError, match="limit is"):
        data.read_csv_upload(GOOD.encode(), "outcome", max_bytes=100)


def test_sizes_are_shown_in_binary_units():
    assert [data.format_size(n) for n in (900, 1536, 20 * 1024 * 1024, 20_000_000, 3 * 1024**3)] == [
        "900 bytes", "1.5 KiB", "20 MiB", "19.1 MiB", "3 GiB"]


def test_local_training_warm_starts_from_the_global_weights(bc):
    t, split, X = bc
    for kind in ("mlp", "logreg"):
        spec = ModelSpec(kind, 30, 2)
        w0 = init_weights(spec, 0)
        tiny = train_local(spec, w0, X[split.train][:20], t.y[split.train][:20], epochs=1, learning_rate=1e-9)
        assert np.abs(flatten(tiny) - flatten(w0)).max() < 1e-6
        none = train_local(spec, w0, X[split.train], t.y[split.train], epochs=0, learning_rate=0.1)
        assert np.array_equal(flatten(none), flatten(w0)), kind  # zero passes: the global weights
        trained = train_local(spec, w0, X[split.train], t.y[split.train], epochs=5, learning_rate=0.01, seed=1)
        assert evaluate(spec, trained, X[split.test], t.y[split.test])["accuracy"] > evaluate(spec, w0, X[split.test], t.y[split.test])["accuracy"]


def test_local_training_with_a_missing_class_and_determinism(bc):
    t, split, X = bc
    spec = ModelSpec("mlp", 30, 2)
    only_benign = X[split.train][t.y[split.train] == 0][:15]
    w = train_local(spec, init_weights(spec, 0), only_benign, np.zeros(15, int), epochs=1, learning_rate=0.01, seed=2)
    again = train_local(spec, init_weights(spec, 0), only_benign, np.zeros(15, int), epochs=1, learning_rate=0.01, seed=2)
    assert np.array_equal(flatten(w), flatten(again))


def test_centralised_mlp_reaches_95_percent(bc):
    t, split, X = bc
    spec = ModelSpec("mlp", 30, 2)
    w = train_centralised(spec, X[split.train], t.y[split.train], epochs=20, learning_rate=0.01)
    assert evaluate(spec, w, X[split.test], t.y[split.test])["accuracy"] > 0.95


def test_a_stray_text_in_a_numeric_column_is_an_error_not_a_category():
    rows = "".join(f"{i % 5},{'yes' if i % 2 else 'no'}\n" for i in range(40))
    with pytest.raises(data.DataError, match="row 4 / column 'n': 'seven' is not a number, and the rest of the column is numeric"):
        data.read_csv_upload(("n,label\n" + rows).replace("\n2,", "\nseven,", 1).encode(), "label")
    mixed = "".join(f"{['a', 'b', 'c'][i % 3]},{'yes' if i % 2 else 'no'}\n" for i in range(40))
    table = data.read_csv_upload(("kind,label\n" + mixed).encode(), "label")
    assert table.feature_names == ["kind=a", "kind=b", "kind=c"]


@pytest.mark.parametrize("spec", [ModelSpec("mlp", 6, 2, (8,)), ModelSpec("logreg", 6, 3), ModelSpec("mlp", 6, 4, (5, 3))])
def test_accuracy_and_loss_are_evaluates_own_two_scores(spec):
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(50, 6)), rng.integers(0, spec.n_classes, 50)
    for seed in range(3):
        w = init_weights(spec, seed)
        full = evaluate(spec, w, X, y)
        assert accuracy_and_loss(spec, w, X, y) == (full["accuracy"], full["loss"])


@pytest.mark.parametrize("body, words", [(b"1,0\n", "1 data row;"), (b"1,0\n2,1\n", "2 data rows;")])
def test_an_upload_with_too_few_rows_says_how_many_it_has(body, words):
    with pytest.raises(data.DataError, match=f"the file has {words} at least {data.MIN_ROWS} are needed"):
        data.read_csv_upload(b"a,y\n" + body, "y")


def _wide(n_columns: int, n_rows: int, name_length: int = 4) -> bytes:
    header = [f"c{j:0{name_length - 1}d}" for j in range(n_columns - 1)] + ["y"]
    rows = [",".join([*(str((i * 7 + j) % 11) for j in range(n_columns - 1)), str(i % 2)]) for i in range(n_rows)]
    return ("\n".join([",".join(header), *rows]) + "\n").encode()


def test_an_upload_with_more_columns_than_the_limit_is_refused_at_its_header():
    assert data.MAX_COLUMNS == 1_000
    t = data.read_csv_upload(_wide(data.MAX_COLUMNS, data.MIN_ROWS), "y")
    assert t.X.shape == (data.MIN_ROWS, data.MAX_COLUMNS - 1)
    # refused at the header, before the rows: three rows would be too few, a ragged row a misfit
    with pytest.raises(data.DataError, match=r"^row 1: the header has 1,001 columns; the limit is 1,000$"):
        data.read_csv_upload(_wide(data.MAX_COLUMNS + 1, 3) + b"1,2\n", "y")
    with pytest.raises(data.DataError, match="the header has 300,000 columns; the limit is 1,000"):
        data.read_csv_upload(_wide(300_000, 3), "y")
    # an upload stored before the limit is read again as it was accepted
    assert data.read_csv_upload(_wide(data.MAX_COLUMNS + 1, data.MIN_ROWS), "y", rules=1).X.shape[1] == data.MAX_COLUMNS


def test_an_upload_with_a_column_name_longer_than_the_limit_is_refused_naming_the_column_number():
    limit = data.MAX_COLUMN_NAME_LENGTH
    fits = data.read_csv_upload(GOOD.replace("glucose", "g" * limit, 1).encode(), "outcome")
    assert fits.feature_names[1] == "g" * limit
    long = GOOD.replace("glucose", "g" * (limit + 1), 1).encode()
    with pytest.raises(data.DataError, match=rf"^row 1: the name of column 2 \('g{{30}}…'\) has {limit + 1} characters; "
                                             rf"at most {limit} are allowed$"):
        data.read_csv_upload(long, "outcome")


def test_an_unterminated_quote_names_the_row_it_opens_on():
    rows = "".join(f"{i},{i % 5},{i % 2}\n" for i in range(25))
    content = ("a,b,y\n" + rows[:18] + '4,"4,0\n' + rows).encode()  # row 5 opens a quote nothing closes
    with pytest.raises(data.DataError, match=r"^row 5: a quote is never closed \(in column 2"):
        data.read_csv_upload(content, "y")
    # a quoted cell over several lines that is closed is read as one cell
    closed = ("a,b,y\n" + rows[:18] + '4,"4\n0",0\n' + rows).encode()
    with pytest.raises(data.DataError, match="row 5 / column 'b': '4\n0' is not a number"):
        data.read_csv_upload(closed, "y")
    assert [cells for _, cells in data.csv_rows('a,b\n1,"x\ny"\n2,3', ",")] == [["a", "b"], ["1", "x\ny"], ["2", "3"]]
    # an open quote in a file too long for one cell
    huge = ("a,b,y\n" + rows[:18] + '4,"4,0\n' + rows * 6000).encode()
    with pytest.raises(data.DataError, match=r"^row 5: a cell is longer than 131,072 characters \(is a quote never closed\?\)"):
        data.read_csv_upload(huge, "y")


def test_a_tab_file_reads_decimal_commas_in_a_numeric_column_and_keeps_commas_in_text():
    rows = [(f"{i % 7},{i % 4}", f"{80 + i}", ["a, b", "c, d"][i % 2], ["well", "sick"][i % 2]) for i in range(30)]
    tab = "\n".join(["dose\tglucose\tnote\toutcome", *("\t".join(r) for r in rows)]) + "\n"
    t = data.read_csv_upload(tab.encode(), "outcome")
    assert t.feature_names == ["dose", "glucose", "note=a, b", "note=c, d"]
    assert t.X[:3, 0].tolist() == [0.0, 1.1, 2.2] and t.X[:3, 1].tolist() == [80.0, 81.0, 82.0]
    assert t.X.tolist() == data.read_csv_upload(tab.replace("\t", ";").encode(), "outcome").X.tolist()  # as in a ; file
    # a stray text in a decimal-comma column is a typo there too, as in a semicolon file
    typo = tab.replace("\n3,3\t", "\n3;3\t", 1)
    with pytest.raises(data.DataError, match="row 5 / column 'dose': '3;3' is not a number, and the rest of the column is numeric"):
        data.read_csv_upload(typo.encode(), "outcome")
    # a column whose every comma could as well separate thousands is refused, not read as 1.0
    thousands = "\n".join(["glucose\toutcome", *(f"{1 + i % 3},{250 * (i % 4):03d}\t{r[3]}" for i, r in enumerate(rows))])
    with pytest.raises(data.DataError, match=r"row 2 / column 'glucose': '1,000' could be a thousand and more with a "
                                             r"separator or a number with a decimal comma; write it without"):
        data.read_csv_upload(thousands.encode(), "outcome")
    mixed = thousands.replace("\n1,000\t", "\n1,5\t", 1)  # one unambiguous decimal comma decides the column
    assert data.read_csv_upload(mixed.encode(), "outcome").X[:3, 0].tolist() == [1.5, 2.25, 3.5]
    # the first rules (an upload stored before them is read by them): a tab file's commas are text
    assert data.read_csv_upload(tab.encode(), "outcome", rules=1).feature_names[0].startswith("dose=")
    # a comma file's quoted "0,5" is text, as before
    comma = "\n".join(["dose,outcome", *(f'"{r[0]}",{r[3]}' for r in rows)]) + "\n"
    assert data.read_csv_upload(comma.encode(), "outcome").feature_names[0].startswith("dose=")
