"""Free-text search over stored rows, the same way in every app."""

from __future__ import annotations


def unmatchable(query: str) -> bool:
    """True for a search text no stored value can hold, which must match nothing: one with a NUL
    (forms refuse NUL, so nothing stored has one; SQLite's LIKE stops reading a pattern at it
    and would match every row)."""
    return "\x00" in query
