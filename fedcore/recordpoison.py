"""Record-level data poisoning and the "Poisoned / Benign" record classifiers.

From any labelled table a known fraction of records is poisoned — half by flipping the recorded
diagnosis, half by tampering with a few clinical features (pushed several standard deviations
away) — and several scikit-learn classifiers learn to tell a poisoned record from a benign one
given its features and its recorded diagnosis. The best one (by F1 in cross-validation on the
training rows; its reported scores are on held-out test rows) becomes the active predictor;
every prediction comes with its probability and the main reasons.

Each classifier sees the standardized features, the recorded diagnosis (one-hot), how plausible
that diagnosis is for those features under a reference model fitted on the same (partly
poisoned) records, and the largest per-feature deviation from the records of that diagnosis.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score
from sklearn.model_selection import (
    StratifiedKFold,
    cross_val_predict,
    cross_val_score,
    train_test_split,
)
from sklearn.naive_bayes import GaussianNB
from sklearn.neural_network import MLPClassifier
from sklearn.svm import LinearSVC
from sklearn.tree import DecisionTreeClassifier

from .data import (
    MAX_COLUMN_NAME_LENGTH,
    Column,
    DataError,
    Table,
    check_column_names,
    class_label,
    csv_delimiter,
    csv_rows,
    csv_text,
    feature_value,
)

POISONED, BENIGN = "Poisoned", "Benign"
MAX_TRAINING_ROWS = 5000
TAMPER_SIGMAS = (3.0, 6.0)


def _classifiers(seed: int) -> dict:
    return {
        "logistic_regression": LogisticRegression(max_iter=2000),
        "linear_svm": CalibratedClassifierCV(LinearSVC(C=1.0, max_iter=5000, random_state=seed), cv=3),
        "decision_tree": DecisionTreeClassifier(max_depth=8, random_state=seed),
        "random_forest": RandomForestClassifier(n_estimators=150, random_state=seed, n_jobs=1),
        "gradient_boosting": GradientBoostingClassifier(random_state=seed),
        "mlp": MLPClassifier(hidden_layer_sizes=(64, 32), max_iter=400, random_state=seed),
        "naive_bayes": GaussianNB(),
    }


CLASSIFIER_NAMES = tuple(_classifiers(0))


@dataclass
class PoisonedSet:
    """Records with their recorded diagnosis, whether each was poisoned and how."""

    X: np.ndarray
    diagnosis: np.ndarray
    poisoned: np.ndarray
    kind: list[str]


def poison_records(X: np.ndarray, y: np.ndarray, n_classes: int, *, fraction: float = 0.2, seed: int = 0) -> PoisonedSet:
    """Poison ``fraction`` of the records: half label flips, half feature tampering."""
    if not 0 < fraction < 0.5:
        raise ValueError("the poisoned fraction must be between 0 and 0.5")
    rng = np.random.default_rng(seed)
    n = len(y)
    X, diagnosis = X.astype(np.float64).copy(), y.copy()
    chosen = rng.choice(n, size=max(2, int(round(fraction * n))), replace=False)
    flips, tampers = chosen[: len(chosen) // 2], chosen[len(chosen) // 2:]
    diagnosis[flips] = (diagnosis[flips] + rng.integers(1, n_classes, size=len(flips))) % n_classes
    std = X.std(axis=0)
    std[std == 0] = 1.0
    d = X.shape[1]
    for i in tampers:
        cols = rng.choice(d, size=max(1, min(3, d)), replace=False)
        X[i, cols] += rng.choice([-1.0, 1.0], size=len(cols)) * rng.uniform(*TAMPER_SIGMAS, size=len(cols)) * std[cols]
    poisoned = np.zeros(n, dtype=bool)
    poisoned[chosen] = True
    kind = [""] * n
    for i in flips:
        kind[i] = "label_flip"
    for i in tampers:
        kind[i] = "feature_tamper"
    return PoisonedSet(X, diagnosis, poisoned, kind)


@dataclass
class RecordFeatures:
    """Turns (features, recorded diagnosis) into the classifiers' input; fitted on training records."""

    n_classes: int
    mean: np.ndarray = field(default=None)
    std: np.ndarray = field(default=None)
    class_mean: np.ndarray = field(default=None)
    class_std: np.ndarray = field(default=None)
    reference: LogisticRegression = field(default=None)
    low: np.ndarray = field(default=None)
    high: np.ndarray = field(default=None)

    def fit(self, X: np.ndarray, diagnosis: np.ndarray, seed: int = 0, clean_X: np.ndarray | None = None) -> np.ndarray:
        """``clean_X``: the dataset before poisoning, whose observed ranges the provider knows."""
        self.mean, self.std = X.mean(axis=0), X.std(axis=0)
        self.std[self.std == 0] = 1.0
        ranges_from = X if clean_X is None else clean_X
        self.low, self.high = ranges_from.min(axis=0), ranges_from.max(axis=0)
        Z = (X - self.mean) / self.std
        # robust per-diagnosis centre and spread, so that tampered records do not widen them
        self.class_mean = np.stack([np.median(Z[diagnosis == c], axis=0) if np.any(diagnosis == c) else np.zeros(Z.shape[1])
                                    for c in range(self.n_classes)])
        self.class_std = np.stack([1.4826 * np.median(np.abs(Z[diagnosis == c] - self.class_mean[c]), axis=0)
                                   if np.any(diagnosis == c) else np.ones(Z.shape[1]) for c in range(self.n_classes)])
        # floor: discrete scores (e.g. 1-10) often have a zero MAD within a class
        self.class_std = np.maximum(self.class_std, 0.5)
        self.reference = LogisticRegression(max_iter=2000).fit(Z, diagnosis)
        # out-of-fold plausibility for the training records, so the classifiers see honest values
        folds = min(5, int(np.bincount(diagnosis, minlength=self.n_classes).min()))
        if folds >= 2:
            proba = cross_val_predict(LogisticRegression(max_iter=2000), Z, diagnosis, cv=folds, method="predict_proba")
        else:
            proba = self._reference_proba(Z)
        return self._assemble(X, Z, diagnosis, proba)

    def _reference_proba(self, Z: np.ndarray) -> np.ndarray:
        """(rows, n_classes) probabilities of the reference model: 0 for a class that none of the
        training records had (the model's own columns are only the classes it saw)."""
        out = np.zeros((len(Z), self.n_classes))
        out[:, self.reference.classes_] = self.reference.predict_proba(Z)
        return out

    def transform(self, X: np.ndarray, diagnosis: np.ndarray) -> np.ndarray:
        Z = (X - self.mean) / self.std
        return self._assemble(X, Z, diagnosis, self._reference_proba(Z))

    def out_of_range(self, X: np.ndarray) -> np.ndarray:
        """Per feature, how far (in SDs) a value lies outside the dataset's observed range; 0 inside."""
        return np.maximum(np.maximum(X - self.high, self.low - X), 0.0) / self.std

    def deviations(self, X: np.ndarray, diagnosis: np.ndarray) -> np.ndarray:
        """Per-feature robust z-scores against the records of the same diagnosis."""
        Z = (X - self.mean) / self.std
        return (Z - self.class_mean[diagnosis]) / self.class_std[diagnosis]

    def plausibility(self, X: np.ndarray, diagnosis: np.ndarray) -> np.ndarray:
        Z = (X - self.mean) / self.std
        return self._reference_proba(Z)[np.arange(len(diagnosis)), diagnosis]

    def _assemble(self, X: np.ndarray, Z: np.ndarray, diagnosis: np.ndarray, proba: np.ndarray) -> np.ndarray:
        onehot = np.eye(self.n_classes)[diagnosis]
        plaus = proba[np.arange(len(diagnosis)), diagnosis]
        dev = np.abs((Z - self.class_mean[diagnosis]) / self.class_std[diagnosis])
        excess = self.out_of_range(X).max(axis=1)
        return np.column_stack([Z, onehot, plaus, np.log1p(dev.max(axis=1)), np.log1p(dev.mean(axis=1)),
                                np.log1p(excess), excess > 0])


@dataclass
class Scores:
    accuracy: float
    precision: float
    recall: float
    f1: float
    roc_auc: float | None
    seconds: float

    def to_dict(self) -> dict:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


@dataclass
class Prediction:
    status: str
    probability: float
    reasons: list[str]


@dataclass
class RecordDetector:
    """The active predictor: input transform + the chosen classifier + what it needs to explain."""

    classifier_name: str
    classifier: object
    features: RecordFeatures
    feature_names: list[str]
    class_names: list[str]
    threshold: float = 0.5

    def probabilities(self, X: np.ndarray, diagnosis: np.ndarray) -> np.ndarray:
        return self.classifier.predict_proba(self.features.transform(X, diagnosis))[:, 1]

    def predict(self, X: np.ndarray, diagnosis: np.ndarray) -> list[Prediction]:
        X = np.atleast_2d(np.asarray(X, dtype=np.float64))
        diagnosis = np.asarray(diagnosis, dtype=np.int64)
        p = self.probabilities(X, diagnosis)
        dev = self.features.deviations(X, diagnosis)
        plaus = self.features.plausibility(X, diagnosis)
        outside = self.features.out_of_range(X)
        status = [POISONED if p[i] >= self.threshold else BENIGN for i in range(len(p))]
        return [Prediction(status[i], float(p[i]), self._reasons(X[i], dev[i], outside[i], plaus[i], diagnosis[i], status[i], p[i]))
                for i in range(len(p))]

    def _reasons(self, x: np.ndarray, dev: np.ndarray, outside: np.ndarray, plaus: float, diag: int, status: str,
                 probability: float, top: int = 3) -> list[str]:
        """The reasons for the verdict, the strongest first; they never argue for the other verdict.

        Poisoned: the strongest signs that values and diagnosis do not fit together (a value outside
        the dataset's range, an unlikely diagnosis, a value far from records of that diagnosis); if
        none is strong, the weaker ones that tipped the balance. Benign: that the record fits records
        of its diagnosis; a sign that stands out is named as not enough to flag it.
        """
        label = self.class_names[diag]
        name = self.feature_names

        def deviation(j: int) -> str:
            return f"'{name[j]}' is {abs(dev[j]):.1f} SD {'above' if dev[j] > 0 else 'below'} typical '{label}' records"

        signs = [f"'{name[j]}' = {x[j]:g} is outside the range seen in the dataset "
                 f"({self.features.low[j]:g} – {self.features.high[j]:g})"
                 for j in np.argsort(-outside) if outside[j] > 0][:top]
        if plaus < 0.2:
            signs.append(f"the recorded diagnosis '{label}' is unlikely for these clinical values (reference model: {plaus:.2f})")
        far = [j for j in np.argsort(-np.abs(dev))[:top] if abs(dev[j]) >= 4 and outside[j] == 0]
        signs += [deviation(j) for j in far]
        if status == POISONED:
            if signs:
                return signs
            # no single strong sign: the weaker ones that together made the record look poisoned
            weak = []
            if plaus < 0.5:
                weak.append(f"the recorded diagnosis '{label}' is less likely than not for these clinical values "
                            f"(reference model: {plaus:.2f})")
            j = int(np.argmax(np.abs(dev)))
            if abs(dev[j]) >= 2:
                weak.append(deviation(j))
            if not weak:
                weak.append(f"no single value stands out, but together values and diagnosis '{label}' resemble the "
                            f"poisoned records the predictor learned from (probability {probability:.2f})")
            return weak
        fits = f"the record as a whole fits typical '{label}' records (probability of poisoning {probability:.2f})"
        if not signs:
            return [f"values and diagnosis are consistent with typical '{label}' records (reference model: {plaus:.2f})"]
        return [f"{signs[0]}, but {fits}", *(f"{s}, not enough on its own to flag the record" for s in signs[1:])]


@dataclass
class TrainingReport:
    detector: RecordDetector
    scores: dict[str, dict]
    best: str
    n_train: int
    n_test: int
    poison_fraction: float


def train_detectors(table: Table, *, fraction: float = 0.2, seed: int = 0, max_rows: int = MAX_TRAINING_ROWS,
                    names: tuple[str, ...] = CLASSIFIER_NAMES) -> TrainingReport:
    """Poison a copy of the table, train and test every classifier, keep the best by F1.

    The best is the one with the highest F1 in 3-fold cross-validation on the training rows;
    the scores reported are on the held-out test rows, which played no part in the choice
    (choosing by the test F1 would flatter the winner's test score). A classifier that cannot
    be cross-validated on so few rows gets no ``cv_f1`` (None) and is not chosen.
    """
    X, y = table.X, table.y
    if len(y) > max_rows:
        keep = np.random.default_rng(seed).choice(len(y), size=max_rows, replace=False)
        X, y = X[keep], y[keep]
    ps = poison_records(X, y, table.n_classes, fraction=fraction, seed=seed)
    idx_train, idx_test = train_test_split(np.arange(len(y)), test_size=0.3, random_state=seed, stratify=ps.poisoned)
    feats = RecordFeatures(table.n_classes)
    # the clean ranges of the training rows only: a test row must not widen the range it is judged against
    F_train = feats.fit(ps.X[idx_train], ps.diagnosis[idx_train], seed=seed, clean_X=X[idx_train])
    F_test = feats.transform(ps.X[idx_test], ps.diagnosis[idx_test])
    t_train, t_test = ps.poisoned[idx_train].astype(int), ps.poisoned[idx_test].astype(int)
    n_folds = min(3, int(np.bincount(t_train, minlength=2).min()))
    if n_folds < 2:
        raise ValueError("too few poisoned (or clean) records among the training rows to compare classifiers; "
                         "use more records or a larger share of poisoned ones")
    folds = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
    scores, fitted, cv_f1 = {}, {}, {}
    all_classifiers = _classifiers(seed)
    few = (f"{len(t_train)} training records ({int(t_train.sum())} poisoned); "
           "use more records or a larger share of poisoned ones")
    for name in names:
        clf = all_classifiers[name]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # the MLP's iteration cap is deliberate
            try:
                cv_f1[name] = float(cross_val_score(clone(clf), F_train, t_train, cv=folds, scoring="f1",
                                                    error_score="raise").mean())
            except ValueError:  # a fold too small for this classifier (the calibrated SVM splits it 3 ways again)
                cv_f1[name] = None
            t0 = time.perf_counter()
            try:
                clf.fit(F_train, t_train)
            except ValueError as exc:
                raise ValueError(f"the classifier {name} cannot be trained on {few}") from exc
        proba = clf.predict_proba(F_test)[:, 1]
        pred = (proba >= 0.5).astype(int)
        scores[name] = Scores(
            accuracy=float(accuracy_score(t_test, pred)),
            precision=float(precision_score(t_test, pred, zero_division=0)),
            recall=float(recall_score(t_test, pred, zero_division=0)),
            f1=float(f1_score(t_test, pred, zero_division=0)),
            roc_auc=float(roc_auc_score(t_test, proba)) if len(set(t_test)) > 1 else None,
            seconds=time.perf_counter() - t0,
        ).to_dict()
        scores[name]["cv_f1"] = None if cv_f1[name] is None else round(cv_f1[name], 6)
        fitted[name] = clf
    ranked = [name for name in names if cv_f1[name] is not None]
    if not ranked:
        raise ValueError(f"no classifier can be cross-validated on {few}")
    best = max(ranked, key=cv_f1.__getitem__)
    detector = RecordDetector(best, fitted[best], feats, list(table.feature_names), list(table.class_names))
    return TrainingReport(detector, scores, best, len(idx_train), len(idx_test), fraction)


MAX_BATCH_ROWS = 10_000


@dataclass
class RecordBatch:
    X: np.ndarray  # the feature values, checked
    diagnosis: np.ndarray  # class indices
    rows: list[dict]  # per record, each feature's value and the diagnosis's class name
    uploaded: list[list[list[str]]]  # per record, its [column, cell] pairs as written, every column in file order


def read_records_csv(data: bytes, features: list[Column], target_name: str, class_names: list[str], *,
                     max_rows: int = MAX_BATCH_ROWS) -> RecordBatch:
    """Parse a batch of records to predict: every feature column and the recorded diagnosis.

    Each value is checked by data.feature_value against its feature's observed range; raises
    DataError naming the row (header = row 1) and column at fault; a column read twice in the
    header is refused, as are more than data.MAX_COLUMNS columns, a column name longer than
    data.MAX_COLUMN_NAME_LENGTH (or the longest feature's name) and a
    non-blank row whose cell count is not the header's. A comma is a decimal point in a semicolon
    file, and in a tab file's cell that has no point (as uploads read them). Other columns (a patient id, notes) are
    not read, only kept as written (``uploaded``) so that the results can go back beside them; nothing is guessed or imputed.
    """
    feature_names = [c.name for c in features]
    if not data:
        raise DataError("the file is empty")
    text = csv_text(data)
    delimiter = csv_delimiter(text)
    reader = csv_rows(text, delimiter)
    header = [h.strip() for h in next(reader, (1, []))[1]]
    needed = [*feature_names, target_name]
    # a text column's category feature ("column=value") may be longer than an uploaded name
    check_column_names(header, max(MAX_COLUMN_NAME_LENGTH, *(len(c) for c in needed)))
    missing = [c for c in needed if c not in header]
    if missing:
        shown = ", ".join(f"'{c}'" for c in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise DataError(f"the header lacks the column(s) {shown}; it needs every feature and '{target_name}'", row=1)
    repeated = next((c for c in needed if header.count(c) > 1), None)
    if repeated is not None:
        raise DataError("this column appears more than once in the header; keep only one", row=1, column=repeated)
    where = {c: header.index(c) for c in needed}
    class_index = class_matcher(class_names)
    X, diagnosis, rows, uploaded = [], [], [], []
    for rowno, cells in reader:
        if not any(c.strip() for c in cells):
            continue
        if len(X) >= max_rows:
            raise DataError(f"more than {max_rows:,} records; split the file", row=rowno)
        if len(cells) != len(header):  # an extra cell would be dropped unseen, a missing one is misread
            raise DataError(f"{len(cells)} cells where the header has {len(header)}", row=rowno)
        values = []
        for col in features:
            try:
                values.append(feature_value(cells[where[col.name]], col.minimum, col.maximum,
                                            decimal_comma={";": True, "\t": None}.get(delimiter, False)))
            except DataError as exc:
                raise DataError(exc.detail, row=rowno, column=col.name) from None
        label = cells[where[target_name]].strip()
        k = class_index(label)
        if k is None:
            raise DataError(f"'{label}' is not one of {', '.join(class_names)}", row=rowno, column=target_name)
        X.append(values)
        diagnosis.append(k)
        rows.append({**{n: v for n, v in zip(feature_names, values, strict=True)}, target_name: class_names[k]})
        uploaded.append([[name, cell] for name, cell in zip(header, cells, strict=True)])
    if not X:
        raise DataError("the file has a header but no records", row=2)
    return RecordBatch(np.asarray(X, dtype=np.float64), np.asarray(diagnosis, dtype=np.int64), rows, uploaded)


def class_matcher(class_names: list[str]) -> Callable[[str], int | None]:
    """The index of the class a recorded diagnosis names, or None: matched as written, as a
    number written another way ("1.0" for class "1"), then in any case ("Benign" for "benign")
    where that names one class only."""
    exact = {c: i for i, c in enumerate(class_names)}
    folded: dict[str, int | None] = {}
    for i, c in enumerate(class_names):
        for key in {c.lower(), class_label(c).lower()}:
            folded[key] = i if folded.get(key, i) == i else None

    def class_index(label: str) -> int | None:
        label = label.strip()
        candidates = (label, class_label(label))
        for candidate in candidates:
            if candidate in exact:
                return exact[candidate]
        return next((folded[c.lower()] for c in candidates if folded.get(c.lower()) is not None), None)

    return class_index
