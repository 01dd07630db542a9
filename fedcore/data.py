"""Healthcare datasets, validation of uploaded CSVs, hold-out splits and hospital partitions.

Labels are always integers 0..k-1 with class 1 the positive (disease) class for binary data.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).resolve().parent / "datasets"
MAX_SYNTHETIC_ROWS = 1_000_000


def format_size(n_bytes: float) -> str:
    """A size in binary units, as every upload limit is shown: '20 MiB', '1.5 KiB', '900 bytes'."""
    size, unit = float(n_bytes), "bytes"
    for bigger in ("KiB", "MiB", "GiB"):
        if size < 1024:
            break
        size, unit = size / 1024, bigger
    return f"{size:.1f}".removesuffix(".0") + " " + unit


class DataError(ValueError):
    """A dataset problem a person can fix; names the row (1-based, header = row 1) and column."""

    def __init__(self, message: str, *, row: int | None = None, column: str | None = None) -> None:
        where = []
        if row is not None:
            where.append(f"row {row}")
        if column is not None:
            where.append(f"column '{column}'")
        super().__init__((" / ".join(where) + ": " if where else "") + message)
        self.row, self.column, self.detail = row, column, message


@dataclass
class Column:
    name: str
    minimum: float
    maximum: float
    unit: str = ""
    integer: bool = False
    description: str = ""  # what the column measures, where the dataset documents it


@dataclass
class Table:
    X: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    target_name: str
    class_names: list[str]
    source: str
    columns: list[Column] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.columns:
            self.columns = describe_columns(self.X, self.feature_names)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    def class_counts(self) -> dict[str, int]:
        counts = np.bincount(self.y, minlength=self.n_classes)
        return {name: int(c) for name, c in zip(self.class_names, counts, strict=True)}


def describe_columns(X: np.ndarray, names: list[str], units: dict[str, str] | None = None,
                     descriptions: dict[str, str] | None = None) -> list[Column]:
    units, descriptions = units or {}, descriptions or {}
    cols = []
    for j, name in enumerate(names):
        v = X[:, j]
        integer = bool(np.all(np.isfinite(v)) and np.all(v == np.round(v)))
        cols.append(Column(name, float(np.nanmin(v)), float(np.nanmax(v)), units.get(name, ""), integer,
                           descriptions.get(name, "")))
    return cols


# a value outside a feature's observed range by more than this many times that range is implausible
RANGE_SLACK = 1.0


def plausible_range(minimum: float, maximum: float) -> tuple[float, float]:
    """The values a feature may take: its observed range widened by RANGE_SLACK ranges on either
    side, but never below 0 for a feature never seen negative (a radius, an area, a count)."""
    span = (maximum - minimum) or 1.0
    low = minimum - RANGE_SLACK * span
    return round(max(low, 0.0) if minimum >= 0 else low, 6), round(maximum + RANGE_SLACK * span, 6)


_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[+-]?\d+)?|[+-]?(?:inf|infinity|nan)", re.ASCII | re.IGNORECASE)
_WHOLE = re.compile(r"[+-]?[0-9]{1,18}")


def parse_number(text: str, *, decimal_comma: bool = False) -> float:
    """A number written in plain notation: ASCII digits with an optional sign, decimal point and
    exponent (with ``decimal_comma``, as in semicolon-separated files, a comma for the point).
    Python's other spellings, such as 1_000 or non-ASCII digits, are refused, so that a typo
    like 1_5 is not read as 15. Raises ValueError."""
    text = text.strip()
    if decimal_comma:
        text = text.replace(",", ".")
    if not _NUMBER.fullmatch(text):
        raise ValueError(f"not a number: {text[:40]!r}")
    return float(text)


_THOUSANDS = re.compile(r"[+-]?[0-9]{1,3},[0-9]{3}")
AMBIGUOUS_COMMA = ("'{}' could be a thousand and more with a separator or a number with a decimal comma; "
                   "write it without a thousands separator (1000, or 1.000 for one)")


def ambiguous_comma(text: str) -> bool:
    """Whether a number's one comma could as well separate thousands as decimals (1,000)."""
    return bool(_THOUSANDS.fullmatch(text.strip()))


def parse_whole_number(text: str) -> int:
    """A whole number in plain notation (ASCII digits, an optional sign, at most 18 digits, so
    that it fits a database integer), as :func:`parse_number` reads numbers. Raises ValueError."""
    text = text.strip()
    if not _WHOLE.fullmatch(text):
        raise ValueError(f"not a whole number: {text[:40]!r}")
    return int(text)


def feature_value(raw: object, minimum: float, maximum: float, *, decimal_comma: bool | None = False) -> float:
    """One feature's value, from a form, a JSON body or a CSV cell, as a number in its plausible range.
    ``decimal_comma`` True reads a comma as the decimal point (a semicolon file); None reads it so
    in a text without a point, refusing one that could as well separate thousands (a tab file).

    The one check of a record's values: a number or numeric text (:func:`parse_number`), finite
    and inside plausible_range(minimum, maximum). A boolean is not a number (JSON true is not 1). Raises
    DataError saying what is wrong, without the field's name (the caller knows it).
    """
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        shown = "null" if raw is None else str(raw).lower() if isinstance(raw, bool) else f"a {type(raw).__name__}"
        raise DataError(f"{shown} is not a number")
    if isinstance(raw, str):
        raw = raw.strip()
        if not raw:
            raise DataError("is empty: a value is needed")
        if decimal_comma is None:
            if ambiguous_comma(raw):
                raise DataError(AMBIGUOUS_COMMA.format(raw))
            decimal_comma = "," in raw and "." not in raw
    lo, hi = plausible_range(minimum, maximum)
    text = str(raw)
    too_large = f"{text[:12]}{'…' if len(text) > 12 else ''} is outside the plausible range {lo:g} to {hi:g}"
    try:
        value = parse_number(raw, decimal_comma=decimal_comma) if isinstance(raw, str) else float(raw)
    except ValueError:
        raise DataError(f"'{raw[:40]}' is not a number") from None
    except OverflowError:  # an integer beyond any float
        raise DataError(too_large) from None
    if math.isinf(value) and isinstance(raw, str) and any(c.isdigit() for c in raw):
        raise DataError(too_large)  # a number written out (1e999, 400 digits) beyond any float
    if not math.isfinite(value):
        raise DataError(f"'{str(raw)[:40]}' is not a finite number")
    if not lo <= value <= hi:
        raise DataError(f"{value:g} is outside the plausible range {lo:g} to {hi:g}")
    return value


# --- built-in datasets ---------------------------------------------------------------------

PIMA_UNITS = {"glu": "mg/dL", "bp": "mm Hg", "skin": "mm", "bmi": "kg/m²", "age": "years"}
# the column documentation of MASS::Pima.tr and MASS::biopsy
PIMA_DESCRIPTIONS = {
    "npreg": "Number of pregnancies", "glu": "Plasma glucose in an oral glucose tolerance test",
    "bp": "Diastolic blood pressure", "skin": "Triceps skin fold thickness", "bmi": "Body mass index",
    "ped": "Diabetes pedigree function", "age": "Age",
}
BIOPSY_DESCRIPTIONS = {
    name: f"{text} (score 1–10)" for name, text in {
        "clump_thickness": "Clump thickness", "cell_size_uniformity": "Uniformity of cell size",
        "cell_shape_uniformity": "Uniformity of cell shape", "marginal_adhesion": "Marginal adhesion",
        "epithelial_cell_size": "Single epithelial cell size", "bare_nuclei": "Bare nuclei",
        "bland_chromatin": "Bland chromatin", "normal_nucleoli": "Normal nucleoli", "mitoses": "Mitoses",
    }.items()
}
EHR_FEATURES = [
    ("age", "years"), ("bmi", "kg/m²"), ("systolic_bp", "mm Hg"), ("diastolic_bp", "mm Hg"),
    ("glucose", "mg/dL"), ("hba1c", "%"), ("cholesterol", "mg/dL"), ("hdl", "mg/dL"),
    ("heart_rate", "bpm"), ("creatinine", "mg/dL"), ("smoker", ""), ("physical_activity", "h/week"),
]
BUILTINS = {
    "breast_cancer": "Wisconsin diagnostic breast cancer (WDBC, scikit-learn): 569 tumours, 30 features",
    "pima": "Pima Indian diabetes (MASS Pima.tr + Pima.te): 532 women, 7 features",
    "biopsy": "Wisconsin breast biopsies (MASS biopsy): 699 biopsies, 9 cytology scores",
    "synthetic_ehr": "Synthetic electronic health records: size and class balance of your choice",
}


def builtin_names() -> list[str]:
    return list(BUILTINS)


def load_builtin(name: str, **params) -> Table:
    if name == "breast_cancer":
        from sklearn.datasets import load_breast_cancer

        raw = load_breast_cancer()
        # scikit-learn codes malignant as 0; the product's positive class (1) is the disease.
        y = (raw.target == 0).astype(np.int64)
        return Table(raw.data.astype(np.float64), y, list(raw.feature_names), "diagnosis",
                     ["benign", "malignant"], "scikit-learn load_breast_cancer")
    if name == "pima":
        return _bundled("pima.csv", "type", {"No": 0, "Yes": 1}, ["no diabetes", "diabetes"], PIMA_UNITS,
                        PIMA_DESCRIPTIONS)
    if name == "biopsy":
        return _bundled("biopsy.csv", "class", {"benign": 0, "malignant": 1}, ["benign", "malignant"], {},
                        BIOPSY_DESCRIPTIONS)
    if name == "synthetic_ehr":
        return synthetic_ehr(**params)
    raise DataError(f"unknown dataset '{name}'; choose one of {', '.join(BUILTINS)}")


def _bundled(filename: str, target: str, mapping: dict[str, int], classes: list[str], units: dict[str, str],
             descriptions: dict[str, str]) -> Table:
    import pandas as pd

    frame = pd.read_csv(DATA_DIR / filename)
    y = frame.pop(target).map(mapping).to_numpy(np.int64)
    X = frame.to_numpy(np.float64)
    # Missing values (16 in biopsy's bare_nuclei) take the column median; recorded in PROVENANCE.md.
    if np.isnan(X).any():
        medians = np.nanmedian(X, axis=0)
        rows, cols = np.where(np.isnan(X))
        X[rows, cols] = medians[cols]
    names = list(frame.columns)
    return Table(X, y, names, target, classes, f"MASS {filename} (fedcore/datasets)",
                 describe_columns(X, names, units, descriptions))


def check_class_sizes(y: np.ndarray, class_names: list[str], column: str | None = None) -> None:
    """Every class needs 3 rows: the split keeps one of each class for test and one for
    validation, and one is needed to train."""
    counts = np.bincount(y, minlength=len(class_names))
    small = [c for c, n in zip(class_names, counts, strict=True) if n < 3]
    if small:
        raise DataError(f"class '{small[0]}' has fewer than 3 rows (one each for training, validation and test)",
                        column=column)


def synthetic_ehr(n_rows: int = 5000, positive_fraction: float = 0.3, seed: int = 0) -> Table:
    """Plausible clinical records whose label follows a logistic risk model plus noise.

    Learnable but not trivial (a linear model reaches roughly 80-85% accuracy); the intercept is
    solved so that the share of positives matches ``positive_fraction``.
    """
    n_rows = int(n_rows)
    if not 20 <= n_rows <= MAX_SYNTHETIC_ROWS:
        raise DataError(f"rows must be between 20 and {MAX_SYNTHETIC_ROWS:,}")
    if not 0.05 <= positive_fraction <= 0.95:
        raise DataError("positive fraction must be between 0.05 and 0.95")
    rng = np.random.default_rng(seed)
    age = rng.uniform(18, 90, n_rows)
    bmi = rng.normal(27, 5, n_rows).clip(15, 55)
    sbp = (110 + 0.5 * (age - 18) + rng.normal(0, 12, n_rows)).clip(80, 220)
    dbp = (0.55 * sbp + rng.normal(8, 7, n_rows)).clip(40, 130)
    glucose = (85 + 0.9 * (bmi - 27) + rng.gamma(2.0, 9.0, n_rows)).clip(55, 400)
    hba1c = (4.2 + 0.018 * glucose + rng.normal(0, 0.4, n_rows)).clip(3.5, 15)
    chol = rng.normal(200, 35, n_rows).clip(100, 350)
    hdl = rng.normal(52, 12, n_rows).clip(20, 110)
    hr = rng.normal(74, 11, n_rows).clip(40, 160)
    creat = rng.lognormal(0, 0.25, n_rows).clip(0.3, 6)
    smoker = (rng.random(n_rows) < 0.22).astype(np.float64)
    activity = rng.gamma(2.0, 1.8, n_rows).clip(0, 30)
    X = np.column_stack([age, bmi, sbp, dbp, glucose, hba1c, chol, hdl, hr, creat, smoker, activity])
    z = (0.035 * (age - 50) + 0.06 * (bmi - 27) + 0.012 * (sbp - 130) + 0.9 * (hba1c - 5.8)
         + 0.006 * (chol - 200) - 0.02 * (hdl - 52) + 0.6 * smoker - 0.08 * activity
         + rng.logistic(0, 0.6, n_rows))
    threshold = np.quantile(z, 1 - positive_fraction)
    y = (z > threshold).astype(np.int64)
    check_class_sizes(y, ["no event", "event"])
    names = [n for n, _ in EHR_FEATURES]
    units = dict(EHR_FEATURES)
    return Table(X, y, names, "cardiometabolic_event", ["no event", "event"],
                 f"synthetic EHR (rows={n_rows}, positive_fraction={positive_fraction}, seed={seed})",
                 describe_columns(X, names, units))


# --- uploaded CSVs -------------------------------------------------------------------------

MIN_ROWS = 20
MAX_MISSING_FRACTION = 0.2
MAX_CATEGORIES = 30
NUMERIC_SHARE = 0.8  # a column where at least this share of the values are numbers is numeric
MISSING = {"", "na", "n/a", "nan", "null", "none", "?", "-"}
# Features are standardised (squared deviations): beyond this a column's spread overflows.
MAX_ABS_VALUE = 1e150
MAX_COLUMNS = 1_000  # an upload's columns, target included: refused at the header, before any row is read
MAX_COLUMN_NAME_LENGTH = 120  # characters of a column's name, as long as the target column a dataset stores
# The version of the reading rules of read_csv_upload. A stored upload is read again by the rules
# it was accepted under, so that a later rule cannot refuse it or change its features.
# 1: no limit on columns and name lengths; in a tab file a comma is never a decimal point.
# 2: MAX_COLUMNS and MAX_COLUMN_NAME_LENGTH; a tab file's column may write decimal commas.
CSV_RULES = 2


def csv_text(data: bytes) -> str:
    """An uploaded CSV file as text: UTF-8 (with or without a BOM), no NUL bytes, and every line
    ending (CRLF, or CR alone as old Mac files have) read as LF."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(f"the file is not UTF-8 text (invalid byte at offset {exc.start}); save it as UTF-8 CSV", row=line) from None
    if "\x00" in text:
        raise DataError("the file looks binary (it contains NUL bytes); upload a CSV text file")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def csv_delimiter(text: str) -> str:
    """Comma, semicolon or tab: what csv.Sniffer finds in the first 20,000 characters, else the
    one the header line holds most of."""
    try:
        return csv.Sniffer().sniff(text[:20000], delimiters=",;\t").delimiter
    except csv.Error:
        first_line = text.split("\n", 1)[0]
        delimiter = max(",;\t", key=first_line.count)
        if first_line.count(delimiter) == 0:
            raise DataError("could not find the delimiter; use commas, semicolons or tabs between columns", row=1) from None
        return delimiter


class _Lines:
    """The lines of a text for csv.reader, noting when the reader asked for one past the last."""

    def __init__(self, text: str) -> None:
        self._lines = iter(io.StringIO(text))
        self.exhausted = False

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        try:
            return next(self._lines)
        except StopIteration:
            self.exhausted = True
            raise


def csv_rows(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) of each record; a record the csv module cannot read is a DataError
    naming its line, not an exception from deep inside the parser. A quote that is never closed
    is one too, named by the line its record starts on: the csv module would read the rest of
    the file into that one cell."""
    lines = _Lines(text)
    reader = csv.reader(lines, delimiter=delimiter)
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if "field limit" in str(exc):
                limit = csv.field_size_limit()
                spans = reader.line_num > start  # a quoted cell over several lines
                why = f"a cell is longer than {limit:,} characters" + (" (is a quote never closed?)" if spans else "")
                raise DataError(why, row=start) from None
            raise DataError(f"not readable as CSV ({exc})", row=reader.line_num) from None
        # the reader only reads past the last line inside a quoted cell: its quote is never closed
        if lines.exhausted and cells:
            raise DataError(f"a quote is never closed (in column {len(cells)}, so the rest of the file "
                            "would be one cell); close it or remove it", row=start)
        yield reader.line_num, cells


def check_column_names(header: list[str], max_name_length: int = MAX_COLUMN_NAME_LENGTH) -> None:
    """Refuse a header (row 1) with more than MAX_COLUMNS columns (before any row is read: each
    cell costs time and memory) or a column name longer than ``max_name_length``, naming the
    column by its number (the name itself is too long to show)."""
    if len(header) > MAX_COLUMNS:
        raise DataError(f"the header has {len(header):,} columns; the limit is {MAX_COLUMNS:,}", row=1)
    for j, name in enumerate(header):
        if len(name) > max_name_length:
            raise DataError(f"the name of column {j + 1} ('{name[:30]}…') has {len(name):,} characters; "
                            f"at most {max_name_length} are allowed", row=1)


def read_csv_upload(data: bytes, target_column: str, *, max_bytes: int = 20_000_000, max_rows: int = 1_000_000,
                    rules: int = CSV_RULES) -> Table:
    """Parse and validate an uploaded CSV; raise DataError naming the row and column at fault.

    Numeric columns are kept as numbers (a column that is at least 80% numbers is numeric, and
    a text in it is an error); a text column with at most 30 distinct values is one-hot encoded (``column=value``); missing cells (empty, NA, ?, ...) are imputed with the
    column median when at most 20% of a column is missing. The target may be text or numbers;
    its classes are sorted, and for two classes the second in sorted order is the positive one.
    A comma is a decimal point in a semicolon file, and in a tab file's column that is numeric
    once its commas are read so (unless each comma in it could as well separate thousands, as in
    1,000: that is refused as ambiguous). A header with more than MAX_COLUMNS columns, or a column
    name longer than MAX_COLUMN_NAME_LENGTH characters, is refused before any row is read.
    ``rules`` is the version of these rules (CSV_RULES) to read by: a stored upload's own.
    """
    if not data:
        raise DataError("the file is empty")
    if len(data) > max_bytes:
        raise DataError(f"the file is larger than allowed; the limit is {format_size(max_bytes)}")
    text = csv_text(data)
    delimiter = csv_delimiter(text)
    records = csv_rows(text, delimiter)
    first = next(records, None)
    if first is None or not any(c.strip() for c in first[1]):
        raise DataError("the file has no header row (its first line is blank)" if first else "the file has no header row")
    header = [h.strip() for h in first[1]]
    if rules >= 2:
        check_column_names(header)
    rows = [header, *(cells for _, cells in records)]
    while rows and not any(c.strip() for c in rows[-1]):
        rows.pop()
    for j, name in enumerate(header):
        if not name:
            raise DataError(f"the header of column {j + 1} is empty; every column needs a name", row=1)
    repeated = _first_repeat(header)
    if repeated is not None:
        raise DataError("this column name appears twice in the header", row=1, column=repeated)
    if len(header) < 2:
        raise DataError("the file needs at least one feature column and the target column", row=1)
    if target_column not in header:
        raise DataError(f"target column '{target_column}' is not in the header ({', '.join(header[:12])}{'...' if len(header) > 12 else ''})", row=1)
    body = rows[1:]
    if len(body) > max_rows:
        raise DataError(f"the file has {len(body):,} data rows; the limit is {max_rows:,}")
    if len(body) < MIN_ROWS:
        raise DataError(f"the file has {len(body)} data row{'' if len(body) == 1 else 's'}; at least {MIN_ROWS} are needed")
    for i, r in enumerate(body):
        if len(r) != len(header):
            raise DataError(f"has {len(r)} cells but the header has {len(header)}", row=i + 2)
    t = header.index(target_column)
    target_raw = [class_label(r[t]) for r in body]
    for i, v in enumerate(target_raw):
        if v.lower() in MISSING:
            raise DataError("the target value is missing; every row needs its label", row=i + 2, column=target_column)
    class_names = sorted(set(target_raw), key=_natural_key)
    if len(class_names) < 2:
        raise DataError(f"the target has a single class ('{class_names[0]}'); at least two are needed", column=target_column)
    if len(class_names) > MAX_CATEGORIES:
        raise DataError(f"the target has {len(class_names)} distinct values; it must be a class label (at most {MAX_CATEGORIES})", column=target_column)
    index = {c: k for k, c in enumerate(class_names)}
    y = np.array([index[v] for v in target_raw], dtype=np.int64)
    check_class_sizes(y, class_names, column=target_column)

    features, names = [], []
    for j, name in enumerate(header):
        if j == t:
            continue
        cells = [r[j].strip() for r in body]
        missing = np.array([c.lower() in MISSING for c in cells])
        if missing.mean() > MAX_MISSING_FRACTION:
            raise DataError(f"{missing.mean():.0%} of the values are missing (at most {MAX_MISSING_FRACTION:.0%} allowed)", column=name)
        present = int((~missing).sum())
        values, bad_rows = _numbers(cells, missing, decimal_comma=delimiter == ";")
        if bad_rows and delimiter == "\t" and rules >= 2:
            # a tab file may write decimal commas too ("0,5"): a column that is numeric once they are
            # read so is numeric; a text column (commas in words) is not, and is kept as text
            comma_values, comma_bad = _numbers(cells, missing, decimal_comma=True)
            if len(comma_bad) < len(bad_rows) and _numeric(present, len(comma_bad)):
                still_bad = set(comma_bad)
                commas = [i for i in bad_rows if i not in still_bad]  # the cells read by their comma
                if all(ambiguous_comma(cells[i]) for i in commas):
                    raise DataError(AMBIGUOUS_COMMA.format(cells[commas[0]]), row=commas[0] + 2, column=name)
                values, bad_rows = comma_values, comma_bad
        if bad_rows and _numeric(present, len(bad_rows)):
            # a numeric column with a few stray texts: a typo to fix, not a category
            i = bad_rows[0]
            raise DataError(f"'{cells[i]}' is not a number, and the rest of the column is numeric", row=i + 2, column=name)
        bad_row = bad_rows[0] if bad_rows else None
        if bad_row is None:
            if not np.all(np.isfinite(values[~missing])):
                i = int(np.where(~np.isfinite(values) & ~missing)[0][0])
                raise DataError(f"'{cells[i]}' is not a finite number", row=i + 2, column=name)
            too_large = ~missing & (np.abs(np.nan_to_num(values)) > MAX_ABS_VALUE)
            if too_large.any():
                i = int(np.argmax(too_large))
                raise DataError(f"'{cells[i]}' is too large to scale (values must stay within ±{MAX_ABS_VALUE:.0e}); "
                                "rescale the column", row=i + 2, column=name)
            if missing.any():
                values[missing] = np.nanmedian(values) if (~missing).any() else 0.0
            features.append(values)
            names.append(name)
            continue
        categories = sorted({c for c, m in zip(cells, missing, strict=True) if not m})
        if len(categories) > MAX_CATEGORIES:
            raise DataError(f"'{cells[bad_row]}' is not a number, and the column has {len(categories)} distinct texts (too many for a category)", row=bad_row + 2, column=name)
        for cat in categories:
            features.append(np.array([1.0 if c == cat else 0.0 for c in cells]))
            names.append(f"{name}={cat}")
    clash = _first_repeat(names)
    if clash is not None:
        raise DataError(f"two features would be named '{clash}': a text column's category 'column=value' gives "
                        "the name of another column; rename that column", column=clash)
    X = np.column_stack(features)
    if np.all(X.std(axis=0) == 0):
        raise DataError("every feature column is constant; nothing can be learned from it")
    return Table(X, y, names, target_column, class_names, "uploaded CSV")


def _numeric(present: int, not_numbers: int) -> bool:
    """A column of ``present`` values is numeric when at least NUMERIC_SHARE of them are numbers
    (rounded: 0.2 * 20 is not quite 4 in floating point)."""
    return present - not_numbers >= round(NUMERIC_SHARE * present, 9)


def _numbers(cells: list[str], missing: np.ndarray, *, decimal_comma: bool) -> tuple[np.ndarray, list[int]]:
    """A column's cells as numbers (NaN where missing) and the rows of those that are not numbers."""
    values = np.full(len(cells), np.nan)
    bad_rows = []
    for i, c in enumerate(cells):
        if missing[i]:
            continue
        try:
            values[i] = parse_number(c, decimal_comma=decimal_comma)
        except ValueError:
            bad_rows.append(i)
    return values, bad_rows


def _first_repeat(names: list[str]) -> str | None:
    """The first name that appears a second time (in one pass: uploads can have many columns)."""
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return None


def class_label(cell: str) -> str:
    """A target cell as a class name: numbers are written one way ("1", "1.0" and " 1 " are
    one class, "1"; "0.50" is "0.5"), any other text is kept as it is, trimmed."""
    text = cell.strip()
    try:
        number = parse_number(text)
    except ValueError:
        return text
    if not np.isfinite(number):
        return text
    return str(int(number)) if number.is_integer() else repr(number)


def _natural_key(value: str):
    try:
        return (0, parse_number(value), value)
    except ValueError:
        return (1, 0.0, value.lower())


# --- splits and partitions -----------------------------------------------------------------

@dataclass
class Split:
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def holdout_split(y: np.ndarray, *, validation_fraction: float = 0.15, test_fraction: float = 0.2, seed: int = 0) -> Split:
    """Stratified, disjoint train / validation (the consortium's) / test (nobody trains on it)."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "validation": [], "test": []}
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        n_test = max(1, round(len(idx) * test_fraction))
        n_val = max(1, round(len(idx) * validation_fraction))
        parts["test"].append(idx[:n_test])
        parts["validation"].append(idx[n_test : n_test + n_val])
        parts["train"].append(idx[n_test + n_val :])
    return Split(*(np.sort(np.concatenate(parts[k])) for k in ("train", "validation", "test")))


def partition(y: np.ndarray, n_hospitals: int, *, scheme: str = "iid", alpha: float = 0.5, seed: int = 0, min_size: int = 2) -> list[np.ndarray]:
    """Split row indices 0..len(y)-1 among hospitals.

    iid: a shuffled, class-stratified round robin (near-equal sizes and class mixes).
    dirichlet: for each class, shares drawn from Dirichlet(alpha) over hospitals (small alpha =
    strongly skewed label mixes); then rows move from the largest hospitals to any below
    ``min_size`` so that every hospital can train.
    """
    n = len(y)
    if n_hospitals < 1:
        raise ValueError("at least one hospital is needed")
    if n < n_hospitals * min_size:
        raise ValueError(f"{n} training rows cannot give {n_hospitals} hospitals {min_size} rows each")
    rng = np.random.default_rng(seed)
    buckets: list[list[int]] = [[] for _ in range(n_hospitals)]
    if scheme == "iid":
        order = np.concatenate([rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y)])
        start = int(rng.integers(n_hospitals))
        for k, i in enumerate(order):
            buckets[(start + k) % n_hospitals].append(int(i))
    elif scheme == "dirichlet":
        if alpha <= 0:
            raise ValueError("alpha must be positive")
        for c in np.unique(y):
            idx = rng.permutation(np.flatnonzero(y == c))
            shares = rng.dirichlet(np.full(n_hospitals, alpha))
            cuts = (np.cumsum(shares)[:-1] * len(idx)).astype(int)
            for h, part in enumerate(np.split(idx, cuts)):
                buckets[h].extend(int(i) for i in part)
        for h in range(n_hospitals):
            while len(buckets[h]) < min_size:
                donor = max(range(n_hospitals), key=lambda k: len(buckets[k]))
                buckets[h].append(buckets[donor].pop(int(rng.integers(len(buckets[donor])))))
    else:
        raise ValueError(f"unknown partition scheme {scheme!r}; use 'iid' or 'dirichlet'")
    return [np.sort(np.array(b, dtype=np.int64)) for b in buckets]


class Standardizer:
    """Zero-mean unit-variance scaling; fitted on the training pool only (constant columns kept)."""

    def fit(self, X: np.ndarray) -> Standardizer:
        self.mean_ = X.mean(axis=0)
        std = X.std(axis=0)
        self.scale_ = np.where(std > 0, std, 1.0)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean_) / self.scale_
