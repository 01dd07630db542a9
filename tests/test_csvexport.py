import pytest

from fedhealth.csvexport import csv_safe


@pytest.mark.parametrize("cell, written", [
    ("=HYPERLINK(\"http://evil\")", "'=HYPERLINK(\"http://evil\")"),
    ("-2+3", "'-2+3"),
    ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
    ("@SUM(A1)", "'@SUM(A1)"),
    (" =1+1", "' =1+1"),  # spreadsheets skip the leading spaces and line breaks
    ("\n@SUM(A1)", "'\n@SUM(A1)"),
    ("\t=1", "'\t=1"),
    ("-inf", "'-inf"),  # not a finite number: a spreadsheet reads a name
    ("-1", "-1"),  # a class label written as text: a number, so it uploads again as it was
    ("+2.5e3", "+2.5e3"),
    ("biopsy", "biopsy"),
    (-3, -3),
    (None, None),
])
def test_only_cells_a_spreadsheet_would_run_as_formulas_are_escaped(cell, written):
    assert csv_safe(cell) == written
